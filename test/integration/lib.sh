# Shared helpers for test/integration/*.sh; sourced, never run. Sets up
# strict mode, paths (BUILD=${BUILD:-build}, relative to the repo root), a
# temporary directory removed on exit, and a clean environment: no
# inherited LD_PRELOAD, CGPROF_* or AWS_CODEGURU_PROFILER_* variables, and a
# default output directory inside the temporary directory so no test writes
# to $HOME.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) BUILD_DIR=$BUILD ;; *) BUILD_DIR=$ROOT/$BUILD ;; esac
LIB=$BUILD_DIR/libcgprof.so
HEAP_LIB=$BUILD_DIR/libcgprof-heap.so   # the same plus the malloc interposers
CGPROF=$BUILD_DIR/cgprof
WL=$BUILD_DIR/workloads
FOLDED_PY=$ROOT/test/integration/folded.py
# The system interpreter when there is one: a pyenv shim costs ~0.5 s a call.
if [ -x /usr/bin/python3 ]; then PYTHON=${PYTHON:-/usr/bin/python3}; else PYTHON=${PYTHON:-python3}; fi
TEST_NAME=$(basename "$0" .sh)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cgprof-it-$TEST_NAME.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

unset LD_PRELOAD CGPROF_OPTIONS XDG_STATE_HOME
for v in $(env | sed -n 's/^\(AWS_CODEGURU_PROFILER_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export CGPROF_OUTPUT_DIR=$TMP/default-out

say()  { echo "== $*"; }
note() { echo "   $*"; }
ok()   { echo "ok: $*"; }
fail() { echo "FAIL ($TEST_NAME): $*" >&2; exit 1; }

# The pieces a test needs; a missing one is a failure with the command that
# builds it, never a silent skip.
need_lib() {
    [ -f "$LIB" ] || fail "$LIB is missing; build it: make BUILD=$BUILD all"
    [ -f "$HEAP_LIB" ] || fail "$HEAP_LIB is missing; build it: make BUILD=$BUILD all"
    [ ! -e /var/tmp/killProfiler ] ||
        fail "/var/tmp/killProfiler exists (the kill switch); remove it to test"
}
need_cli() {
    [ -x "$CGPROF" ] || fail "$CGPROF is missing; build it: make BUILD=$BUILD all"
}
need_workload() {  # name -> sets nothing, fails when the binary is missing
    [ -x "$WL/$1" ] ||
        fail "$WL/$1 is missing; build it: make BUILD=$BUILD $BUILD/workloads/$1"
}
need_prog() {
    command -v "$1" >/dev/null 2>&1 || fail "$1 is not installed (scripts/install-deps)"
}

# profiled OUTDIR OPTIONS cmd...: runs cmd under the preload with
# CGPROF_OPTIONS="outputDir:OUTDIR,OPTIONS".
profiled() {
    local out=$1 opts=$2; shift 2
    mkdir -p "$out"
    LD_PRELOAD=$LIB CGPROF_OPTIONS="outputDir:$out${opts:+,$opts}" "$@"
}

# Every stored profile under a directory, one path per line, sorted.
profile_files() {
    [ -d "$1" ] || return 0
    find "$1" -type f -name '*.json.gz' | sort
}
count_profiles() { profile_files "$1" | wc -l; }

# Fails unless DIR holds at least one profile and every one is valid gzip.
expect_profiles() {
    local dir=$1 n
    n=$(count_profiles "$dir")
    [ "$n" -ge 1 ] || fail "no profile (*.json.gz) was written to $dir"
    local f
    for f in $(profile_files "$dir"); do
        gzip -t "$f" 2>/dev/null || fail "$f is not valid gzip"
    done
    note "$n profile(s) written"
}

# folded_report DIR OUT: the CPU (RUNNABLE) folded stacks of DIR into OUT.
folded_report() {
    local dir=$1 out=$2
    need_cli
    "$CGPROF" report --format folded --counter cpu "$dir" >"$out" 2>"$out.err" ||
        fail "cgprof report --format folded --counter cpu $dir failed: $(head -c 2000 "$out.err")"
    "$PYTHON" "$FOLDED_PY" "$out" total >/dev/null ||
        fail "cgprof report printed lines that are not folded stacks (see above)"
}

folded() { "$PYTHON" "$FOLDED_PY" "$@"; }

# Prints the top of a folded report, for the log of a failing test.
show_top() { folded "$1" | head -n "${2:-15}" | sed 's/^/     /'; }

# profile_pid FILE: debugInfo.processId of a stored profile.
profile_pid() {
    "$PYTHON" - "$1" <<'PY'
import gzip, json, sys
try:
    doc = json.load(gzip.open(sys.argv[1], "rt"))
    print(int(doc["debugInfo"]["processId"]))
except Exception as e:
    sys.exit("cannot read debugInfo.processId from %s: %s" % (sys.argv[1], e))
PY
}

# split_by_pid DIR DEST: copies each profile of DIR into DEST/<pid>/ and
# writes the distinct pids, one per line, to DEST.pids.
split_by_pid() {
    local dir=$1 dest=$2 f pid
    for f in $(profile_files "$dir"); do
        pid=$(profile_pid "$f") || fail "profile $f has no debugInfo.processId"
        mkdir -p "$dest/$pid"
        cp "$f" "$dest/$pid/"
    done
    mkdir -p "$dest"
    ls "$dest" | sort -n >"$dest.pids"
}

# float comparisons: fcmp A OP B, e.g. fcmp "$x" '>=' 0.9
fcmp() { awk -v a="$1" -v b="$3" "BEGIN { exit !(a $2 b) }"; }

# same_run NAME OUTDIR OPTIONS cmd...: runs cmd without and with the preload
# (stdin from /dev/null) and fails unless stdout and the exit status are
# identical. Leaves $TMP/NAME.{base,prof}.{out,err,rc}.
same_run() {
    local name=$1 out=$2 opts=$3; shift 3
    local b=$TMP/$name.base p=$TMP/$name.prof rc
    set +e
    "$@" </dev/null >"$b.out" 2>"$b.err"; echo $? >"$b.rc"
    profiled "$out" "$opts" "$@" </dev/null >"$p.out" 2>"$p.err"; echo $? >"$p.rc"
    set -e
    cmp -s "$b.out" "$p.out" ||
        fail "$name: stdout differs under the preload: $(diff "$b.out" "$p.out" | head -n 10)"
    [ "$(cat "$b.rc")" = "$(cat "$p.rc")" ] ||
        fail "$name: exit status $(cat "$b.rc") without the preload, $(cat "$p.rc") with it; stderr: $(head -c 1000 "$p.err")"
    note "$name: same stdout and exit status ($(cat "$p.rc")) with and without the preload"
}
