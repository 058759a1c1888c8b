/* Unit tests for uploader/url.c: endpoint URL parsing (schemes, ports,
 * IPv6 literals, paths, rejects), the Host header value, proxy settings
 * (credentials, default port, refused schemes) and NO_PROXY matching. */
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "../../../uploader/uploader_int.h"

static const struct url_case {
    const char *in;
    int rc;
    bool tls;
    const char *host;
    unsigned port;
    const char *path;
    const char *host_header;
} url_cases[] = {
    { "https://codeguru-profiler.us-east-1.amazonaws.com", 0, true,
      "codeguru-profiler.us-east-1.amazonaws.com", 443, "/",
      "codeguru-profiler.us-east-1.amazonaws.com" },
    { "HTTPS://Example.COM/a/b?x=1&y=%2F", 0, true, "example.com", 443, "/a/b?x=1&y=%2F",
      "example.com" },
    { "http://127.0.0.1:8080/profilingGroups/g/agentProfile", 0, false, "127.0.0.1", 8080,
      "/profilingGroups/g/agentProfile", "127.0.0.1:8080" },
    { "http://localhost", 0, false, "localhost", 80, "/", "localhost" },
    { "http://localhost:80/", 0, false, "localhost", 80, "/", "localhost" },
    { "https://localhost:80/", 0, true, "localhost", 80, "/", "localhost:80" },
    { "https://[::1]:8443/x", 0, true, "::1", 8443, "/x", "[::1]:8443" },
    { "https://[2001:db8::1]/", 0, true, "2001:db8::1", 443, "/", "[2001:db8::1]" },
    { "https://host?q=1", 0, true, "host", 443, "/?q=1", "host" },
    { "https://host/p#frag", 0, true, "host", 443, "/p", "host" },
    { "https://host:", 0, true, "host", 443, "/", "host" },
    { "https://my_host.internal:65535", 0, true, "my_host.internal", 65535, "/",
      "my_host.internal:65535" },
    /* rejects */
    { "ftp://host/", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "host:443", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "https://", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "https:///path", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "https://user:pw@host/", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "https://host:0/", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "https://host:65536/", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "https://host:12a/", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "https://host:99999999999999999999/", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "https://[::1/", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "https://[]/", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "https://[zz::1]/", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "https://[::1]x/", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "https://ho st/", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "https://host/a b", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "https://host/a\r\nX-Injected: 1", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
    { "https://host/caf\xc3\xa9", CGPROF_EINVAL, 0, 0, 0, 0, 0 },
};

static void check_url_case(int idx)
{
    const struct url_case *c = &url_cases[idx];
    struct cgprof__url u;
    memset(&u, 0x5a, sizeof(u));
    int rc = cgprof__url_parse(c->in, &u);
    ck_assert_msg(rc == c->rc, "%s: rc %d want %d", c->in, rc, c->rc);
    if (rc != 0) {
        ck_assert_int_eq((unsigned char)u.host[0], 0x5a); /* untouched on failure */
        return;
    }
    ck_assert_int_eq(u.tls, c->tls);
    ck_assert_str_eq(u.host, c->host);
    ck_assert_uint_eq(u.port, c->port);
    ck_assert_str_eq(u.path, c->path);
    char hh[300];
    ck_assert_int_eq(cgprof__url_host_header(&u, hh, sizeof(hh)), 0);
    ck_assert_str_eq(hh, c->host_header);
}

START_TEST(test_url_parse_table)
{
    for (int i = 0; i < (int)CGPROF_ARRAY_SIZE(url_cases); i++)
        check_url_case(i);
}
END_TEST

START_TEST(test_url_parse_bounds)
{
    char big[4000];
    struct cgprof__url u;
    /* A 255-byte host fits, 256 does not. */
    memcpy(big, "https://", 8);
    memset(big + 8, 'a', 255);
    big[8 + 255] = '\0';
    ck_assert_int_eq(cgprof__url_parse(big, &u), 0);
    ck_assert_uint_eq(strlen(u.host), 255);
    memset(big + 8, 'a', 256);
    big[8 + 256] = '\0';
    ck_assert_int_eq(cgprof__url_parse(big, &u), CGPROF_EINVAL);
    /* A 2047-byte path fits, 2048 does not. */
    memcpy(big, "https://h", 9);
    big[9] = '/';
    memset(big + 10, 'p', 2046);
    big[10 + 2046] = '\0';
    ck_assert_int_eq(cgprof__url_parse(big, &u), 0);
    ck_assert_uint_eq(strlen(u.path), 2047);
    big[10 + 2046] = 'p';
    big[10 + 2047] = '\0';
    ck_assert_int_eq(cgprof__url_parse(big, &u), CGPROF_EINVAL);
    ck_assert_int_eq(cgprof__url_parse(NULL, &u), CGPROF_EINVAL);
    char tiny[4];
    ck_assert_int_eq(cgprof__url_parse("https://abcdef", &u), 0);
    ck_assert_int_eq(cgprof__url_host_header(&u, tiny, sizeof(tiny)), CGPROF_ETOOBIG);
}
END_TEST

static const struct proxy_case {
    const char *in;
    int rc;
    const char *host;
    unsigned port;
    const char *auth;
} proxy_cases[] = {
    { "http://proxy.corp:3128", 0, "proxy.corp", 3128, "" },
    { "http://proxy.corp", 0, "proxy.corp", 80, "" },
    { "http://proxy.corp/", 0, "proxy.corp", 80, "" },
    { "proxy.corp:8080", 0, "proxy.corp", 8080, "" },
    { "HTTP://10.0.0.1:3128", 0, "10.0.0.1", 3128, "" },
    { "http://[fd00::1]:3128", 0, "fd00::1", 3128, "" },
    { "http://alice:s3cr%40t@proxy:3128", 0, "proxy", 3128, "alice:s3cr@t" },
    { "http://bob@proxy:3128", 0, "proxy", 3128, "bob:" },
    { "http://a:b:c@proxy", 0, "proxy", 80, "a:b:c" },
    { "https://proxy:443", CGPROF_EINVAL, 0, 0, 0 },
    { "socks5://proxy:1080", CGPROF_EINVAL, 0, 0, 0 },
    { "http://proxy:3128/path", CGPROF_EINVAL, 0, 0, 0 },
    { "http://", CGPROF_EINVAL, 0, 0, 0 },
    { "http://u:%zz@proxy", CGPROF_EINVAL, 0, 0, 0 },
    { "http://u:%4@proxy", CGPROF_EINVAL, 0, 0, 0 },
    { "http://u:%00@proxy", CGPROF_EINVAL, 0, 0, 0 },
};

static void check_proxy_case(int idx)
{
    const struct proxy_case *c = &proxy_cases[idx];
    struct cgprof__proxy p;
    int rc = cgprof__proxy_parse(c->in, &p);
    ck_assert_msg(rc == c->rc, "%s: rc %d want %d", c->in, rc, c->rc);
    if (rc)
        return;
    ck_assert_str_eq(p.host, c->host);
    ck_assert_uint_eq(p.port, c->port);
    ck_assert_str_eq(p.auth, c->auth);
}

START_TEST(test_proxy_parse_table)
{
    for (int i = 0; i < (int)CGPROF_ARRAY_SIZE(proxy_cases); i++)
        check_proxy_case(i);
}
END_TEST

static const struct np_case {
    const char *list;
    const char *host;
    unsigned port;
    bool match;
} np_cases[] = {
    { NULL, "example.com", 443, false },
    { "", "example.com", 443, false },
    { "*", "anything.example", 443, true },
    { "example.com", "example.com", 443, true },
    { "example.com", "EXAMPLE.com", 443, true },
    { "example.com", "api.example.com", 443, true },
    { ".example.com", "api.example.com", 443, true },
    { ".example.com", "example.com", 443, true },
    { "*.example.com", "api.example.com", 443, true },
    { "example.com", "badexample.com", 443, false },
    { "example.com", "example.com.evil", 443, false },
    { "foo, bar ,example.com", "x.example.com", 443, true },
    { "foo,,bar", "bar", 80, true },
    { "169.254.169.254", "169.254.169.254", 80, true },
    { "169.254.169.254", "169.254.169.25", 80, false },
    { "10.0.0.0/8", "10.20.30.40", 443, true },
    { "10.0.0.0/8", "11.0.0.1", 443, false },
    { "192.168.1.0/25", "192.168.1.127", 443, true },
    { "192.168.1.0/25", "192.168.1.128", 443, false },
    { "::1", "::1", 443, true },
    { "[::1]", "::1", 443, true },
    { "fd00::/8", "fd12:3456::1", 443, true },
    { "fd00::/8", "fe80::1", 443, false },
    { "10.0.0.0/8", "ten.example", 443, false },
    { "example.com", "10.0.0.1", 443, false },
    { "localhost:8080", "localhost", 8080, true },
    { "localhost:8080", "localhost", 8081, false },
    { "127.0.0.1:443", "127.0.0.1", 443, true },
    { "[::1]:443", "::1", 80, false },
    { "10.0.0.0/33", "10.0.0.1", 443, false },
};

static void check_np_case(int idx)
{
    const struct np_case *c = &np_cases[idx];
    ck_assert_msg(cgprof__no_proxy_match(c->list, c->host, c->port) == c->match,
                  "NO_PROXY=%s host %s:%u want %d", c->list ? c->list : "(null)", c->host,
                  c->port, c->match);
}

START_TEST(test_no_proxy_match_table)
{
    for (int i = 0; i < (int)CGPROF_ARRAY_SIZE(np_cases); i++)
        check_np_case(i);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("uploader");
    TCase *tc = tcase_create("url");
    tcase_add_test(tc, test_url_parse_table);
    tcase_add_test(tc, test_url_parse_bounds);
    tcase_add_test(tc, test_proxy_parse_table);
    tcase_add_test(tc, test_no_proxy_match_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(suite());
}
