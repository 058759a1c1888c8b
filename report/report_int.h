/* Declarations shared by the files of report/ only. */
#ifndef CGPROF_REPORT_INT_H
#define CGPROF_REPORT_INT_H

#include <stdint.h>

/* FNV-1a hash of a NUL-terminated string (top.c). */
uint64_t cgprof__report_hash_str(const char *s);

#endif
