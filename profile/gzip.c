/* gzip (RFC 1952) compression and decompression with zlib, used for stored
 * and spooled profiles. Output goes into a bounded struct cgprof_buf, so a
 * decompression bomb stops at the buffer's maximum (CGPROF_ETOOBIG). zlib
 * allocates through cgprof_malloc. Files are in file.c. */
#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "profile_int.h"

#define GZIP_WINDOW (15 + 16) /* 32 KiB window, gzip wrapper */
#define GZIP_LEVEL 6          /* gzip's default, as the Python agent's encoder */
#define CHUNK 16384

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    CGPROF_UNUSED(opaque);
    return cgprof_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf addr)
{
    CGPROF_UNUSED(opaque);
    cgprof_free(addr);
}

/* Translates a zlib failure, logging zlib's own text once. */
static int z_error(const char *what, int zrc, const z_stream *zs)
{
    if (zrc == Z_MEM_ERROR)
        return CGPROF_ENOMEM;
    cgprof_warn("profile: zlib %s: %s (%d)", what,
                zs->msg ? zs->msg : zError(zrc), zrc);
    return CGPROF_EZLIB;
}

static void restore(struct cgprof_buf *out, size_t mark)
{
    out->len = mark;
    if (out->data)
        out->data[mark] = '\0';
}

/* Feeds at most UINT_MAX bytes per step since avail_in is an uInt. */
static void feed(z_stream *zs, const unsigned char **in, size_t *left)
{
    if (zs->avail_in == 0 && *left > 0) {
        uInt n = *left > UINT_MAX ? UINT_MAX : (uInt)*left;
        zs->next_in = (Bytef *)(uintptr_t)*in;
        zs->avail_in = n;
        *in += n;
        *left -= n;
    }
}

/* On failure out is left as it was. Tests: test/unit/profile/test_gzip.c */
int cgprof_gzip(const void *in, size_t len, struct cgprof_buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    zs.zalloc = z_alloc;
    zs.zfree = z_free;
    int zrc = deflateInit2(&zs, GZIP_LEVEL, Z_DEFLATED, GZIP_WINDOW, 8, Z_DEFAULT_STRATEGY);
    if (zrc != Z_OK)
        return z_error("deflateInit2", zrc, &zs);
    size_t mark = out->len;
    const unsigned char *p = in;
    size_t left = len;
    unsigned char chunk[CHUNK];
    int rc = 0;
    for (;;) {
        feed(&zs, &p, &left);
        zs.next_out = chunk;
        zs.avail_out = sizeof(chunk);
        zrc = deflate(&zs, left == 0 ? Z_FINISH : Z_NO_FLUSH);
        if (zrc == Z_STREAM_ERROR) {
            rc = z_error("deflate", zrc, &zs);
            break;
        }
        size_t have = sizeof(chunk) - zs.avail_out;
        if (have && (rc = cgprof_buf_append(out, chunk, have)) != 0)
            break;
        if (zrc == Z_STREAM_END)
            break;
    }
    deflateEnd(&zs);
    if (rc)
        restore(out, mark);
    return rc;
}

/* Accepts concatenated members (as `cat a.gz b.gz` makes); anything else
 * after a member, or a stream that ends early, is an error.
 * On failure out is left as it was. Tests: test/unit/profile/test_gzip.c */
int cgprof_gunzip(const void *in, size_t len, struct cgprof_buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    zs.zalloc = z_alloc;
    zs.zfree = z_free;
    int zrc = inflateInit2(&zs, GZIP_WINDOW);
    if (zrc != Z_OK)
        return z_error("inflateInit2", zrc, &zs);
    size_t mark = out->len;
    const unsigned char *p = in;
    size_t left = len;
    unsigned char chunk[CHUNK];
    int rc = 0;
    if (len == 0) {
        cgprof_warn("profile: zlib inflate: empty input");
        rc = CGPROF_EZLIB;
    }
    while (rc == 0) {
        feed(&zs, &p, &left);
        zs.next_out = chunk;
        zs.avail_out = sizeof(chunk);
        zrc = inflate(&zs, Z_NO_FLUSH);
        size_t have = sizeof(chunk) - zs.avail_out;
        if (have && (rc = cgprof_buf_append(out, chunk, have)) != 0)
            break;
        if (zrc == Z_STREAM_END) {
            size_t rest = zs.avail_in + left;
            if (rest == 0)
                break;
            /* Another member must start with the gzip magic. */
            if (zs.avail_in >= 2 ? (zs.next_in[0] != 0x1f || zs.next_in[1] != 0x8b)
                                 : rest < 2) {
                cgprof_warn("profile: zlib inflate: %zu bytes of trailing garbage", rest);
                rc = CGPROF_EZLIB;
                break;
            }
            inflateReset(&zs);
            continue;
        }
        if (zrc == Z_BUF_ERROR && zs.avail_in == 0 && left == 0) {
            cgprof_warn("profile: zlib inflate: truncated gzip stream");
            rc = CGPROF_EZLIB;
            break;
        }
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            rc = z_error("inflate", zrc, &zs);
            break;
        }
    }
    inflateEnd(&zs);
    if (rc)
        restore(out, mark);
    return rc;
}
