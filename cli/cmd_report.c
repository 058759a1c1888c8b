/* `cgprof report`: reads stored profiles (the file sink's *.json.gz) from
 * directories or files, filters and merges them (report/select.c) and
 * prints one view: the top tables (report/top.c), folded stacks or the
 * merged CodeGuru JSON (profile/), or writes the self-contained HTML
 * report (report/html.c), optionally against a baseline selection for its
 * compare view. Dispatch is in main.c. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
          "                  [--format top|folded|json|pprof|recommendations|html]\n"
          "                  [--counter SET] [--top N] [--from T] [--to T]\n"
          "                  [--group G] [-o FILE] [--price-per-vcpu-hour USD]\n"
          "                  [--baseline DIR|FILE]... [--compare-from T]\n"
          "                  [--compare-to T]\n"
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
          "                recommendations. Default, except when -o names a\n"
          "                *.html file.\n"
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
          "        html    one self-contained page (no network needed to view it):\n"
          "                overview and hotspots flame graphs, inspect, CPU,\n"
          "                latency and custom thread-state views, search, hide\n"
          "                frames, my code, compare A vs B, summary figures and\n"
          "                recommendations. The default when -o ends in .html;\n"
          "                --counter picks the first view.\n"
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
          "    --price-per-vcpu-hour USD\n"
          "        On-demand price of one vCPU-hour for cost estimates (default\n"
          "        0.0425; editable in the HTML page). Costs are estimates:\n"
          "        CPU-seconds over the observed time, extrapolated to a year.\n"
          "    --baseline DIR|FILE\n"
          "        With --format html: profiles to compare against (side A of\n"
          "        the Compare view; the main selection is B). Repeatable.\n"
          "    --compare-from T, --compare-to T\n"
          "        With --format html: side A is this time range of the\n"
          "        --baseline profiles, or of the main DIR|FILE when no\n"
          "        --baseline is given (compare two time ranges).\n"
          "    -h, --help\n"
          "        Print this help.\n"
          "\n"
          "EXAMPLES\n"
          "    cgprof report\n"
          "    cgprof report --from -1h --counter latency --top 10\n"
          "    cgprof report /var/tmp/prof --format folded | flamegraph.pl > cpu.svg\n"
          "    cgprof report -o report.html\n"
          "    cgprof report --from -1h --compare-from -2h --compare-to -1h -o cmp.html\n"
          "    cgprof report --group checkout --from 2026-12-07T10:00:00Z \\\n"
          "        --to 2026-12-07T11:00:00Z -o report.txt\n"
          "\n"
          "EXIT STATUS\n"
          "    0 report written; 1 no matching profiles, unreadable input or a\n"
          "    write error; 2 usage error.\n", out);
}

enum { OPT_FROM = 256, OPT_TO, OPT_PRICE, OPT_BASELINE, OPT_CMP_FROM, OPT_CMP_TO };

#define BASELINE_MAX 64

struct report_args {
    const char *format;
    const char *counter;
    const char *output;
    unsigned mask;
    size_t top;
    struct cgprof_report_filter filter;
    double price;                     /* USD per vCPU-hour */
    const char *baseline[BASELINE_MAX];
    size_t nbaseline;
    int compare;                      /* a baseline selection is wanted */
    struct cgprof_report_filter cmp;  /* filter of the baseline */
};

static int has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

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
        { "price-per-vcpu-hour", required_argument, NULL, OPT_PRICE },
        { "baseline", required_argument, NULL, OPT_BASELINE },
        { "compare-from", required_argument, NULL, OPT_CMP_FROM },
        { "compare-to", required_argument, NULL, OPT_CMP_TO },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    uint64_t now = cgprof_epoch_ms();
    const char *from = NULL, *to = NULL, *cfrom = NULL, *cto = NULL;
    char *end;
    int opt;

    memset(a, 0, sizeof(*a));
    a->format = NULL;
    a->counter = "cpu";
    a->price = CGPROF_REPORT_DEFAULT_VCPU_HOUR_USD;
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
        case OPT_CMP_FROM: cfrom = optarg; break;
        case OPT_CMP_TO: cto = optarg; break;
        case OPT_BASELINE:
            if (a->nbaseline == BASELINE_MAX)
                return cgprof__cli_usage("report", "at most %d --baseline paths",
                                         BASELINE_MAX);
            a->baseline[a->nbaseline++] = optarg;
            break;
        case OPT_PRICE:
            errno = 0;
            a->price = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(a->price >= 0) || a->price > 1000)
                return cgprof__cli_usage("report", "--price-per-vcpu-hour wants US dollars "
                                         "from 0 to 1000, not '%s'", optarg);
            break;
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
    if (a->format == NULL)
        a->format = a->output && (has_suffix(a->output, ".html") ||
                                  has_suffix(a->output, ".htm")) ? "html" : "top";
    if (strcmp(a->format, "top") != 0 && strcmp(a->format, "folded") != 0 &&
        strcmp(a->format, "json") != 0 && strcmp(a->format, "pprof") != 0 &&
        strcmp(a->format, "recommendations") != 0 && strcmp(a->format, "html") != 0)
        return cgprof__cli_usage("report", "unknown format '%s' (top, folded, json, "
                                 "pprof, recommendations or html)", a->format);
    a->compare = a->nbaseline > 0 || cfrom != NULL || cto != NULL;
    if (a->compare && strcmp(a->format, "html") != 0)
        return cgprof__cli_usage("report", "--baseline, --compare-from and --compare-to "
                                 "need --format html (the Compare view)");
    a->cmp.group = NULL;
    if (cfrom && cgprof_report_parse_time(cfrom, now, &a->cmp.from_ms) != 0)
        return cgprof__cli_usage("report", "cannot read --compare-from '%s' as a time "
                                 "(epoch ms, 2026-12-07T10:00:00Z or -1h)", cfrom);
    if (cto && cgprof_report_parse_time(cto, now, &a->cmp.to_ms) != 0)
        return cgprof__cli_usage("report", "cannot read --compare-to '%s' as a time "
                                 "(epoch ms, 2026-12-07T10:00:00Z or -1h)", cto);
    if (a->cmp.from_ms && a->cmp.to_ms && a->cmp.from_ms > a->cmp.to_ms)
        return cgprof__cli_usage("report", "--compare-from '%s' is later than "
                                 "--compare-to '%s'", cfrom, cto);
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

/* "PATH, PATH (from T to T)": how the HTML report names a selection. */
static void label_of(char *out, size_t n, const char *const *paths, size_t npaths,
                     const struct cgprof_report_filter *f)
{
    size_t len = 0;
    char t[32];
    out[0] = '\0';
    for (size_t i = 0; i < npaths && len + 1 < n; i++) {
        int w = snprintf(out + len, n - len, "%s%s", i ? ", " : "", paths[i]);
        if (w < 0)
            return;
        len += (size_t)w;
    }
    if (f->from_ms && len + 1 < n) {
        cgprof_report_format_time(f->from_ms, t, sizeof(t));
        len += (size_t)snprintf(out + len, n - len, " from %s", t);
    }
    if (f->to_ms && len + 1 < n) {
        cgprof_report_format_time(f->to_ms, t, sizeof(t));
        snprintf(out + len, n - len, " to %s", t);
    }
}

/* The html format: the main selection, and the baseline (side A of the
 * compare view) when --baseline or --compare-from/--compare-to ask for
 * one. Returns 0 or a CGPROF_E* code; *failed is set when the baseline
 * selection failed (err then says why). */
static int html_report(const struct report_args *a, const struct cgprof_report_selection *sel,
                       const char *const *paths, size_t npaths, struct cgprof_buf *out,
                       char *err, size_t errn, int *failed)
{
    struct cgprof_report_selection base;
    struct cgprof_report_html_opts o;
    char label[512], blabel[512];
    int rc;

    memset(&o, 0, sizeof(o));
    o.mask = a->mask;
    o.price_per_vcpu_hour = a->price;
    label_of(label, sizeof(label), paths, npaths, &a->filter);
    o.label = label;
    *failed = 0;
    if (!a->compare)
        return cgprof_report_html(sel, &o, out);

    struct cgprof_report_filter bf = a->cmp;
    bf.group = a->filter.group;
    const char *const *bpaths = a->nbaseline ? a->baseline : paths;
    size_t nb = a->nbaseline ? a->nbaseline : npaths;
    rc = cgprof_report_select(&base, bpaths, nb, &bf, err, errn);
    if (rc == 0) {
        label_of(blabel, sizeof(blabel), bpaths, nb, &bf);
        o.baseline = &base;
        o.baseline_label = blabel;
        rc = cgprof_report_html(sel, &o, out);
    } else {
        *failed = 1;
    }
    cgprof_report_selection_cleanup(&base);
    return rc;
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
            rc = cgprof_report_recommend_text(&sel.merged, a.price, &out);
    } else if (strcmp(a.format, "recommendations") == 0)
        rc = cgprof_report_recommend_text(&sel.merged, a.price, &out);
    else if (strcmp(a.format, "pprof") == 0)
        rc = cgprof_profile_encode_pprof(&sel.merged, &out);
    else if (strcmp(a.format, "folded") == 0)
        rc = cgprof_profile_encode_folded(&sel.merged, a.mask, &out);
    else if (strcmp(a.format, "html") == 0) {
        int failed = 0;
        rc = html_report(&a, &sel, paths, npaths, &out, err, sizeof(err), &failed);
        if (failed) {
            cgprof_buf_cleanup(&out);
            cgprof_report_selection_cleanup(&sel);
            return cgprof__cli_fail("baseline for --compare: %s", err);
        }
    }
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
    "report", "summarize stored profiles (HTML flame graphs, top functions, exports)",
    help, run
};
