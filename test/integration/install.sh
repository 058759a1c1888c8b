#!/bin/bash
# make install / make uninstall with PREFIX and DESTDIR: the staged tree
# has both libraries, cgprof, the wrappers, the header and the docs; the
# installed cgprof-exec finds the installed library by itself (relative
# to its prefix) and profiles a program, and with heapSummaryEnabled:true
# it (and the installed cgprof run) preloads the installed
# libcgprof-heap.so instead; uninstall leaves nothing of ours. With
# dpkg-deb, `make deb` packages the same files under /usr.
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
need_workload cpusplit
unset CGPROF_LIB

DEST=$TMP/dest
PREFIX=/opt/cgprof-test
say "make install PREFIX=$PREFIX DESTDIR=$DEST"
make -s -C "$ROOT" --no-print-directory BUILD="$BUILD" PREFIX="$PREFIX" DESTDIR="$DEST" install \
    >"$TMP/install.log" 2>&1 || fail "make install failed: $(tail -20 "$TMP/install.log")"
P=$DEST$PREFIX
(cd "$DEST" && find . -type f -o -type l | sort) >"$TMP/files"
sed 's/^/     /' "$TMP/files"
for f in lib/libcgprof.so lib/libcgprof-heap.so bin/cgprof bin/cgprof-exec bin/cgprof-systemd include/cgprof.h share/doc/cgprof/README.md; do
    [ -f "$P/$f" ] || fail "$PREFIX/$f is not installed"
done
for f in bin/cgprof bin/cgprof-exec bin/cgprof-systemd; do
    [ -x "$P/$f" ] || fail "$PREFIX/$f is not executable"
done
cmp -s "$P/lib/libcgprof.so" "$LIB" || fail "the installed library differs from $LIB"
cmp -s "$P/lib/libcgprof-heap.so" "$HEAP_LIB" || fail "the installed libcgprof-heap.so differs from $HEAP_LIB"
grep -qx "    installed_lib=$PREFIX/lib/libcgprof.so" "$P/bin/cgprof-exec" ||
    fail "cgprof-exec does not record LIBDIR ($PREFIX/lib)"
ok "installed under DESTDIR$PREFIX"

say "the installed cgprof-exec profiles a program with the installed library"
"$P/bin/cgprof-exec" --options "outputDir:$TMP/out,cpuSamplingHz:200" -- sh -c 'echo "$LD_PRELOAD"; exec "$0" 1 1' "$WL/cpusplit" \
    >"$TMP/run.out" 2>"$TMP/run.err" || fail "cpusplit through the installed cgprof-exec failed: $(cat "$TMP/run.err")"
[ "$(sed -n 1p "$TMP/run.out")" = "$(cd "$P/lib" && pwd)/libcgprof.so" ] ||
    fail "LD_PRELOAD was '$(sed -n 1p "$TMP/run.out")', not the installed library"
[ "$(sed -n 2p "$TMP/run.out")" = ok ] || fail "cpusplit printed '$(sed -n 2p "$TMP/run.out")'"
expect_profiles "$TMP/out"
"$P/bin/cgprof" report --format folded --counter cpu "$TMP/out" >"$TMP/out.folded" 2>"$TMP/report.err" ||
    fail "the installed cgprof report failed: $(cat "$TMP/report.err")"
n=$(folded "$TMP/out.folded" module cpusplit)
[ "$n" -ge 20 ] || fail "only $n samples in cpusplit"
ok "profile found by the installed cgprof report ($n samples in cpusplit)"

say "with the heap summary the installed wrappers preload the installed libcgprof-heap.so"
PLIB=$(cd "$P/lib" && pwd)
"$P/bin/cgprof-exec" --options "outputDir:$TMP/hout,heapSummaryEnabled:true,samplingIntervalMs:100" -- \
    sh -c 'echo "$LD_PRELOAD"; exec "$0" 1 1' "$WL/cpusplit" >"$TMP/hrun.out" 2>"$TMP/hrun.err" ||
    fail "cpusplit with the heap summary through the installed cgprof-exec failed: $(cat "$TMP/hrun.err")"
[ "$(sed -n 1p "$TMP/hrun.out")" = "$PLIB/libcgprof-heap.so" ] ||
    fail "LD_PRELOAD was '$(sed -n 1p "$TMP/hrun.out")', not the installed libcgprof-heap.so"
"$PYTHON" - "$TMP/hout" <<'PY' || fail "the heap summary through the installed cgprof-exec is not tracked"
import glob, gzip, json, sys
hs = [d["heapSummary"] for d in (json.load(gzip.open(f, "rt")) for f in
      glob.glob(sys.argv[1] + "/**/*.json.gz", recursive=True)) if "heapSummary" in d]
sys.exit(0 if hs and all(h["tracked"] for h in hs) else 1)
PY
got=$("$P/bin/cgprof" run --no-report --output-dir "$TMP/hout2" --options heapSummaryEnabled:true -- \
      sh -c 'echo "$LD_PRELOAD"' 2>/dev/null)
[ "$got" = "$PLIB/libcgprof-heap.so" ] || fail "the installed cgprof run preloaded '$got', not the installed libcgprof-heap.so"
got=$("$P/bin/cgprof" run --no-report --output-dir "$TMP/hout2" -- sh -c 'echo "$LD_PRELOAD"' 2>/dev/null)
[ "$got" = "$PLIB/libcgprof.so" ] || fail "the installed cgprof run without the heap summary preloaded '$got'"
ok "installed cgprof-exec and cgprof run: libcgprof-heap.so for the heap summary (tracked), libcgprof.so otherwise"

say "make uninstall"
make -s -C "$ROOT" --no-print-directory BUILD="$BUILD" PREFIX="$PREFIX" DESTDIR="$DEST" uninstall \
    >"$TMP/uninstall.log" 2>&1 || fail "make uninstall failed: $(cat "$TMP/uninstall.log")"
left=$(cd "$DEST" && find . -type f | sort)
[ -z "$left" ] || fail "uninstall left: $left"
ok "nothing left"

if command -v dpkg-deb >/dev/null 2>&1; then
    say "make deb"
    make -s -C "$ROOT" --no-print-directory BUILD="$BUILD" deb >"$TMP/deb.log" 2>&1 ||
        fail "make deb failed: $(tail -20 "$TMP/deb.log")"
    deb=$(tail -n 1 "$TMP/deb.log")
    case $deb in /*) ;; *) deb=$ROOT/$deb ;; esac
    [ -f "$deb" ] || fail "make deb did not name a package: $(cat "$TMP/deb.log")"
    dpkg-deb -c "$deb" | awk '{print $NF}' >"$TMP/deb.files"
    for f in ./usr/lib/libcgprof.so ./usr/lib/libcgprof-heap.so ./usr/bin/cgprof ./usr/bin/cgprof-exec ./usr/bin/cgprof-systemd \
             ./usr/include/cgprof.h ./usr/share/doc/cgprof/README.md; do
        grep -qx "$f" "$TMP/deb.files" || fail "$(basename "$deb") lacks $f"
    done
    [ "$(dpkg-deb -f "$deb" Package)" = cgprof ] || fail "the package is not named cgprof"
    dpkg-deb -f "$deb" Depends | grep -q libc6 || fail "Depends lacks libc6: $(dpkg-deb -f "$deb" Depends)"
    ok "$(basename "$deb"): Depends: $(dpkg-deb -f "$deb" Depends)"
fi
