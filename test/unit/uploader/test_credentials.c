/* Unit tests for uploader/credentials.c: the parsers (INI profiles, the
 * container/IMDS JSON, STS XML, ISO-8601) and the chain case by case
 * against a local stand-in (test/unit/uploader/stub_http.h): environment,
 * explicit profile skipping the environment, credentials and config files,
 * credentialPath, container credentials with token and token file, IMDSv2
 * (token by PUT), web identity through a stand-in STS, refresh before
 * expiry, and that no secret reaches the log. */
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "stub_http.h"
#include "../../../uploader/uploader_int.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static char tmp[256];

static void write_file(const char *name, const char *text, char *path_out, size_t n)
{
    snprintf(path_out, n, "%s/%s", tmp, name);
    FILE *f = fopen(path_out, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    snprintf(tmp, sizeof(tmp), "%s", cgprof_test_tmpdir());
}

/* ---- parsers --------------------------------------------------------------- */

static const char ini[] =
    "# comment\n"
    "[default]\n"
    "aws_access_key_id = AKDEFAULT\n"
    "aws_secret_access_key=SDEFAULT\n"
    "\n"
    "[dev]\n"
    "  AWS_Access_Key_Id  =  AKDEV  \r\n"
    "aws_secret_access_key = SDEV\n"
    "aws_session_token = TDEV\n"
    "s3 =\n"
    "    aws_access_key_id = NESTED\n"
    "[nokeys]\n"
    "region = us-west-2\n"
    "[profile prod]\n"
    "aws_access_key_id = AKPROD\n"
    "aws_secret_access_key = SPROD\n";

static const struct ini_case {
    const char *profile;
    bool config_style;
    int rc;
    const char *key, *secret, *token;
} ini_cases[] = {
    { "default", false, 0, "AKDEFAULT", "SDEFAULT", "" },
    { "dev", false, 0, "AKDEV", "SDEV", "TDEV" },
    { "nokeys", false, CGPROF_ENOTFOUND, NULL, NULL, NULL },
    { "missing", false, CGPROF_ENOTFOUND, NULL, NULL, NULL },
    { "prod", false, CGPROF_ENOTFOUND, NULL, NULL, NULL },     /* "profile " only in config */
    { "prod", true, 0, "AKPROD", "SPROD", "" },
    { "default", true, 0, "AKDEFAULT", "SDEFAULT", "" },       /* [default] in config too */
    { "dev", true, CGPROF_ENOTFOUND, NULL, NULL, NULL },      /* config wants [profile dev] */
};

static void test_creds_parse_ini_table_one(int _i)
{
    const struct ini_case *t = &ini_cases[_i];
    struct cgprof__aws_creds k;
    memset(&k, 0, sizeof(k));
    ck_assert_int_eq(cgprof__creds_parse_ini(ini, t->profile, t->config_style, &k), t->rc);
    if (t->rc == 0) {
        ck_assert_str_eq(k.access_key_id, t->key);
        ck_assert_str_eq(k.secret_access_key, t->secret);
        ck_assert_str_eq(k.session_token, t->token);
        ck_assert_uint_eq(k.expiration_ms, 0);
    }
}
/* Every row in one test: a fork per row costs ~50 ms under ASan. */
START_TEST(test_creds_parse_ini_table)
{
    for (int i = 0; i < (int)CGPROF_ARRAY_SIZE(ini_cases); i++)
        test_creds_parse_ini_table_one(i);
}
END_TEST

static const struct iso_case {
    const char *s;
    int rc;
    uint64_t ms;
} iso_cases[] = {
    { "2015-08-30T12:36:00Z", 0, 1440938160000ull },
    { "2015-08-30T12:36:00.5Z", 0, 1440938160500ull },
    { "2015-08-30T12:36:00.123456Z", 0, 1440938160123ull },
    { "2015-08-30T14:36:00+02:00", 0, 1440938160000ull },
    { "2015-08-30T12:36:00", CGPROF_EPARSE, 0 },
    { "2015-13-30T12:36:00Z", CGPROF_EPARSE, 0 },
    { "2015-08-30 12:36:00Z", CGPROF_EPARSE, 0 },
    { "2015-08-30T12:36:00Zjunk", CGPROF_EPARSE, 0 },
    { "", CGPROF_EPARSE, 0 },
};

static void test_parse_iso8601_table_one(int _i)
{
    const struct iso_case *t = &iso_cases[_i];
    uint64_t ms = 7;
    ck_assert_int_eq(cgprof__parse_iso8601(t->s, &ms), t->rc);
    if (t->rc == 0)
        ck_assert_uint_eq(ms, t->ms);
}
/* Every row in one test: a fork per row costs ~50 ms under ASan. */
START_TEST(test_parse_iso8601_table)
{
    for (int i = 0; i < (int)CGPROF_ARRAY_SIZE(iso_cases); i++)
        test_parse_iso8601_table_one(i);
}
END_TEST

START_TEST(test_creds_parse_json)
{
    struct cgprof__aws_creds k;
    const char *ok = "{\"Code\":\"Success\",\"AccessKeyId\":\"AKJ\",\"SecretAccessKey\":\"SJ\","
                     "\"Token\":\"TJ\",\"Expiration\":\"2030-01-01T00:00:00Z\"}";
    ck_assert_int_eq(cgprof__creds_parse_json(ok, strlen(ok), &k), 0);
    ck_assert_str_eq(k.access_key_id, "AKJ");
    ck_assert_str_eq(k.secret_access_key, "SJ");
    ck_assert_str_eq(k.session_token, "TJ");
    ck_assert_uint_eq(k.expiration_ms, 1893456000000ull);
    const char *bad[] = {
        "{\"Code\":\"Failure\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}",
        "{\"AccessKeyId\":\"A\"}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Expiration\":\"soon\"}",
        "[1]", "not json",
    };
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(bad); i++)
        ck_assert_int_eq(cgprof__creds_parse_json(bad[i], strlen(bad[i]), &k), CGPROF_EPARSE);
}
END_TEST

static const char sts_ok[] =
    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
    "  <AssumeRoleWithWebIdentityResult>\n"
    "    <SubjectFromWebIdentityToken>system:serviceaccount:a:b</SubjectFromWebIdentityToken>\n"
    "    <Credentials>\n"
    "      <SessionToken>FwoG&amp;Z&#x2F;x&lt;</SessionToken>\n"
    "      <SecretAccessKey>wJal/SECRET</SecretAccessKey>\n"
    "      <Expiration>2030-01-01T01:00:00Z</Expiration>\n"
    "      <AccessKeyId>ASIAWEB</AccessKeyId>\n"
    "    </Credentials>\n"
    "  </AssumeRoleWithWebIdentityResult>\n"
    "</AssumeRoleWithWebIdentityResponse>\n";

START_TEST(test_creds_parse_sts_xml)
{
    struct cgprof__aws_creds k;
    ck_assert_int_eq(cgprof__creds_parse_sts_xml(sts_ok, strlen(sts_ok), &k), 0);
    ck_assert_str_eq(k.access_key_id, "ASIAWEB");
    ck_assert_str_eq(k.secret_access_key, "wJal/SECRET");
    ck_assert_str_eq(k.session_token, "FwoG&Z/x<");
    ck_assert_uint_eq(k.expiration_ms, 1893459600000ull);
    const char *bad[] = {
        "<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>",
        "<Credentials><AccessKeyId>A</AccessKeyId></Credentials>",
        "<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
        "<SessionToken>T</SessionToken><Expiration>x</Expiration></Credentials>",
        "<Credentials><AccessKeyId>A&bogus;</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
        "<SessionToken>T</SessionToken><Expiration>2030-01-01T01:00:00Z</Expiration></Credentials>",
        "<Credentials><AccessKeyId>A",
    };
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(bad); i++) {
        const char *g = cgprof_test_guarded_copy(bad[i], strlen(bad[i]));
        ck_assert_int_eq(cgprof__creds_parse_sts_xml(g, strlen(bad[i]), &k), CGPROF_EPARSE);
    }
}
END_TEST

/* ---- the chain ------------------------------------------------------------- */

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
    return fake_now;
}

static struct cgprof__creds_chain *chain(const char *path, const char *profile)
{
    struct cgprof__creds_options o = {
        .credential_path = path, .credential_profile = profile, .region = "us-west-2",
        .getenv_fn = cgprof_test_getenv, .now_ms = fake_now ? fake_clock : NULL,
    };
    struct cgprof__creds_chain *c = cgprof__creds_new(&o);
    ck_assert_ptr_nonnull(c);
    return c;
}

static void expect_creds(struct cgprof__creds_chain *c, const char *key, const char *secret,
                         const char *token, const char *source)
{
    struct cgprof__aws_creds k;
    ck_assert_int_eq(cgprof__creds_get(c, &k), 0);
    ck_assert_str_eq(k.access_key_id, key);
    ck_assert_str_eq(k.secret_access_key, secret);
    ck_assert_str_eq(k.session_token, token);
    ck_assert_str_eq(cgprof__creds_source(c), source);
}

START_TEST(test_creds_chain_environment)
{
    const char *env[] = { "HOME", tmp, "AWS_EC2_METADATA_DISABLED", "true",
                          "AWS_ACCESS_KEY_ID", AKID, "AWS_SECRET_ACCESS_KEY", SECRET,
                          "AWS_SESSION_TOKEN", "TOK", NULL };
    cgprof_test_env_set(env);
    struct cgprof__creds_chain *c = chain("", "");
    expect_creds(c, AKID, SECRET, "TOK", "environment");
    cgprof__creds_free(c);
}
END_TEST

START_TEST(test_creds_chain_partial_environment_falls_through)
{
    char p[512];
    mkdir(strcat(strcpy(p, tmp), "/.aws"), 0700);
    write_file(".aws/credentials", "[default]\naws_access_key_id=AKF\naws_secret_access_key=SF\n",
               p, sizeof(p));
    const char *env[] = { "HOME", tmp, "AWS_EC2_METADATA_DISABLED", "true",
                          "AWS_ACCESS_KEY_ID", AKID, NULL };
    cgprof_test_env_set(env);
    struct cgprof__creds_chain *c = chain("", "");
    expect_creds(c, "AKF", "SF", "", "shared credentials file");
    cgprof__creds_free(c);
}
END_TEST

/* The files: credentials before config; AWS_PROFILE; AWS_SHARED_CREDENTIALS_FILE;
 * AWS_CONFIG_FILE with "[profile x]"; an explicit credentialProfile or
 * credentialPath skips the environment, as botocore does. */
START_TEST(test_creds_chain_files_and_profiles)
{
    char cred[512], conf[512], alt[512];
    write_file("credentials", "[default]\naws_access_key_id=AKC\naws_secret_access_key=SC\n"
               "[team]\naws_access_key_id=AKT\naws_secret_access_key=ST\n", cred, sizeof(cred));
    write_file("config", "[default]\nregion=us-east-1\n[profile cfgonly]\n"
               "aws_access_key_id=AKCFG\naws_secret_access_key=SCFG\naws_session_token=TCFG\n",
               conf, sizeof(conf));
    write_file("alt", "[default]\naws_access_key_id=AKALT\naws_secret_access_key=SALT\n"
               "[team]\naws_access_key_id=AKALTT\naws_secret_access_key=SALTT\n", alt, sizeof(alt));
    {
        const char *env[] = { "HOME", tmp, "AWS_EC2_METADATA_DISABLED", "true",
                              "AWS_SHARED_CREDENTIALS_FILE", cred, "AWS_CONFIG_FILE", conf, NULL };
        cgprof_test_env_set(env);
        struct cgprof__creds_chain *c = chain("", "");
        expect_creds(c, "AKC", "SC", "", "shared credentials file");
        cgprof__creds_free(c);
        c = chain("", "cfgonly");
        expect_creds(c, "AKCFG", "SCFG", "TCFG", "shared config file");
        cgprof__creds_free(c);
        c = chain(alt, "");
        expect_creds(c, "AKALT", "SALT", "", "credentialPath file");
        cgprof__creds_free(c);
        c = chain(alt, "team");
        expect_creds(c, "AKALTT", "SALTT", "", "credentialPath file");
        cgprof__creds_free(c);
    }
    {
        const char *env[] = { "HOME", tmp, "AWS_EC2_METADATA_DISABLED", "true",
                              "AWS_SHARED_CREDENTIALS_FILE", cred, "AWS_PROFILE", "team",
                              "AWS_ACCESS_KEY_ID", "AKENV", "AWS_SECRET_ACCESS_KEY", "SENV", NULL };
        cgprof_test_env_set(env);
        /* AWS_PROFILE does not beat the environment's keys ... */
        struct cgprof__creds_chain *c = chain("", "");
        expect_creds(c, "AKENV", "SENV", "", "environment");
        cgprof__creds_free(c);
        /* ... but an explicit credentialProfile or credentialPath does. */
        c = chain("", "team");
        expect_creds(c, "AKT", "ST", "", "shared credentials file");
        cgprof__creds_free(c);
        c = chain(alt, "");
        expect_creds(c, "AKALTT", "SALTT", "", "credentialPath file");   /* AWS_PROFILE=team */
        cgprof__creds_free(c);
    }
    {
        const char *env[] = { "HOME", tmp, "AWS_EC2_METADATA_DISABLED", "true",
                              "AWS_SHARED_CREDENTIALS_FILE", cred, NULL };
        cgprof_test_env_set(env);
        struct cgprof__creds_chain *c = chain("", "nosuch");
        struct cgprof__aws_creds k;
        ck_assert_int_eq(cgprof__creds_get(c, &k), CGPROF_EAUTH);
        ck_assert_str_eq(cgprof__creds_source(c), "none");
        cgprof__creds_free(c);
    }
}
END_TEST

static const char creds_json[] =
    "{\"AccessKeyId\":\"ASIACONT\",\"SecretAccessKey\":\"SCONT\",\"Token\":\"TCONT\","
    "\"Expiration\":\"2030-01-01T00:00:00Z\"}";

START_TEST(test_creds_chain_container_relative)
{
    struct stub_reply r[] = { { STUB_REPLY, 200, NULL, creds_json, NULL }, { 0 } };
    struct stub_server s;
    stub_start(&s, r);
    char base[64];
    stub_url(&s, base, sizeof(base));
    const char *env[] = { "HOME", tmp, "AWS_EC2_METADATA_DISABLED", "true",
                          "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc",
                          "CGPROF_CONTAINER_CREDENTIALS_BASE", base, NULL };
    cgprof_test_env_set(env);
    struct cgprof__creds_chain *c = chain("", "");
    expect_creds(c, "ASIACONT", "SCONT", "TCONT", "container credentials");
    ck_assert_uint_eq(stub_count(&s), 1);
    ck_assert_str_eq(s.reqs[0].method, "GET");
    ck_assert_str_eq(s.reqs[0].target, "/v2/credentials/abc");
    char h[256];
    ck_assert_str_eq(stub_header(&s.reqs[0], "Authorization", h, sizeof(h)), "");
    cgprof__creds_free(c);
    stub_stop(&s);
}
END_TEST

/* EKS Pod Identity: full URI plus a token file (which wins over the
 * token variable); a full URI to a non-loopback http host is refused. */
START_TEST(test_creds_chain_container_full_uri_token)
{
    struct stub_reply r[] = { { STUB_REPLY, 200, NULL, creds_json, NULL }, { 0 } };
    struct stub_server s;
    stub_start(&s, r);
    char url[128], tokf[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/credentials", s.port);
    write_file("eks-token", "eks-pod-token-123\n", tokf, sizeof(tokf));
    {
        const char *env[] = { "HOME", tmp, "AWS_EC2_METADATA_DISABLED", "true",
                              "AWS_CONTAINER_CREDENTIALS_FULL_URI", url,
                              "AWS_CONTAINER_AUTHORIZATION_TOKEN", "env-token",
                              "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokf, NULL };
        cgprof_test_env_set(env);
        struct cgprof__creds_chain *c = chain("", "");
        expect_creds(c, "ASIACONT", "SCONT", "TCONT", "container credentials");
        char h[256];
        ck_assert_str_eq(stub_header(&s.reqs[0], "Authorization", h, sizeof(h)),
                         "eks-pod-token-123");
        cgprof__creds_free(c);
    }
    {
        const char *env[] = { "HOME", tmp, "AWS_EC2_METADATA_DISABLED", "true",
                              "AWS_CONTAINER_CREDENTIALS_FULL_URI", url,
                              "AWS_CONTAINER_AUTHORIZATION_TOKEN", "env-token", NULL };
        cgprof_test_env_set(env);
        struct cgprof__creds_chain *c = chain("", "");
        expect_creds(c, "ASIACONT", "SCONT", "TCONT", "container credentials");
        char h[256];
        ck_assert_str_eq(stub_header(&s.reqs[1], "Authorization", h, sizeof(h)), "env-token");
        cgprof__creds_free(c);
    }
    {
        const char *env[] = { "HOME", tmp, "AWS_EC2_METADATA_DISABLED", "true",
                              "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/creds",
                              "AWS_CONTAINER_AUTHORIZATION_TOKEN", "env-token", NULL };
        cgprof_test_env_set(env);
        struct cgprof__creds_chain *c = chain("", "");
        struct cgprof__aws_creds k;
        ck_assert_int_eq(cgprof__creds_get(c, &k), CGPROF_EAUTH);
        cgprof__creds_free(c);
    }
    ck_assert_uint_eq(stub_count(&s), 2);
    stub_stop(&s);
}
END_TEST

static const char imds_json[] =
    "{\"Code\":\"Success\",\"LastUpdated\":\"2030-01-01T00:00:00Z\",\"Type\":\"AWS-HMAC\","
    "\"AccessKeyId\":\"ASIAIMDS\",\"SecretAccessKey\":\"SIMDS\",\"Token\":\"TIMDS\","
    "\"Expiration\":\"2030-01-01T06:00:00Z\"}";

START_TEST(test_creds_chain_imds_v2)
{
    struct stub_reply r[] = {
        { STUB_REPLY, 200, NULL, "imds-token-xyz", "/latest/api/token" },
        { STUB_REPLY, 200, NULL, "my-role\n", "/latest/meta-data/iam/security-credentials/" },
        { STUB_REPLY, 200, NULL, imds_json, "/latest/meta-data/iam/security-credentials/my-role" },
        { 0 },
    };
    /* The directory listing matches as a prefix of the role path too, so
     * the more specific entry must come first. */
    struct stub_reply tmpr = r[1];
    r[1] = r[2];
    r[2] = tmpr;
    struct stub_server s;
    stub_start(&s, r);
    char base[64];
    stub_url(&s, base, sizeof(base));
    const char *env[] = { "HOME", tmp, "AWS_EC2_METADATA_SERVICE_ENDPOINT", base, NULL };
    cgprof_test_env_set(env);
    struct cgprof__creds_chain *c = chain("", "");
    expect_creds(c, "ASIAIMDS", "SIMDS", "TIMDS", "EC2 instance metadata");
    ck_assert_uint_eq(stub_count(&s), 3);
    char h[256];
    ck_assert_str_eq(s.reqs[0].method, "PUT");
    ck_assert_str_eq(s.reqs[0].target, "/latest/api/token");
    ck_assert_str_eq(stub_header(&s.reqs[0], "X-aws-ec2-metadata-token-ttl-seconds", h,
                                 sizeof(h)), "21600");
    for (int i = 1; i < 3; i++) {
        ck_assert_str_eq(s.reqs[i].method, "GET");
        ck_assert_str_eq(stub_header(&s.reqs[i], "X-aws-ec2-metadata-token", h, sizeof(h)),
                         "imds-token-xyz");
    }
    ck_assert_str_eq(s.reqs[2].target, "/latest/meta-data/iam/security-credentials/my-role");
    cgprof__creds_free(c);
    /* Disabled: IMDS is never asked. */
    const char *env2[] = { "HOME", tmp, "AWS_EC2_METADATA_SERVICE_ENDPOINT", base,
                           "AWS_EC2_METADATA_DISABLED", "TRUE", NULL };
    cgprof_test_env_set(env2);
    c = chain("", "");
    struct cgprof__aws_creds k;
    ck_assert_int_eq(cgprof__creds_get(c, &k), CGPROF_EAUTH);
    ck_assert_uint_eq(stub_count(&s), 3);
    cgprof__creds_free(c);
    stub_stop(&s);
}
END_TEST

START_TEST(test_creds_chain_web_identity)
{
    struct stub_reply r[] = { { STUB_REPLY, 200, "Content-Type: text/xml\r\n", sts_ok, NULL },
                              { 0 } };
    struct stub_server s;
    stub_start(&s, r);
    char base[64], tokf[512];
    stub_url(&s, base, sizeof(base));
    write_file("web-token", "eyJhbGciOi.JWT+/=\n", tokf, sizeof(tokf));
    const char *env[] = { "HOME", tmp, "AWS_EC2_METADATA_DISABLED", "true",
                          "AWS_WEB_IDENTITY_TOKEN_FILE", tokf,
                          "AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod-role",
                          "AWS_ROLE_SESSION_NAME", "my session",
                          "AWS_ENDPOINT_URL_STS", base,
                          /* web identity comes after the environment's keys only */
                          "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/never", NULL };
    cgprof_test_env_set(env);
    struct cgprof__creds_chain *c = chain("", "");
    expect_creds(c, "ASIAWEB", "wJal/SECRET", "FwoG&Z/x<", "web identity (STS)");
    ck_assert_uint_eq(stub_count(&s), 1);
    ck_assert_str_eq(s.reqs[0].method, "POST");
    ck_assert_str_eq(s.reqs[0].target, "/");
    ck_assert_str_eq(s.reqs[0].body,
                     "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"
                     "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fpod-role"
                     "&RoleSessionName=my%20session&WebIdentityToken=eyJhbGciOi.JWT%2B%2F%3D");
    char h[256];
    ck_assert_str_eq(stub_header(&s.reqs[0], "Content-Type", h, sizeof(h)),
                     "application/x-www-form-urlencoded; charset=utf-8");
    ck_assert_str_eq(stub_header(&s.reqs[0], "Authorization", h, sizeof(h)), "");
    cgprof__creds_free(c);
    stub_stop(&s);
}
END_TEST

START_TEST(test_creds_chain_web_identity_error_stops_chain)
{
    struct stub_reply r[] = {
        { STUB_REPLY, 400, NULL, "<ErrorResponse><Error><Code>InvalidIdentityToken</Code>"
          "<Message>bad jwt</Message></Error></ErrorResponse>", NULL }, { 0 } };
    struct stub_server s;
    stub_start(&s, r);
    char base[64], tokf[512], cred[512];
    stub_url(&s, base, sizeof(base));
    write_file("web-token", "t", tokf, sizeof(tokf));
    write_file("credentials", "[default]\naws_access_key_id=AKC\naws_secret_access_key=SC\n",
               cred, sizeof(cred));
    const char *env[] = { "HOME", tmp, "AWS_EC2_METADATA_DISABLED", "true",
                          "AWS_WEB_IDENTITY_TOKEN_FILE", tokf, "AWS_ROLE_ARN", "arn:r",
                          "AWS_ENDPOINT_URL", base, "AWS_SHARED_CREDENTIALS_FILE", cred, NULL };
    cgprof_test_env_set(env);
    struct cgprof__creds_chain *c = chain("", "");
    struct cgprof__aws_creds k;
    ck_assert_int_eq(cgprof__creds_get(c, &k), CGPROF_EAUTH);
    cgprof__creds_free(c);
    stub_stop(&s);
}
END_TEST

/* Expiring credentials are fetched again once less than
 * CGPROF__CREDS_REFRESH_MS remain, not before; a failed refresh keeps
 * valid ones; expired ones with a failing source give EAUTH. */
START_TEST(test_creds_refresh_before_expiry)
{
    static const char first[] =
        "{\"AccessKeyId\":\"AK1\",\"SecretAccessKey\":\"S1\",\"Token\":\"T1\","
        "\"Expiration\":\"2030-01-01T01:00:00Z\"}";
    static const char second[] =
        "{\"AccessKeyId\":\"AK2\",\"SecretAccessKey\":\"S2\",\"Token\":\"T2\","
        "\"Expiration\":\"2030-01-01T02:00:00Z\"}";
    struct stub_reply r[] = {
        { STUB_REPLY, 200, NULL, first, NULL },
        { STUB_REPLY, 200, NULL, second, NULL },
        { STUB_REPLY, 500, NULL, "{}", NULL },
        { 0 },
    };
    struct stub_server s;
    stub_start(&s, r);
    char base[64];
    stub_url(&s, base, sizeof(base));
    const char *env[] = { "HOME", tmp, "AWS_EC2_METADATA_DISABLED", "true",
                          "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/c",
                          "CGPROF_CONTAINER_CREDENTIALS_BASE", base, NULL };
    cgprof_test_env_set(env);
    uint64_t exp1 = 1893459600000ull, exp2 = 1893463200000ull;
    fake_now = exp1 - 30 * 60000;
    struct cgprof__creds_chain *c = chain("", "");
    struct cgprof__aws_creds k;
    ck_assert_int_eq(cgprof__creds_get(c, &k), 0);
    ck_assert_str_eq(k.access_key_id, "AK1");
    ck_assert_uint_eq(k.expiration_ms, exp1);
    fake_now = exp1 - CGPROF__CREDS_REFRESH_MS - 1000;    /* still fresh: cached */
    ck_assert_int_eq(cgprof__creds_get(c, &k), 0);
    ck_assert_str_eq(k.access_key_id, "AK1");
    ck_assert_uint_eq(stub_count(&s), 1);
    fake_now = exp1 - CGPROF__CREDS_REFRESH_MS + 1000;    /* inside the window: refreshed */
    ck_assert_int_eq(cgprof__creds_get(c, &k), 0);
    ck_assert_str_eq(k.access_key_id, "AK2");
    ck_assert_str_eq(k.session_token, "T2");
    ck_assert_uint_eq(stub_count(&s), 2);
    fake_now = exp2 - 60000;            /* refresh fails (500 twice): AK2 still valid */
    ck_assert_int_eq(cgprof__creds_get(c, &k), 0);
    ck_assert_str_eq(k.access_key_id, "AK2");
    ck_assert_uint_eq(stub_count(&s), 4);
    fake_now = exp2 + 1000;             /* expired, and the source still fails */
    ck_assert_int_eq(cgprof__creds_get(c, &k), CGPROF_EAUTH);
    cgprof__creds_free(c);
    stub_stop(&s);
    fake_now = 0;
}
END_TEST

/* Secrets never reach the log, even at debug level and on failures. */
START_TEST(test_creds_secrets_not_logged)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    cgprof_log_set_fd(p[1]);
    cgprof_log_set_level(CGPROF_LOG_DEBUG);
    struct stub_reply r[] = { { STUB_REPLY, 200, NULL, creds_json, "/ok" },
                              { STUB_REPLY, 500, NULL, "SCONT-in-error", NULL }, { 0 } };
    struct stub_server s;
    stub_start(&s, r);
    char base[64], url[128];
    stub_url(&s, base, sizeof(base));
    snprintf(url, sizeof(url), "%s/bad", base);
    const char *env[] = { "HOME", tmp, "AWS_EC2_METADATA_DISABLED", "true",
                          "AWS_CONTAINER_CREDENTIALS_FULL_URI", url,
                          "AWS_CONTAINER_AUTHORIZATION_TOKEN", "SECRET-TOKEN-VALUE", NULL };
    cgprof_test_env_set(env);
    struct cgprof__creds_chain *c = chain("", "");
    struct cgprof__aws_creds k;
    ck_assert_int_eq(cgprof__creds_get(c, &k), CGPROF_EAUTH);
    cgprof__creds_free(c);
    snprintf(url, sizeof(url), "%s/ok", base);
    const char *env2[] = { "HOME", tmp, "AWS_EC2_METADATA_DISABLED", "true",
                           "AWS_CONTAINER_CREDENTIALS_FULL_URI", url,
                           "AWS_CONTAINER_AUTHORIZATION_TOKEN", "SECRET-TOKEN-VALUE", NULL };
    cgprof_test_env_set(env2);
    c = chain("", "");
    ck_assert_int_eq(cgprof__creds_get(c, &k), 0);
    cgprof__creds_free(c);
    stub_stop(&s);
    cgprof_log_set_fd(-1);
    char out[8192];
    ssize_t n = read(p[0], out, sizeof(out) - 1);
    ck_assert_int_gt(n, 0);             /* something was logged ... */
    out[n] = '\0';
    ck_assert_ptr_nonnull(strstr(out, "container credentials"));
    ck_assert_ptr_null(strstr(out, "SECRET-TOKEN-VALUE"));   /* ... but no secret */
    ck_assert_ptr_null(strstr(out, "SCONT"));
    ck_assert_ptr_null(strstr(out, "TCONT"));
    ck_assert_ptr_null(strstr(out, "ASIACONT"));
}
END_TEST

static Suite *creds_suite(void)
{
    Suite *s = suite_create("uploader");
    TCase *tc = tcase_create("credentials");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_creds_parse_ini_table);
    tcase_add_test(tc, test_parse_iso8601_table);
    tcase_add_test(tc, test_creds_parse_json);
    tcase_add_test(tc, test_creds_parse_sts_xml);
    tcase_add_test(tc, test_creds_chain_environment);
    tcase_add_test(tc, test_creds_chain_partial_environment_falls_through);
    tcase_add_test(tc, test_creds_chain_files_and_profiles);
    tcase_add_test(tc, test_creds_chain_container_relative);
    tcase_add_test(tc, test_creds_chain_container_full_uri_token);
    tcase_add_test(tc, test_creds_chain_imds_v2);
    tcase_add_test(tc, test_creds_chain_web_identity);
    tcase_add_test(tc, test_creds_chain_web_identity_error_stops_chain);
    tcase_add_test(tc, test_creds_refresh_before_expiry);
    tcase_add_test(tc, test_creds_secrets_not_logged);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(creds_suite());
}
