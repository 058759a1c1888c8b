#!/bin/bash
# Programs nobody here wrote run unchanged under the preload and get
# profiles that name their real functions (1000 Hz):
#   xz -T1 -6 on ~2 MB of generated text   -> a frame liblzma.so.5:lzma_*
#   sqlite3: 200k inserts in a transaction and a GROUP BY
#                                           -> a frame libsqlite3.so.0:sqlite3*
#   python3 -c with a CPU loop             -> _PyEval_EvalFrameDefault or a
#                                              python3.x:* frame
#   node -e with a CPU loop (if installed) -> a frame of the node binary
#   bash running /bin/true 100 times (each a preloaded child)
# For each: stdout and exit status identical with and without the preload.
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
opts=cpuSamplingHz:1000

# expect_frame NAME SUBSTR...: the CPU profile of NAME has a frame
# containing one of the SUBSTRs.
expect_frame() {
    local name=$1; shift
    expect_profiles "$TMP/$name.profiles"
    folded_report "$TMP/$name.profiles" "$TMP/$name.folded"
    local s n total
    total=$(folded "$TMP/$name.folded" total)
    for s in "$@"; do
        n=$(folded "$TMP/$name.folded" grep "$s")
        if [ "$n" -gt 0 ]; then
            ok "$name: $n of $total samples have a frame containing '$s'"
            return 0
        fi
    done
    show_top "$TMP/$name.folded" 25
    fail "$name: no frame containing any of: $* ($total samples)"
}

say "xz -T1 -6 on generated text"
need_prog xz
awk 'BEGIN { srand(7); for (i = 0; i < 120000; i++)
    printf "%d %s%d\n", i, substr("alphabetagammadeltaepsilon", 1 + int(rand() * 20), 6),
           int(rand() * 100000) }' >"$TMP/data.txt"
same_run xz "$TMP/xz.profiles" "$opts" xz -T1 -6 -c "$TMP/data.txt"
[ "$(cat "$TMP/xz.prof.rc")" = 0 ] || fail "xz failed: $(cat "$TMP/xz.prof.err")"
xz -dc <"$TMP/xz.prof.out" | cmp -s - "$TMP/data.txt" || fail "xz output under the preload does not decompress to the input"
expect_frame xz liblzma.so.5:lzma_

say "sqlite3: 200k inserts and a GROUP BY"
need_prog sqlite3
cat >"$TMP/q.sql" <<'SQL'
CREATE TABLE t(a INTEGER, b TEXT);
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)
INSERT INTO t SELECT x, 'k' || (x * 7919 % 1000) FROM c;
COMMIT;
SELECT substr(b, 1, 2), count(*), sum(a) FROM t GROUP BY 1 ORDER BY 1;
SELECT count(DISTINCT b) FROM t;
SQL
# Each run gets a fresh database file (same_run runs the command twice).
sqlite_run() { local db; db=$(mktemp "$TMP/db.XXXXXX"); rm -f "$db"; sqlite3 "$db" <"$TMP/q.sql"; }
export -f sqlite_run; export TMP
same_run sqlite3 "$TMP/sqlite3.profiles" "$opts" bash -c sqlite_run
[ "$(cat "$TMP/sqlite3.prof.rc")" = 0 ] || fail "sqlite3 failed: $(cat "$TMP/sqlite3.prof.err")"
grep -qx 1000 "$TMP/sqlite3.prof.out" || fail "sqlite3 gave a wrong answer: $(cat "$TMP/sqlite3.prof.out")"
expect_frame sqlite3 libsqlite3.so.0:sqlite3

say "python3 -c with a CPU loop"
py=/usr/bin/python3   # the distribution's interpreter, not a pyenv shim
[ -x $py ] || fail "$py is not installed"
same_run python3 "$TMP/python3.profiles" "$opts" $py -c '
s = 0
for i in range(6000000):
    s += i * i % 7
print(s)'
[ "$(cat "$TMP/python3.prof.rc")" = 0 ] || fail "python3 failed: $(cat "$TMP/python3.prof.err")"
expect_frame python3 _PyEval_EvalFrameDefault python3.

say "node -e with a CPU loop"
if command -v node >/dev/null 2>&1; then
    same_run node "$TMP/node.profiles" "$opts" node -e \
        'let s = 0; for (let i = 0; i < 3e8; i++) s += i % 7; console.log(s)'
    [ "$(cat "$TMP/node.prof.rc")" = 0 ] || fail "node failed: $(cat "$TMP/node.prof.err")"
    expect_frame node node: libnode
else
    note "node is not installed: node skipped"
fi

say "bash running /bin/true 100 times"
start=$(date +%s%N)
same_run bash100 "$TMP/bash.profiles" "$opts" bash -c 'for i in $(seq 100); do /bin/true || exit 3; done; echo done'
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$(cat "$TMP/bash100.prof.out")" = done ] || fail "the bash loop printed '$(cat "$TMP/bash100.prof.out")'"
[ ! -s "$TMP/bash100.prof.err" ] || fail "the bash loop wrote to stderr under the preload: $(head -c 500 "$TMP/bash100.prof.err")"
note "both runs took ${ms} ms together; $(count_profiles "$TMP/bash.profiles") profile(s) written"
ok "101 preloaded processes ran unchanged"
