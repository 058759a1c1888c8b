#!/usr/bin/env python3
"""Data for test/integration/report_browser.sh.

  report_browser.py profiles DIR BIG EXPECT.json
      Writes two stored profiles with known stacks over several thread
      states into DIR (A: an earlier minute, B: a later one), a profile
      with 100 000 nodes to BIG, and the numbers the HTML report must
      show (seconds per call path for each view) to EXPECT.json.
  report_browser.py demo-expect MERGED.json OUT.json
      Seconds per call path (CPU view) of a merged profile printed by
      `cgprof report --format json`, the independent reference for the
      real demo profile's overview.
"""
import gzip
import json
import random
import sys

COUNTERS = ["RUNNABLE", "BLOCKED", "NATIVE", "WAITING", "TIMED_WAITING", "IDLE"]
WEIGHTS = {"RUNNABLE": 100.0, "BLOCKED": 10.0, "NATIVE": 10.0, "WAITING": 10.0,
           "TIMED_WAITING": 10.0, "IDLE": 10.0}
CPU = {"RUNNABLE", "BLOCKED", "NATIVE"}
LATENCY = set(COUNTERS) - {"IDLE"}
T0 = 1796600000000  # 2026-12-06T23:33:20Z
SPECIAL = 'app:print<T>("a&b") </script><!--'

STACKS_B = [
    ("app:main;app:handle_request;app:parse_json", "RUNNABLE", 300),
    ("app:main;app:handle_request;libc.so.6:memcpy", "RUNNABLE", 100),
    ("app:main;app:handle_request", "RUNNABLE", 20),
    ("app:main;app:handle_request;app:query_db;libc.so.6:recv", "WAITING", 40),
    ("app:main;app:flush_log;libc.so.6:write", "RUNNABLE", 50),
    ("app:main;app:flush_log;libc.so.6:write", "BLOCKED", 5),
    ("app:main;app:walk;app:walk;app:walk", "RUNNABLE", 30),
    ("app:main;app:walk;app:parse_json", "RUNNABLE", 10),
    ("app:main;" + SPECIAL, "RUNNABLE", 8),
    ("libc.so.6:start_thread;app:worker;app:compress;libz.so.1:deflate", "RUNNABLE", 200),
    ("libc.so.6:start_thread;app:worker;libc.so.6:pthread_mutex_lock", "BLOCKED", 30),
    ("libc.so.6:start_thread;app:worker;libc.so.6:pthread_cond_wait", "WAITING", 80),
    ("libc.so.6:start_thread;app:worker;libc.so.6:pthread_cond_wait", "IDLE", 50),
    ("libc.so.6:start_thread;app:timer_loop;libc.so.6:nanosleep", "TIMED_WAITING", 40),
]
# The earlier minute: compression cost twice as much, parsing a third.
STACKS_A = [(s, c, 400 if "deflate" in s else 100 if s.endswith("handle_request;app:parse_json") else n)
            for s, c, n in STACKS_B]


def tree_of(stacks):
    root = {}
    for s, c, n in stacks:
        node = root
        for f in s.split(";"):
            node = node.setdefault("children", {}).setdefault(f, {})
        node.setdefault("counts", {})
        node["counts"][c] = node["counts"].get(c, 0) + n
    return root


def profile_doc(stacks, start, group="app"):
    cpu = sum(n for _, c, n in stacks if c == "RUNNABLE") / WEIGHTS["RUNNABLE"]
    return {
        "start": start, "end": start + 60000,
        "agentMetadata": {
            "sampleWeights": WEIGHTS, "durationInMs": 60000,
            "fleetInfo": {"id": "test-host", "type": "UNKNOWN", "vCPUs": 2},
            "agentInfo": {"type": "CodeGuruProfiler-cgprof", "version": "0.1.0"},
            "agentOverhead": {"memoryInMB": 1, "timeInMs": 120},
            "runtimeVersion": "glibc-2.36", "cpuTimeInSeconds": cpu + 0.05,
            "metrics": {"numThreads": 4.0}, "numTimesSampled": 600},
        "callgraph": tree_of(stacks),
        "debugInfo": {"agentStartTime": "2026-12-06T23:33:20.000Z", "processId": 4242,
                      "errorsCount": {}, "samplesDropped": 0, "groupName": group},
    }


def write_gz(path, doc):
    with gzip.open(path, "wt") as f:
        json.dump(doc, f)


def per_path(stacks, counters, transform=lambda fs: fs):
    """Seconds per call path ("" = everything) over the given counters."""
    out = {"": 0.0}
    for s, c, n in stacks:
        if c not in counters:
            continue
        v = n / WEIGHTS[c]
        out[""] += v
        fs = transform(s.split(";"))
        for k in range(1, len(fs) + 1):
            p = ";".join(fs[:k])
            out[p] = out.get(p, 0.0) + v
    return out


def inspect(stacks, counters, name):
    total, callers, callees = 0.0, {}, {}
    for s, c, n in stacks:
        fs = s.split(";")
        if c not in counters or name not in fs:
            continue
        v = n / WEIGHTS[c]
        i = fs.index(name)  # outermost occurrence
        total += v
        up, down = fs[i + 1:], fs[:i][::-1]
        for k in range(1, len(up) + 1):
            callees[";".join(up[:k])] = callees.get(";".join(up[:k]), 0.0) + v
        for k in range(1, len(down) + 1):
            callers[";".join(down[:k])] = callers.get(";".join(down[:k]), 0.0) + v
    return {"name": name, "total": total, "callers": callers, "callees": callees}


def big_profile(path, nodes=100000, seed=7):
    """A profile with exactly `nodes` frames below the root: deep chains
    (most new frames extend a recent one) and wide fan-out."""
    rnd = random.Random(seed)
    kids = [[]]  # children per node
    depth = [0]
    names = ["mod%d.so:function_%d_with_a_longer_name" % (i % 97, i) for i in range(20000)]
    node_name = [None]
    for i in range(1, nodes + 1):
        if rnd.random() < 0.75 and i > 1:
            p = rnd.randrange(max(1, i - 30), i)
        else:
            p = rnd.randrange(0, i)
        while depth[p] >= 60:
            p = rnd.randrange(0, i)
        kids.append([])
        depth.append(depth[p] + 1)
        node_name.append(names[rnd.randrange(len(names))] + "#%d" % i)
        kids[p].append(i)

    def build(i):
        obj = {}
        if not kids[i] or rnd.random() < 0.3:
            obj["counts"] = {"RUNNABLE": rnd.randrange(1, 50)}
        if kids[i]:
            obj["children"] = {node_name[k]: build(k) for k in kids[i]}
        return obj

    sys.setrecursionlimit(10000)
    doc = profile_doc([], T0)
    doc["callgraph"] = build(0)
    write_gz(path, doc)


def cmd_profiles(outdir, big, expect_path):
    write_gz("%s/app-A.json.gz" % outdir, profile_doc(STACKS_A, T0))
    write_gz("%s/app-B.json.gz" % outdir, profile_doc(STACKS_B, T0 + 120000))
    big_profile(big)
    hide = "app:handle_request"
    cpu_a, cpu_b = per_path(STACKS_A, CPU), per_path(STACKS_B, CPU)
    sa = cpu_a["libc.so.6:start_thread"] / cpu_a[""]
    sb = cpu_b["libc.so.6:start_thread"] / cpu_b[""]
    search = sum(n / WEIGHTS[c] for s, c, n in STACKS_B if c in CPU and "parse_json" in s)
    blocked = sum(n / WEIGHTS[c] for s, c, n in STACKS_B if c == "BLOCKED")
    expect = {
        "counters": COUNTERS,
        "t0": T0,
        "cpu": cpu_b,
        "latency": per_path(STACKS_B, LATENCY),
        "waiting": per_path(STACKS_B, {"WAITING"}),
        "hotspots_cpu": per_path(STACKS_B, CPU, lambda fs: fs[::-1]),
        "search": {"query": "parse_json", "share": search / cpu_b[""]},
        "inspect": inspect(STACKS_B, CPU, "app:walk"),
        "hide": {"name": hide, "cpu": per_path(STACKS_B, CPU, lambda fs: [f for f in fs if f != hide])},
        "mine": per_path(STACKS_B, CPU, lambda fs: [f for f in fs if f.startswith("app:")]),
        "summary": {"blocked": "%.2f s" % blocked},
        "compare": {"path": "libc.so.6:start_thread", "width": (sa + sb) / 2,
                    "diff": "%s%.2f points" % ("+" if sb >= sa else "", 100 * (sb - sa))},
        "special": SPECIAL,
    }
    with open(expect_path, "w") as f:
        json.dump(expect, f)


def cmd_demo_expect(merged, out_path):
    doc = json.load(open(merged))
    w = doc["agentMetadata"]["sampleWeights"]
    out = {"": 0.0}

    def walk(node, path):
        v = sum(n / w[c] for c, n in node.get("counts", {}).items() if c in CPU)
        if v:
            out[""] += v
            for k in range(1, len(path) + 1):
                p = ";".join(path[:k])
                out[p] = out.get(p, 0.0) + v
        for name, child in node.get("children", {}).items():
            walk(child, path + [name])

    sys.setrecursionlimit(10000)
    walk(doc["callgraph"], [])
    if out[""] <= 0:
        sys.exit("demo profile has no CPU samples")
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "profiles":
        cmd_profiles(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "demo-expect":
        cmd_demo_expect(*sys.argv[2:])
    else:
        sys.exit(__doc__)
