#!/bin/bash
# The benchmark's figures are honest: scripts/bench's parsers and arithmetic
# pass its self-check (planted gperftools, folded and perf inputs with known
# counts, a known L1 error, the chance error against a simulation), and a
# quick run (scripts/bench --quick) on benchsplit, whose 60/30/10 split is
# known exactly (it prints the units it ran), fills every row of the table;
# cgprof's yield is near 100 % and its split within a few points of the
# truth; every sample count the harness parsed equals the tool's own count
# (cgprof's RUNNABLE counts read from its .json.gz files, google-pprof's
# Total, perf report's Samples).
# Tools that are missing (gperftools, perf) must be reported as such.
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
for w in benchsplit bigtree cpusplit; do need_workload "$w"; done

say "self-check of the harness's parsers and arithmetic"
"$PYTHON" "$ROOT/scripts/bench" --selfcheck || fail "scripts/bench --selfcheck failed"

say "quick run"
start=$(date +%s)
BUILD=$BUILD_DIR "$PYTHON" "$ROOT/scripts/bench" --quick --out "$TMP/bench" \
    >"$TMP/stdout" 2>"$TMP/stderr" ||
    fail "scripts/bench --quick failed: $(tail -c 2000 "$TMP/stderr")"
secs=$(( $(date +%s) - start ))
note "took ${secs}s"
# 30 s on an idle 2-core machine; a loaded one gets twice that.
[ "$secs" -le 60 ] || fail "scripts/bench --quick took ${secs}s (want < 30 s idle)"
cmp -s "$TMP/stdout" "$TMP/bench/results.md" || fail "stdout differs from results.md"
head -n 14 "$TMP/stdout" | sed "s/^/     /"

"$PYTHON" - "$TMP/bench/results.json" "$TMP/bench/results.md" <<'PY' || fail "results check failed (see above)"
import json, sys
doc = json.load(open(sys.argv[1]))
md = open(sys.argv[2]).read()
bad = []
want_rows = ["cpu", "wall", "yield", "accuracy", "agent_cpu", "start_true", "start_loop",
             "rss", "size", "malloc_off", "malloc_on", "malloc_app", "idle_states", "render"]
rows = {r["key"]: r for r in doc["rows"]}
if sorted(rows) != sorted(want_rows):
    bad.append("rows %s, want %s" % (sorted(rows), sorted(want_rows)))
configs = [c["key"] for c in doc["configs"]]
tools_missing = doc["unavailable"]
for key, r in rows.items():
    if ("| %s [" % r["title"]) not in md:
        bad.append("row %s missing from the Markdown table" % r["title"])
    if not r["how"]:
        bad.append("row %s does not say how it was measured" % key)
    for c in configs:
        cell = r["cells"].get(c)
        if cell is None or not cell["text"].strip():
            bad.append("row %s: empty cell for %s" % (key, c))

def val(row, cfg):
    return rows.get(row, {}).get("cells", {}).get(cfg, {}).get("value")

def need(cond, what):
    if not cond:
        bad.append(what)

for c in ("cg100", "cg1000"):
    y = val("yield", c)
    need(isinstance(y, (int, float)) and 50 <= y <= 120, "%s yield %r not in 50..120 %%" % (c, y))
    o = val("cpu", c)
    need(isinstance(o, (int, float)) and -50 < o < 100, "%s CPU overhead %r" % (c, o))
    need(isinstance(val("rss", c), (int, float)), "%s RSS has no figure" % c)
# The known answer: benchsplit's own unit counts are ~60/30/10, and cgprof
# at 1000 Hz reports that split within chance error (plus a margin).
acc = rows["accuracy"]["cells"]["cg1000"]
truth = acc.get("truth", {})
for k, w in (("burn_a", 60), ("burn_b", 30), ("burn_c", 10)):
    need(abs(truth.get(k, -100) - w) < 1.5, "benchsplit's own split %s=%r, want %d" %
         (k, truth.get(k), w))
need(acc["value"] is not None and acc["value"] <= max(6.0, 3 * acc["chance"] + 2),
     "cgprof 1000 Hz split is %r points off (chance %r)" % (acc["value"], acc.get("chance")))
for c in ("dormant", "cg100"):
    for r in ("start_true", "start_loop"):
        need(isinstance(val(r, c), (int, float)), "%s %s has no figure" % (c, r))
need(isinstance(val("start_true", "none"), (int, float)) and val("start_true", "none") > 0,
     "baseline start-up is not a positive time")
need(isinstance(val("size", "cg1000"), (int, float)) and val("size", "cg1000") > 0,
     "cgprof 1000 Hz profile size has no figure")
need(rows["size"]["cells"]["cg1000"].get("stacks", 0) >= 100,
     "bigtree gave fewer than 100 distinct stacks at 1000 Hz")
# Every sample count the harness parsed agrees with the tool's own count.
tools = {c["tool"] for c in doc["crosschecks"]}
need("cgprof" in tools, "no cgprof cross-check")
for t in ("gperf", "perf"):
    if t not in tools_missing and t not in tools:
        bad.append("%s ran but was not cross-checked" % t)
for c in doc["crosschecks"]:
    need(c["independent"] == c["harness"], "cross-check %s: harness %r, %s %r" %
         (c["config"], c["harness"], c["how"], c["independent"]))
for t, why in tools_missing.items():
    print("   note: %s unavailable: %s" % (t, why))
    need(("%s columns are empty" % t) in md, "%s is missing but the table does not say so" % t)
if bad:
    print("\n".join("   BAD: " + b for b in bad))
    sys.exit(1)
print("   %d rows x %d columns filled; cross-checks: %s" % (len(rows), len(configs),
      ", ".join("%s %d=%d" % (c["config"], c["harness"], c["independent"])
                for c in doc["crosschecks"])))
PY
ok "the bench harness fills every row and its figures match known answers"
