#!/usr/bin/env python3
"""Reads folded stacks ("root;...;leaf COUNT" per line, as printed by
`cgprof report --format folded`) and answers questions about them.

A function counts once per stack for its inclusive total, however often it
recurs in that stack; its self total counts the stacks it is the leaf of.

  folded.py FILE                      table: inclusive% self% incl self name
  folded.py FILE total                total number of samples
  folded.py FILE incl NAME            inclusive sample count of frame NAME
  folded.py FILE grep SUBSTR          samples whose stack has a frame containing SUBSTR
  folded.py FILE module MODULE        samples whose stack has a frame of MODULE
                                      ("MODULE:function" or "MODULE+0xOFFSET")
  folded.py FILE among NAME...        inclusive shares (percent) of the NAMEs
                                      among themselves: "NAME PCT" per line

FILE may be "-" for stdin. A malformed line is an error (exit 2), so a
test never passes on output it did not understand.
"""
import sys


def die(msg):
    sys.stderr.write(msg.rstrip("\n") + "\n")
    sys.exit(2)


def parse(path):
    f = sys.stdin if path == "-" else open(path, encoding="utf-8", errors="replace")
    stacks = []
    for n, line in enumerate(f, 1):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or not parts[1].isdigit():
            die("folded.py: %s:%d: not 'frames COUNT': %r" % (path, n, line[:200]))
        frames = parts[0].split(";")
        if any(fr == "" for fr in frames):
            die("folded.py: %s:%d: empty frame name: %r" % (path, n, line[:200]))
        stacks.append((frames, int(parts[1])))
    return stacks


def tables(stacks):
    incl, self_ = {}, {}
    for frames, c in stacks:
        for fr in set(frames):
            incl[fr] = incl.get(fr, 0) + c
        self_[frames[-1]] = self_.get(frames[-1], 0) + c
    return incl, self_


def main(argv):
    if len(argv) < 2:
        die(__doc__)
    try:
        stacks = parse(argv[1])
    except OSError as e:
        die("folded.py: %s" % e)
    total = sum(c for _, c in stacks)
    incl, self_ = tables(stacks)
    cmd = argv[2] if len(argv) > 2 else "table"
    args = argv[3:]
    if cmd == "table":
        print("total %d" % total)
        for name in sorted(incl, key=lambda k: (-incl[k], k)):
            i, s = incl[name], self_.get(name, 0)
            print("%6.2f%% %6.2f%% %8d %8d %s" % (100.0 * i / max(total, 1),
                  100.0 * s / max(total, 1), i, s, name))
    elif cmd == "total":
        print(total)
    elif cmd == "incl" and len(args) == 1:
        print(incl.get(args[0], 0))
    elif cmd == "grep" and len(args) == 1:
        print(sum(c for frames, c in stacks if any(args[0] in fr for fr in frames)))
    elif cmd == "module" and len(args) == 1:
        m = args[0]
        print(sum(c for frames, c in stacks
                  if any(fr.startswith(m + ":") or fr.startswith(m + "+0x") for fr in frames)))
    elif cmd == "among" and args:
        s = sum(incl.get(a, 0) for a in args)
        for a in args:
            print("%s %.2f" % (a, 100.0 * incl.get(a, 0) / s if s else 0.0))
    else:
        die(__doc__)


if __name__ == "__main__":
    main(sys.argv)
