#!/bin/bash
# Thread states without waking anyone (issue #5): one thread in each kind of
# wait (test/workloads/waiters.c), sampled every 10 ms for 5 s. The program
# counts EINTR returns and early wake-ups itself (it must see none), takes
# the same wall time as without the preload, and each waiting function's
# samples carry the right state (>= 90 %). Then `sleep 2` still sleeps 2 s,
# and a Python http.server answers a bounded local load unchanged.
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
need_workload waiters

wall() {  # seconds a command takes
    local t0 t1
    t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
}

say "waiters: 7 kinds of waits, thread states every 10 ms for 5 s"
base=$(wall "$WL/waiters" 5)
out=$TMP/waiters
prof=$(LD_PRELOAD=$LIB CGPROF_OPTIONS="outputDir:$out,samplingIntervalMs:10" bash -c \
    't0=$(date +%s.%N); "$0" 5 > "$1"; rc=$?; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; exit $rc' \
    "$WL/waiters" "$TMP/waiters.out") || fail "waiters failed under the preload: $(cat "$TMP/waiters.out")"
grep -qx "eintr 0 early 0" "$TMP/waiters.out" || fail "the program saw: $(cat "$TMP/waiters.out")"
note "wall time: ${base}s without, ${prof}s with the preload"
awk -v a="$base" -v b="$prof" 'BEGIN { exit !(b - a < 0.25 && a - b < 0.25) }' ||
    fail "wall time changed: ${base}s without, ${prof}s with the preload"
expect_profiles "$out"
for c in RUNNABLE BLOCKED WAITING TIMED_WAITING IDLE; do
    "$CGPROF" report --format folded --counter "$c" "$out" | sed "s/^/$c /" >>"$TMP/states.txt"
done
# share FUNCTION STATE: samples of stacks through FUNCTION in STATE, and in all.
check() {
    local fn=$1 want=$2
    read -r in_state total < <(awk -v fn="waiters:$fn" -v st="$want" '
        { n = $NF; if (index($2, fn ";") || $2 ~ fn "$") { total += n; if ($1 == st) s += n } }
        END { print s + 0, total + 0 }' "$TMP/states.txt")
    [ "$total" -ge 100 ] || fail "$fn: only $total samples (expected ~500)"
    [ $((in_state * 100)) -ge $((total * 90)) ] ||
        fail "$fn: $in_state of $total samples are $want"
    ok "$fn: $in_state of $total samples are $want"
}
check wait_nanosleep TIMED_WAITING
check wait_epoll TIMED_WAITING
check wait_poll TIMED_WAITING
check wait_select TIMED_WAITING
check wait_pipe_read WAITING
check wait_mutex BLOCKED
check wait_cond WAITING

say "sleep 2 sleeps 2 s under the preload (states every 10 ms)"
t=$(LD_PRELOAD=$LIB CGPROF_OPTIONS="outputDir:$TMP/sleep,samplingIntervalMs:10" bash -c \
    't0=$(date +%s.%N); sleep 2; t1=$(date +%s.%N); echo "$t1 - $t0" | bc')
awk -v t="$t" 'BEGIN { exit !(t >= 2.0 && t < 2.5) }' || fail "sleep 2 took ${t}s"
ok "sleep 2 took ${t}s"

say "python3 http.server answers a bounded local load unchanged"
mkdir -p "$TMP/www"
head -c 200000 /dev/urandom >"$TMP/www/blob.bin"
echo "hello from cgprof" >"$TMP/www/index.html"
port=$($PYTHON -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LD_PRELOAD=$LIB CGPROF_OPTIONS="outputDir:$TMP/http,samplingIntervalMs:10,cpuSamplingHz:1000" \
    $PYTHON -m http.server "$port" --bind 127.0.0.1 --directory "$TMP/www" >/dev/null 2>"$TMP/http.err" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$TMP"' EXIT
$PYTHON - "$port" "$TMP/www" <<'PY' || fail "http.server under the preload: $(tail -3 "$TMP/http.err")"
import sys, time, urllib.request
port, root = sys.argv[1], sys.argv[2]
want = {p: open(f"{root}/{p}", "rb").read() for p in ("index.html", "blob.bin")}
for _ in range(100):                       # the server may still be starting
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2).read()
        break
    except OSError:
        time.sleep(0.05)
bad = 0
for i in range(300):                       # a bounded load: 300 requests
    p = ("index.html", "blob.bin")[i % 2]
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/{p}", timeout=5).read()
    bad += body != want[p]
print(f"   300 requests, {bad} wrong bodies")
sys.exit(1 if bad else 0)
PY
kill $server; wait $server 2>/dev/null || true   # TERM: bash starts & jobs with SIGINT ignored
ok "every response was identical"
