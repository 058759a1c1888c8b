/* Stored profiles: gzip'd CodeGuru JSON written atomically (the file sink
 * and the spool), read back as .json or .json.gz, told apart by the gzip
 * magic bytes rather than the file name. Sizes are capped at
 * CGPROF_PROFILE_FILE_MAX both compressed and decompressed. */
#include <string.h>

#include "profile_int.h"

/* Tests: test/unit/profile/test_file.c */
int cgprof_profile_load_file(struct cgprof_profile *p, const char *path)
{
    char *raw = NULL;
    size_t len = 0;
    int rc = cgprof_read_file(path, CGPROF_PROFILE_FILE_MAX, &raw, &len);
    if (rc)
        return rc;
    if (len >= 2 && (unsigned char)raw[0] == 0x1f && (unsigned char)raw[1] == 0x8b) {
        struct cgprof_buf json;
        cgprof_buf_init(&json, CGPROF_PROFILE_FILE_MAX);
        rc = cgprof_gunzip(raw, len, &json);
        cgprof_free(raw);
        if (rc == 0)
            rc = cgprof_profile_decode_codeguru(p, json.data ? json.data : "", json.len);
        cgprof_buf_cleanup(&json);
        return rc;
    }
    rc = cgprof_profile_decode_codeguru(p, raw, len);
    cgprof_free(raw);
    return rc;
}

/* Tests: test/unit/profile/test_file.c */
int cgprof_profile_save_file(const struct cgprof_profile *p, const char *path)
{
    struct cgprof_buf json, gz;
    cgprof_buf_init(&json, CGPROF_PROFILE_FILE_MAX);
    cgprof_buf_init(&gz, CGPROF_PROFILE_FILE_MAX);
    int rc = cgprof_profile_encode_codeguru(p, &json);
    if (rc == 0)
        rc = cgprof_gzip(json.data, json.len, &gz);
    cgprof_buf_cleanup(&json);
    if (rc == 0)
        rc = cgprof_write_file_atomic(path, gz.data, gz.len);
    cgprof_buf_cleanup(&gz);
    return rc;
}
