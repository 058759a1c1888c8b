/* cgprof_strerror(): text for the codes in common/error.h and for -errno. */
#include <string.h>

#include "common.h"

const char *cgprof_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define CGPROF_ERR_TEXT(name, code, text) case CGPROF_E##name: return text;
    CGPROF_ERRNO_MAP(CGPROF_ERR_TEXT)
#undef CGPROF_ERR_TEXT
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}
