/* uploader/: where finished profiles go. The file sink (the embedded
 * default) writes gzip'd CodeGuru JSON into a directory; the CodeGuru and
 * Pyroscope sinks, SigV4, HTTPS and the spool arrive with their issues.
 * Sinks never run on the sampling path. */
#ifndef CGPROF_UPLOADER_H
#define CGPROF_UPLOADER_H

#include <stddef.h>

#include "../profile/profile.h"

/* Writes p to dir as "<name>-<pid>-<YYYYmmddTHHMMSSZ>-<start_ms>.json.gz"
 * (name = p->group_name sanitized to [A-Za-z0-9_.-]) atomically: temp file
 * then rename. Creates dir if needed. Afterwards, if the *.json.gz files in
 * dir exceed max_dir_bytes (0 = no cap), the oldest are deleted first and a
 * log line says how many. On success and when path_out is not NULL, the
 * final path is copied there. Returns 0 or a negative error. */
int cgprof_file_sink_write(const struct cgprof_profile *p, const char *dir,
                           size_t max_dir_bytes, char *path_out, size_t path_n);

#endif
