/* `cgprof upload [SPOOLDIR...]`: ships the profiles agents could not
 * deliver. CodeGuru spools (<outputDir>/spool/<group>/) go out with
 * PostAgentProfile under each file's own profileToken, so the service
 * counts a profile once even if an agent sent it too; Pyroscope spools
 * (<outputDir>/pyroscope/spool/<app>/) as ingest requests. Each file is
 * claimed with the agents' lock (uploader/spool.c), so no profile is sent
 * twice, and deleted once delivered. A progress bar goes to a terminal.
 * Dispatch is in main.c. */
#include <dirent.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../config/config.h"
#include "../preload/preload.h"
#include "cli_int.h"

static const char *getenv_fn(const char *k)
{
    return getenv(k);
}

static void help(FILE *out)
{
    char dir[CGPROF_PATH_MAX];
    cgprof_config_default_output_dir(dir, sizeof(dir), getenv_fn);
    fputs("NAME\n"
          "    cgprof upload - ship spooled profiles that agents could not deliver\n"
          "\n"
          "SYNOPSIS\n"
          "    cgprof upload [SPOOLDIR...] [--group NAME]\n"
          "                  [--region R] [--profile P] [--endpoint-url URL]\n"
          "                  [--output json|text]\n"
          "    cgprof upload --sink pyroscope [SPOOLDIR...] [--options OPTIONS]\n"
          "                  [--endpoint-url URL]\n"
          "\n"
          "DESCRIPTION\n"
          "    When CodeGuru Profiler (or a Pyroscope server) cannot be reached,\n"
          "    agents keep profiles in a spool and retry; this command sends them\n"
          "    now, oldest first, each exactly once: a file is locked while it is\n"
          "    sent (agents skip it) and deleted once the service took it.\n"
          "    CodeGuru profiles keep the profileToken they were spooled under, so\n"
          "    a profile an agent delivered in the meantime is not counted twice.\n"
          "    A profile the service rejects as invalid is deleted; after a\n"
          "    network or server error the rest stay for later.\n"
          "\n"
          "    SPOOLDIR is one group's spool (OUTPUTDIR/spool/GROUP, whose name is\n"
          "    the profiling group) or a directory of them (OUTPUTDIR/spool).\n"
          "    Without SPOOLDIR: OUTPUTDIR/spool (OUTPUTDIR/pyroscope/spool with\n"
          "    --sink pyroscope), where OUTPUTDIR is the agents' default:\n", out);
    fprintf(out, "        %s\n", dir);
    fputs("\n"
          "OPTIONS\n"
          "    --group NAME\n"
          "        Send to this profiling group instead of the spool directory's\n"
          "        name.\n"
          "    --sink codeguru|pyroscope\n"
          "        Which backend the spool is for (default codeguru).\n"
          "    --options OPTIONS\n"
          "        With --sink pyroscope: the agent's option string for the\n"
          "        server: endpoint, applicationName, tags, pyroscopeUser,\n"
          "        pyroscopePassword, pyroscopeToken, pyroscopeTenant (README).\n"
          "        The application is the spool directory's name unless\n"
          "        applicationName is given.\n"
          CGPROF__CLI_AWS_HELP
          "        With --sink pyroscope, --endpoint-url is the Pyroscope server.\n"
          "    -h, --help\n"
          "        Print this help.\n"
          "\n"
          "EXAMPLES\n"
          "    cgprof upload\n"
          "    cgprof upload /var/lib/myapp/profiles/spool/checkout-prod --region eu-west-1\n"
          "    cgprof upload --sink pyroscope --endpoint-url http://pyroscope:4040\n"
          "\n"
          "EXIT STATUS\n"
          "    0 every spooled profile was delivered (or there was none), 1 some\n"
          "    remain (the reason is printed) or a spool cannot be read, 2 usage\n"
          "    error.\n", out);
}

struct upload {
    struct cgprof__cli_aws a;
    bool pyroscope;
    struct cgprof_config cfg;       /* --sink pyroscope */
    struct cgprof_pyroscope_settings st;
    const char *group;              /* current target */
    bool tty;
    char last_error[700];
    unsigned total_done, total_files;
};

static void progress(struct upload *u, unsigned done, unsigned total)
{
    if (!u->tty || total == 0)
        return;
    unsigned width = 30, fill = total ? done * width / total : width;
    char bar[64];
    for (unsigned i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r%-24.24s [%s] %u/%u", u->group, bar, done, total);
    if (done == total)
        fputc('\n', stderr);
    fflush(stderr);
}

static enum cgprof_spool_verdict verdict_http(struct upload *u, int rc,
                                              const struct cgprof__cli_response *rs)
{
    if (rc == 0)
        return CGPROF_SPOOL_DELIVERED;
    if (rc == CGPROF_EHTTP)
        snprintf(u->last_error, sizeof(u->last_error), "HTTP %ld %s%s%s", rs->status, rs->code,
                 rs->message[0] ? ": " : "", rs->message);
    else
        snprintf(u->last_error, sizeof(u->last_error), "%s", rs->message[0] ? rs->message
                                                                             : cgprof_strerror(rc));
    if (rc == CGPROF_EHTTP && rs->status == 400 && (!rs->code[0] ||
                                                    strcmp(rs->code, "ValidationException") == 0))
        return CGPROF_SPOOL_REJECTED;
    return CGPROF_SPOOL_STOP;
}

static enum cgprof_spool_verdict send_codeguru(struct upload *u, const char *token,
                                               const void *gz, size_t len)
{
    struct cgprof_buf json, path, q;
    cgprof_buf_init(&json, CGPROF_PROFILE_FILE_MAX);
    cgprof_buf_init(&path, 4096);
    cgprof_buf_init(&q, 256);
    enum cgprof_spool_verdict v;
    int rc = cgprof_gunzip(gz, len, &json);
    if (rc != 0) {
        snprintf(u->last_error, sizeof(u->last_error), "a spooled profile (%s) does not "
                 "decompress", token);
        v = CGPROF_SPOOL_REJECTED;
        goto done;
    }
    rc = cgprof__cli_path_name(&path, "/profilingGroups/", u->group, "/agentProfile");
    if (rc == 0)
        rc = cgprof_buf_appends(&q, "profileToken=");
    if (rc == 0)
        rc = cgprof_uri_encode(&q, token, false);
    struct cgprof_cg_call c = { .method = "POST", .path = path.data, .query = q.data,
                                .content_type = "application/json", .body = json.data,
                                .len = json.len };
    struct cgprof__cli_response rs;
    if (rc == 0)
        rc = cgprof__cli_aws_call(&u->a, &c, &rs);
    else
        memset(&rs, 0, sizeof(rs));
    v = verdict_http(u, rc, &rs);
    cgprof__cli_response_cleanup(&rs);
done:
    cgprof_buf_cleanup(&json);
    cgprof_buf_cleanup(&path);
    cgprof_buf_cleanup(&q);
    return v;
}

static size_t sink_body(char *p, size_t size, size_t n, void *ctx)
{
    struct cgprof_buf *b = ctx;
    if (b->len < 300)
        cgprof_buf_append(b, p, size * n < 300 ? size * n : 300);
    return size * n;
}

static enum cgprof_spool_verdict send_pyroscope(struct upload *u, const char *token,
                                                const void *gz, size_t len)
{
    struct cgprof_pyroscope_request rq;
    int rc = cgprof_pyroscope_build(&u->st, gz, len, &rq);
    if (rc != 0) {
        cgprof_pyroscope_request_cleanup(&rq);
        snprintf(u->last_error, sizeof(u->last_error), "a spooled profile (%s) cannot be "
                 "encoded: %s", token, cgprof_strerror(rc));
        return rc == CGPROF_ENOMEM ? CGPROF_SPOOL_STOP : CGPROF_SPOOL_REJECTED;
    }
    enum cgprof_spool_verdict v = CGPROF_SPOOL_STOP;
    struct curl_slist *hl = NULL;
    char h[4200];
    snprintf(h, sizeof(h), "Content-Type: %s", rq.content_type);
    hl = curl_slist_append(hl, h);
    hl = curl_slist_append(hl, "User-Agent: cgprof/" CGPROF_VERSION);
    hl = curl_slist_append(hl, "Expect:");
    if (rq.authorization.len) {
        snprintf(h, sizeof(h), "Authorization: %s", rq.authorization.data);
        hl = curl_slist_append(hl, h);
    }
    if (u->st.tenant[0]) {
        snprintf(h, sizeof(h), "X-Scope-OrgID: %s", u->st.tenant);
        hl = curl_slist_append(hl, h);
    }
    struct cgprof_buf resp;
    cgprof_buf_init(&resp, 1024);
    for (unsigned attempt = 1; attempt <= 3; attempt++) {
        CURL *c = u->a.curl;
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, rq.url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq.body.data);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq.body.len);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        cgprof_buf_reset(&resp);
        long status = 0;
        CURLcode cc = curl_easy_perform(c);
        if (cc == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (cc == CURLE_OK && status >= 200 && status < 300) {
            v = CGPROF_SPOOL_DELIVERED;
            break;
        }
        if (cc != CURLE_OK)
            snprintf(u->last_error, sizeof(u->last_error), "%s", curl_easy_strerror(cc));
        else
            snprintf(u->last_error, sizeof(u->last_error), "HTTP %ld %.*s", status,
                     (int)resp.len, resp.data ? resp.data : "");
        if (cc == CURLE_OK && status >= 400 && status < 500 && status != 401 &&
            status != 403 && status != 404 && status != 408 && status != 429) {
            v = CGPROF_SPOOL_REJECTED;
            break;
        }
        if (cc == CURLE_OK && (status == 401 || status == 403 || status == 404))
            break;
        if (attempt < 3) {
            double r = (double)(cgprof_random_u64() >> 11) / (double)(1ull << 53);
            usleep(cgprof_retry_backoff_ms(attempt, r) * 1000u);
        }
    }
    curl_slist_free_all(hl);
    cgprof_buf_cleanup(&resp);
    cgprof_pyroscope_request_cleanup(&rq);
    return v;
}

static enum cgprof_spool_verdict on_file(void *ctx, const char *token, const void *gz,
                                         size_t len, unsigned index, unsigned total)
{
    struct upload *u = ctx;
    progress(u, index, total);
    enum cgprof_spool_verdict v = u->pyroscope ? send_pyroscope(u, token, gz, len)
                                               : send_codeguru(u, token, gz, len);
    progress(u, index + 1, total);
    return v;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int push(char ***out, size_t *n, const char *p)
{
    char **g = cgprof_realloc(*out, (*n + 1) * sizeof(**out));
    if (!g)
        return CGPROF_ENOMEM;
    *out = g;
    if (!(g[*n] = cgprof_strdup(p)))
        return CGPROF_ENOMEM;
    (*n)++;
    return 0;
}

/* The group spools under dir: dir itself when it holds profiles, else its
 * subdirectories. */
static int collect(const char *dir, char ***out, size_t *n)
{
    if (!is_dir(dir))
        return -1;
    if (cgprof_spool_count_dir(dir) > 0) {
        return push(out, n, dir);
    }
    struct dirent **ents;
    int rc = 0, ne = scandir(dir, &ents, NULL, alphasort);
    for (int i = 0; i < ne; i++) {
        char p[CGPROF_PATH_MAX + 300];
        snprintf(p, sizeof(p), "%s/%s", dir, ents[i]->d_name);
        if (ents[i]->d_name[0] != '.' && is_dir(p) && cgprof_spool_count_dir(p) > 0 &&
            push(out, n, p) != 0)
            rc = CGPROF_ENOMEM;
        free(ents[i]);     /* scandir's, from malloc */
    }
    if (ne >= 0)
        free(ents);
    return rc;
}

static int run(int argc, char **argv)
{
    struct upload u = { .a = { .cmd = "upload" } };
    const char *group = NULL, *options = NULL;
    static const struct option lo[] = {
        { "group", required_argument, NULL, 'g' },
        { "sink", required_argument, NULL, 's' },
        { "options", required_argument, NULL, 'O' },
        { "help", no_argument, NULL, 'h' },
        CGPROF__CLI_AWS_LONGOPTS,
        { NULL, 0, NULL, 0 }
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case 'h':
            help(stdout);
            return CGPROF_CLI_OK;
        case 'g':
            if (!cgprof_config_valid_group_name(optarg))
                return cgprof__cli_usage("upload", "'%s' is not a profiling group name", optarg);
            group = optarg;
            break;
        case 's':
            if (strcmp(optarg, "pyroscope") == 0)
                u.pyroscope = true;
            else if (strcmp(optarg, "codeguru") != 0)
                return cgprof__cli_usage("upload", "--sink is codeguru or pyroscope");
            break;
        case 'O':
            options = optarg;
            break;
        case ':':
            return cgprof__cli_usage("upload", "%s needs a value", argv[optind - 1]);
        case '?':
            return cgprof__cli_usage("upload", "unknown option '%s'", argv[optind - 1]);
        default: {
            int rc = cgprof__cli_aws_option(&u.a, c, optarg);
            if (rc != 0)
                return rc;
        }
        }
    }
    if (options && !u.pyroscope)
        return cgprof__cli_usage("upload", "--options goes with --sink pyroscope");
    if (u.pyroscope) {
        /* The agent's own parser, so the keys mean what they mean there. */
        char opts[8192];
        snprintf(opts, sizeof(opts), "sink:pyroscope%s%s%s%s", options ? "," : "",
                 options ? options : "", u.a.endpoint_url[0] ? ",endpoint:" : "",
                 u.a.endpoint_url);
        if (cgprof_config_load(&u.cfg, opts, getenv_fn) != 0)
            return cgprof__cli_usage("upload", "the Pyroscope options are not usable (see "
                                     "above)");
    }
    char **dirs = NULL;
    size_t ndirs = 0;
    if (optind == argc) {
        char base[CGPROF_PATH_MAX + 32], out[CGPROF_PATH_MAX];
        cgprof_config_default_output_dir(out, sizeof(out), getenv_fn);
        snprintf(base, sizeof(base), "%s%s/spool", out, u.pyroscope ? "/pyroscope" : "");
        collect(base, &dirs, &ndirs);
    }
    for (int i = optind; i < argc; i++)
        if (collect(argv[i], &dirs, &ndirs) != 0) {
            for (size_t k = 0; k < ndirs; k++)
                cgprof_free(dirs[k]);
            cgprof_free(dirs);
            return cgprof__cli_fail("%s is not a readable directory", argv[i]);
        }
    int ret = CGPROF_CLI_OK;
    unsigned delivered = 0, rejected = 0, kept = 0;
    if (ndirs > 0) {
        ret = cgprof__cli_aws_open(&u.a);
        u.tty = isatty(2) && !u.a.json;
    }
    for (size_t i = 0; i < ndirs && ret == CGPROF_CLI_OK; i++) {
        const char *base = strrchr(dirs[i], '/');
        base = base ? base + 1 : dirs[i];
        u.group = group ? group : base;
        if (u.pyroscope) {
            struct cgprof_config cfg = u.cfg;
            if (!cfg.application_name[0])
                snprintf(cfg.application_name, sizeof(cfg.application_name), "%s", base);
            if (cgprof_pyroscope_settings_init(&u.st, &cfg) != 0) {
                ret = cgprof__cli_usage("upload", "--sink pyroscope needs the server: "
                                        "--endpoint-url URL or --options endpoint:URL");
                break;
            }
            u.group = u.st.app;
        } else if (!cgprof_config_valid_group_name(u.group)) {
            cgprof__cli_fail("%s: '%s' is not a profiling group name; use --group", dirs[i],
                             u.group);
            ret = CGPROF_CLI_ERROR;
            continue;
        }
        unsigned d = 0, r = 0, k = 0;
        u.last_error[0] = '\0';
        int rc = cgprof_spool_drain(dirs[i], on_file, &u, &d, &r, &k);
        int left = cgprof_spool_count_dir(dirs[i]);
        delivered += d;
        rejected += r;
        kept += (unsigned)left;
        if (rc != 0)
            ret = cgprof__cli_fail("cannot read the spool %s: %s", dirs[i], cgprof_strerror(rc));
        else if (left > 0)
            cgprof__cli_fail("%s: %d profile(s) left in %s: %s", u.group, left, dirs[i],
                             u.last_error[0] ? u.last_error : "held by a running agent");
        if (r > 0)
            cgprof__cli_fail("%s: %u profile(s) rejected as invalid and deleted: %s", u.group,
                             r, u.last_error);
        if (u.tty && k > 0)
            fputc('\n', stderr);
        if (!u.a.json)
            printf("%s: %u delivered, %u rejected, %d left\n", u.group, d, r, left);
    }
    if (u.a.json)
        printf("{\"delivered\": %u, \"rejected\": %u, \"left\": %u, \"spools\": %zu}\n",
               delivered, rejected, kept, ndirs);
    else if (ndirs == 0)
        printf("nothing to upload: no spooled profiles\n");
    if (ret == CGPROF_CLI_OK && kept > 0)
        ret = CGPROF_CLI_ERROR;
    cgprof__cli_aws_close(&u.a);
    for (size_t k = 0; k < ndirs; k++)
        cgprof_free(dirs[k]);
    cgprof_free(dirs);
    memset(&u.st, 0, sizeof(u.st));
    return ret;
}

const struct cgprof__cli_command cgprof__cli_cmd_upload = {
    "upload", "ship spooled profiles agents could not deliver", help, run
};
