/* `cgprof profile get` (GetProfile, Accept: application/json) and
 * `cgprof recommendations` (GetRecommendations): what CodeGuru Profiler
 * aggregated for a group over a time range. The profile is written so
 * `cgprof report` reads it: gunzipped when the service compressed it, with
 * "start"/"end" as epoch milliseconds (from ISO text, or the requested
 * range when absent). Dispatch is in main.c. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../config/config.h"
#include "../report/report.h"
#include "cli_int.h"

static void help_profile(FILE *out)
{
    fputs("NAME\n"
          "    cgprof profile - download a profiling group's aggregated profile\n"
          "\n"
          "SYNOPSIS\n"
          "    cgprof profile get NAME --from T --to T [-o FILE] [--max-depth N]\n"
          "                       [--region R] [--profile P] [--endpoint-url URL]\n"
          "\n"
          "DESCRIPTION\n"
          "    Calls GetProfile for the time range and writes the aggregated\n"
          "    profile as JSON (Accept: application/json) to FILE, or to\n"
          "    standard output. The file is what `cgprof report FILE` reads:\n"
          "    gunzipped when the service sent it compressed, gzip'd again when\n"
          "    FILE ends in .gz, and with start/end in epoch milliseconds.\n"
          "    CodeGuru keeps aggregates of 5 minutes, 1 hour and 1 day; the\n"
          "    range may span at most 7 days.\n"
          "\n"
          "OPTIONS\n"
          "    --from T, --to T\n"
          "        The time range (both required). T is epoch milliseconds,\n"
          "        ISO-8601 (2026-12-07T10:00:00Z, 2026-12-07), \"now\", or relative:\n"
          "        -30m, -1h, -2d. Sent as startTime and endTime.\n"
          "    -o, --output-file FILE\n"
          "        Write the profile to FILE (replaced atomically).\n"
          "    --max-depth N\n"
          "        Deepest stack the service returns (maxDepth).\n"
          CGPROF__CLI_AWS_HELP
          "    -h, --help\n"
          "        Print this help.\n"
          "\n"
          "EXAMPLES\n"
          "    cgprof profile get checkout-prod --from -1h --to now -o last-hour.json\n"
          "    cgprof report last-hour.json\n"
          "\n"
          "EXIT STATUS\n"
          "    0 written, 1 the service refused or could not be reached, or the\n"
          "    answer is not a profile, 2 usage error.\n", out);
}

static void help_recommendations(FILE *out)
{
    fputs("NAME\n"
          "    cgprof recommendations - CodeGuru Profiler's findings for a group\n"
          "\n"
          "SYNOPSIS\n"
          "    cgprof recommendations NAME --from T --to T [--locale L]\n"
          "                           [--region R] [--profile P] [--endpoint-url URL]\n"
          "                           [--output json|text]\n"
          "\n"
          "DESCRIPTION\n"
          "    Calls GetRecommendations for the time range and prints each\n"
          "    recommendation (the pattern's name and description, how much of\n"
          "    the profile matched, the steps to fix it) and the anomalies found.\n"
          "    For recommendations computed locally from stored profiles, see\n"
          "    `cgprof report --format recommendations`.\n"
          "\n"
          "OPTIONS\n"
          "    --from T, --to T\n"
          "        The time range (both required), as for `cgprof profile get`.\n"
          "    --locale L\n"
          "        Language of the texts, such as en-US (the service's default).\n"
          CGPROF__CLI_AWS_HELP
          "    -h, --help\n"
          "        Print this help.\n"
          "\n"
          "EXAMPLES\n"
          "    cgprof recommendations checkout-prod --from -1d --to now\n"
          "\n"
          "EXIT STATUS\n"
          "    0 printed, 1 the service refused or could not be reached, 2 usage\n"
          "    error.\n", out);
}

struct range_args {
    const char *name, *from, *to, *out, *locale;
    unsigned max_depth;
    uint64_t from_ms, to_ms;
};

/* Parses NAME and the options; returns CGPROF_CLI_OK or an exit status. */
static int parse(struct cgprof__cli_aws *a, int argc, char **argv, bool profile,
                 struct range_args *r)
{
    static const struct option lo[] = {
        { "from", required_argument, NULL, 'f' },
        { "to", required_argument, NULL, 't' },
        { "output-file", required_argument, NULL, 'o' },
        { "max-depth", required_argument, NULL, 'd' },
        { "locale", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        CGPROF__CLI_AWS_LONGOPTS,
        { NULL, 0, NULL, 0 }
    };
    void (*help)(FILE *) = profile ? help_profile : help_recommendations;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":ho:", lo, NULL)) != -1) {
        switch (c) {
        case 'h':
            help(stdout);
            return -1;
        case 'f':
            r->from = optarg;
            break;
        case 't':
            r->to = optarg;
            break;
        case 'o':
        case 'd':
            if (!profile)
                return cgprof__cli_usage(a->cmd, "unknown option '%s'", argv[optind - 1]);
            if (c == 'o') {
                r->out = optarg;
            } else {
                char *end;
                unsigned long v = strtoul(optarg, &end, 10);
                if (*end || !*optarg || v < 1 || v > 10000)
                    return cgprof__cli_usage(a->cmd, "--max-depth is 1 to 10000");
                r->max_depth = (unsigned)v;
            }
            break;
        case 'l':
            if (profile)
                return cgprof__cli_usage(a->cmd, "unknown option '--locale'");
            r->locale = optarg;
            break;
        case ':':
            return cgprof__cli_usage(a->cmd, "%s needs a value", argv[optind - 1]);
        case '?':
            return cgprof__cli_usage(a->cmd, "unknown option '%s'", argv[optind - 1]);
        default: {
            int rc = cgprof__cli_aws_option(a, c, optarg);
            if (rc != 0)
                return rc;
        }
        }
    }
    if (argc - optind != 1)
        return cgprof__cli_usage(a->cmd, argc - optind ? "expected one NAME" : "missing NAME");
    r->name = argv[optind];
    if (!cgprof_config_valid_group_name(r->name))
        return cgprof__cli_usage(a->cmd, "'%s' is not a profiling group name", r->name);
    if (!r->from || !r->to)
        return cgprof__cli_usage(a->cmd, "--from and --to are required");
    uint64_t now = cgprof_epoch_ms();
    if (cgprof_report_parse_time(r->from, now, &r->from_ms) != 0)
        return cgprof__cli_usage(a->cmd, "--from '%s' is not a time", r->from);
    if (cgprof_report_parse_time(r->to, now, &r->to_ms) != 0)
        return cgprof__cli_usage(a->cmd, "--to '%s' is not a time", r->to);
    if (r->to_ms <= r->from_ms)
        return cgprof__cli_usage(a->cmd, "--to must be after --from");
    return CGPROF_CLI_OK;
}

/* startTime=...&endTime=...: botocore's order (the call's). */
static int range_query(struct cgprof_buf *q, const struct range_args *r)
{
    char f[40], t[40];
    cgprof__cli_iso8601(r->from_ms, f, sizeof(f));
    cgprof__cli_iso8601(r->to_ms, t, sizeof(t));
    int rc = cgprof_buf_appends(q, "startTime=");
    if (rc == 0)
        rc = cgprof_uri_encode(q, f, false);
    if (rc == 0)
        rc = cgprof_buf_appends(q, "&endTime=");
    if (rc == 0)
        rc = cgprof_uri_encode(q, t, false);
    return rc;
}

/* Makes the service's profile JSON readable by `cgprof report`. */
static int normalize(const struct range_args *r, const char *text, size_t len,
                     struct cgprof_buf *out)
{
    json_error_t e;
    json_t *j = json_loadb(text, len, 0, &e);
    if (!json_is_object(j)) {
        json_decref(j);
        return CGPROF_EJSON;
    }
    static const char *const keys[] = { "start", "end" };
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(j, keys[k]);
        uint64_t ms = k == 0 ? r->from_ms : r->to_ms;
        if (json_is_string(v))
            cgprof_report_parse_time(json_string_value(v), cgprof_epoch_ms(), &ms);
        if (!json_is_integer(v))
            json_object_set_new(j, keys[k], json_integer((json_int_t)ms));
    }
    char *s = json_dumps(j, JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(j);
    if (!s)
        return CGPROF_ENOMEM;
    int rc = cgprof_buf_appends(out, s);
    free(s);
    if (rc == 0) {
        struct cgprof_profile p;
        rc = cgprof_profile_init(&p);
        if (rc == 0)
            rc = cgprof_profile_decode_codeguru(&p, out->data, out->len);
        cgprof_profile_cleanup(&p);
    }
    return rc;
}

static int run_get(int argc, char **argv)
{
    struct cgprof__cli_aws a = { .cmd = "profile get" };
    struct range_args r = { 0 };
    int ret = parse(&a, argc, argv, true, &r);
    if (ret != CGPROF_CLI_OK)
        return ret < 0 ? CGPROF_CLI_OK : ret;
    if ((ret = cgprof__cli_aws_open(&a)) != CGPROF_CLI_OK)
        return ret;
    struct cgprof_buf path, q, plain, fixed;
    cgprof_buf_init(&path, 4096);
    cgprof_buf_init(&q, 1024);
    cgprof_buf_init(&plain, CGPROF_PROFILE_FILE_MAX);
    cgprof_buf_init(&fixed, CGPROF_PROFILE_FILE_MAX);
    int rc = cgprof__cli_path_name(&path, "/profilingGroups/", r.name, "/profile");
    if (rc == 0)
        rc = range_query(&q, &r);
    if (rc == 0 && r.max_depth)
        rc = cgprof_buf_printf(&q, "&maxDepth=%u", r.max_depth);
    struct cgprof_cg_call c = { .method = "GET", .path = path.data, .query = q.data,
                                .accept = "application/json" };
    struct cgprof__cli_response rs;
    if (rc == 0)
        rc = cgprof__cli_aws_call(&a, &c, &rs);
    else
        memset(&rs, 0, sizeof(rs));
    if (rc != 0) {
        ret = cgprof__cli_aws_fail(&a, "GetProfile", &rs, rc);
        goto done;
    }
    const struct cgprof_buf *body = &rs.body;
    if (strcasecmp(rs.content_encoding, "gzip") == 0 ||
        (rs.body.len > 2 && (unsigned char)rs.body.data[0] == 0x1f &&
         (unsigned char)rs.body.data[1] == 0x8b)) {
        if ((rc = cgprof_gunzip(rs.body.data, rs.body.len, &plain)) != 0) {
            ret = cgprof__cli_fail("GetProfile: the compressed answer does not decompress: %s",
                                   cgprof_strerror(rc));
            goto done;
        }
        body = &plain;
    }
    rc = normalize(&r, body->data ? body->data : "", body->len, &fixed);
    if (rc != 0) {
        ret = cgprof__cli_fail("GetProfile: the answer (%s) is not a profile cgprof can read: %s",
                               rs.content_type[0] ? rs.content_type : "no Content-Type",
                               cgprof_strerror(rc));
        goto done;
    }
    size_t n = strlen(r.out ? r.out : "");
    if (r.out && n > 3 && strcmp(r.out + n - 3, ".gz") == 0) {
        struct cgprof_buf gz;
        cgprof_buf_init(&gz, CGPROF_PROFILE_FILE_MAX);
        rc = cgprof_gzip(fixed.data, fixed.len, &gz);
        ret = rc == 0 ? cgprof__cli_write(r.out, &gz) : cgprof__cli_fail("cannot compress");
        cgprof_buf_cleanup(&gz);
    } else {
        if (!r.out)
            cgprof_buf_appends(&fixed, "\n");
        ret = cgprof__cli_write(r.out, &fixed);
    }
    if (ret == CGPROF_CLI_OK && r.out)
        fprintf(stderr, "cgprof: wrote the profile of %s to %s; see it with: cgprof report %s\n",
                r.name, r.out, r.out);
done:
    cgprof__cli_response_cleanup(&rs);
    cgprof_buf_cleanup(&path);
    cgprof_buf_cleanup(&q);
    cgprof_buf_cleanup(&plain);
    cgprof_buf_cleanup(&fixed);
    cgprof__cli_aws_close(&a);
    return ret;
}

static int run_profile(int argc, char **argv)
{
    if (argc < 2)
        return cgprof__cli_usage("profile", "expected get");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        help_profile(stdout);
        return CGPROF_CLI_OK;
    }
    if (strcmp(argv[1], "get") != 0)
        return cgprof__cli_usage("profile", "unknown subcommand '%s' (get)", argv[1]);
    return run_get(argc - 1, argv + 1);
}

static void print_text(const json_t *j)
{
    size_t i, k;
    json_t *rec, *step;
    const json_t *recs = json_object_get(j, "recommendations");
    printf("%zu recommendation(s)", json_array_size(recs));
    const char *ps = json_string_value(json_object_get(j, "profileStartTime"));
    const char *pe = json_string_value(json_object_get(j, "profileEndTime"));
    if (ps && pe)
        printf(" for %s .. %s", ps, pe);
    printf("\n");
    json_array_foreach(recs, i, rec) {
        const json_t *pat = json_object_get(rec, "pattern");
        const char *nm = json_string_value(json_object_get(pat, "name"));
        const char *ds = json_string_value(json_object_get(pat, "description"));
        double sum = json_number_value(json_object_get(rec, "allMatchesSum"));
        json_int_t cnt = json_integer_value(json_object_get(rec, "allMatchesCount"));
        double thr = json_number_value(json_object_get(pat, "thresholdPercent"));
        printf("\n%zu. %s\n", i + 1, nm ? nm : "(unnamed pattern)");
        printf("   matched: %.2f %% of the profile in %lld place(s) (threshold %.2f %%)\n", sum,
               (long long)cnt, thr);
        if (ds)
            printf("   %s\n", ds);
        json_array_foreach(json_object_get(pat, "resolutionSteps"), k, step)
            if (json_is_string(step))
                printf("   - %s\n", json_string_value(step));
    }
    const json_t *an = json_object_get(j, "anomalies");
    if (json_array_size(an))
        printf("\n%zu anomal%s reported (see --output json)\n", json_array_size(an),
               json_array_size(an) == 1 ? "y" : "ies");
}

static int run_recommendations(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        help_recommendations(stdout);
        return CGPROF_CLI_OK;
    }
    struct cgprof__cli_aws a = { .cmd = "recommendations" };
    struct range_args r = { 0 };
    int ret = parse(&a, argc, argv, false, &r);
    if (ret != CGPROF_CLI_OK)
        return ret < 0 ? CGPROF_CLI_OK : ret;
    if ((ret = cgprof__cli_aws_open(&a)) != CGPROF_CLI_OK)
        return ret;
    struct cgprof_buf path, q;
    cgprof_buf_init(&path, 4096);
    cgprof_buf_init(&q, 1024);
    int rc = cgprof__cli_path_name(&path, "/internal/profilingGroups/", r.name,
                                   "/recommendations");
    if (rc == 0)
        rc = range_query(&q, &r);
    if (rc == 0 && r.locale) {
        rc = cgprof_buf_appends(&q, "&locale=");
        if (rc == 0)
            rc = cgprof_uri_encode(&q, r.locale, false);
    }
    struct cgprof_cg_call c = { .method = "GET", .path = path.data, .query = q.data };
    struct cgprof__cli_response rs;
    if (rc == 0)
        rc = cgprof__cli_aws_call(&a, &c, &rs);
    else
        memset(&rs, 0, sizeof(rs));
    if (rc != 0) {
        ret = cgprof__cli_aws_fail(&a, "GetRecommendations", &rs, rc);
    } else if (a.json) {
        ret = cgprof__cli_print_json(rs.body.data, rs.body.len);
    } else {
        json_t *j = json_loadb(rs.body.data ? rs.body.data : "", rs.body.len, 0, NULL);
        if (!json_is_object(j)) {
            ret = cgprof__cli_fail("GetRecommendations: the answer is not JSON");
        } else {
            print_text(j);
            ret = fflush(stdout) == 0 ? CGPROF_CLI_OK : CGPROF_CLI_ERROR;
        }
        json_decref(j);
    }
    cgprof__cli_response_cleanup(&rs);
    cgprof_buf_cleanup(&path);
    cgprof_buf_cleanup(&q);
    cgprof__cli_aws_close(&a);
    return ret;
}

const struct cgprof__cli_command cgprof__cli_cmd_profile = {
    "profile", "download a profiling group's aggregated profile (GetProfile)", help_profile,
    run_profile
};

const struct cgprof__cli_command cgprof__cli_cmd_recommendations = {
    "recommendations", "CodeGuru Profiler's recommendations for a group", help_recommendations,
    run_recommendations
};
