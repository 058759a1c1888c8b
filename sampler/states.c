/* The thread-state (latency) sampler: every samplingIntervalMs the agent
 * looks at each thread of the process through /proc/self/task/T/stat and
 * /proc/self/task/T/syscall, classifies it into the CodeGuru console's
 * states, and takes the stack of a blocked thread WITHOUT signalling it:
 * from the stack pointer and program counter the kernel reports for the
 * system call, copying the (frozen) stack with process_vm_readv, and
 * re-reading the system call afterwards to make sure the thread stayed
 * blocked while it was copied. Running threads are left to the CPU
 * sampler, whose RUNNABLE samples carry CPU-time weights.
 *
 * Classification (documented in README "Thread states"):
 *   futex LOCK_PI, or a lock function on the stack       -> BLOCKED
 *   sleeps; timed futex/cond waits; epoll/poll/select,
 *   recvmmsg, semtimedop, sigtimedwait with a timeout     -> TIMED_WAITING
 *   epoll/poll/select with no timeout, pause, sigsuspend,
 *   sigwait: an event loop or a parked thread            -> IDLE
 *   everything else that blocks (condition variables,
 *   pipe/socket reads, accept, connect, wait, disk I/O)  -> WAITING */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sampler_int.h"

#define MAX_FRAMES 1024

static struct cgprof__sample blocked;   /* one at a time, agent thread only */

/* A thread parked at the same place as at its previous sample (same system
 * call, arguments, registers and stack bytes) has the same stack: its
 * previous leaf is reused instead of unwinding again. Most threads of an
 * idle process are such threads. Cleared when the profile is reset. */
#define CACHE_SLOTS 1024
static struct state_cache {
    pid_t tid;
    long nr;
    uint64_t args[6], sp, pc, hash;
    uint32_t len;
    uint64_t cpu_ns;            /* thread CPU time at that sample */
    enum cgprof_counter counter;
    struct cgprof_node *leaf;
} cache[CACHE_SLOTS];

/* CPU time of any thread of this process through its CPU-time clock: one
 * cheap system call, no /proc lookup. 0 when it cannot be read. */
static uint64_t thread_cpu_ns(pid_t tid)
{
    struct timespec ts;
    clockid_t clk = (clockid_t)((~(unsigned)tid << 3) | 6);
    if (clock_gettime(clk, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void cgprof__states_forget(void)
{
    memset(cache, 0, sizeof(cache));
}

static uint64_t hash_bytes(const unsigned char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
static uint64_t pcs[MAX_FRAMES];
static const char *frames[MAX_FRAMES];

struct syscall_info {
    bool running;               /* "running": on a CPU or runnable */
    long nr;                    /* -1: blocked outside a system call */
    uint64_t args[6];
    uint64_t sp, pc;
};

static int read_small(int dirfd, const char *path, char *buf, size_t n)
{
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t got = read(fd, buf, n - 1);
    close(fd);
    if (got <= 0)
        return CGPROF_EIO;
    buf[got] = '\0';
    return 0;
}

static int read_syscall(int dirfd, pid_t tid, struct syscall_info *si)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "%d/syscall", (int)tid);
    if (read_small(dirfd, path, buf, sizeof(buf)) != 0)
        return CGPROF_EIO;
    memset(si, 0, sizeof(*si));
    if (strncmp(buf, "running", 7) == 0) {
        si->running = true;
        return 0;
    }
    char *p = buf, *end;
    si->nr = strtol(p, &end, 10);
    if (end == p)
        return CGPROF_EPARSE;
    p = end;
    uint64_t v[8];
    int n = 0;
    while (n < 8) {
        unsigned long long x = strtoull(p, &end, 16);
        if (end == p)
            break;
        v[n++] = x;
        p = end;
    }
    if (si->nr == -1 && n == 2) {
        si->sp = v[0];
        si->pc = v[1];
        return 0;
    }
    if (n != 8)
        return CGPROF_EPARSE;
    memcpy(si->args, v, sizeof(si->args));
    si->sp = v[6];
    si->pc = v[7];
    return 0;
}

static bool same_syscall(const struct syscall_info *a, const struct syscall_info *b)
{
    return a->running == b->running && a->nr == b->nr && a->sp == b->sp &&
           a->pc == b->pc && memcmp(a->args, b->args, sizeof(a->args)) == 0;
}

/* Classification from the system call alone. Tests: test/unit/sampler/test_states.c */
CGPROF_STATIC enum cgprof_counter cgprof__states_classify_syscall(long nr, const uint64_t *a)
{
    switch (nr) {
    case SYS_nanosleep:
    case SYS_clock_nanosleep:
        return CGPROF_COUNTER_TIMED_WAITING;
    case SYS_futex: {
        unsigned cmd = (unsigned)a[1] & 0x7f;
        if (cmd == 6 /* FUTEX_LOCK_PI */ || cmd == 13 /* FUTEX_LOCK_PI2 */)
            return CGPROF_COUNTER_BLOCKED;
        return a[3] ? CGPROF_COUNTER_TIMED_WAITING : CGPROF_COUNTER_WAITING;
    }
    case SYS_poll:
    case SYS_epoll_wait:
    case SYS_epoll_pwait:
        return (int)(uint32_t)(nr == SYS_poll ? a[2] : a[3]) < 0 ? CGPROF_COUNTER_IDLE
                                                                  : CGPROF_COUNTER_TIMED_WAITING;
    case SYS_ppoll:
        return a[2] ? CGPROF_COUNTER_TIMED_WAITING : CGPROF_COUNTER_IDLE;
    case SYS_select:
    case SYS_pselect6:
        return a[4] ? CGPROF_COUNTER_TIMED_WAITING : CGPROF_COUNTER_IDLE;
#ifdef SYS_epoll_pwait2
    case SYS_epoll_pwait2:
        return a[3] ? CGPROF_COUNTER_TIMED_WAITING : CGPROF_COUNTER_IDLE;
#endif
    case SYS_rt_sigtimedwait:
        return a[2] ? CGPROF_COUNTER_TIMED_WAITING : CGPROF_COUNTER_IDLE;
    case SYS_pause:
    case SYS_rt_sigsuspend:
        return CGPROF_COUNTER_IDLE;
    case SYS_recvmmsg:
        return a[4] ? CGPROF_COUNTER_TIMED_WAITING : CGPROF_COUNTER_WAITING;
    case SYS_semtimedop:
        return a[3] ? CGPROF_COUNTER_TIMED_WAITING : CGPROF_COUNTER_WAITING;
    case SYS_io_getevents:
        return a[4] ? CGPROF_COUNTER_TIMED_WAITING : CGPROF_COUNTER_WAITING;
    default:
        return CGPROF_COUNTER_WAITING;
    }
}

static bool frame_has(const char *frame, const char *const *names)
{
    const char *fn = strchr(frame, ':');
    fn = fn ? fn + 1 : frame;
    for (; *names; names++)
        if (strcmp(fn, *names) == 0)
            return true;
    return false;
}

/* The stack refines the system call: a futex wait under a lock function
 * is BLOCKED; under a condition variable it is WAITING (or TIMED_WAITING
 * for the timed variants, whatever the futex looked like). frames[] is
 * root first; the functions that matter sit near the leaf. */
CGPROF_STATIC enum cgprof_counter cgprof__states_refine(enum cgprof_counter c,
                                                        const char *const *fr, size_t n)
{
    static const char *const locks[] = {
        "pthread_mutex_lock", "__pthread_mutex_lock", "___pthread_mutex_lock",
        "__lll_lock_wait", "__lll_lock_wait_private", "pthread_mutex_timedlock",
        "__pthread_mutex_clocklock_common", "pthread_rwlock_rdlock", "pthread_rwlock_wrlock",
        "__pthread_rwlock_rdlock", "__pthread_rwlock_wrlock", "___pthread_rwlock_rdlock",
        "___pthread_rwlock_wrlock", "pthread_spin_lock", "flockfile", "_IO_flockfile",
        "std::mutex::lock", "std::mutex::lock()", NULL
    };
    static const char *const timed[] = {
        "pthread_cond_timedwait", "___pthread_cond_timedwait", "__pthread_cond_timedwait",
        "pthread_cond_clockwait", "___pthread_cond_clockwait", "__pthread_cond_clockwait", NULL
    };
    static const char *const untimed[] = {
        "pthread_cond_wait", "___pthread_cond_wait", "__pthread_cond_wait",
        "pthread_join", "___pthread_join", "sem_wait", "__new_sem_wait", NULL
    };
    size_t lo = n > 12 ? n - 12 : 0;
    for (size_t i = n; i-- > lo;) {
        if (frame_has(fr[i], locks))
            return CGPROF_COUNTER_BLOCKED;
        if (frame_has(fr[i], timed))
            return CGPROF_COUNTER_TIMED_WAITING;
        if (frame_has(fr[i], untimed))
            return CGPROF_COUNTER_WAITING;
    }
    return c;
}

/* Copies the blocked thread's stack. */
static bool capture_blocked(pid_t pid, pid_t tid, const struct syscall_info *si)
{
    struct cgprof__sample *s = &blocked;
    memset(s->regs, 0, sizeof(s->regs));
    s->regs[7] = si->sp;            /* RSP */
    s->regs[16] = si->pc;           /* RIP */
    s->tid = tid;
    s->weight = 1;
    s->kind = CGPROF__SAMPLE_STACK;
    s->stack_start = si->sp;
    size_t want = CGPROF__STACK_COPY;
    uintptr_t lo, hi;
    if (cgprof__threads_stack_bounds(tid, &lo, &hi) && si->sp >= lo && si->sp < hi &&
        hi - si->sp < want)
        want = hi - si->sp;
    struct iovec local = { s->stack, want };
    struct iovec remote[CGPROF__STACK_COPY / 4096 + 1];
    size_t n = 0, off = 0;
    while (off < want && n < CGPROF_ARRAY_SIZE(remote)) {
        uintptr_t a = (uintptr_t)si->sp + off;
        size_t chunk = 4096 - (a & 4095);
        if (chunk > want - off)
            chunk = want - off;
        remote[n].iov_base = (void *)a;
        remote[n].iov_len = chunk;
        n++;
        off += chunk;
    }
    ssize_t got = syscall(SYS_process_vm_readv, (long)pid, &local, 1UL, remote,
                          (unsigned long)n, 0UL);
    if (got <= 0)
        return false;
    s->stack_len = (uint32_t)got;
    return true;
}

/* The thread is still in the same system call as when its stack pointer
 * was read: the copy is consistent. */
static bool still_blocked(int dirfd, pid_t tid, const struct syscall_info *si)
{
    struct syscall_info again;
    return read_syscall(dirfd, tid, &again) == 0 && same_syscall(si, &again);
}

/* Tests: test/integration/states.sh */
size_t cgprof_sampler_sample_states(struct cgprof_profile *p, size_t max_depth)
{
    static bool unwinder_ready;
    if (!unwinder_ready) {
        if (cgprof__unwind_init() != 0)
            return 0;
        unwinder_ready = true;
    }
    int dirfd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return 0;
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return 0;
    }
    if (max_depth == 0 || max_depth > MAX_FRAMES)
        max_depth = MAX_FRAMES;
    cgprof__modules_refresh(false);
    pid_t pid = getpid();
    size_t seen = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        pid_t tid = (pid_t)atoi(de->d_name);
        if (cgprof__threads_is_own(tid))
            continue;
        /* A thread that used no CPU since its previous sample never ran:
         * it is still blocked where it was, with the same stack. */
        struct state_cache *ce = &cache[(unsigned)tid % CACHE_SLOTS];
        uint64_t cpu = thread_cpu_ns(tid);
        if (ce->tid == tid && ce->leaf && cpu != 0 && cpu == ce->cpu_ns) {
            ce->leaf->counts[ce->counter]++;
            seen++;
            continue;
        }
        /* /proc/T/syscall says "running" for a thread on a CPU or runnable
         * (the CPU sampler's business); otherwise it is blocked. */
        struct syscall_info si;
        if (read_syscall(dirfd, tid, &si) != 0 || si.running)
            continue;
        enum cgprof_counter c = si.nr >= 0 ? cgprof__states_classify_syscall(si.nr, si.args)
                                           : CGPROF_COUNTER_WAITING;
        size_t nf = 0;
        bool captured = si.sp && capture_blocked(pid, tid, &si);
        uint64_t h = captured ? hash_bytes(blocked.stack, blocked.stack_len) : 0;
        /* Same place, same stack bytes as last time: the same stack, even
         * if the thread woke and blocked again in between. */
        if (captured && ce->tid == tid && ce->leaf && ce->nr == si.nr && ce->sp == si.sp &&
            ce->pc == si.pc && ce->len == blocked.stack_len && ce->hash == h &&
            memcmp(ce->args, si.args, sizeof(si.args)) == 0) {
            ce->leaf->counts[ce->counter]++;
            ce->cpu_ns = cpu;
            seen++;
            continue;
        }
        captured = captured && still_blocked(dirfd, tid, &si);
        if (captured) {
            bool complete;
            size_t np = cgprof__unwind(&blocked, pcs, MAX_FRAMES, &complete);
            size_t keep = np < max_depth ? np : max_depth;
            for (size_t i = 0; i < keep; i++) {
                const char *name = cgprof__modules_frame_name(pcs[np - 1 - i]);
                frames[nf++] = name ? name : "[unknown]";
            }
            if (np > keep)
                frames[nf - 1] = "<Truncated>";
            c = cgprof__states_refine(c, frames, nf);
        }
        if (nf == 0)
            frames[nf++] = "[unknown]";
        struct cgprof_node *leaf = NULL;
        if (cgprof_profile_add_stack_leaf(p, frames, nf, c, 1, &leaf) == 0) {
            seen++;
            if (captured) {
                *ce = (struct state_cache){ .tid = tid, .nr = si.nr, .sp = si.sp, .pc = si.pc,
                                            .hash = h, .len = blocked.stack_len,
                                            .cpu_ns = cpu, .counter = c, .leaf = leaf };
                memcpy(ce->args, si.args, sizeof(si.args));
            }
        }
    }
    closedir(d);
    return seen;
}
