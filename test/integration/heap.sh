#!/bin/bash
# Heap summary (heapSummaryEnabled:true) end to end:
#   heap_sites keeps 60 MiB live from leak_a() and 20 MiB from leak_b() after
#     1 GiB of churn(): live bytes and objects per site within 15 %, churn()
#     near zero; under ulimit -v the capacity is that limit and the default
#     0.5 % threshold lists both sites; output unchanged.
#   heap_sites grow: the used-space series rises.
#   python3 and sqlite3: identical output with the heap summary on, and
#     allocation sites in their own code.
#   heap summary off: no heapSummary in the profile.
#   libcgprof.so (no interposers) with heapSummaryEnabled: one cgprof: line
#     naming libcgprof-heap.so, figures but no sites; both libraries
#     preloaded: one agent, one profile.
#   tcmalloc preloaded after us: its allocations are tracked; before us:
#     said so, nothing tracked, the program still runs unchanged.
#   cgprof report -o x.html carries the heap data.
# Sampling at 64 KiB here (not the default 512 KiB) so the ±15 % check
# holds with margin: leak_b's ~200 samples give a relative standard error
# of about 4 %; at the default interval it would be ~11 %.
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
need_workload heap_sites
CORE_LIB=$LIB
LIB=$HEAP_LIB    # profiled and same_run preload it
opts=heapSummaryEnabled:true,samplingIntervalMs:100,heapSamplingIntervalBytes:65536,cpuLimitPercent:100

# heap_check DIR CODE: runs the Python assertions CODE with heaps (the
# heapSummary objects of DIR's profiles), site(), avg() and MiB defined.
heap_check() {
    local dir=$1 code=$2
    "$PYTHON" - "$dir" "$code" <<'PY'
import gzip, json, os, sys
d, code = sys.argv[1], sys.argv[2]
docs = []
for root, _, files in os.walk(d):
    for f in sorted(files):
        if f.endswith(".json.gz"):
            docs.append(json.load(gzip.open(os.path.join(root, f), "rt")))
heaps = [x["heapSummary"] for x in docs if "heapSummary" in x]
MiB = 1 << 20
def site(h, fn):
    best = None
    for s in h["sites"]:
        if any(fr.endswith(":" + fn) for fr in s["frames"]):
            if best is None or s["liveBytesSum"] > best["liveBytesSum"]:
                best = s
    return best
def avg(s, k):
    return s[k] / s["points"] if s and s["points"] else 0.0
try:
    exec(code)
except AssertionError as e:
    print("heap check failed:", e)
    for h in heaps:
        print({k: v for k, v in h.items() if k not in ("series", "sites")})
        for s in h["sites"][:12]:
            print("  %.2f MiB %.0f obj %d pts %s" % (avg(s, "liveBytesSum") / MiB, avg(s, "liveObjectsSum"), s["points"], s["frames"][-3:]))
    sys.exit(1)
PY
}

say "heap_sites under ulimit -v 3000000 (capacity 3 072 000 000 bytes, default threshold)"
limited() { ulimit -v 3000000; exec "$@"; }
export -f limited
same_run sites "$TMP/sites" "$opts" bash -c 'limited "$0" 3000' "$WL/heap_sites"
[ "$(cat "$TMP/sites.prof.rc")" = 0 ] || fail "heap_sites failed: $(cat "$TMP/sites.prof.err")"
expect_profiles "$TMP/sites"
heap_check "$TMP/sites" '
assert heaps, "no profile with a heap summary"
h = max(heaps, key=lambda x: x["snapshots"])
assert h["tracked"] and h["allocator"] == "glibc", "tracked glibc malloc"
assert h["samplingIntervalBytes"] == 65536 and h["thresholdPermille"] == 5
assert h["snapshots"] >= 15, "data points: %d" % h["snapshots"]
assert all(p[1] == 3072000000 for p in h["series"]), "capacity is RLIMIT_AS"
a, b, c = site(h, "leak_a"), site(h, "leak_b"), site(h, "churn")
assert a and b, "both leak sites listed"
for s, want_b, want_o, name in ((a, 60 * MiB, 3840, "leak_a"), (b, 20 * MiB, 320, "leak_b")):
    # averages over the points from when the site passed the threshold on
    assert abs(avg(s, "liveBytesSum") / want_b - 1) < 0.15, "%s bytes %.2f MiB" % (name, avg(s, "liveBytesSum") / MiB)
    assert abs(avg(s, "liveObjectsSum") / want_o - 1) < 0.15, "%s objects %.0f" % (name, avg(s, "liveObjectsSum"))
    assert s["frames"][-1].endswith(":" + name), "%s is the leaf (malloc frames cut): %s" % (name, s["frames"][-2:])
assert c is None or avg(c, "liveBytesSum") < 2 * MiB, "churn live %.2f MiB" % (avg(c, "liveBytesSum") / MiB)
used = [p[2] for p in h["series"]]
assert max(used) >= 0.85 * 80 * MiB, "used space peaks at %.1f MiB" % (max(used) / MiB)
assert h["peakUsedBytes"] == max(used) and h["peakRssBytes"] >= 80 * MiB
print("   leak_a %.1f MiB, leak_b %.1f MiB, churn %s; %d data points, %d samples" % (
    avg(a, "liveBytesSum") / MiB, avg(b, "liveBytesSum") / MiB,
    "absent" if c is None else "%.2f MiB" % (avg(c, "liveBytesSum") / MiB), h["snapshots"], h["samples"]))
' || fail "heap_sites: wrong heap summary (see above)"
ok "per-site live bytes and objects within 15 %, churn near zero, capacity from the rlimit"

say "heap_sites grow 3000: a leaking program's used space rises"
profiled "$TMP/grow" "$opts,heapSummaryThresholdPermille:0" "$WL/heap_sites" grow 3000 >"$TMP/grow.out" 2>"$TMP/grow.err" ||
    fail "heap_sites grow failed: $(cat "$TMP/grow.err")"
heap_check "$TMP/grow" '
h = heaps[0]
used = [p[2] for p in h["series"]]
assert len(used) >= 15, "data points: %d" % len(used)
n = len(used) // 3
first, last = sum(used[:n]) / n, sum(used[-n:]) / n
assert last - first >= 30 * MiB, "used space: first third %.1f MiB, last third %.1f MiB" % (first / MiB, last / MiB)
falls = sum(1 for x, y in zip(used, used[1:]) if y + MiB < x)
assert falls == 0, "used space fell %d times" % falls
g = site(h, "grow")
assert g and g["points"] >= 5, "grow() listed as a site"
print("   used space %.1f -> %.1f MiB over %d points" % (used[0] / MiB, used[-1] / MiB, len(used)))
' || fail "grow: used space does not rise (see above)"
ok "the used-space series rises"

say "python3 and sqlite3 run unchanged with the heap summary on"
py=/usr/bin/python3
[ -x $py ] || fail "$py is not installed"
same_run python3 "$TMP/py" heapSummaryEnabled:true,heapSummaryThresholdPermille:0,samplingIntervalMs:100 $py -c '
import json
d = [{"k": i, "v": str(i) * 20} for i in range(300000)]
s = json.dumps(d)
print(len(s), sum(len(x["v"]) for x in d))'
[ "$(cat "$TMP/python3.prof.rc")" = 0 ] || fail "python3 failed: $(cat "$TMP/python3.prof.err")"
heap_check "$TMP/py" '
h = heaps[-1]
assert h["tracked"] and h["samples"] > 50, "python3: %d samples" % h["samples"]
assert any(any("python3" in f or "libpython" in f for f in s["frames"]) for x in heaps for s in x["sites"]), "python frames in sites"
' || fail "python3: no heap summary with python frames"
need_prog sqlite3
cat >"$TMP/q.sql" <<'SQL'
CREATE TABLE t(a INTEGER, b TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO t SELECT x, 'k' || (x * 7919 % 1000) FROM c;
SELECT substr(b, 1, 2), count(*), sum(a) FROM t GROUP BY 1 ORDER BY 1;
SQL
same_run sqlite3 "$TMP/sq" heapSummaryEnabled:true,samplingIntervalMs:100 sqlite3 :memory: -init "$TMP/q.sql" .quit
[ "$(cat "$TMP/sqlite3.prof.rc")" = 0 ] || fail "sqlite3 failed: $(cat "$TMP/sqlite3.prof.err")"
grep -q '^k1|' "$TMP/sqlite3.prof.out" || fail "sqlite3 printed no result: $(head -c 300 "$TMP/sqlite3.prof.out")"
ok "python3 and sqlite3: same output and exit status"

say "heap summary off: no heapSummary, malloc stays a pass-through"
profiled "$TMP/off" samplingIntervalMs:100 "$WL/heap_sites" 300 >"$TMP/off.out" 2>"$TMP/off.err" ||
    fail "heap_sites failed without the heap summary: $(cat "$TMP/off.err")"
heap_check "$TMP/off" 'assert not heaps, "heapSummary written while off"' || fail "heap summary off"
ok "no heap summary when it is off"

say "libcgprof.so without the interposers, heapSummaryEnabled:true"
LD_PRELOAD=$CORE_LIB CGPROF_OPTIONS="outputDir:$TMP/core,$opts,heapSummaryThresholdPermille:0" \
    "$WL/heap_sites" 300 >"$TMP/core.out" 2>"$TMP/core.err" || fail "heap_sites failed: $(cat "$TMP/core.err")"
cmp -s "$TMP/core.out" "$TMP/off.out" 2>/dev/null || "$WL/heap_sites" 300 | cmp -s - "$TMP/core.out" ||
    fail "output differs under libcgprof.so"
[ "$(grep -c '^cgprof:' "$TMP/core.err")" = 1 ] || fail "want exactly one cgprof: line: $(cat "$TMP/core.err")"
grep -q "allocation sites need the allocation interposers of libcgprof-heap.so" "$TMP/core.err" ||
    fail "the line does not say what to preload: $(cat "$TMP/core.err")"
heap_check "$TMP/core" '
h = heaps[0]
assert not h["tracked"] and h["incomplete"] and not h["sites"], "figures only, marked incomplete"
assert h["allocator"] == "glibc" and max(p[2] for p in h["series"]) >= 60 * MiB, "used space from RSS"
assert all(p[2] == p[3] for p in h["series"]), "used space is RSS when nothing is sampled"
' || fail "libcgprof.so: wrong heap summary"
ok "one line naming libcgprof-heap.so; capacity and RSS still recorded"

say "both libraries preloaded: one agent"
LD_PRELOAD="$CORE_LIB $HEAP_LIB" CGPROF_OPTIONS="outputDir:$TMP/both,logLevel:info,samplingIntervalMs:100" \
    "$WL/heap_sites" 300 >/dev/null 2>"$TMP/both.err" || fail "heap_sites failed: $(cat "$TMP/both.err")"
[ "$(profile_files "$TMP/both" | wc -l)" = 1 ] || fail "want one profile: $(profile_files "$TMP/both")"
[ "$(grep -c 'cgprof: profiling pid' "$TMP/both.err")" = 1 ] || fail "want one agent: $(cat "$TMP/both.err")"
ok "the second copy stays idle"

say "an allocator of its own: tcmalloc"
tc=$(ls /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 2>/dev/null || true)
if [ -n "$tc" ]; then
    LD_PRELOAD="$LIB $tc" CGPROF_OPTIONS="outputDir:$TMP/tc1,logLevel:info,$opts,heapSummaryThresholdPermille:0" \
        "$WL/heap_sites" 300 >"$TMP/tc1.out" 2>"$TMP/tc1.err" || fail "tcmalloc after us: $(cat "$TMP/tc1.err")"
    grep -q "malloc is libtcmalloc_minimal.so.4's" "$TMP/tc1.err" || fail "no allocator line: $(cat "$TMP/tc1.err")"
    heap_check "$TMP/tc1" '
h = heaps[0]
assert h["tracked"] and h["allocator"] == "libtcmalloc_minimal.so.4"
a = site(h, "leak_a")
assert a and abs(avg(a, "liveBytesSum") / (60 * MiB) - 1) < 0.3, "leak_a under tcmalloc"
# every sampled block found again: the sampled live total ends at 80 MiB
assert abs(h["series"][-1][4] / (80 * MiB) - 1) < 0.15, "sampled live %.1f MiB" % (h["series"][-1][4] / MiB)
' || fail "tcmalloc after us: not tracked"
    LD_PRELOAD="$tc $LIB" CGPROF_OPTIONS="outputDir:$TMP/tc2,logLevel:info,$opts,heapSummaryThresholdPermille:0" \
        "$WL/heap_sites" 300 >"$TMP/tc2.out" 2>"$TMP/tc2.err" || fail "tcmalloc before us: $(cat "$TMP/tc2.err")"
    cmp -s "$TMP/tc1.out" "$TMP/tc2.out" || fail "tcmalloc before us: output differs"
    grep -q "allocation sites are not tracked" "$TMP/tc2.err" || fail "not said: $(cat "$TMP/tc2.err")"
    heap_check "$TMP/tc2" '
h = heaps[0]
assert not h["tracked"] and h["incomplete"] and h["series"], "figures only, marked incomplete"
' || fail "tcmalloc before us"
    ok "tcmalloc after us is tracked; before us it is detected and said"
else
    note "libtcmalloc_minimal.so.4 is not installed (CGPROF_BENCH=1 scripts/install-deps): skipped"
fi

say "cgprof report -o report.html carries the heap summary"
"$CGPROF" report -o "$TMP/r.html" "$TMP/sites" 2>"$TMP/r.err" || fail "report failed: $(cat "$TMP/r.err")"
"$PYTHON" - "$TMP/r.html" <<'PY' || fail "the HTML report has no heap data"
import json, re, sys
html = open(sys.argv[1]).read()
m = re.search(r'<script id="cgprof-data" type="application/json">(.*?)</script>', html, re.S)
d = json.loads(m.group(1))
h = d["heap"]
assert h and h["series"] and h["sites"], "heap data present"
names = [s["frames"][-1] for s in h["sites"]]
assert any(n.endswith(":leak_a") for n in names) and any(n.endswith(":leak_b") for n in names), names
assert h["avg_used"] > 0 and h["peak_used"] >= h["avg_used"]
PY
ok "the report's data has the series and both sites"
