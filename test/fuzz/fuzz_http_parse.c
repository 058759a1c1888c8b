/* libFuzzer harness for the HTTP response parser (uploader/http.c):
 * cgprof__http_parse_head and the chunked decoder. Besides "no crash under
 * ASan/UBSan" it checks properties: a head that parses has every shorter
 * prefix answer "need more input"; headers point inside the copied block;
 * the chunked decoder gives the same result and bytes whether fed at once,
 * split in two, or one byte at a time. `make fuzz` builds and runs it;
 * test/unit/uploader/test_http_parse.c replays the committed corpus
 * (test/fuzz/corpus/http) through the same checks, with
 * CGPROF_FUZZ_NO_MAIN defined. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../uploader/uploader_int.h"

#define FUZZ_BODY_MAX 65536

/* Decodes in[0..len) fed in pieces of at most step bytes (0 = all at once,
 * or split at split when split < len). Returns the decoder's final code;
 * the body goes to out, the total consumed to *used. */
static int fuzz_decode(const char *in, size_t len, size_t step, size_t split,
                       struct cgprof_buf *out, size_t *used)
{
    struct cgprof__http_chunked d;
    cgprof__http_chunked_init(&d);
    cgprof_buf_init(out, FUZZ_BODY_MAX);
    *used = 0;
    int rc = CGPROF_EAGAIN;
    size_t pos = 0;
    while (pos < len && rc == CGPROF_EAGAIN) {
        size_t n = len - pos;
        if (step && n > step)
            n = step;
        if (!step && split < len && pos < split)
            n = split - pos;
        size_t c = 0;
        rc = cgprof__http_chunked_decode(&d, in + pos, n, &c, out);
        if (c > n)
            return -1;
        if (rc == CGPROF_EAGAIN && c != n)
            return -2; /* "need more" must have used everything */
        pos += c;
    }
    *used = pos;
    return rc;
}

/* Runs every check on one input. Returns NULL when all hold, else what
 * failed. */
static const char *fuzz_http_check(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct cgprof__http_response rs;
    int n = cgprof__http_parse_head(buf, size, &rs);
    if (n > 0) {
        if ((size_t)n > size || rs.status < 100 || rs.status > 599 ||
            rs.nheaders > CGPROF__HTTP_MAX_HEADERS)
            return "parse_head: result out of range";
        for (size_t i = 0; i < rs.nheaders; i++) {
            const char *nm = rs.headers[i].name, *v = rs.headers[i].value;
            if (nm < rs.raw_headers || nm >= rs.raw_headers + n || v < rs.raw_headers ||
                v > rs.raw_headers + n || !*nm || strchr(nm, ':') || strchr(v, '\r') ||
                strchr(v, '\n'))
                return "parse_head: header outside the block or not split";
        }
        if (cgprof__http_response_header(&rs, rs.nheaders ? rs.headers[0].name : "x-none") !=
            (rs.nheaders ? rs.headers[0].value : NULL))
            return "parse_head: lookup mismatch";
        cgprof__http_response_cleanup(&rs);
        /* Every shorter prefix needs more input. */
        size_t probes[3] = { (size_t)n - 1, (size_t)n / 2, (size >> 1) % (size_t)n };
        for (int i = 0; i < 3; i++) {
            int r = cgprof__http_parse_head(buf, probes[i], &rs);
            cgprof__http_response_cleanup(&rs);
            if (r != CGPROF_EAGAIN)
                return "parse_head: a prefix of a valid head is not EAGAIN";
        }
    } else {
        cgprof__http_response_cleanup(&rs);
        if (n != CGPROF_EAGAIN && n != CGPROF_EHTTP && n != CGPROF_ETOOBIG && n != CGPROF_ENOMEM)
            return "parse_head: unexpected code";
    }

    /* The chunked decoder on the body after a head, or on everything. */
    const char *body = n > 0 ? buf + n : buf;
    size_t blen = n > 0 ? size - (size_t)n : size;
    struct cgprof_buf a, b, c;
    size_t ua, ub, uc;
    size_t split = blen ? (size_t)data[0] * 7919u % (blen + 1) : 0;
    int ra = fuzz_decode(body, blen, 0, blen, &a, &ua);
    int rb = fuzz_decode(body, blen, 0, split, &b, &ub);
    int rcc = fuzz_decode(body, blen, blen < 4096 ? 1 : 13, 0, &c, &uc);
    const char *err = NULL;
    if (ra < -2 && ra != CGPROF_EHTTP && ra != CGPROF_ETOOBIG && ra != CGPROF_ENOMEM &&
        ra != CGPROF_EAGAIN)
        err = "chunked: unexpected code";
    else if (ra == -1 || ra == -2 || rb == -1 || rb == -2 || rcc == -1 || rcc == -2)
        err = "chunked: consumed count inconsistent";
    else if (ra != rb || ra != rcc)
        err = "chunked: result depends on how the input was split";
    else if (ra == 0 && (ua != ub || ua != uc))
        err = "chunked: end of body depends on the split";
    else if ((ra == 0 || ra == CGPROF_EAGAIN) &&
             (a.len != b.len || a.len != c.len || (a.len && (memcmp(a.data, b.data, a.len) ||
                                                              memcmp(a.data, c.data, a.len)))))
        err = "chunked: decoded bytes depend on the split";
    cgprof_buf_cleanup(&a);
    cgprof_buf_cleanup(&b);
    cgprof_buf_cleanup(&c);
    return err;
}

#ifndef CGPROF_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_http_check(data, size) != NULL)
        abort(); /* test code: let libFuzzer record the input */
    return 0;
}
#endif
