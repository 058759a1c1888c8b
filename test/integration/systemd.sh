#!/bin/bash
# cgprof-systemd: `enable` writes a drop-in whose content is checked (our
# library first in LD_PRELOAD, what the unit preloads already kept, the
# unit's CGPROF_OPTIONS merged, StateDirectory= for the default output
# directory so DynamicUser= units can write it), `status` shows it,
# `disable` removes it. Then the service runs with that environment: when
# systemd runs here (systemctl is-system-running), as a real unit;
# otherwise its Environment= lines are parsed independently (Python's
# shlex, systemd's quoting) in unit-file then drop-in order and the
# ExecStart= program runs with exactly that environment. Either way the
# profile must appear. The heap summary: with heapSummaryEnabled:true in
# the merged options, or AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=true in
# the unit's Environment= (and no heapSummaryEnabled key), the drop-in
# preloads libcgprof-heap.so from beside libcgprof.so, the unit's own
# libcgprof-heap.so entry is dropped, the service's profile has a tracked
# heap summary; --lib is kept as given; without libcgprof-heap.so,
# libcgprof.so with a note; an EnvironmentFile= setting the variable is
# named.
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
need_workload cpusplit
SD=$ROOT/scripts/cgprof-systemd
export CGPROF_LIB=$LIB
LIBM=$(gcc -print-file-name=libm.so.6 2>/dev/null || true)
[ -f "$LIBM" ] || LIBM=$(ldconfig -p | awk '/libm\.so\.6 / {print $NF; exit}')
[ -f "$LIBM" ] || fail "cannot find libm.so.6 to preload"
LIBM=$(readlink -f "$LIBM")

R=$TMP/root
UNIT=cgprof-demo.service
mkdir -p "$R/usr/lib/systemd/system" "$R/etc/systemd/system/$UNIT.d"
cat >"$R/usr/lib/systemd/system/$UNIT" <<EOF
[Unit]
Description=cgprof test service
Environment=NOT_A_SERVICE_SETTING=1

[Service]
DynamicUser=yes
Environment="LD_PRELOAD=$LIBM" GREETING=hello
Environment=CGPROF_OPTIONS=cpuSamplingHz:50,maxStackDepth:128
ExecStart=$WL/cpusplit 1 1
EOF
cat >"$R/etc/systemd/system/$UNIT.d/10-local.conf" <<'EOF'
[Service]
Environment="QUOTED=a b"
EOF

say "enable: the drop-in"
"$SD" enable cgprof-demo --root "$R" --options 'cpuSamplingHz:200,logLevel:error' >"$TMP/enable.out" 2>&1 ||
    fail "cgprof-systemd enable failed: $(cat "$TMP/enable.out")"
D=$R/etc/systemd/system/$UNIT.d/cgprof.conf
[ -f "$D" ] || fail "no drop-in at $D: $(cat "$TMP/enable.out")"
sed 's/^/     /' "$D"
grep -qx '\[Service\]' "$D" || fail "the drop-in has no [Service] section"
grep -qxF "Environment=\"LD_PRELOAD=$LIB:$LIBM\"" "$D" ||
    fail "LD_PRELOAD line is not ours then the unit's ($LIB:$LIBM)"
grep -qxF 'Environment="CGPROF_OPTIONS=outputDir:/var/lib/cgprof/cgprof-demo,cpuSamplingHz:200,maxStackDepth:128,logLevel:error"' "$D" ||
    fail "CGPROF_OPTIONS line is not the merge of the default, the unit's and --options"
grep -qx 'StateDirectory=cgprof/cgprof-demo' "$D" ||
    fail "no StateDirectory= for /var/lib/cgprof/cgprof-demo (DynamicUser= units cannot write elsewhere)"
st=$("$SD" status cgprof-demo --root "$R")
grep -qF "profiled by $D" <<<"$st" || fail "status does not show the drop-in: $st"
ok "drop-in: LD_PRELOAD merged, options merged, StateDirectory= for the output"

# enable again with an explicit directory (the run below writes there).
OUT=$TMP/out
"$SD" enable cgprof-demo --root "$R" --output-dir "$OUT" --options 'cpuSamplingHz:200' >"$TMP/enable2.out" 2>&1 ||
    fail "cgprof-systemd enable --output-dir failed: $(cat "$TMP/enable2.out")"
grep -q "DynamicUser=yes" "$TMP/enable2.out" ||
    fail "enable --output-dir on a DynamicUser= unit did not warn about writability"
grep -qx "ReadWritePaths=-$OUT" "$D" || fail "no ReadWritePaths= for --output-dir"
grep -q "StateDirectory" "$D" && fail "StateDirectory= left over with --output-dir"

# environment_of ROOT UNIT: NAME=VALUE lines the way systemd computes the
# service's environment from Environment= (unit file, then drop-ins by name).
environment_of() {
    "$PYTHON" - "$1" "$2" <<'PY'
import glob, os, shlex, sys
root, unit = sys.argv[1:]
files = [root + "/usr/lib/systemd/system/" + unit]
drop = {}
for d in ("usr/lib/systemd/system", "run/systemd/system", "etc/systemd/system"):
    for f in glob.glob("%s/%s/%s.d/*.conf" % (root, d, unit)):
        drop[os.path.basename(f)] = f    # /etc overrides /run overrides /usr/lib
files += [drop[k] for k in sorted(drop)]
env = {}
for f in files:
    section = None
    for line in open(f):
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line.startswith("Environment="):
            for word in shlex.split(line[len("Environment="):].replace("%%", "%")):
                k, _, v = word.partition("=")
                env[k] = v
for k, v in sorted(env.items()):
    print("%s=%s" % (k, v))
PY
}

say "the service runs with the drop-in's environment"
if [ "$(id -u)" = 0 ] && command -v systemctl >/dev/null &&
   systemctl is-system-running 2>/dev/null | grep -Eq '^(running|degraded)$'; then
    # A real unit under /run (gone at reboot), enabled with the real root.
    RU=cgprof-it-$$.service
    RDIR=/run/systemd/system
    trap 'systemctl stop "$RU" 2>/dev/null; "$SD" disable "$RU" >/dev/null 2>&1; rm -f "$RDIR/$RU"; systemctl daemon-reload; rm -rf "$TMP"' EXIT
    sed "s|^DynamicUser=yes|DynamicUser=no|" "$R/usr/lib/systemd/system/$UNIT" >"$RDIR/$RU"
    printf 'Type=oneshot\n' >>"$RDIR/$RU"
    systemctl daemon-reload
    "$SD" enable "$RU" --output-dir "$OUT" --options 'cpuSamplingHz:200' >/dev/null
    systemctl start "$RU" || fail "systemctl start $RU failed: $(systemctl status "$RU" | tail -5)"
    note "ran $RU under systemd"
else
    note "systemd does not run units here ($(systemctl is-system-running 2>&1 || true)): running ExecStart= with the parsed environment"
    environment_of "$R" "$UNIT" >"$TMP/env"
    sed 's/^/     /' "$TMP/env"
    grep -qx "GREETING=hello" "$TMP/env" && grep -qx "QUOTED=a b" "$TMP/env" ||
        fail "the unit's other variables were lost"
    exec_start=$(sed -n 's/^ExecStart=//p' "$R/usr/lib/systemd/system/$UNIT")
    mapfile -t envv <"$TMP/env"
    mkdir -p "$OUT"
    # shellcheck disable=SC2086
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${envv[@]}" $exec_start \
        >"$TMP/run.out" 2>"$TMP/run.err" || fail "ExecStart= failed: $(cat "$TMP/run.err")"
    [ "$(cat "$TMP/run.out")" = ok ] || fail "cpusplit printed '$(cat "$TMP/run.out")'"
fi
expect_profiles "$OUT"
folded_report "$OUT" "$TMP/out.folded"
n=$(folded "$TMP/out.folded" module cpusplit)
[ "$n" -ge 20 ] || fail "only $n CPU samples in cpusplit's code"
ok "the service's profile is in $OUT ($n samples in cpusplit)"

say "disable"
"$SD" disable cgprof-demo --root "$R" >/dev/null
[ ! -e "$D" ] || fail "disable left $D"
[ -f "$R/etc/systemd/system/$UNIT.d/10-local.conf" ] || fail "disable removed another drop-in"
st=$("$SD" status cgprof-demo --root "$R")
grep -q "not profiled" <<<"$st" || fail "status after disable: $st"
ok "drop-in removed, the unit's own drop-in kept"

say "the heap summary: libcgprof-heap.so in the drop-in"
PFX=$TMP/pfx
mkdir -p "$PFX/bin" "$PFX/lib"
cp "$SD" "$PFX/bin/cgprof-systemd"
cp "$LIB" "$HEAP_LIB" "$PFX/lib/"
PCORE=$PFX/lib/libcgprof.so PHEAP=$PFX/lib/libcgprof-heap.so
R2=$TMP/root2
HU=cgprof-heap.service
mkdir -p "$R2/usr/lib/systemd/system" "$R2/etc"
cat >"$R2/usr/lib/systemd/system/$HU" <<UNIT
[Service]
Environment="LD_PRELOAD=$HEAP_LIB:$LIBM"
Environment=AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=True
ExecStart=$WL/cpusplit 1 1
UNIT
HD=$R2/etc/systemd/system/$HU.d/cgprof.conf
psd() { env -u CGPROF_LIB "$PFX/bin/cgprof-systemd" "$@"; }
preload_of() { sed -n 's/^Environment="LD_PRELOAD=\(.*\)"$/\1/p' "$HD"; }
psd enable cgprof-heap --root "$R2" >/dev/null 2>"$TMP/h.err" || fail "enable failed: $(cat "$TMP/h.err")"
[ "$(preload_of)" = "$PHEAP:$LIBM" ] ||
    fail "AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=True in the unit: LD_PRELOAD=$(preload_of), expected $PHEAP:$LIBM"
psd enable cgprof-heap --root "$R2" --options ' heapsummaryenabled : FALSE ' >/dev/null
[ "$(preload_of)" = "$PCORE:$LIBM" ] ||
    fail "--options heapsummaryenabled:FALSE over the unit's variable: LD_PRELOAD=$(preload_of)"
sed -i '/AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED/d' "$R2/usr/lib/systemd/system/$HU"
psd enable cgprof-heap --root "$R2" >/dev/null
[ "$(preload_of)" = "$PCORE:$LIBM" ] || fail "no heap summary asked: LD_PRELOAD=$(preload_of)"
psd enable cgprof-heap --root "$R2" --lib "$PCORE" --options heapSummaryEnabled:true >/dev/null
[ "$(preload_of)" = "$PCORE:$LIBM" ] || fail "--lib $PCORE was not kept as given: LD_PRELOAD=$(preload_of)"
# An EnvironmentFile= that sets the variable is named.
printf 'AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=true\n' >"$R2/etc/heap.env"
mkdir -p "$R2/etc/systemd/system/$HU.d"
printf '[Service]\nEnvironmentFile=-/etc/heap.env\n' >"$R2/etc/systemd/system/$HU.d/20-env.conf"
psd enable cgprof-heap --root "$R2" >/dev/null 2>"$TMP/h.err"
grep -q "^cgprof: /etc/heap.env (EnvironmentFile= of $HU) sets AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED" "$TMP/h.err" ||
    fail "no warning about the EnvironmentFile=: $(cat "$TMP/h.err")"
rm "$R2/etc/systemd/system/$HU.d/20-env.conf"
# The service itself, with the parsed environment: a tracked heap summary.
HOUT=$TMP/hout
psd enable cgprof-heap --root "$R2" --output-dir "$HOUT" \
    --options heapSummaryEnabled:true,samplingIntervalMs:100,heapSamplingIntervalBytes:65536 >/dev/null
[ "$(preload_of)" = "$PHEAP:$LIBM" ] || fail "--options heapSummaryEnabled:true: LD_PRELOAD=$(preload_of)"
environment_of "$R2" "$HU" >"$TMP/henv"
mapfile -t envv <"$TMP/henv"
mkdir -p "$HOUT"
env -i PATH=/usr/bin:/bin "${envv[@]}" "$WL/cpusplit" 1 1 >"$TMP/hrun.out" 2>"$TMP/hrun.err" ||
    fail "the heap service failed: $(cat "$TMP/hrun.err")"
expect_profiles "$HOUT"
"$PYTHON" - "$HOUT" <<'PY' || fail "the service's heap summary is not tracked by libcgprof-heap.so"
import glob, gzip, json, sys
hs = [d["heapSummary"] for d in (json.load(gzip.open(f, "rt")) for f in
      glob.glob(sys.argv[1] + "/**/*.json.gz", recursive=True)) if "heapSummary" in d]
print("   heap summaries (tracked, allocator):", [(h["tracked"], h["allocator"]) for h in hs])
sys.exit(0 if hs and all(h["tracked"] for h in hs) else 1)
PY
# No libcgprof-heap.so beside libcgprof.so: libcgprof.so, and a note.
rm "$PHEAP"
psd enable cgprof-heap --root "$R2" --options heapSummaryEnabled:true >/dev/null 2>"$TMP/h.err"
[ "$(preload_of)" = "$PCORE:$LIBM" ] || fail "fallback: LD_PRELOAD=$(preload_of)"
grep -q "libcgprof-heap.so not found" "$TMP/h.err" || fail "fallback without a note: $(cat "$TMP/h.err")"
"$SD" --help 2>&1 | grep -q "libcgprof-heap.so" || fail "cgprof-systemd --help does not explain the heap library"
ok "libcgprof-heap.so when the options or the unit ask (its old entry dropped), tracked; --lib kept; fallback noted"
