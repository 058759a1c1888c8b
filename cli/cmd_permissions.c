/* `cgprof permissions grant NAME --principal ARN...`: lets roles or users
 * run the agent against a profiling group (PutPermission with the
 * agentPermissions action group: ConfigureAgent and PostAgentProfile).
 * The group's current policy is read first (GetPolicy) for its revisionId,
 * which PutPermission requires once a policy exists, and for the
 * principals it already grants, which are kept; a revision that changed
 * in between (ConflictException) is read again once. Dispatch is in
 * main.c. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../config/config.h"
#include "cli_int.h"

#define MAX_PRINCIPALS 100

static void help(FILE *out)
{
    fputs("NAME\n"
          "    cgprof permissions - let roles and users run the agent for a group\n"
          "\n"
          "SYNOPSIS\n"
          "    cgprof permissions grant NAME --principal ARN [--principal ARN]...\n"
          "                       [--region R] [--profile P] [--endpoint-url URL]\n"
          "                       [--output json|text]\n"
          "\n"
          "DESCRIPTION\n"
          "    Adds the principals (IAM role or user ARNs) to the profiling group's\n"
          "    resource-based policy with the agentPermissions action group, which\n"
          "    allows codeguru-profiler:ConfigureAgent and PostAgentProfile: what\n"
          "    an agent needs. It reads the current policy first (GetPolicy): the\n"
          "    principals already granted are kept, and its revisionId is passed\n"
          "    to PutPermission as the service requires once a policy exists. If\n"
          "    someone else changes the policy in between, it reads it again and\n"
          "    retries once.\n"
          "\n"
          "OPTIONS\n"
          "    --principal ARN\n"
          "        An IAM role or user ARN, such as\n"
          "        arn:aws:iam::123456789012:role/app. Repeatable; at least one.\n"
          CGPROF__CLI_AWS_HELP
          "    -h, --help\n"
          "        Print this help.\n"
          "\n"
          "EXAMPLES\n"
          "    cgprof permissions grant checkout-prod \\\n"
          "        --principal arn:aws:iam::123456789012:role/checkout-task\n"
          "\n"
          "EXIT STATUS\n"
          "    0 granted, 1 the service refused or could not be reached, 2 usage\n"
          "    error.\n", out);
}

/* Adds the principals that the policy text grants agentPermissions to. */
static void existing_principals(const char *policy, json_t *out)
{
    json_t *p = policy ? json_loads(policy, 0, NULL) : NULL;
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(p, "Statement"), i, st) {
        const char *sid = json_string_value(json_object_get(st, "Sid"));
        char *acts = json_dumps(json_object_get(st, "Action"), JSON_ENCODE_ANY);
        bool agent = (sid && strncmp(sid, "agentPermissions", 16) == 0) ||
                     (acts && strstr(acts, "PostAgentProfile"));
        free(acts);
        if (!agent)
            continue;
        json_t *aws = json_object_get(json_object_get(st, "Principal"), "AWS");
        if (json_is_string(aws)) {
            json_array_append(out, aws);
        } else {
            size_t k;
            json_t *a;
            json_array_foreach(aws, k, a)
                if (json_is_string(a))
                    json_array_append(out, a);
        }
    }
    json_decref(p);
}

static bool has(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        if (strcmp(json_string_value(v), s) == 0)
            return true;
    return false;
}

static int grant(struct cgprof__cli_aws *a, const char *name, const char *const *pr, size_t n,
                 bool *conflict)
{
    struct cgprof_buf path, body;
    cgprof_buf_init(&path, 4096);
    cgprof_buf_init(&body, 1 << 20);
    int ret = CGPROF_CLI_OK;
    *conflict = false;
    /* GetPolicy: revisionId and the principals granted so far. */
    struct cgprof__cli_response rs;
    int rc = cgprof__cli_path_name(&path, "/profilingGroups/", name, "/policy");
    struct cgprof_cg_call get = { .method = "GET", .path = path.data };
    if (rc == 0)
        rc = cgprof__cli_aws_call(a, &get, &rs);
    else
        memset(&rs, 0, sizeof(rs));
    json_t *principals = json_array(), *doc = NULL;
    const char *rev = NULL;
    if (rc == 0) {
        doc = json_loadb(rs.body.data ? rs.body.data : "", rs.body.len, 0, NULL);
        rev = json_string_value(json_object_get(doc, "revisionId"));
        existing_principals(json_string_value(json_object_get(doc, "policy")), principals);
    } else if (!(rc == CGPROF_EHTTP && rs.status == 404)) {
        /* 404: no policy yet (a missing group is reported by PutPermission). */
        ret = cgprof__cli_aws_fail(a, "GetPolicy", &rs, rc);
        cgprof__cli_response_cleanup(&rs);
        goto done;
    }
    cgprof__cli_response_cleanup(&rs);
    size_t before = json_array_size(principals);
    for (size_t i = 0; i < n; i++)
        if (!has(principals, pr[i]))
            json_array_append_new(principals, json_string(pr[i]));
    json_t *o = json_pack("{s:O}", "principals", principals);
    if (rev)
        json_object_set_new(o, "revisionId", json_string(rev));
    char *s = o ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
    json_decref(o);
    cgprof_buf_reset(&path);
    rc = s ? cgprof__cli_json_python(&body, s) : CGPROF_ENOMEM;
    free(s);
    if (rc == 0)
        rc = cgprof__cli_path_name(&path, "/profilingGroups/", name, "/policy/agentPermissions");
    if (rc != 0) {
        ret = cgprof__cli_fail("out of memory");
        goto done;
    }
    struct cgprof_cg_call put = { .method = "PUT", .path = path.data, .body = body.data,
                                  .len = body.len };
    rc = cgprof__cli_aws_call(a, &put, &rs);
    if (rc == CGPROF_EHTTP && rs.status == 409 && strcmp(rs.code, "ConflictException") == 0) {
        *conflict = true;
        ret = CGPROF_CLI_ERROR;
    } else if (rc != 0) {
        ret = cgprof__cli_aws_fail(a, "PutPermission", &rs, rc);
    } else if (a->json) {
        ret = cgprof__cli_print_json(rs.body.data, rs.body.len);
    } else {
        json_t *j = json_loadb(rs.body.data ? rs.body.data : "", rs.body.len, 0, NULL);
        printf("granted agentPermissions on %s to %zu principal(s) (%zu already had it)\n",
               name, json_array_size(principals), before);
        size_t i;
        json_t *v;
        json_array_foreach(principals, i, v)
            printf("  %s\n", json_string_value(v));
        const char *nr = json_string_value(json_object_get(j, "revisionId"));
        if (nr)
            printf("policy revision: %s\n", nr);
        json_decref(j);
    }
    cgprof__cli_response_cleanup(&rs);
done:
    json_decref(principals);
    json_decref(doc);
    cgprof_buf_cleanup(&path);
    cgprof_buf_cleanup(&body);
    return ret;
}

static int run(int argc, char **argv)
{
    if (argc < 2)
        return cgprof__cli_usage("permissions", "expected grant");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        help(stdout);
        return CGPROF_CLI_OK;
    }
    if (strcmp(argv[1], "grant") != 0)
        return cgprof__cli_usage("permissions", "unknown subcommand '%s' (grant)", argv[1]);
    struct cgprof__cli_aws a = { .cmd = "permissions grant" };
    const char *pr[MAX_PRINCIPALS];
    size_t n = 0;
    static const struct option lo[] = {
        { "principal", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        CGPROF__CLI_AWS_LONGOPTS,
        { NULL, 0, NULL, 0 }
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, ":h", lo, NULL)) != -1) {
        switch (c) {
        case 'h':
            help(stdout);
            return CGPROF_CLI_OK;
        case 'p':
            if (strncmp(optarg, "arn:", 4) != 0 || strlen(optarg) > 2048)
                return cgprof__cli_usage(a.cmd, "--principal needs an IAM ARN, not '%s'", optarg);
            if (n == MAX_PRINCIPALS)
                return cgprof__cli_usage(a.cmd, "at most %d principals", MAX_PRINCIPALS);
            pr[n++] = optarg;
            break;
        case ':':
            return cgprof__cli_usage(a.cmd, "%s needs a value", argv[optind]);
        case '?':
            return cgprof__cli_usage(a.cmd, "unknown option '%s'", argv[optind]);
        default: {
            int rc = cgprof__cli_aws_option(&a, c, optarg);
            if (rc != 0)
                return rc;
        }
        }
    }
    if (argc - 1 - optind != 1)
        return cgprof__cli_usage(a.cmd, argc - 1 - optind ? "expected one NAME" : "missing NAME");
    const char *name = argv[1 + optind];
    if (!cgprof_config_valid_group_name(name))
        return cgprof__cli_usage(a.cmd, "'%s' is not a profiling group name", name);
    if (n == 0)
        return cgprof__cli_usage(a.cmd, "missing --principal ARN");
    int ret = cgprof__cli_aws_open(&a);
    if (ret != CGPROF_CLI_OK)
        return ret;
    bool conflict = false;
    for (int tries = 0; tries < 2; tries++) {
        ret = grant(&a, name, pr, n, &conflict);
        if (!conflict)
            break;
    }
    if (conflict)
        ret = cgprof__cli_fail("PutPermission: the policy of %s keeps changing "
                               "(ConflictException); try again", name);
    cgprof__cli_aws_close(&a);
    return ret;
}

const struct cgprof__cli_command cgprof__cli_cmd_permissions = {
    "permissions", "let IAM roles and users run the agent for a profiling group", help, run
};
