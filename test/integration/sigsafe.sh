#!/bin/bash
# The signal handler's files (sampler/signal.c, sampler/ring.c) call nothing
# that is not async-signal-safe (scripts/check-sigsafe.sh), and the checker
# catches a bad file while ignoring comments, strings and _sigsafe names.
source "$(dirname "$0")/lib.sh"

say "scripts/check-sigsafe.sh on sampler/signal.c sampler/ring.c"
for f in sampler/signal.c sampler/ring.c; do
    [ -f "$ROOT/$f" ] || fail "$f is missing (the handler-reachable code must live there)"
done
"$ROOT/scripts/check-sigsafe.sh" || fail "banned calls in handler-reachable code (see above)"
ok "handler-reachable files are clean"

say "the checker fails on a bad sample, naming file:line"
cat >"$TMP/bad.c" <<'C'
/* Mentions of malloc( and free( in a comment,
 * even a multi-line one with printf(, are fine. */
static const char *s = "snprintf(buf) inside a string is fine"; // free(x) too
static void handler(int sig)
{
    cgprof_ring_push_sigsafe(sig);
    disposition_free(sig);
    char *p = malloc(16);
    pthread_mutex_lock(&lock);
    cgprof_log(1, "x");
}
C
if "$ROOT/scripts/check-sigsafe.sh" "$TMP/bad.c" >"$TMP/out" 2>&1; then
    cat "$TMP/out"; fail "check-sigsafe.sh accepted a file that calls malloc"
fi
for want in "bad.c:8:" "bad.c:9:" "bad.c:10:"; do
    grep -q "$want" "$TMP/out" || { cat "$TMP/out"; fail "check-sigsafe.sh did not report $want"; }
done
hits=$(grep -c '^.*bad\.c:[0-9]*:' "$TMP/out" || true)
[ "$hits" = 3 ] || { cat "$TMP/out"; fail "expected exactly 3 offending lines (8, 9, 10), got $hits"; }
ok "reports lines 8-10 and nothing from comments, strings or _sigsafe calls"

say "the checker passes a clean sample"
printf '%s\n' '/* malloc( in a comment */' 'static void h(int s) { cgprof_ring_push_sigsafe(s); }' >"$TMP/good.c"
"$ROOT/scripts/check-sigsafe.sh" "$TMP/good.c" >"$TMP/out" 2>&1 ||
    { cat "$TMP/out"; fail "check-sigsafe.sh rejected a clean file"; }
ok "clean sample accepted"
