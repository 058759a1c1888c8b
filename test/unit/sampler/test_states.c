/* Thread-state classification, case by case: the system call a blocked
 * thread sits in (with its arguments) and the functions on its stack. */
#include <check.h>
#include <sys/syscall.h>

#include "helpers.h"
#include "../../../sampler/sampler_int.h"

#define B CGPROF_COUNTER_BLOCKED
#define W CGPROF_COUNTER_WAITING
#define T CGPROF_COUNTER_TIMED_WAITING
#define I CGPROF_COUNTER_IDLE

static const struct {
    const char *name;
    long nr;
    uint64_t args[6];
    enum cgprof_counter want;
} syscalls[] = {
    { "nanosleep", SYS_nanosleep, { 0x1000, 0 }, T },
    { "clock_nanosleep", SYS_clock_nanosleep, { 1, 0, 0x1000, 0 }, T },
    { "futex wait untimed", SYS_futex, { 0x1000, 0 | 128, 2, 0 }, W },
    { "futex wait timed", SYS_futex, { 0x1000, 0 | 128, 2, 0x2000 }, T },
    { "futex wait_bitset untimed", SYS_futex, { 0x1000, 9 | 128, 0, 0, 0, ~0u }, W },
    { "futex wait_bitset timed (realtime clock)", SYS_futex, { 0x1000, 9 | 256, 0, 0x2000 }, T },
    { "futex lock_pi", SYS_futex, { 0x1000, 6 | 128, 0, 0 }, B },
    { "futex lock_pi2 timed", SYS_futex, { 0x1000, 13, 0, 0x2000 }, B },
    { "poll with timeout", SYS_poll, { 0x1000, 1, 50 }, T },
    { "poll forever (-1 sign-extended)", SYS_poll, { 0x1000, 1, 0xffffffffffffffffull }, I },
    { "poll forever (-1 as 32 bits)", SYS_poll, { 0x1000, 1, 0xffffffffull }, I },
    { "poll zero timeout", SYS_poll, { 0x1000, 1, 0 }, T },
    { "ppoll with timeout", SYS_ppoll, { 0x1000, 1, 0x2000 }, T },
    { "ppoll forever", SYS_ppoll, { 0x1000, 1, 0 }, I },
    { "select with timeout", SYS_select, { 4, 0x1000, 0, 0, 0x2000 }, T },
    { "select forever", SYS_select, { 4, 0x1000, 0, 0, 0 }, I },
    { "pselect6 with timeout", SYS_pselect6, { 4, 0x1000, 0, 0, 0x2000, 0 }, T },
    { "pselect6 forever", SYS_pselect6, { 4, 0x1000, 0, 0, 0, 0 }, I },
    { "epoll_wait with timeout", SYS_epoll_wait, { 3, 0x1000, 1, 50 }, T },
    { "epoll_wait forever", SYS_epoll_wait, { 3, 0x1000, 1, 0xffffffffull }, I },
    { "epoll_pwait with timeout", SYS_epoll_pwait, { 3, 0x1000, 1, 100, 0 }, T },
    { "epoll_pwait forever", SYS_epoll_pwait, { 3, 0x1000, 1, 0xffffffffffffffffull, 0 }, I },
    { "rt_sigtimedwait with timeout", SYS_rt_sigtimedwait, { 0x1000, 0, 0x2000, 8 }, T },
    { "sigwait (rt_sigtimedwait, no timeout)", SYS_rt_sigtimedwait, { 0x1000, 0, 0, 8 }, I },
    { "pause", SYS_pause, { 0 }, I },
    { "sigsuspend", SYS_rt_sigsuspend, { 0x1000, 8 }, I },
    { "read (pipe, socket)", SYS_read, { 3, 0x1000, 1 }, W },
    { "recvfrom", SYS_recvfrom, { 3, 0x1000, 1, 0, 0, 0 }, W },
    { "accept", SYS_accept, { 3, 0, 0 }, W },
    { "accept4", SYS_accept4, { 3, 0, 0, 0 }, W },
    { "connect", SYS_connect, { 3, 0x1000, 16 }, W },
    { "wait4", SYS_wait4, { (uint64_t)-1, 0, 0, 0 }, W },
    { "recvmmsg with timeout", SYS_recvmmsg, { 3, 0x1000, 1, 0, 0x2000 }, T },
    { "recvmmsg untimed", SYS_recvmmsg, { 3, 0x1000, 1, 0, 0 }, W },
    { "semtimedop timed", SYS_semtimedop, { 1, 0x1000, 1, 0x2000 }, T },
    { "io_getevents untimed", SYS_io_getevents, { 1, 1, 1, 0x1000, 0 }, W },
    { "write (a full pipe)", SYS_write, { 1, 0x1000, 65536 }, W },
};

START_TEST(test_states_classify_syscall_table)
{
    enum cgprof_counter got = cgprof__states_classify_syscall(syscalls[_i].nr, syscalls[_i].args);
    ck_assert_msg(got == syscalls[_i].want, "%s: got %s, want %s", syscalls[_i].name,
                  cgprof_counter_name(got), cgprof_counter_name(syscalls[_i].want));
}
END_TEST

static const struct {
    const char *name;
    enum cgprof_counter from;
    const char *frames[6];
    enum cgprof_counter want;
} stacks[] = {
    { "mutex lock over an untimed futex", W,
      { "app:main", "app:worker", "libc.so.6:___pthread_mutex_lock", "libc.so.6:__lll_lock_wait" }, B },
    { "rwlock", W, { "app:main", "libc.so.6:___pthread_rwlock_wrlock", "libc.so.6:__futex_abstimed_wait_common" }, B },
    { "condition variable", W,
      { "app:main", "libc.so.6:___pthread_cond_wait", "libc.so.6:__futex_abstimed_wait_common" }, W },
    { "timed condition variable", W,
      { "app:main", "libc.so.6:___pthread_cond_timedwait", "libc.so.6:__futex_abstimed_wait_common" }, T },
    { "clockwait", W, { "app:main", "libc.so.6:___pthread_cond_clockwait" }, T },
    { "join", W, { "app:main", "libc.so.6:___pthread_join" }, W },
    { "plain read is left alone", W, { "app:main", "app:reader", "libc.so.6:read" }, W },
    { "sleep is left alone", T, { "app:main", "libc.so.6:clock_nanosleep" }, T },
    { "a lock far from the leaf does not count", W,
      { "app:pthread_mutex_lock_wrapper", "app:a", "app:b", "libc.so.6:read" }, W },
    { "the innermost match wins (cond inside lock-holding code)", W,
      { "app:main", "libc.so.6:pthread_mutex_lock", "app:x", "libc.so.6:pthread_cond_wait" }, W },
    { "empty stack", T, { NULL }, T },
};

START_TEST(test_states_refine_table)
{
    size_t n = 0;
    while (n < 6 && stacks[_i].frames[n])
        n++;
    enum cgprof_counter got = cgprof__states_refine(stacks[_i].from, stacks[_i].frames, n);
    ck_assert_msg(got == stacks[_i].want, "%s: got %s, want %s", stacks[_i].name,
                  cgprof_counter_name(got), cgprof_counter_name(stacks[_i].want));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("states");
    tcase_add_loop_test(tc, test_states_classify_syscall_table, 0, (int)CGPROF_ARRAY_SIZE(syscalls));
    tcase_add_loop_test(tc, test_states_refine_table, 0, (int)CGPROF_ARRAY_SIZE(stacks));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(suite());
}
