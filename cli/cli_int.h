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

/* Prints "cgprof[ <cmd>]: <message>; see 'cgprof help[ <cmd>]'" on stderr
 * and returns CGPROF_CLI_USAGE. */
int cgprof__cli_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "cgprof: <message>" on stderr and returns CGPROF_CLI_ERROR. */
int cgprof__cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes b to path atomically, or to stdout when path is NULL or "-".
 * Returns CGPROF_CLI_OK or CGPROF_CLI_ERROR (after saying why). */
int cgprof__cli_write(const char *path, const struct cgprof_buf *b);

#endif
