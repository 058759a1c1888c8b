/* cli/: shared declarations between the `cgprof` command's files. main.c
 * dispatches to one cmd_<name>.c per subcommand; each provides a struct
 * cgprof__cli_command with its man-page help. Only cli/ includes this. */
#ifndef CGPROF_CLI_INT_H
#define CGPROF_CLI_INT_H

#include <stdio.h>

#include "../common/common.h"

/* Exit statuses of every subcommand. */
#define CGPROF_CLI_OK 0      /* done */
#define CGPROF_CLI_ERROR 1   /* runtime error: nothing to read, I/O, ... */
#define CGPROF_CLI_USAGE 2   /* bad command line */

struct cgprof__cli_command {
    const char *name;
    const char *summary;                /* one line for `cgprof help` */
    void (*help)(FILE *out);            /* man-page text: NAME ... EXIT STATUS */
    int (*run)(int argc, char **argv);  /* argv[0] is the command name */
};

extern const struct cgprof__cli_command cgprof__cli_cmd_report;
extern const struct cgprof__cli_command cgprof__cli_cmd_version;
extern const struct cgprof__cli_command cgprof__cli_cmd_groups;
extern const struct cgprof__cli_command cgprof__cli_cmd_permissions;
extern const struct cgprof__cli_command cgprof__cli_cmd_profile;
extern const struct cgprof__cli_command cgprof__cli_cmd_recommendations;
extern const struct cgprof__cli_command cgprof__cli_cmd_upload;
extern const struct cgprof__cli_command cgprof__cli_cmd_run;

/* Prints "cgprof[ <cmd>]: <message>; see 'cgprof help[ <cmd>]'" on stderr
 * and returns CGPROF_CLI_USAGE. */
int cgprof__cli_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "cgprof: <message>" on stderr and returns CGPROF_CLI_ERROR. */
int cgprof__cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes b to path atomically, or to stdout when path is NULL or "-".
 * Returns CGPROF_CLI_OK or CGPROF_CLI_ERROR (after saying why). */
int cgprof__cli_write(const char *path, const struct cgprof_buf *b);

/* ---- the control-plane commands' shared part (aws.c) -------------------- */

#include <stdbool.h>
#include <stdint.h>

#include "../uploader/uploader.h"

/* getopt_long codes of the options every control-plane command takes. */
enum {
    CGPROF__CLI_OPT_REGION = 0x1000,
    CGPROF__CLI_OPT_PROFILE,
    CGPROF__CLI_OPT_ENDPOINT_URL,
    CGPROF__CLI_OPT_OUTPUT
};
#define CGPROF__CLI_AWS_LONGOPTS                                              \
    { "region", required_argument, NULL, CGPROF__CLI_OPT_REGION },            \
    { "profile", required_argument, NULL, CGPROF__CLI_OPT_PROFILE },          \
    { "endpoint-url", required_argument, NULL, CGPROF__CLI_OPT_ENDPOINT_URL }, \
    { "output", required_argument, NULL, CGPROF__CLI_OPT_OUTPUT }

/* The same options' help text (OPTIONS section), shared by the man pages. */
#define CGPROF__CLI_AWS_HELP                                                   \
    "    --region REGION\n"                                                   \
    "        AWS region of the profiling group. Default: AWS_REGION, else\n"  \
    "        AWS_DEFAULT_REGION, else us-east-1.\n"                           \
    "    --profile NAME\n"                                                    \
    "        Profile of ~/.aws/credentials and ~/.aws/config to take\n"       \
    "        credentials from (default: AWS_PROFILE, else default).\n"        \
    "        Credentials come from the same chain as the agent's:\n"          \
    "        environment, web identity, shared files, container, EC2.\n"      \
    "    --endpoint-url URL\n"                                                \
    "        Send requests to URL instead of\n"                               \
    "        https://codeguru-profiler.REGION.amazonaws.com (also\n"          \
    "        AWS_ENDPOINT_URL_CODEGURUPROFILER, AWS_ENDPOINT_URL).\n"         \
    "    --output json|text\n"                                                \
    "        json prints the service's answer as JSON; text (default) a\n"    \
    "        summary for people.\n"

struct cgprof__cli_aws {
    const char *cmd;                /* "groups create", for messages */
    char region[64];
    char profile[256];
    char endpoint_url[1024];
    bool json;
    char endpoint[1024];            /* resolved by _open */
    struct cgprof_aws_session *session;
    void *curl;                     /* CURL * */
};

struct cgprof__cli_response {
    long status;
    struct cgprof_buf body;
    char code[128];                 /* service error code */
    char message[512];              /* its message, or the transport error */
    char errortype[256];
    char content_encoding[32];
    char content_type[128];
};

/* Handles one of the shared options (code from CGPROF__CLI_AWS_LONGOPTS).
 * Returns 0, or CGPROF_CLI_USAGE after saying why. */
int cgprof__cli_aws_option(struct cgprof__cli_aws *a, int code, const char *arg);
/* Resolves region and endpoint, sets up credentials and libcurl.
 * Returns CGPROF_CLI_OK or CGPROF_CLI_ERROR (said why). */
int cgprof__cli_aws_open(struct cgprof__cli_aws *a);
void cgprof__cli_aws_close(struct cgprof__cli_aws *a);
/* Sends c signed, with botocore's standard retries. Returns 0 on 2xx, else
 * CGPROF_EHTTP (status/code/message in rs), CGPROF_EAUTH or a transport
 * error. rs is initialized in every case (cgprof__cli_response_cleanup). */
int cgprof__cli_aws_call(struct cgprof__cli_aws *a, const struct cgprof_cg_call *c,
                         struct cgprof__cli_response *rs);
void cgprof__cli_response_cleanup(struct cgprof__cli_response *rs);
/* Prints "cgprof: WHAT: CODE (HTTP n): message" for a failed call and
 * returns CGPROF_CLI_ERROR. */
int cgprof__cli_aws_fail(const struct cgprof__cli_aws *a, const char *what,
                         const struct cgprof__cli_response *rs, int rc);
/* Prints JSON text indented (as is when it does not parse). */
int cgprof__cli_print_json(const char *text, size_t len);
/* Appends jansson's json_dumps(JSON_ENSURE_ASCII) text s in Python
 * json.dumps's exact form (botocore's request bodies). */
int cgprof__cli_json_python(struct cgprof_buf *out, const char *s);
/* out += prefix + uri-encoded name + suffix. */
int cgprof__cli_path_name(struct cgprof_buf *out, const char *prefix, const char *name,
                          const char *suffix);
/* A uuid, or the value of the test seam variable when set. */
void cgprof__cli_token(char out[37], const char *seam);
/* Epoch ms as botocore writes a timestamp in a query string. */
void cgprof__cli_iso8601(uint64_t ms, char *out, size_t n);

#endif
