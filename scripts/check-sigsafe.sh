#!/bin/bash
# Greps the handler-reachable files for calls a signal handler must never
# make (STYLE.md §3): allocation, stdio formatting, mutexes, the dynamic
# loader's lookups and cgprof's own logging. Comments and string literals
# are ignored; names ending in _sigsafe are allowed (handler-safe variants).
# Usage: scripts/check-sigsafe.sh [file.c ...] (default sampler/signal.c
# sampler/ring.c). Prints file:line: offence for each hit; exits 1 if any.
# Tests: test/integration/sigsafe.sh
set -euo pipefail
if [ $# -eq 0 ]; then
    cd "$(dirname "$0")/.."
    set -- sampler/signal.c sampler/ring.c
fi
for f in "$@"; do
    [ -f "$f" ] || { echo "check-sigsafe: $f not found" >&2; exit 1; }
done
awk '
BEGIN {
    # Banned when called (name followed by "(").
    n = split("malloc calloc realloc free aligned_alloc posix_memalign " \
              "strdup strndup printf fprintf sprintf snprintf vprintf vfprintf " \
              "vsnprintf dprintf puts fputs dlsym dlvsym dlopen dladdr " \
              "dl_iterate_phdr cgprof_malloc cgprof_calloc cgprof_realloc " \
              "cgprof_free cgprof_strdup cgprof_vlog cgprof_error cgprof_warn " \
              "cgprof_info cgprof_debug", list, " ")
    for (i = 1; i <= n; i++) banned[list[i]] = 1
    bad = 0
}
FNR == 1 { in_comment = 0 }
{
    # Blank out comments, string and character literals, keeping the rest.
    line = $0; code = ""; i = 1; len = length(line)
    while (i <= len) {
        c = substr(line, i, 1); c2 = substr(line, i, 2)
        if (in_comment) {
            if (c2 == "*/") { in_comment = 0; i += 2; code = code "  " } else { i++; code = code " " }
        } else if (c2 == "/*") {
            in_comment = 1; i += 2; code = code "  "
        } else if (c2 == "//") {
            break
        } else if (c == "\"" || c == "\047") {
            q = c; code = code " "; i++
            while (i <= len && substr(line, i, 1) != q) {
                if (substr(line, i, 1) == "\\") { i++; code = code " " }
                i++; code = code " "
            }
            i++; code = code " "
        } else {
            code = code c; i++
        }
    }
    rest = code
    while (match(rest, /[A-Za-z_][A-Za-z0-9_]*/)) {
        name = substr(rest, RSTART, RLENGTH)
        after = substr(rest, RSTART + RLENGTH)
        rest = after
        if (name ~ /_sigsafe$/) continue
        called = (after ~ /^[ \t]*\(/)
        why = ""
        if (name ~ /^pthread_mutex/) why = name
        else if (called && (name in banned)) why = name "()"
        else if (called && name ~ /^cgprof_log/) why = name "()"
        if (why != "") {
            printf "%s:%d: %s is not async-signal-safe: %s\n", FILENAME, FNR, why, $0
            bad = 1
        }
    }
}
END { exit bad }
' "$@" || { echo "check-sigsafe: banned calls in handler-reachable code (see above)" >&2; exit 1; }
echo "check-sigsafe: $* clean"
