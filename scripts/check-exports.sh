#!/bin/bash
# Checks what a built libcgprof.so shows a host process (DESIGN.md "Never
# break the host"): `ldd` lists only linux-vdso, libc and the dynamic
# loader, and the dynamic symbol table defines only cgprof_* symbols and the
# interposers listed in the global section of preload/exports.map.
# Usage: scripts/check-exports.sh [path/to/libcgprof.so] (default
# build/libcgprof.so). Prints each offender; exits 1 if there is any.
# Tests: test/integration/exports.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
so=${1:-build/libcgprof.so}
map=${EXPORTS_MAP:-$root/preload/exports.map}
[ -f "$so" ] || { echo "check-exports: $so not found" >&2; exit 1; }
[ -f "$map" ] || { echo "check-exports: $map not found" >&2; exit 1; }
bad=0

# 1. Shared-library dependencies.
deps=$(ldd "$so") || { echo "check-exports: ldd $so failed" >&2; exit 1; }
while read -r name _; do
    [ -n "$name" ] || continue
    case $name in
        statically|linux-vdso.so.*|libc.so.6|/lib64/ld-linux-*.so.*|/lib/ld-linux*.so.*|ld-linux*.so.*) ;;
        *) echo "check-exports: $so depends on $name (only libc and the loader are allowed)"
           bad=1 ;;
    esac
done <<<"$deps"

# 2. Exported symbols. The allowlist is the global: section of the map,
# comments removed; entries are names or glob patterns ending in ';'.
allowed=$(sed -e ':a' -e '/\/\*/{ /\*\//!{ N; ba; }; s@/\*.*\*/@@; ba; }' "$map" |
          sed -e 's@//.*@@' |
          awk '/global:/ { on = 1; sub(/.*global:/, "") }
               /local:/  { on = 0 }
               on { gsub(/[{};]/, " "); for (i = 1; i <= NF; i++) print $i }')
[ -n "$allowed" ] || { echo "check-exports: no global symbols found in $map" >&2; exit 1; }
syms=$(nm -D --defined-only "$so" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u)
[ -n "$syms" ] || { echo "check-exports: $so exports nothing (nm -D failed?)" >&2; exit 1; }
for s in $syms; do
    case $s in cgprof_*) continue ;; esac
    ok=0
    for a in $allowed; do
        # shellcheck disable=SC2254
        case $s in $a) ok=1; break ;; esac
    done
    if [ $ok = 0 ]; then
        echo "check-exports: $so exports $s (not cgprof_* and not listed in $map)"
        bad=1
    fi
done
[ $bad = 0 ] && echo "check-exports: $so: dependencies and exports ok"
exit $bad
