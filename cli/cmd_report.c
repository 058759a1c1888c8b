/* `cgprof report`: reads stored profiles (the file sink's *.json.gz) from
 * directories or files, filters and merges them (report/select.c) and
 * prints one view: the top tables (report/top.c), folded stacks or the
 * merged CodeGuru JSON (profile/). Dispatch is in main.c. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../config/config.h"
#include "../report/report.h"
#include "cli_int.h"

#define OUTPUT_MAX ((size_t)1 << 30)   /* bound on one report's text */
#define TOP_DEFAULT 20
#define TOP_MAX 1000000

static const char *env_lookup(const char *key)
{
    return getenv(key);
}

static void help(FILE *out)
{
    char dir[CGPROF_PATH_MAX];
    cgprof_config_default_output_dir(dir, sizeof(dir), env_lookup);
    fputs("NAME\n"
          "    cgprof report - summarize stored profiles\n"
          "\n"
          "SYNOPSIS\n"
          "    cgprof report [DIR|FILE...]\n"
          "                  [--format top|folded|json|pprof|recommendations]\n"
          "                  [--counter SET] [--top N] [--from T] [--to T]\n"
          "                  [--group G] [-o FILE]\n"
          "\n"
          "DESCRIPTION\n"
          "    Reads the profiles stored as *.json.gz (gzip'd CodeGuru agent JSON)\n"
          "    in each DIR and each FILE given, keeps those whose time range\n"
          "    overlaps --from..--to and whose group is G, merges them and prints\n"
          "    one view. Unreadable files are skipped with a warning. Without DIR\n"
          "    or FILE, reads the default output directory: $CGPROF_OUTPUT_DIR,\n"
          "    else $XDG_STATE_HOME/cgprof, else ~/.local/state/cgprof, else\n"
          "    /var/tmp/cgprof-UID. Here that is:\n", out);
    fprintf(out, "        %s\n", dir);
    fputs("\n"
          "    Frames are named module:function (libc.so.6:memcpy), or\n"
          "    module+0xOFFSET where no symbol is known. Self time is time with\n"
          "    the frame at the top of the stack; total time is time with the\n"
          "    frame anywhere on the stack, counted once per stack when it\n"
          "    recurses. Seconds are sample counts divided by the profiles'\n"
          "    sample weights (samples per second of each counter).\n"
          "\n"
          "OPTIONS\n"
          "    -f, --format FORMAT\n"
          "        top     summary lines (time range, profiles, samples, CPU time,\n"
          "                duration, threads, dropped samples), then the N\n"
          "                heaviest frames by self time and by total time with\n"
          "                columns self%, self s, total%, total s, frame, and the\n"
          "                recommendations. Default.\n"
          "        folded  one \"root;...;leaf COUNT\" line per stack, in samples,\n"
          "                for flamegraph.pl, inferno or speedscope.\n"
          "        json    the merged profile as CodeGuru agent-profile JSON.\n"
          "        pprof   gzip'd pprof protobuf (go tool pprof, Pyroscope) with\n"
          "                sample types cpu/nanoseconds (RUNNABLE),\n"
          "                wall/nanoseconds and samples/count (all but IDLE);\n"
          "                binary, so usually with -o profile.pb.gz.\n"
          "        recommendations\n"
          "                rules for costly native patterns (lock contention,\n"
          "                malloc churn, memcpy, small syscalls, regex compiling,\n"
          "                exceptions, logging, compression level) that pass\n"
          "                their thresholds, with evidence, an estimated yearly\n"
          "                cost and a fix (README.md \"Recommendations\").\n"
          "    -c, --counter SET\n"
          "        cpu     RUNNABLE+BLOCKED+NATIVE, the console's CPU view. Default.\n"
          "        latency every thread state but IDLE: where wall time goes.\n"
          "        RUNNABLE, BLOCKED, NATIVE, WAITING, TIMED_WAITING, IDLE\n"
          "                one thread state.\n"
          "    -n, --top N\n"
          "        Rows per table with --format top (default 20).\n"
          "    --from T, --to T\n"
          "        Only profiles overlapping this range. T is epoch milliseconds,\n"
          "        ISO-8601 (2026-12-07T10:00:00Z, 2026-12-07T12:00+02:00,\n"
          "        2026-12-07; no zone means UTC), \"now\", or relative to now:\n"
          "        -30s, -15m, -1h, -2d, -1w, -1h30m.\n"
          "    -g, --group G\n"
          "        Only profiles of profiling group G (the program name when no\n"
          "        profilingGroupName was set).\n"
          "    -o, --output FILE\n"
          "        Write to FILE (replaced atomically) instead of standard output.\n"
          "    -h, --help\n"
          "        Print this help.\n"
          "\n"
          "EXAMPLES\n"
          "    cgprof report\n"
          "    cgprof report --from -1h --counter latency --top 10\n"
          "    cgprof report /var/tmp/prof --format folded | flamegraph.pl > cpu.svg\n"
          "    cgprof report --group checkout --from 2026-12-07T10:00:00Z \\\n"
          "        --to 2026-12-07T11:00:00Z -o report.txt\n"
          "\n"
          "EXIT STATUS\n"
          "    0 report written; 1 no matching profiles, unreadable input or a\n"
          "    write error; 2 usage error.\n", out);
}

enum { OPT_FROM = 256, OPT_TO };

struct report_args {
    const char *format;
    const char *counter;
    const char *output;
    unsigned mask;
    size_t top;
    struct cgprof_report_filter filter;
};

/* Parses the command line into a; returns CGPROF_CLI_OK, CGPROF_CLI_USAGE
 * (after saying why) or -1 when --help was printed. */
static int parse_args(int argc, char **argv, struct report_args *a)
{
    static const struct option longopts[] = {
        { "format", required_argument, NULL, 'f' },
        { "counter", required_argument, NULL, 'c' },
        { "top", required_argument, NULL, 'n' },
        { "from", required_argument, NULL, OPT_FROM },
        { "to", required_argument, NULL, OPT_TO },
        { "group", required_argument, NULL, 'g' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    uint64_t now = cgprof_epoch_ms();
    const char *from = NULL, *to = NULL;
    char *end;
    int opt;

    memset(a, 0, sizeof(*a));
    a->format = "top";
    a->counter = "cpu";
    a->top = TOP_DEFAULT;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":f:c:n:g:o:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'f': a->format = optarg; break;
        case 'c': a->counter = optarg; break;
        case 'g': a->filter.group = optarg; break;
        case 'o': a->output = optarg; break;
        case OPT_FROM: from = optarg; break;
        case OPT_TO: to = optarg; break;
        case 'n': {
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-' || v == 0 || v > TOP_MAX)
                return cgprof__cli_usage("report", "--top wants a count from 1 to %d, "
                                         "not '%s'", TOP_MAX, optarg);
            a->top = (size_t)v;
            break;
        }
        case 'h':
            help(stdout);
            return -1;
        case ':':
            return cgprof__cli_usage("report", "option '%s' needs a value",
                                     argv[optind - 1]);
        default:
            if (optopt != 0)
                return cgprof__cli_usage("report", "unknown option '-%c'", optopt);
            return cgprof__cli_usage("report", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (strcmp(a->format, "top") != 0 && strcmp(a->format, "folded") != 0 &&
        strcmp(a->format, "json") != 0 && strcmp(a->format, "pprof") != 0 &&
        strcmp(a->format, "recommendations") != 0)
        return cgprof__cli_usage("report", "unknown format '%s' (top, folded, json, "
                                 "pprof or recommendations)", a->format);
    if (cgprof_report_counter_mask(a->counter, &a->mask) != 0)
        return cgprof__cli_usage("report", "unknown counter set '%s' (cpu, latency, "
                                 "RUNNABLE, BLOCKED, NATIVE, WAITING, TIMED_WAITING "
                                 "or IDLE)", a->counter);
    if (from && cgprof_report_parse_time(from, now, &a->filter.from_ms) != 0)
        return cgprof__cli_usage("report", "cannot read --from '%s' as a time "
                                 "(epoch ms, 2026-12-07T10:00:00Z or -1h)", from);
    if (to && cgprof_report_parse_time(to, now, &a->filter.to_ms) != 0)
        return cgprof__cli_usage("report", "cannot read --to '%s' as a time "
                                 "(epoch ms, 2026-12-07T10:00:00Z or -1h)", to);
    if (a->filter.from_ms && a->filter.to_ms && a->filter.from_ms > a->filter.to_ms)
        return cgprof__cli_usage("report", "--from '%s' is later than --to '%s'", from, to);
    return CGPROF_CLI_OK;
}

static int run(int argc, char **argv)
{
    struct report_args a;
    struct cgprof_report_selection sel;
    struct cgprof_buf out;
    char dir[CGPROF_PATH_MAX], err[1024];
    const char *default_path[1] = { dir };

    int st = parse_args(argc, argv, &a);
    if (st != CGPROF_CLI_OK)
        return st < 0 ? CGPROF_CLI_OK : st;

    const char *const *paths = (const char *const *)argv + optind;
    size_t npaths = (size_t)(argc - optind);
    if (npaths == 0) {
        struct stat sb;
        cgprof_config_default_output_dir(dir, sizeof(dir), env_lookup);
        if (stat(dir, &sb) != 0 && errno == ENOENT)
            return cgprof__cli_fail("no profiles found in %s (the default output "
                                    "directory does not exist yet; the file sink creates "
                                    "it when a program runs under "
                                    "LD_PRELOAD=libcgprof.so)", dir);
        paths = default_path;
        npaths = 1;
    }

    int rc = cgprof_report_select(&sel, paths, npaths, &a.filter, err, sizeof(err));
    if (rc != 0) {
        cgprof_report_selection_cleanup(&sel);
        return cgprof__cli_fail("%s", err);
    }

    cgprof_buf_init(&out, OUTPUT_MAX);
    if (strcmp(a.format, "top") == 0) {
        rc = cgprof_report_top_text(&sel, a.mask, a.top, &out);
        if (rc == 0)
            rc = cgprof_buf_appends(&out, "\n");
        if (rc == 0)
            rc = cgprof_report_recommend_text(&sel.merged, CGPROF_REPORT_DEFAULT_VCPU_HOUR_USD,
                                              &out);
    } else if (strcmp(a.format, "recommendations") == 0)
        rc = cgprof_report_recommend_text(&sel.merged, CGPROF_REPORT_DEFAULT_VCPU_HOUR_USD,
                                          &out);
    else if (strcmp(a.format, "pprof") == 0)
        rc = cgprof_report_encode_pprof(&sel.merged, &out);
    else if (strcmp(a.format, "folded") == 0)
        rc = cgprof_profile_encode_folded(&sel.merged, a.mask, &out);
    else
        rc = cgprof_profile_encode_codeguru(&sel.merged, &out);
    if (rc == 0 && strcmp(a.format, "json") == 0)
        rc = cgprof_buf_appends(&out, "\n");

    if (rc != 0)
        st = cgprof__cli_fail("cannot build the %s report: %s", a.format,
                              cgprof_strerror(rc));
    else
        st = cgprof__cli_write(a.output, &out);
    cgprof_buf_cleanup(&out);
    cgprof_report_selection_cleanup(&sel);
    return st;
}

const struct cgprof__cli_command cgprof__cli_cmd_report = {
    "report", "summarize stored profiles (top functions, folded stacks, JSON)", help, run
};
