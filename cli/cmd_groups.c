/* `cgprof groups create|describe|list|delete`: CodeGuru Profiler
 * profiling groups (CreateProfilingGroup, DescribeProfilingGroup,
 * ListProfilingGroups with every page, DeleteProfilingGroup), requests as
 * botocore's service model defines them, signed by uploader/control.c and
 * sent by aws.c. Dispatch is in main.c. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../config/config.h"
#include "cli_int.h"

#define MAX_TAGS 50

static void help(FILE *out)
{
    fputs("NAME\n"
          "    cgprof groups - create, describe, list and delete profiling groups\n"
          "\n"
          "SYNOPSIS\n"
          "    cgprof groups create NAME [--compute-platform Default|AWSLambda]\n"
          "                              [--tag KEY=VALUE]...\n"
          "    cgprof groups describe NAME\n"
          "    cgprof groups list\n"
          "    cgprof groups delete NAME\n"
          "    (each also takes --region, --profile, --endpoint-url, --output)\n"
          "\n"
          "DESCRIPTION\n"
          "    Manages the Amazon CodeGuru Profiler profiling groups that agents\n"
          "    (profilingGroupName:NAME) report to, with the same requests as the\n"
          "    AWS SDKs: CreateProfilingGroup, DescribeProfilingGroup,\n"
          "    ListProfilingGroups (every page, with descriptions) and\n"
          "    DeleteProfilingGroup. NAME is 1 to 255 letters, digits, '_' or '-'.\n"
          "    Requests are signed with SigV4 using the agent's credential chain.\n"
          "    Throttling and server errors are retried (3 attempts).\n"
          "\n"
          "OPTIONS\n"
          "    --compute-platform Default|AWSLambda\n"
          "        With create: the group's compute platform (the service's\n"
          "        default is Default). Lambda functions need AWSLambda.\n"
          "    --tag KEY=VALUE\n"
          "        With create: a tag on the group. Repeatable (up to 50).\n"
          CGPROF__CLI_AWS_HELP
          "    -h, --help\n"
          "        Print this help.\n"
          "\n"
          "EXAMPLES\n"
          "    cgprof groups create checkout-prod --tag team=payments\n"
          "    cgprof groups create my-fn --compute-platform AWSLambda --region eu-west-1\n"
          "    cgprof groups list --output json\n"
          "    cgprof groups describe checkout-prod\n"
          "    cgprof groups delete checkout-prod\n"
          "\n"
          "EXIT STATUS\n"
          "    0 done, 1 the service refused (its error code is printed) or could\n"
          "    not be reached, or no credentials, 2 usage error.\n", out);
}

static const char *str(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A timestamp the way the service sent it (ISO string or epoch seconds). */
static void time_text(const json_t *v, char *out, size_t n)
{
    if (json_is_string(v)) {
        snprintf(out, n, "%s", json_string_value(v));
    } else if (json_is_number(v)) {
        double s = json_number_value(v);
        cgprof__cli_iso8601((uint64_t)(s * 1000.0), out, n);
    } else {
        snprintf(out, n, "-");
    }
}

static void print_group(const json_t *g, bool full)
{
    const json_t *oc = json_object_get(g, "agentOrchestrationConfig");
    const json_t *pe = json_object_get(oc, "profilingEnabled");
    const char *on = json_is_boolean(pe) ? (json_is_true(pe) ? "on" : "off") : "-";
    if (!full) {
        printf("%-40s %-10s profiling %s\n", str(g, "name") ? str(g, "name") : "?",
               str(g, "computePlatform") ? str(g, "computePlatform") : "Default", on);
        return;
    }
    char t[64];
    printf("name:              %s\n", str(g, "name") ? str(g, "name") : "?");
    printf("arn:               %s\n", str(g, "arn") ? str(g, "arn") : "-");
    printf("compute platform:  %s\n", str(g, "computePlatform") ? str(g, "computePlatform")
                                                                : "Default");
    printf("profiling:         %s\n", on);
    time_text(json_object_get(g, "createdAt"), t, sizeof(t));
    printf("created:           %s\n", t);
    time_text(json_object_get(g, "updatedAt"), t, sizeof(t));
    printf("updated:           %s\n", t);
    const json_t *ps = json_object_get(g, "profilingStatus");
    time_text(json_object_get(ps, "latestAgentProfileReportedAt"), t, sizeof(t));
    printf("last agent report: %s\n", t);
    json_t *tags = json_object_get(g, "tags");
    const char *k;
    json_t *v;
    if (json_is_object(tags) && json_object_size(tags))
        json_object_foreach(tags, k, v)
            printf("tag:               %s=%s\n", k, json_is_string(v) ? json_string_value(v) : "");
}

/* Prints the response: JSON as is, or text from profilingGroup. */
static int show(const struct cgprof__cli_aws *a, const struct cgprof__cli_response *rs,
                const char *headline)
{
    if (a->json)
        return cgprof__cli_print_json(rs->body.data, rs->body.len);
    json_t *j = json_loadb(rs->body.data ? rs->body.data : "", rs->body.len, 0, NULL);
    const json_t *g = json_object_get(j, "profilingGroup");
    if (headline)
        printf("%s\n", headline);
    if (json_is_object(g))
        print_group(g, true);
    json_decref(j);
    return fflush(stdout) == 0 ? CGPROF_CLI_OK : CGPROF_CLI_ERROR;
}

static int do_list(struct cgprof__cli_aws *a)
{
    json_t *all = json_array();
    char next[4096] = "";
    int ret = CGPROF_CLI_OK;
    if (!all)
        return cgprof__cli_fail("out of memory");
    for (int page = 0; page < 10000; page++) {
        struct cgprof_buf q;
        cgprof_buf_init(&q, 8192);
        int rc = cgprof_buf_appends(&q, "includeDescription=true&maxResults=100");
        if (rc == 0 && next[0]) {
            rc = cgprof_buf_appends(&q, "&nextToken=");
            if (rc == 0)
                rc = cgprof_uri_encode(&q, next, false);
        }
        struct cgprof_cg_call c = { .method = "GET", .path = "/profilingGroups",
                                    .query = q.data };
        struct cgprof__cli_response rs;
        if (rc == 0)
            rc = cgprof__cli_aws_call(a, &c, &rs);
        else
            memset(&rs, 0, sizeof(rs));
        cgprof_buf_cleanup(&q);
        if (rc != 0) {
            ret = cgprof__cli_aws_fail(a, "ListProfilingGroups", &rs, rc);
            cgprof__cli_response_cleanup(&rs);
            break;
        }
        json_t *j = json_loadb(rs.body.data ? rs.body.data : "", rs.body.len, 0, NULL);
        cgprof__cli_response_cleanup(&rs);
        json_t *gs = json_object_get(j, "profilingGroups");
        size_t i;
        json_t *g;
        json_array_foreach(gs, i, g)
            json_array_append(all, g);
        const char *nt = str(j, "nextToken");
        snprintf(next, sizeof(next), "%s", nt ? nt : "");
        json_decref(j);
        if (!next[0])
            break;
    }
    if (ret == CGPROF_CLI_OK) {
        if (a->json) {
            json_t *o = json_pack("{s:O}", "profilingGroups", all);
            char *s = o ? json_dumps(o, JSON_INDENT(4) | JSON_PRESERVE_ORDER) : NULL;
            if (s)
                puts(s);
            free(s);
            json_decref(o);
        } else {
            size_t i;
            json_t *g;
            json_array_foreach(all, i, g)
                print_group(g, false);
            if (json_array_size(all) == 0)
                printf("no profiling groups in %s\n", a->region);
        }
        if (fflush(stdout) != 0)
            ret = CGPROF_CLI_ERROR;
    }
    json_decref(all);
    return ret;
}

static int run(int argc, char **argv)
{
    if (argc < 2)
        return cgprof__cli_usage("groups", "expected create, describe, list or delete");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        help(stdout);
        return CGPROF_CLI_OK;
    }
    const char *sub = argv[1];
    static const char *const subs[] = { "create", "describe", "list", "delete" };
    static const char *const cmds[] = { "groups create", "groups describe", "groups list",
                                        "groups delete" };
    int which = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(sub, subs[i]) == 0)
            which = i;
    if (which < 0)
        return cgprof__cli_usage("groups", "unknown subcommand '%s' (create, describe, list, "
                                 "delete)", sub);
    struct cgprof__cli_aws a = { .cmd = cmds[which] };
    const char *platform = NULL, *tags[MAX_TAGS];
    size_t ntags = 0;
    static const struct option lo[] = {
        { "compute-platform", required_argument, NULL, 'c' },
        { "tag", required_argument, NULL, 't' },
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
        case 'c':
            if (which != 0)
                return cgprof__cli_usage(a.cmd, "--compute-platform goes with create");
            if (strcmp(optarg, "Default") != 0 && strcmp(optarg, "AWSLambda") != 0)
                return cgprof__cli_usage(a.cmd, "--compute-platform is Default or AWSLambda, "
                                         "not '%s'", optarg);
            platform = optarg;
            break;
        case 't':
            if (which != 0)
                return cgprof__cli_usage(a.cmd, "--tag goes with create");
            if (!strchr(optarg, '=') || optarg[0] == '=')
                return cgprof__cli_usage(a.cmd, "--tag needs KEY=VALUE, not '%s'", optarg);
            if (ntags == MAX_TAGS)
                return cgprof__cli_usage(a.cmd, "at most %d tags", MAX_TAGS);
            tags[ntags++] = optarg;
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
    int nargs = argc - 1 - optind;
    const char *name = nargs > 0 ? argv[1 + optind] : NULL;
    if (which == 2 && nargs > 0)
        return cgprof__cli_usage(a.cmd, "unexpected argument '%s'", name);
    if (which != 2 && nargs != 1)
        return cgprof__cli_usage(a.cmd, nargs ? "expected one NAME" : "missing NAME");
    if (name && !cgprof_config_valid_group_name(name))
        return cgprof__cli_usage(a.cmd, "'%s' is not a profiling group name (1 to 255 letters, "
                                 "digits, '_' or '-')", name);
    int ret = cgprof__cli_aws_open(&a);
    if (ret != CGPROF_CLI_OK)
        return ret;
    if (which == 2) {
        ret = do_list(&a);
        cgprof__cli_aws_close(&a);
        return ret;
    }
    struct cgprof_buf path, query, body;
    cgprof_buf_init(&path, 4096);
    cgprof_buf_init(&query, 256);
    cgprof_buf_init(&body, 64 << 10);
    struct cgprof_cg_call call = { 0 };
    int rc;
    const char *op;
    if (which == 0) {
        /* botocore's layout: json.dumps of the members in call order. */
        op = "CreateProfilingGroup";
        char tok[37];
        cgprof__cli_token(tok, "CGPROF_TEST_CLIENT_TOKEN");
        json_t *o = json_object(), *tg = ntags ? json_object() : NULL;
        json_object_set_new(o, "profilingGroupName", json_string(name));
        if (platform)
            json_object_set_new(o, "computePlatform", json_string(platform));
        for (size_t i = 0; i < ntags; i++) {
            const char *eq = strchr(tags[i], '=');
            char key[256];
            snprintf(key, sizeof(key), "%.*s", (int)(eq - tags[i]), tags[i]);
            json_object_set_new(tg, key, json_string(eq + 1));
        }
        if (tg)
            json_object_set_new(o, "tags", tg);
        char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        json_decref(o);
        rc = s ? cgprof__cli_json_python(&body, s) : CGPROF_ENOMEM;
        free(s);
        if (rc == 0)
            rc = cgprof_buf_appends(&path, "/profilingGroups");
        if (rc == 0)
            rc = cgprof_buf_printf(&query, "clientToken=%s", tok);
        call = (struct cgprof_cg_call){ .method = "POST", .path = path.data, .query = query.data,
                                        .body = body.data, .len = body.len };
    } else {
        op = which == 1 ? "DescribeProfilingGroup" : "DeleteProfilingGroup";
        rc = cgprof__cli_path_name(&path, "/profilingGroups/", name, NULL);
        call = (struct cgprof_cg_call){ .method = which == 1 ? "GET" : "DELETE",
                                        .path = path.data };
    }
    struct cgprof__cli_response rs;
    if (rc == 0)
        rc = cgprof__cli_aws_call(&a, &call, &rs);
    else
        memset(&rs, 0, sizeof(rs));
    if (rc != 0) {
        ret = rc == CGPROF_ENOMEM || rc == CGPROF_ETOOBIG ? cgprof__cli_fail("out of memory")
                                                          : cgprof__cli_aws_fail(&a, op, &rs, rc);
    } else if (which == 0) {
        char line[400];
        snprintf(line, sizeof(line), "created profiling group %s", name);
        ret = show(&a, &rs, line);
    } else if (which == 1) {
        ret = show(&a, &rs, NULL);
    } else {
        if (a.json)
            ret = cgprof__cli_print_json("{}", 2);
        else
            printf("deleted profiling group %s\n", name);
    }
    cgprof__cli_response_cleanup(&rs);
    cgprof_buf_cleanup(&path);
    cgprof_buf_cleanup(&query);
    cgprof_buf_cleanup(&body);
    cgprof__cli_aws_close(&a);
    return ret;
}

const struct cgprof__cli_command cgprof__cli_cmd_groups = {
    "groups", "create, describe, list and delete CodeGuru profiling groups", help, run
};
