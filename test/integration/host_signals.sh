#!/bin/bash
# The host's own signal use keeps working under the preload:
# - sigprof_host installs its own SIGPROF handler and ITIMER_PROF; it must
#   still get its ticks and keep its handler, and the profiler must keep
#   sampling (on another signal): its profile has samples in
#   sigprof_host:burn.
# - altstack_host runs 64 KiB-stack threads with a 16 KiB sigaltstack and
#   an SA_ONSTACK SIGUSR1 handler and checks its own invariants (handler on
#   the alternate stack, canary below it intact, errno unchanged).
# Both must exit 0 with the same stdout as without the preload (1000 Hz).
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
need_workload sigprof_host
need_workload altstack_host

say "sigprof_host: the host's SIGPROF handler and ITIMER_PROF"
same_run sigprof "$TMP/sigprof" cpuSamplingHz:1000 "$WL/sigprof_host" 2
[ "$(cat "$TMP/sigprof.prof.rc")" = 0 ] ||
    fail "sigprof_host failed under the preload: $(cat "$TMP/sigprof.prof.out") $(head -c 1000 "$TMP/sigprof.prof.err")"
note "without: $(grep -v '^cgprof:' "$TMP/sigprof.base.err" | head -n 1)"
note "with:    $(grep -v '^cgprof:' "$TMP/sigprof.prof.err" | head -n 1)"
expect_profiles "$TMP/sigprof"
folded_report "$TMP/sigprof" "$TMP/sigprof.folded"
n=$(folded "$TMP/sigprof.folded" incl sigprof_host:burn)
[ "$n" -ge 100 ] || {
    show_top "$TMP/sigprof.folded"
    fail "only $n samples in sigprof_host:burn for 2 CPU-seconds at 1000 Hz: the profiler stopped sampling when the host took SIGPROF"
}
ok "host kept its SIGPROF ticks and handler; profiler still sampled ($n in burn)"

say "altstack_host: small stacks, sigaltstack, SA_ONSTACK SIGUSR1"
same_run altstack "$TMP/altstack" cpuSamplingHz:1000 "$WL/altstack_host" 2 4
[ "$(cat "$TMP/altstack.prof.rc")" = 0 ] && [ "$(cat "$TMP/altstack.prof.out")" = ok ] ||
    fail "altstack_host failed under the preload: $(cat "$TMP/altstack.prof.out") $(head -c 1000 "$TMP/altstack.prof.err")"
expect_profiles "$TMP/altstack"
ok "altstack_host invariants hold under the preload"
