/* `cgprof run [--options '...'] -- cmd...`: runs a command under the
 * preload (LD_PRELOAD = the libcgprof.so next to this binary, or the
 * installed one, or $CGPROF_LIB; libcgprof-heap.so from the same directory
 * when the options, read by the agent's own config parser, turn the heap
 * summary on) and, when it ends, prints where its profiles went and a
 * `cgprof report` summary of them, or writes the HTML report. The
 * command's exit status becomes ours. Dispatch is in main.c. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../config/config.h"
#include "../report/report.h"
#include "cli_int.h"

static const char *getenv_fn(const char *k)
{
    return getenv(k);
}

static void help(FILE *out)
{
    fputs("NAME\n"
          "    cgprof run - run a command under the profiler and summarize it\n"
          "\n"
          "SYNOPSIS\n"
          "    cgprof run [--options OPTIONS] [--output-dir DIR] [--html FILE]\n"
          "               [--top N] [--no-report] [--] COMMAND [ARG]...\n"
          "\n"
          "DESCRIPTION\n"
          "    Runs COMMAND with LD_PRELOAD=libcgprof.so (added in front of an\n"
          "    existing LD_PRELOAD, from which other libcgprof libraries are\n"
          "    dropped) and CGPROF_OPTIONS=OPTIONS, waits for it,\n"
          "    then prints on standard error where its profiles are and the\n"
          "    heaviest functions (`cgprof report --format top` of the profiles\n"
          "    this run wrote), or writes the HTML report with --html. The\n"
          "    command's standard output is left alone.\n"
          "\n"
          "    The library is $CGPROF_LIB when set, else libcgprof.so next to\n"
          "    this cgprof (a build directory), else PREFIX/lib/libcgprof.so for\n"
          "    PREFIX/bin/cgprof, else /usr/local/lib or /usr/lib. Statically\n"
          "    linked commands ignore LD_PRELOAD and cannot be profiled this way.\n"
          "\n"
          "    When the heap summary is on (OPTIONS give heapSummaryEnabled:true,\n"
          "    or do not name that key and AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED\n"
          "    is true, read by the agent's own option parser),\n"
          "    libcgprof-heap.so from the same directory is preloaded instead:\n"
          "    the same agent plus the malloc interposers that find allocation\n"
          "    sites (libcgprof.so leaves malloc alone, so commands without the\n"
          "    heap summary pay nothing for it). When it is missing, libcgprof.so\n"
          "    is used and the agent says that it records capacity and used\n"
          "    space only. $CGPROF_LIB, when set, is preloaded as it is.\n"
          "\n"
          "OPTIONS\n"
          "    --options OPTIONS\n"
          "        The agent's option string (README \"Options\"), such as\n"
          "        cpuSamplingHz:500,reportingIntervalMs:10000 or\n"
          "        sink:codeguru,profilingGroupName:my-app. Default: the\n"
          "        environment's CGPROF_OPTIONS.\n"
          "    --output-dir DIR\n"
          "        Where the file sink writes (outputDir; it replaces an\n"
          "        outputDir in OPTIONS). Default: outputDir of OPTIONS, else the\n"
          "        agents' default directory.\n"
          "    --html FILE\n"
          "        Write the HTML report of this run's profiles to FILE and print\n"
          "        its path.\n"
          "    --top N\n"
          "        Rows of the summary (default 10).\n"
          "    --no-report\n"
          "        Only print where the profiles are.\n"
          "    -h, --help\n"
          "        Print this help.\n"
          "\n"
          "EXAMPLES\n"
          "    cgprof run -- ./myapp --serve\n"
          "    cgprof run --options cpuSamplingHz:1000 --html report.html -- make -j2\n"
          "\n"
          "EXIT STATUS\n"
          "    The command's exit status (128+N when signal N ended it), 127 when\n"
          "    it cannot be started, 1 when libcgprof.so is not found, 2 usage\n"
          "    error.\n", out);
}

static bool readable(const char *p)
{
    return access(p, R_OK) == 0;
}

/* libcgprof.so as the help describes (into out); 1 when it came from
 * CGPROF_LIB, 0 when found, else CGPROF_CLI_ERROR after saying so. */
static int find_core_lib(char *out, size_t n)
{
    const char *e = getenv("CGPROF_LIB");
    if (e && *e) {
        if (!readable(e))
            return cgprof__cli_fail("CGPROF_LIB=%s is not readable", e);
        snprintf(out, n, "%s", e);
        return 1;
    }
    char exe[PATH_MAX - 32];   /* room for the suffixes below */
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(out, n, "%s/libcgprof.so", exe);
            if (readable(out))
                return CGPROF_CLI_OK;
            snprintf(out, n, "%s/../lib/libcgprof.so", exe);
            char real[PATH_MAX];
            if (readable(out) && realpath(out, real)) {
                snprintf(out, n, "%s", real);
                return CGPROF_CLI_OK;
            }
        }
    }
    static const char *const sys[] = { "/usr/local/lib/libcgprof.so", "/usr/lib/libcgprof.so" };
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(sys); i++)
        if (readable(sys[i])) {
            snprintf(out, n, "%s", sys[i]);
            return CGPROF_CLI_OK;
        }
    return cgprof__cli_fail("libcgprof.so not found (next to cgprof, in ../lib, /usr/local/lib "
                            "or /usr/lib); set CGPROF_LIB");
}

/* The library to preload into out: libcgprof-heap.so next to the
 * libcgprof.so found when heap (the heap summary is on) and it is there,
 * else that libcgprof.so (the agent then says what is missing); CGPROF_LIB
 * as it is. CGPROF_CLI_OK or CGPROF_CLI_ERROR.
 * Tests: test/integration/cli_commands.sh, install.sh */
static int find_lib(char *out, size_t n, bool heap)
{
    int rc = find_core_lib(out, n);
    if (rc != 0)
        return rc == 1 ? CGPROF_CLI_OK : rc;
    const char *slash = strrchr(out, '/');
    char cand[PATH_MAX];
    if (heap && slash) {
        int w = snprintf(cand, sizeof(cand), "%.*s/libcgprof-heap.so", (int)(slash - out), out);
        if (w > 0 && (size_t)w < sizeof(cand) && (size_t)w < n && readable(cand))
            memcpy(out, cand, (size_t)w + 1);
    }
    return CGPROF_CLI_OK;
}

/* LD_PRELOAD for the child into b: lib, then the entries of old (split at
 * ':' and ' ', as ld.so does) but for other copies of cgprof (file names
 * libcgprof*.so*), which would otherwise load beside ours — an idle
 * libcgprof-heap.so still owns malloc. 0 or CGPROF_ENOMEM.
 * Tests: test/integration/cli_commands.sh */
static int preload_value(struct cgprof_buf *b, const char *lib, const char *old)
{
    int rc = cgprof_buf_appends(b, lib);
    const char *p = old ? old : "";
    while (rc == 0 && *p) {
        size_t len = strcspn(p, ": ");
        if (len > 0) {
            const char *base = p;
            for (size_t i = 0; i < len; i++)
                if (p[i] == '/')
                    base = p + i + 1;
            size_t blen = (size_t)(p + len - base);
            bool ours = blen >= 9 && memcmp(base, "libcgprof", 9) == 0 &&
                        memmem(base, blen, ".so", 3) != NULL;
            if (!ours) {
                rc = cgprof_buf_append(b, ":", 1);
                if (rc == 0)
                    rc = cgprof_buf_append(b, p, len);
            }
        }
        p += len;
        if (*p)
            p++;
    }
    return rc;   /* the buffer keeps a terminating NUL */
}

/* The option parser's white space (config/parse.c). */
static bool opt_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static void opt_trim(const char **p, size_t *n)
{
    while (*n > 0 && opt_space(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && opt_space((*p)[*n - 1]))
        (*n)--;
}

/* The child's CGPROF_OPTIONS into b. Without outdir, options as given.
 * With it, "outputDir:OUTDIR" and then the pieces of options but their own
 * outputDir (--output-dir wins, without the parser's "given more than
 * once" warning). config/parse.c strips one pair of matching outer quotes
 * before splitting at ',', so the pieces are taken from inside them;
 * appending after a closing quote would leave the opening one unmatched
 * and the options rejected. The result starts with outputDir, so it never
 * looks quoted itself. Options opening a quote they never close are kept
 * as they are for the parser to reject. 0, or the buffer's error when
 * the result would pass its bound.
 * Tests: test/integration/cli_commands.sh */
static int child_options(struct cgprof_buf *b, const char *options, const char *outdir)
{
    const char *p = options ? options : "";
    if (!outdir)
        return *p ? cgprof_buf_appends(b, p) : 0;
    size_t n = strlen(p);
    opt_trim(&p, &n);
    if (n > 0 && (p[0] == '"' || p[0] == '\'')) {
        if (n < 2 || p[n - 1] != p[0])
            return cgprof_buf_appends(b, options);
        p++;
        n -= 2;
    }
    int rc = cgprof_buf_printf(b, "outputDir:%s", outdir);
    const char *end = p + n;
    while (rc == 0 && p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end, *piece = p;
        size_t len = (size_t)(stop - p);
        p = comma ? comma + 1 : end;
        opt_trim(&piece, &len);
        const char *colon = memchr(piece, ':', len);
        const char *key = piece;
        size_t klen = colon ? (size_t)(colon - piece) : 0;
        opt_trim(&key, &klen);
        if (len == 0 || (colon && klen == 9 && strncasecmp(key, "outputDir", 9) == 0))
            continue;
        rc = cgprof_buf_append(b, ",", 1);
        if (rc == 0)
            rc = cgprof_buf_append(b, piece, len);
    }
    return rc;   /* the buffer keeps a terminating NUL */
}

/* Summary of the profiles this run wrote to dir (start_ms on). */
static void summarize(const char *dir, uint64_t start_ms, const char *html, size_t top,
                      bool report)
{
    struct cgprof_report_selection sel;
    struct cgprof_report_filter f = { .from_ms = start_ms, .to_ms = 0, .group = NULL };
    const char *paths[] = { dir };
    char err[512] = "", from[40];
    cgprof_report_format_time(start_ms, from, sizeof(from));
    int rc = cgprof_report_select(&sel, paths, 1, &f, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "cgprof: no profile of this run in %s (%s)\n", dir, err);
        cgprof_report_selection_cleanup(&sel);
        return;
    }
    fprintf(stderr, "cgprof: %zu profile(s) of this run in %s\n", sel.nprofiles, dir);
    struct cgprof_buf out;
    cgprof_buf_init(&out, (size_t)1 << 30);
    if (html) {
        if (cgprof_report_html(&sel, NULL, &out) == 0 &&
            cgprof__cli_write(html, &out) == CGPROF_CLI_OK)
            fprintf(stderr, "cgprof: report written to %s\n", html);
    } else if (report &&
               cgprof_report_top_text(&sel, CGPROF_REPORT_MASK_CPU, top, &out) == 0) {
        fwrite(out.data, 1, out.len, stderr);
    }
    fprintf(stderr, "cgprof: more with: cgprof report %s --from %s [-o report.html]\n", dir,
            from);
    cgprof_buf_cleanup(&out);
    cgprof_report_selection_cleanup(&sel);
}

static int run(int argc, char **argv)
{
    const char *options = getenv("CGPROF_OPTIONS"), *outdir = NULL, *html = NULL;
    size_t top = 10;
    bool report = true;
    static const struct option lo[] = {
        { "options", required_argument, NULL, 'O' },
        { "output-dir", required_argument, NULL, 'd' },
        { "html", required_argument, NULL, 'H' },
        { "top", required_argument, NULL, 'n' },
        { "no-report", no_argument, NULL, 'N' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    optind = 1;
    opterr = 0;
    int c;
    /* '+': stop at the command, so its own options stay its own. */
    while ((c = getopt_long(argc, argv, "+:h", lo, NULL)) != -1) {
        switch (c) {
        case 'h':
            help(stdout);
            return CGPROF_CLI_OK;
        case 'O':
            options = optarg;
            break;
        case 'd':
            if (optarg[0] != '/')
                return cgprof__cli_usage("run", "--output-dir needs an absolute path");
            if (strchr(optarg, ','))   /* the option string splits at ',' */
                return cgprof__cli_usage("run", "--output-dir cannot hold ','");
            outdir = optarg;
            break;
        case 'H':
            html = optarg;
            break;
        case 'n': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || !*optarg || v == 0 || v > 100000)
                return cgprof__cli_usage("run", "--top needs a positive number");
            top = v;
            break;
        }
        case 'N':
            report = false;
            break;
        case ':':
            return cgprof__cli_usage("run", "%s needs a value", argv[optind - 1]);
        default:
            return cgprof__cli_usage("run", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cgprof__cli_usage("run", "missing COMMAND (cgprof run [options] -- COMMAND...)");
    /* The options the child gets, what they mean for the summary, and
     * which library they need. */
    struct cgprof_buf opts;
    cgprof_buf_init(&opts, 16384);
    if (child_options(&opts, options, outdir) != 0) {
        cgprof_buf_cleanup(&opts);
        return cgprof__cli_fail("the options are too long");
    }
    struct cgprof_config cfg;
    int lrc = cgprof_config_load(&cfg, opts.data ? opts.data : "", getenv_fn);
    if (lrc == CGPROF_EINVAL) {
        cgprof_buf_cleanup(&opts);
        return cgprof__cli_usage("run", "the options are not valid (see above)");
    }
    char lib[PATH_MAX];
    int ret = find_lib(lib, sizeof(lib), cfg.heap_summary_enabled);
    if (ret != CGPROF_CLI_OK) {
        cgprof_buf_cleanup(&opts);
        return ret;
    }
    struct cgprof_buf preload;
    cgprof_buf_init(&preload, (size_t)1 << 20);
    if (preload_value(&preload, lib, getenv("LD_PRELOAD")) != 0) {
        cgprof_buf_cleanup(&opts);
        cgprof_buf_cleanup(&preload);
        return cgprof__cli_fail("LD_PRELOAD is too long");
    }

    uint64_t start_ms = cgprof_epoch_ms();
    struct sigaction ign = { .sa_handler = SIG_IGN }, oint, oquit;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &ign, &oint);
    sigaction(SIGQUIT, &ign, &oquit);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        sigaction(SIGINT, &oint, NULL);
        sigaction(SIGQUIT, &oquit, NULL);
        setenv("LD_PRELOAD", preload.data, 1);
        if (opts.len)
            setenv("CGPROF_OPTIONS", opts.data, 1);
        execvp(argv[optind], argv + optind);
        fprintf(stderr, "cgprof: cannot run %s: %s\n", argv[optind], strerror(errno));
        _exit(127);
    }
    int status = 0;
    if (pid < 0) {
        ret = cgprof__cli_fail("cannot start %s: %s", argv[optind], strerror(errno));
    } else {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        ret = WIFEXITED(status) ? WEXITSTATUS(status)
              : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : CGPROF_CLI_ERROR;
    }
    sigaction(SIGINT, &oint, NULL);
    sigaction(SIGQUIT, &oquit, NULL);
    if (pid > 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 127)) {
        if (lrc == CGPROF_EDISABLED)
            fprintf(stderr, "cgprof: profiling was disabled by the options\n");
        if (cfg.sinks & CGPROF_SINK_CODEGURU)
            fprintf(stderr, "cgprof: profiles went to CodeGuru Profiler group %s (%s); "
                    "get them with: cgprof profile get %s --from -1h --to now\n",
                    cfg.profiling_group_name, cfg.region[0] ? cfg.region : "default region",
                    cfg.profiling_group_name);
        if (cfg.sinks & CGPROF_SINK_PYROSCOPE)
            fprintf(stderr, "cgprof: profiles went to Pyroscope at %s\n", cfg.endpoint);
        if (cfg.sinks & CGPROF_SINK_FILE)
            summarize(cfg.output_dir, start_ms, html, top, report);
    }
    cgprof_buf_cleanup(&opts);
    cgprof_buf_cleanup(&preload);
    return ret;
}

const struct cgprof__cli_command cgprof__cli_cmd_run = {
    "run", "run a command under the profiler, then summarize its profiles", help, run
};
