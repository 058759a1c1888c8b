#!/bin/bash
# No EINTR the program would not see without us: threads blocked in
# nanosleep, poll, select, epoll_wait and read (which return EINTR on a
# signal even with SA_RESTART, or would with a handler without it) are
# never signalled by the profiler while the main thread burns CPU at
# 1000 Hz. eintr_check prints "eintr N"; N must be 0 as it is without us.
source "$(dirname "$0")/lib.sh"
need_lib
need_workload eintr_check

say "eintr_check 3s at 1000 Hz"
same_run eintr "$TMP/out" cpuSamplingHz:1000 "$WL/eintr_check" 3
[ "$(cat "$TMP/eintr.prof.rc")" = 0 ] ||
    fail "blocking calls failed with EINTR under the preload: $(cat "$TMP/eintr.prof.out")"
expect_profiles "$TMP/out"
ok "no EINTR in 5 blocked threads: $(cat "$TMP/eintr.prof.out")"
