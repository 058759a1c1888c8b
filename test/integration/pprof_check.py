#!/usr/bin/env python3
"""Checks `cgprof report --format pprof` output with an independent reader:
the protobuf module protoc generated from test/fixtures/profile.proto.

  pprof_check.py PB_MODULE_DIR PROFILE.pb.gz MERGED.json FOLDED_LATENCY FOLDED_CPU

MERGED.json is `cgprof report --format json` of the same selection,
FOLDED_* are `--format folded --counter latency` and `--counter RUNNABLE`.
Checks structure (string table, ids, mappings, sample types, period,
times), that the samples rebuilt as folded stacks equal the folded output,
and totals per sample type and per function against the JSON's counts and
weights. Prints a short summary; exits 1 with a reason on any mismatch.
"""
import gzip
import json
import sys
from collections import defaultdict

sys.path.insert(0, sys.argv[1])
import profile_pb2  # noqa: E402

COUNTERS = ["RUNNABLE", "BLOCKED", "NATIVE", "WAITING", "TIMED_WAITING", "IDLE"]
DEFAULT_WEIGHT = {"RUNNABLE": 100.0}


def fail(msg):
    sys.stderr.write("pprof_check: " + msg + "\n")
    sys.exit(1)


def read_folded(path):
    out = defaultdict(int)
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line:
            stack, n = line.rsplit(" ", 1)
            out[stack] += int(n)
    return out


raw = gzip.open(sys.argv[2], "rb").read()
prof = profile_pb2.Profile()
prof.ParseFromString(raw)
# Re-encoding with the reference implementation must give a message of the
# same content (field order may differ, so compare parsed messages).
again = profile_pb2.Profile()
again.ParseFromString(prof.SerializeToString())
if again != prof:
    fail("the message does not survive a parse/serialize round trip")

S = list(prof.string_table)
if not S or S[0] != "":
    fail("string_table[0] must be the empty string, got %r" % (S[:1],))
if len(set(S)) != len(S):
    fail("string_table has duplicates")


def s(i):
    if not 0 <= i < len(S):
        fail("string index %d out of range (%d strings)" % (i, len(S)))
    return S[i]


types = [(s(t.type), s(t.unit)) for t in prof.sample_type]
want_types = [("cpu", "nanoseconds"), ("wall", "nanoseconds"), ("samples", "count")]
if types != want_types:
    fail("sample types %r, expected %r" % (types, want_types))
if (s(prof.period_type.type), s(prof.period_type.unit)) != ("cpu", "nanoseconds"):
    fail("period_type is not cpu/nanoseconds")
if s(prof.default_sample_type) != "cpu":
    fail("default_sample_type is not cpu")

doc = json.load(open(sys.argv[3]))
meta = doc.get("agentMetadata", {})
weights = dict(DEFAULT_WEIGHT)
for c in COUNTERS[1:]:
    weights[c] = 1.0
weights.update({k: float(v) for k, v in meta.get("sampleWeights", {}).items() if v > 0})
if prof.period != round(1e9 / weights["RUNNABLE"]):
    fail("period %d, expected %d" % (prof.period, round(1e9 / weights["RUNNABLE"])))
if prof.time_nanos != int(doc["start"]) * 1000000:
    fail("time_nanos %d, expected start %d ms" % (prof.time_nanos, doc["start"]))
dur = meta.get("durationInMs") or (doc["end"] - doc["start"])
if prof.duration_nanos != int(dur) * 1000000:
    fail("duration_nanos %d, expected %d ms" % (prof.duration_nanos, dur))

mappings = {}
for m in prof.mapping:
    if m.id == 0 or m.id in mappings:
        fail("mapping id %d is zero or repeated" % m.id)
    if not m.memory_start < m.memory_limit:
        fail("mapping %d has an empty range" % m.id)
    mappings[m.id] = m
ranges = sorted((m.memory_start, m.memory_limit) for m in mappings.values())
for a, b in zip(ranges, ranges[1:]):
    if a[1] > b[0]:
        fail("mappings overlap: %r %r" % (a, b))
functions = {}
for f in prof.function:
    if f.id == 0 or f.id in functions:
        fail("function id %d is zero or repeated" % f.id)
    functions[f.id] = f
locations = {}
for loc in prof.location:
    if loc.id == 0 or loc.id in locations:
        fail("location id %d is zero or repeated" % loc.id)
    if len(loc.line) != 1 or loc.line[0].function_id not in functions:
        fail("location %d does not name exactly one known function" % loc.id)
    f = functions[loc.line[0].function_id]
    frame = s(f.system_name)
    module, sep, fn = frame.partition(":")
    if sep and module and not fn.startswith(":"):
        if s(f.name) != fn or s(f.filename) != module:
            fail("function %r: name %r / filename %r" % (frame, s(f.name), s(f.filename)))
        m = mappings.get(loc.mapping_id)
        if m is None or s(m.filename) != module:
            fail("location of %r is not in the mapping of %r" % (frame, module))
        if not m.memory_start <= loc.address < m.memory_limit:
            fail("location of %r lies outside its mapping" % frame)
    locations[loc.id] = frame
if len(set(locations.values())) != len(locations):
    fail("two locations for one frame")

# Samples as folded stacks, and totals.
lat_folded = defaultdict(int)
cpu_folded = defaultdict(int)
tot = [0, 0, 0]
cpu_incl = defaultdict(int)
for smp in prof.sample:
    if len(smp.value) != 3:
        fail("a sample has %d values, expected 3" % len(smp.value))
    for i in range(3):
        tot[i] += smp.value[i]
    frames = [locations[i] for i in reversed(smp.location_id)]
    if not frames:
        continue
    key = ";".join(frames)
    lat_folded[key] += smp.value[2]
    cpu_count = round(smp.value[0] * weights["RUNNABLE"] / 1e9)
    if cpu_count:
        cpu_folded[key] += cpu_count
    for fr in set(frames):
        cpu_incl[fr] += smp.value[0]

want_lat = read_folded(sys.argv[4])
want_cpu = read_folded(sys.argv[5])
if dict(lat_folded) != dict(want_lat):
    diff = set(lat_folded.items()) ^ set(want_lat.items())
    fail("samples/count stacks differ from folded --counter latency: %r" % sorted(diff)[:5])
if dict(cpu_folded) != dict(want_cpu):
    diff = set(cpu_folded.items()) ^ set(want_cpu.items())
    fail("cpu stacks differ from folded --counter RUNNABLE: %r" % sorted(diff)[:5])

# Totals from the JSON call graph, computed here independently.
want = [0.0, 0.0, 0]
json_incl = defaultdict(float)


def walk(node, path):
    counts = node.get("counts", {})
    run = counts.get("RUNNABLE", 0) * 1e9 / weights["RUNNABLE"]
    want[0] += run
    for c, n in counts.items():
        if c != "IDLE":
            want[1] += n * 1e9 / weights[c]
            want[2] += n
    for fr in set(path):
        json_incl[fr] += run
    for name, child in node.get("children", {}).items():
        walk(child, path + [name])


walk(doc["callgraph"], [])
nsamples = len(prof.sample)
if abs(tot[0] - want[0]) > nsamples or abs(tot[1] - want[1]) > nsamples or tot[2] != want[2]:
    fail("totals cpu %d wall %d samples %d, JSON says %.0f %.0f %d" %
         (tot[0], tot[1], tot[2], want[0], want[1], want[2]))
for fr, v in json_incl.items():
    if abs(cpu_incl.get(fr, 0) - v) > nsamples:
        fail("inclusive cpu of %r: pprof %d ns, JSON %.0f ns" % (fr, cpu_incl.get(fr, 0), v))
if want[0] > 0 and not cpu_incl:
    fail("no cpu time on any function")
top = max(cpu_incl.items(), key=lambda kv: (kv[1], kv[0])) if cpu_incl else ("-", 0)
print("pprof ok: %d samples, %d locations, %d functions, %d mappings; cpu %.3f s, "
      "wall %.3f s, %d samples; heaviest %s %.3f s" %
      (nsamples, len(locations), len(functions), len(mappings), tot[0] / 1e9, tot[1] / 1e9,
       tot[2], top[0], top[1] / 1e9))
