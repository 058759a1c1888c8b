/* Integration-style unit tests for uploader/http.c and uploader/tls.c
 * against local servers (test/servers/tls_server.py, started once per run
 * with certificates made by `openssl` in a temp dir): the test CA given by
 * option and by AWS_CA_BUNDLE, the system store, unknown CA and wrong host
 * refused with one clear log line, IPv4/IPv6/DNS names, plain http://,
 * closed ports, servers that never answer (ETIMEOUT within the bound),
 * resets, chunked/204/slow bodies, bounds, keep-alive reuse and the single
 * resend on a stale connection, and proxies (CONNECT, absolute-form,
 * credentials, NO_PROXY). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "../../../uploader/uploader_int.h"

#define SERVER_SCRIPT "test/servers/tls_server.py"

enum { S_GOOD, S_UNKNOWN, S_OTHER, S_PLAIN, S_NOHS, S_PROXY, S_COUNT };

static char dir[256];
static pid_t pids[S_COUNT];
static unsigned ports[S_COUNT];

static const char *python(void)
{
    const char *p = getenv("CGPROF_PYTHON");
    if (p && *p)
        return p;
    /* Debian's interpreter starts in ~30 ms; version-manager shims can take
     * ten times that. */
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

/* execvp wants mutable strings; the tests' argument lists are literals. */
static void exec_args(const char *const argv[])
{
    char *v[24];
    int n = 0;
    for (; argv[n] && n < 23; n++)
        v[n] = strdup(argv[n]);
    v[n] = NULL;
    execvp(v[0], v);
    _exit(127);
}

static int run_wait(const char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0)
        exec_args(argv);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static pid_t spawn(const char *const argv[], int *out_fd)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        exec_args(argv);
    }
    close(p[1]);
    *out_fd = p[0];
    return pid;
}

/* Reads "PORT <n>" from fd within 10 s; 0 on failure. */
static unsigned read_port(int fd)
{
    char line[64];
    size_t n = 0;
    while (n + 1 < sizeof(line)) {
        struct pollfd pf = { .fd = fd, .events = POLLIN, .revents = 0 };
        if (poll(&pf, 1, 10000) <= 0)
            break;
        ssize_t r = read(fd, line + n, 1);
        if (r <= 0)
            break;
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    unsigned port = 0;
    return sscanf(line, "PORT %u", &port) == 1 ? port : 0;
}

static char *path_in(const char *name)
{
    static char bufs[16][320];
    static int k;
    char *b = bufs[k++ % 16];
    snprintf(b, 320, "%s/%s", dir, name);
    return b;
}

static void servers_start(void)
{
    snprintf(dir, sizeof(dir), "%s", cgprof_test_tmpdir());
    const char *py = python();
    const char *gen[] = { py, SERVER_SCRIPT, "gencerts", dir, NULL };
    if (run_wait(gen) != 0) {
        fprintf(stderr, "test_tls: gencerts failed (python3 and openssl needed)\n");
        return;
    }
    const char *s = "serve", *tls = "--tls", *bind = "--bind", *any = "::";
    const char *argv[S_COUNT][16] = {
        { py, SERVER_SCRIPT, s, tls, path_in("server.crt"), path_in("server.key"), bind,
          any, "--slow-ms", "50", "--log", path_in("good.log"), NULL },
        { py, SERVER_SCRIPT, s, tls, path_in("unknown.crt"), path_in("unknown.key"), NULL },
        { py, SERVER_SCRIPT, s, tls, path_in("other.crt"), path_in("other.key"), NULL },
        { py, SERVER_SCRIPT, s, "--slow-ms", "200", "--hang-max", "5", NULL },
        { py, SERVER_SCRIPT, s, tls, path_in("server.crt"), path_in("server.key"),
          "--no-handshake", "--hang-max", "5", NULL },
        { py, SERVER_SCRIPT, "proxy", "--log", path_in("proxy.log"), NULL },
    };
    int fds[S_COUNT];
    for (int i = 0; i < S_COUNT; i++)
        pids[i] = spawn(argv[i], &fds[i]);
    for (int i = 0; i < S_COUNT; i++) {
        ports[i] = pids[i] > 0 ? read_port(fds[i]) : 0;
        close(fds[i]);
    }
}

static void servers_stop(void)
{
    for (int i = 0; i < S_COUNT; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
            waitpid(pids[i], NULL, 0);
        }
    }
    if (dir[0]) {
        const char *rm[] = { "rm", "-rf", dir, NULL };
        run_wait(rm);
    }
}

static void need_servers(void)
{
    for (int i = 0; i < S_COUNT; i++)
        ck_assert_msg(ports[i] != 0, "test server %d did not start", i);
}

static struct cgprof__http_client *client(const char *ca, unsigned io_ms, bool proxy)
{
    struct cgprof__http_options o = {
        .ca_bundle = ca, .connect_timeout_ms = 2000, .io_timeout_ms = io_ms,
        .max_body = 1 << 16, .use_proxy_env = proxy,
    };
    struct cgprof__http_client *c = cgprof__http_client_new(&o);
    ck_assert_ptr_nonnull(c);
    return c;
}

static int request(struct cgprof__http_client *c, const char *method, const char *url,
                   const char *body, struct cgprof__http_response *rs)
{
    struct cgprof__url u;
    ck_assert_int_eq(cgprof__url_parse(url, &u), 0);
    struct cgprof__http_header h[] = { { "Content-Type", "application/json" },
                                       { "X-Test", "yes" } };
    struct cgprof__http_request rq = {
        .method = method, .url = &u, .target = u.path, .headers = h, .nheaders = 2,
        .body = body, .body_len = body ? strlen(body) : 0,
    };
    return cgprof__http_do(c, &rq, rs);
}

static char *url_for(int server, bool tls, const char *host, const char *path)
{
    static char b[4][512];
    static int k;
    char *out = b[k++ % 4];
    snprintf(out, 512, "%s://%s:%u%s", tls ? "https" : "http", host, ports[server], path);
    return out;
}

static uint64_t now_ms(void)
{
    return cgprof_now_ns() / 1000000u;
}

/* Captures log lines into a temp file; returns its fd. */
static int capture_log(void)
{
    char *p = path_in("log.XXXXXX");
    int fd = mkstemp(p);
    ck_assert_int_ge(fd, 0);
    unlink(p);
    cgprof_log_set_level(CGPROF_LOG_WARN);
    cgprof_log_set_fd(fd);
    return fd;
}

static char *captured(int fd)
{
    static char text[8192];
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    return text;
}

static int count_lines(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Server-side counters, asked over c's kept-alive connection. */
static int stat_of(struct cgprof__http_client *c, int server, bool tls, const char *field)
{
    struct cgprof__http_response rs;
    ck_assert_int_eq(request(c, "GET", url_for(server, tls, "127.0.0.1", "/__control/stats"), NULL,
                             &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    char key[64];
    snprintf(key, sizeof(key), "\"%s\": ", field);
    const char *p = strstr(rs.body.data, key);
    ck_assert_ptr_nonnull(p);
    int v = atoi(p + strlen(key));
    cgprof__http_response_cleanup(&rs);
    return v;
}

static void set_script(struct cgprof__http_client *c, int server, bool tls, const char *spec)
{
    struct cgprof__http_response rs;
    ck_assert_int_eq(request(c, "POST", url_for(server, tls, "127.0.0.1", "/__control/script"),
                             spec, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    cgprof__http_response_cleanup(&rs);
}

START_TEST(test_http_do_ca_option)
{
    need_servers();
    struct cgprof__http_client *c = client(path_in("ca.crt"), 5000, false);
    struct cgprof__http_response rs;
    ck_assert_int_eq(request(c, "POST", url_for(S_GOOD, true, "127.0.0.1", "/hello?x=1"),
                             "{\"a\":1}", &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_str_eq(cgprof__http_response_header(&rs, "content-type"), "application/json");
    ck_assert_str_eq(rs.body.data, "{\"method\": \"POST\", \"path\": \"/hello?x=1\", \"bodyLength\": 7}");
    cgprof__http_response_cleanup(&rs);
    /* What the server saw: our Host, our Content-Length, the caller's headers. */
    char *log = NULL;
    size_t len;
    ck_assert_int_eq(cgprof_read_file(path_in("good.log"), 1 << 20, &log, &len), 0);
    char want[128];
    snprintf(want, sizeof(want), "[\"Host\", \"127.0.0.1:%u\"]", ports[S_GOOD]);
    ck_assert_ptr_nonnull(strstr(log, want));
    ck_assert_ptr_nonnull(strstr(log, "[\"Content-Length\", \"7\"]"));
    ck_assert_ptr_nonnull(strstr(log, "[\"X-Test\", \"yes\"]"));
    cgprof_free(log);
    cgprof__http_client_free(c);
}
END_TEST

START_TEST(test_http_do_aws_ca_bundle_env)
{
    need_servers();
    setenv("AWS_CA_BUNDLE", path_in("ca.crt"), 1);
    struct cgprof__http_client *c = client(NULL, 5000, false);
    struct cgprof__http_response rs;
    /* A DNS name (resolved through getaddrinfo_a), checked against the
     * certificate's DNS SAN. */
    ck_assert_int_eq(request(c, "GET", url_for(S_GOOD, true, "localhost", "/env"), NULL, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    cgprof__http_response_cleanup(&rs);
    cgprof__http_client_free(c);
    /* AWS_CA_BUNDLE also makes an otherwise unknown CA acceptable. */
    setenv("AWS_CA_BUNDLE", path_in("unknown-ca.crt"), 1);
    c = client(NULL, 5000, false);
    ck_assert_int_eq(request(c, "GET", url_for(S_UNKNOWN, true, "127.0.0.1", "/"), NULL, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    cgprof__http_response_cleanup(&rs);
    cgprof__http_client_free(c);
}
END_TEST

START_TEST(test_http_do_ipv6)
{
    need_servers();
    struct cgprof__http_client *c = client(path_in("ca.crt"), 5000, false);
    struct cgprof__http_response rs;
    ck_assert_int_eq(request(c, "GET", url_for(S_GOOD, true, "[::1]", "/v6"), NULL, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    cgprof__http_response_cleanup(&rs);
    cgprof__http_client_free(c);
}
END_TEST

START_TEST(test_http_do_system_store)
{
    need_servers();
    unsetenv("AWS_CA_BUNDLE");
    int fd = capture_log();
    /* The system store loads, and does not trust the test CA. */
    struct cgprof__http_client *c = client(NULL, 5000, false);
    struct cgprof__http_response rs;
    ck_assert_int_eq(request(c, "GET", url_for(S_GOOD, true, "127.0.0.1", "/"), NULL, &rs),
                     CGPROF_ETLS);
    ck_assert_ptr_nonnull(strstr(captured(fd), "not trusted (unknown CA"));
    cgprof__http_client_free(c);
}
END_TEST

START_TEST(test_http_do_unknown_ca)
{
    need_servers();
    int fd = capture_log();
    struct cgprof__http_client *c = client(path_in("ca.crt"), 5000, false);
    struct cgprof__http_response rs;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(request(c, "GET", url_for(S_UNKNOWN, true, "127.0.0.1", "/"), NULL, &rs),
                         CGPROF_ETLS);
        ck_assert_int_eq(rs.status, 0);
    }
    char want[160];
    snprintf(want, sizeof(want), "cgprof: certificate for 127.0.0.1:%u not trusted (unknown CA: ",
             ports[S_UNKNOWN]);
    const char *text = captured(fd);
    ck_assert_msg(count_lines(text, want) == 1, "log: %s", text);
    ck_assert_int_eq(count_lines(text, "\n"), 1); /* retries stay quiet */
    ck_assert_ptr_nonnull(strstr(text, "set AWS_CA_BUNDLE or caBundle\n"));
    cgprof__http_client_free(c);
}
END_TEST

START_TEST(test_http_do_wrong_host)
{
    need_servers();
    int fd = capture_log();
    struct cgprof__http_client *c = client(path_in("ca.crt"), 5000, false);
    struct cgprof__http_response rs;
    /* IP literal: no iPAddress SAN for it. */
    ck_assert_int_eq(request(c, "GET", url_for(S_OTHER, true, "127.0.0.1", "/"), NULL, &rs),
                     CGPROF_ETLS);
    /* DNS name: mbedTLS's own check. */
    ck_assert_int_eq(request(c, "GET", url_for(S_OTHER, true, "localhost", "/"), NULL, &rs),
                     CGPROF_ETLS);
    const char *text = captured(fd);
    char want[160];
    snprintf(want, sizeof(want), "cgprof: certificate presented by 127.0.0.1:%u does not name it",
             ports[S_OTHER]);
    ck_assert_msg(count_lines(text, want) == 1, "log: %s", text);
    snprintf(want, sizeof(want), "cgprof: certificate presented by localhost:%u does not name it",
             ports[S_OTHER]);
    ck_assert_msg(count_lines(text, want) == 1, "log: %s", text);
    cgprof__http_client_free(c);
}
END_TEST

START_TEST(test_http_client_new_bad_bundle)
{
    int fd = capture_log();
    struct cgprof__http_options o = { .ca_bundle = "/nonexistent/ca.pem" };
    ck_assert_ptr_null(cgprof__http_client_new(&o));
    ck_assert_ptr_nonnull(strstr(captured(fd), "cannot read CA bundle /nonexistent/ca.pem"));
}
END_TEST

START_TEST(test_http_do_plain_bodies)
{
    need_servers();
    struct cgprof__http_client *c = client(NULL, 5000, false);
    struct cgprof__http_response rs;
    const char *echo = "{\"method\": \"GET\", \"path\": \"/__behavior/chunked\", \"bodyLength\": 0}";
    ck_assert_int_eq(request(c, "GET", url_for(S_PLAIN, false, "127.0.0.1", "/__behavior/chunked"),
                             NULL, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_str_eq(rs.body.data, echo);
    cgprof__http_response_cleanup(&rs);
    ck_assert_int_eq(request(c, "PUT", url_for(S_PLAIN, false, "127.0.0.1", "/__behavior/204"),
                             NULL, &rs), 0);
    ck_assert_int_eq(rs.status, 204);
    ck_assert_uint_eq(rs.body.len, 0);
    cgprof__http_response_cleanup(&rs);
    ck_assert_int_eq(request(c, "GET", url_for(S_PLAIN, false, "127.0.0.1", "/__behavior/503"),
                             NULL, &rs), 0);
    ck_assert_int_eq(rs.status, 503);
    ck_assert_str_eq(cgprof__http_response_header(&rs, "x-amzn-errortype"),
                     "ServiceUnavailableException");
    cgprof__http_response_cleanup(&rs);
    /* HTTP/1.0, no Content-Length: the body runs to the end of the
     * connection, which is then not reused. */
    int conns = stat_of(c, S_PLAIN, false, "connections");
    ck_assert_int_eq(request(c, "GET", url_for(S_PLAIN, false, "127.0.0.1", "/__behavior/eof"),
                             NULL, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_str_eq(rs.body.data,
                     "{\"method\": \"GET\", \"path\": \"/__behavior/eof\", \"bodyLength\": 0}");
    cgprof__http_response_cleanup(&rs);
    ck_assert_int_eq(stat_of(c, S_PLAIN, false, "connections"), conns + 1);
    /* Slow (4 x 200 ms) is fine while each read progresses. */
    uint64_t t0 = now_ms();
    ck_assert_int_eq(request(c, "GET", url_for(S_PLAIN, false, "127.0.0.1", "/__behavior/slow"),
                             NULL, &rs), 0);
    ck_assert_uint_ge(now_ms() - t0, 700);
    ck_assert_uint_eq(rs.body.len, strlen("{\"method\": \"GET\", \"path\": \"/__behavior/slow\", \"bodyLength\": 0}"));
    cgprof__http_response_cleanup(&rs);
    cgprof__http_client_free(c);
}
END_TEST

START_TEST(test_http_do_body_bound)
{
    need_servers();
    struct cgprof__http_options o = { .io_timeout_ms = 5000, .max_body = 10 };
    struct cgprof__http_client *c = cgprof__http_client_new(&o);
    ck_assert_ptr_nonnull(c);
    struct cgprof__http_response rs;
    ck_assert_int_eq(request(c, "GET", url_for(S_PLAIN, false, "127.0.0.1", "/__behavior/200"),
                             NULL, &rs), CGPROF_ETOOBIG);
    ck_assert_int_eq(request(c, "GET", url_for(S_PLAIN, false, "127.0.0.1", "/__behavior/chunked"),
                             NULL, &rs), CGPROF_ETOOBIG);
    ck_assert_ptr_null(rs.raw_headers);
    cgprof__http_client_free(c);
}
END_TEST

START_TEST(test_http_do_closed_port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &al), 0);
    close(s); /* nobody listens there now */
    char url[64];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/", ntohs(a.sin_port));
    struct cgprof__http_client *c = client(NULL, 5000, false);
    struct cgprof__http_response rs;
    uint64_t t0 = now_ms();
    ck_assert_int_eq(request(c, "GET", url, NULL, &rs), -ECONNREFUSED);
    ck_assert_uint_lt(now_ms() - t0, 500);
    cgprof__http_client_free(c);
}
END_TEST

START_TEST(test_http_do_never_answers)
{
    need_servers();
    struct cgprof__http_client *c = client(path_in("ca.crt"), 300, false);
    struct cgprof__http_response rs;
    /* Accepts, then never says a word (not even the TLS handshake). */
    uint64_t t0 = now_ms();
    ck_assert_int_eq(request(c, "GET", url_for(S_NOHS, true, "127.0.0.1", "/"), NULL, &rs),
                     CGPROF_ETIMEOUT);
    uint64_t dt = now_ms() - t0;
    ck_assert_msg(dt >= 290 && dt < 1000, "took %llu ms", (unsigned long long)dt);
    /* Reads the request, never answers. */
    t0 = now_ms();
    ck_assert_int_eq(request(c, "POST", url_for(S_PLAIN, false, "127.0.0.1", "/__behavior/hang"),
                             "{}", &rs), CGPROF_ETIMEOUT);
    dt = now_ms() - t0;
    ck_assert_msg(dt >= 290 && dt < 1000, "took %llu ms", (unsigned long long)dt);
    cgprof__http_client_free(c);
}
END_TEST

START_TEST(test_http_do_total_timeout)
{
    need_servers();
    struct cgprof__http_options o = { .io_timeout_ms = 5000, .total_timeout_ms = 300 };
    struct cgprof__http_client *c = cgprof__http_client_new(&o);
    ck_assert_ptr_nonnull(c);
    struct cgprof__http_response rs;
    /* Every read progresses within io_timeout, but the whole takes 800 ms. */
    uint64_t t0 = now_ms();
    ck_assert_int_eq(request(c, "GET", url_for(S_PLAIN, false, "127.0.0.1", "/__behavior/slow"),
                             NULL, &rs), CGPROF_ETIMEOUT);
    uint64_t dt = now_ms() - t0;
    ck_assert_msg(dt >= 290 && dt < 700, "took %llu ms", (unsigned long long)dt);
    cgprof__http_client_free(c);
}
END_TEST

START_TEST(test_http_do_reset_mid_body)
{
    need_servers();
    struct cgprof__http_client *c = client(path_in("ca.crt"), 2000, false);
    struct cgprof__http_response rs;
    int rc = request(c, "GET", url_for(S_PLAIN, false, "127.0.0.1", "/__behavior/reset"), NULL, &rs);
    ck_assert_msg(rc == -ECONNRESET || rc == CGPROF_EIO, "rc %d", rc);
    rc = request(c, "GET", url_for(S_GOOD, true, "127.0.0.1", "/__behavior/reset"), NULL, &rs);
    ck_assert_msg(rc == -ECONNRESET || rc == CGPROF_EIO, "rc %d", rc);
    ck_assert_ptr_null(rs.raw_headers);
    /* The client recovers on a fresh connection. */
    ck_assert_int_eq(request(c, "GET", url_for(S_GOOD, true, "127.0.0.1", "/"), NULL, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    cgprof__http_response_cleanup(&rs);
    cgprof__http_client_free(c);
}
END_TEST

START_TEST(test_http_do_keepalive)
{
    need_servers();
    struct cgprof__http_client *c = client(path_in("ca.crt"), 5000, false);
    struct cgprof__http_response rs;
    int before = stat_of(c, S_GOOD, true, "connections");
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(request(c, i % 2 ? "POST" : "GET",
                                 url_for(S_GOOD, true, "127.0.0.1", "/ka"), "x", &rs), 0);
        ck_assert_int_eq(rs.status, 200);
        cgprof__http_response_cleanup(&rs);
    }
    /* A plain server in between uses its own connection slot. */
    ck_assert_int_eq(request(c, "GET", url_for(S_PLAIN, false, "127.0.0.1", "/"), NULL, &rs), 0);
    cgprof__http_response_cleanup(&rs);
    ck_assert_int_eq(stat_of(c, S_GOOD, true, "connections"), before);
    /* "Connection: close" ends it; the next request opens a new one. */
    ck_assert_int_eq(request(c, "GET", url_for(S_GOOD, true, "127.0.0.1", "/__behavior/close"),
                             NULL, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    cgprof__http_response_cleanup(&rs);
    ck_assert_int_eq(stat_of(c, S_GOOD, true, "connections"), before + 1);
    cgprof__http_client_free(c);
}
END_TEST

START_TEST(test_http_do_stale_resend)
{
    need_servers();
    struct cgprof__http_client *c = client(NULL, 5000, false);
    struct cgprof__http_response rs;
    /* GET: the server drops the kept-alive connection without answering;
     * the client resends once on a new connection. */
    set_script(c, S_PLAIN, false, "drop,200");
    int before = stat_of(c, S_PLAIN, false, "connections");
    ck_assert_int_eq(request(c, "GET", url_for(S_PLAIN, false, "127.0.0.1", "/r"), NULL, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    cgprof__http_response_cleanup(&rs);
    ck_assert_int_eq(stat_of(c, S_PLAIN, false, "connections"), before + 1);
    /* POST is not resent unless the caller says it is idempotent. */
    set_script(c, S_PLAIN, false, "drop,200");
    ck_assert_int_eq(request(c, "POST", url_for(S_PLAIN, false, "127.0.0.1", "/r"), "{}", &rs),
                     CGPROF_EIO);
    set_script(c, S_PLAIN, false, "drop,200");
    struct cgprof__url u;
    ck_assert_int_eq(cgprof__url_parse(url_for(S_PLAIN, false, "127.0.0.1", "/r"), &u), 0);
    struct cgprof__http_request rq = { .method = "POST", .url = &u, .target = "/r",
                                       .body = "{}", .body_len = 2, .idempotent = true };
    ck_assert_int_eq(cgprof__http_do(c, &rq, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    cgprof__http_response_cleanup(&rs);
    /* The server closed the idle connection after answering: the client
     * notices before sending and reconnects, even for a POST. */
    set_script(c, S_PLAIN, false, "fin,200");
    before = stat_of(c, S_PLAIN, false, "connections");
    ck_assert_int_eq(request(c, "POST", url_for(S_PLAIN, false, "127.0.0.1", "/f"), "{}", &rs), 0);
    cgprof__http_response_cleanup(&rs);
    usleep(50000);
    ck_assert_int_eq(request(c, "POST", url_for(S_PLAIN, false, "127.0.0.1", "/f"), "{}", &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    cgprof__http_response_cleanup(&rs);
    ck_assert_int_eq(stat_of(c, S_PLAIN, false, "connections"), before + 1);
    /* A fresh connection that fails is not resent. */
    cgprof__http_client_free(c);
    c = client(NULL, 5000, false);
    set_script(c, S_PLAIN, false, "200");
    cgprof__http_client_free(c);
    c = client(NULL, 5000, false);
    ck_assert_int_eq(request(c, "GET", url_for(S_PLAIN, false, "127.0.0.1", "/__behavior/drop"),
                             NULL, &rs), CGPROF_EIO);
    cgprof__http_client_free(c);
}
END_TEST

static int proxy_log_count(const char *needle)
{
    char *log = NULL;
    size_t len;
    if (cgprof_read_file(path_in("proxy.log"), 1 << 20, &log, &len) != 0)
        return 0;
    int n = count_lines(log, needle);
    cgprof_free(log);
    return n;
}

START_TEST(test_http_do_proxy)
{
    need_servers();
    char px[64], target[64], want[128];
    snprintf(px, sizeof(px), "http://user:p%%40ss@127.0.0.1:%u", ports[S_PROXY]);
    snprintf(target, sizeof(target), "127.0.0.1:%u", ports[S_GOOD]);
    setenv("HTTPS_PROXY", px, 1);
    unsetenv("NO_PROXY");
    unsetenv("no_proxy");
    struct cgprof__http_client *c = client(path_in("ca.crt"), 5000, true);
    struct cgprof__http_response rs;
    ck_assert_int_eq(request(c, "GET", url_for(S_GOOD, true, "127.0.0.1", "/via"), NULL, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    cgprof__http_response_cleanup(&rs);
    snprintf(want, sizeof(want), "{\"method\": \"CONNECT\", \"target\": \"%s\", \"auth\": true}", target);
    ck_assert_int_eq(proxy_log_count(want), 1);
    /* Kept alive through the tunnel. */
    ck_assert_int_eq(request(c, "GET", url_for(S_GOOD, true, "127.0.0.1", "/via2"), NULL, &rs), 0);
    cgprof__http_response_cleanup(&rs);
    ck_assert_int_eq(proxy_log_count(want), 1);
    cgprof__http_client_free(c);

    /* http:// targets go through HTTP_PROXY in absolute form. */
    snprintf(px, sizeof(px), "127.0.0.1:%u", ports[S_PROXY]);
    setenv("HTTP_PROXY", px, 1);
    c = client(NULL, 5000, true);
    ck_assert_int_eq(request(c, "GET", url_for(S_PLAIN, false, "127.0.0.1", "/abs"), NULL, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_ptr_nonnull(strstr(rs.body.data, "\"path\": \"/abs\""));
    cgprof__http_response_cleanup(&rs);
    snprintf(want, sizeof(want), "\"target\": \"http://127.0.0.1:%u/abs\"", ports[S_PLAIN]);
    ck_assert_int_eq(proxy_log_count(want), 1);
    cgprof__http_client_free(c);

    /* Without use_proxy_env the environment is ignored. */
    setenv("HTTPS_PROXY", "http://127.0.0.1:1", 1);
    c = client(path_in("ca.crt"), 5000, false);
    ck_assert_int_eq(request(c, "GET", url_for(S_GOOD, true, "127.0.0.1", "/direct"), NULL, &rs), 0);
    cgprof__http_response_cleanup(&rs);
    cgprof__http_client_free(c);
}
END_TEST

START_TEST(test_http_do_no_proxy)
{
    need_servers();
    char px[64];
    snprintf(px, sizeof(px), "http://127.0.0.1:%u", ports[S_PROXY]);
    setenv("https_proxy", px, 1);
    setenv("NO_PROXY", "example.com,127.0.0.0/8", 1);
    int before = proxy_log_count("CONNECT");
    struct cgprof__http_client *c = client(path_in("ca.crt"), 5000, true);
    struct cgprof__http_response rs;
    ck_assert_int_eq(request(c, "GET", url_for(S_GOOD, true, "127.0.0.1", "/bypass"), NULL, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    cgprof__http_response_cleanup(&rs);
    ck_assert_int_eq(proxy_log_count("CONNECT"), before);
    /* localhost is not in the list: it goes through the proxy. */
    ck_assert_int_eq(request(c, "GET", url_for(S_GOOD, true, "localhost", "/proxied"), NULL, &rs), 0);
    cgprof__http_response_cleanup(&rs);
    ck_assert_int_eq(proxy_log_count("CONNECT"), before + 1);
    cgprof__http_client_free(c);
    /* "*" bypasses everything; without it an unreachable proxy fails. */
    setenv("https_proxy", "http://127.0.0.1:1", 1);
    setenv("NO_PROXY", "*", 1);
    c = client(path_in("ca.crt"), 5000, true);
    ck_assert_int_eq(request(c, "GET", url_for(S_GOOD, true, "localhost", "/star"), NULL, &rs), 0);
    cgprof__http_response_cleanup(&rs);
    cgprof__http_client_free(c);
    unsetenv("NO_PROXY");
    c = client(path_in("ca.crt"), 5000, true);
    ck_assert_int_eq(request(c, "GET", url_for(S_GOOD, true, "localhost", "/x"), NULL, &rs),
                     -ECONNREFUSED);
    cgprof__http_client_free(c);
}
END_TEST

START_TEST(test_http_do_invalid_requests)
{
    struct cgprof__http_client *c = client(NULL, 1000, false);
    struct cgprof__url u;
    ck_assert_int_eq(cgprof__url_parse("http://127.0.0.1:1/", &u), 0);
    struct cgprof__http_response rs;
    static const struct cgprof__http_header bad[][1] = {
        { { "X-Evil", "a\r\nInjected: 1" } },
        { { "Bad Name", "v" } },
        { { "", "v" } },
        { { "Content-Length", "99" } },
        { { "Transfer-Encoding", "chunked" } },
    };
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(bad); i++) {
        struct cgprof__http_request rq = { .method = "POST", .url = &u, .target = "/",
                                           .headers = bad[i], .nheaders = 1, .body = "x",
                                           .body_len = 1 };
        ck_assert_int_eq(cgprof__http_do(c, &rq, &rs), CGPROF_EINVAL);
    }
    struct cgprof__http_request rq = { .method = "GET", .url = &u, .target = "/a b" };
    ck_assert_int_eq(cgprof__http_do(c, &rq, &rs), CGPROF_EINVAL);
    rq.target = "no-slash";
    ck_assert_int_eq(cgprof__http_do(c, &rq, &rs), CGPROF_EINVAL);
    rq.target = "/";
    rq.method = "G T";
    ck_assert_int_eq(cgprof__http_do(c, &rq, &rs), CGPROF_EINVAL);
    cgprof__http_client_free(c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("uploader");
    TCase *tc = tcase_create("tls");
    tcase_add_unchecked_fixture(tc, servers_start, servers_stop);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_http_do_ca_option);
    tcase_add_test(tc, test_http_do_aws_ca_bundle_env);
    tcase_add_test(tc, test_http_do_ipv6);
    tcase_add_test(tc, test_http_do_system_store);
    tcase_add_test(tc, test_http_do_unknown_ca);
    tcase_add_test(tc, test_http_do_wrong_host);
    tcase_add_test(tc, test_http_client_new_bad_bundle);
    tcase_add_test(tc, test_http_do_plain_bodies);
    tcase_add_test(tc, test_http_do_body_bound);
    tcase_add_test(tc, test_http_do_closed_port);
    tcase_add_test(tc, test_http_do_never_answers);
    tcase_add_test(tc, test_http_do_total_timeout);
    tcase_add_test(tc, test_http_do_reset_mid_body);
    tcase_add_test(tc, test_http_do_keepalive);
    tcase_add_test(tc, test_http_do_stale_resend);
    tcase_add_test(tc, test_http_do_proxy);
    tcase_add_test(tc, test_http_do_no_proxy);
    tcase_add_test(tc, test_http_do_invalid_requests);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(suite());
}
