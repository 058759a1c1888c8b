/* The thread table and per-thread CPU timers. Every thread of the process
 * gets one timer_create() timer on its own CPU-time clock, delivered to
 * that thread only (SIGEV_THREAD_ID), with a random first expiry so short
 * threads are sampled fairly. Threads are found three ways: the thread that
 * starts the sampler, new threads through the pthread_create interposer
 * (cgprof_sampler_thread_begin, from their first instruction), and a
 * /proc/self/task scan for everything else (raw clone, threads that existed
 * before us). The table is a fixed array so the handler can trust a pointer
 * into it; changes happen under one mutex, never in the handler. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sampler_int.h"

static struct cgprof__thread table[CGPROF__MAX_THREADS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned table_high;          /* entries [0, table_high) may be used */
static unsigned live_threads;
static uint64_t threads_seen;
static unsigned sample_hz = 100;
static pid_t agent_tid;
static pthread_key_t exit_key;
static bool exit_key_ok;
static enum cgprof__engine engine_pref;
static bool perf_unavailable;        /* perf_event_open refused: timers only */
static bool perf_exclude_kernel = true; /* see arm_perf_locked */
static unsigned perf_fds, perf_fd_limit;
#define FD_MAP_SIZE 65536
static _Atomic uint16_t fd_map[FD_MAP_SIZE];   /* fd -> entry index + 1 */

/* Async-signal-safe. */
bool cgprof__thread_is_entry_sigsafe(const void *p)
{
    const char *c = p, *b = (const char *)table;
    return c >= b && c < b + sizeof(table) &&
           (size_t)(c - b) % sizeof(table[0]) == 0;
}

static pid_t gettid_raw(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* The thread's id as the handler sees it, set when the thread registers
 * itself (initial-exec TLS: no allocation, safe in the handler). */
static __thread pid_t self_tid __attribute__((tls_model("initial-exec")));

/* Async-signal-safe. */
pid_t cgprof__thread_self_tid_sigsafe(void)
{
    pid_t t = self_tid;
    return t ? t : (pid_t)syscall(SYS_gettid);
}

/* The CPU-time clock of any thread of this process (the kernel's
 * MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)), so the agent can arm timers
 * for threads it did not start. */
static clockid_t thread_cpu_clock(pid_t tid)
{
    return (clockid_t)((~(unsigned)tid << 3) | 6);
}

static struct cgprof__thread *find_locked(pid_t tid)
{
    for (unsigned i = 0; i < table_high; i++)
        if (atomic_load_explicit(&table[i].tid, memory_order_relaxed) == tid)
            return &table[i];
    return NULL;
}

static struct cgprof__thread *alloc_locked(pid_t tid)
{
    for (unsigned i = 0; i < CGPROF__MAX_THREADS; i++) {
        if (atomic_load_explicit(&table[i].tid, memory_order_relaxed) == 0) {
            struct cgprof__thread *t = &table[i];
            t->stack_lo = t->stack_hi = 0;
            t->has_timer = false;
            t->armed = false;
            t->perf_fd = -1;
            t->seen = true;
            atomic_store(&t->tid, tid);
            if (i >= table_high)
                table_high = i + 1;
            live_threads++;
            threads_seen++;
            return t;
        }
    }
    return NULL;
}

/* Closes t's perf event, but only if the descriptor still is our event:
 * the host may have closed it and reused the number (closefrom, dup2). */
static void perf_close_locked(struct cgprof__thread *t)
{
    if (t->perf_fd < 0)
        return;
    uint64_t id = 0;
    if (t->perf_fd < FD_MAP_SIZE)
        atomic_store(&fd_map[t->perf_fd], 0);
    if (ioctl(t->perf_fd, PERF_EVENT_IOC_ID, &id) == 0 && id == t->perf_id)
        close(t->perf_fd);
    t->perf_fd = -1;
    perf_fds--;
}

static void disarm_locked(struct cgprof__thread *t)
{
    if (t->has_timer) {
        timer_delete(t->timer);
        t->has_timer = false;
    }
    perf_close_locked(t);
}

/* Async-signal-safe. */
struct cgprof__thread *cgprof__thread_from_fd_sigsafe(int fd)
{
    if (fd < 0 || fd >= FD_MAP_SIZE)
        return NULL;
    unsigned idx = atomic_load_explicit(&fd_map[fd], memory_order_acquire);
    return idx ? &table[idx - 1] : NULL;
}

/* Async-signal-safe. */
void cgprof__thread_perf_rearm_sigsafe(struct cgprof__thread *t)
{
    int fd = t->perf_fd;
    if (fd < 0)
        return;
    if (atomic_exchange_explicit(&t->perf_first, false, memory_order_relaxed)) {
        uint64_t period = t->period_ns;
        ioctl(fd, PERF_EVENT_IOC_PERIOD, &period);
    }
    ioctl(fd, PERF_EVENT_IOC_REFRESH, 1);
}

/* Expiries due by now: the first after first_ns of CPU, then one per
 * period. */
static uint64_t periods_due(const struct cgprof__thread *t, uint64_t cpu_now)
{
    if (cpu_now < t->arm_cpu_ns + t->first_ns || t->period_ns == 0)
        return 0;
    return (cpu_now - t->arm_cpu_ns - t->first_ns) / t->period_ns + 1;
}

/* Async-signal-safe. */
uint32_t cgprof__thread_take_periods_sigsafe(struct cgprof__thread *t)
{
    struct timespec ts;
    if (!t->armed || clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
        atomic_fetch_add_explicit(&t->delivered, 1, memory_order_relaxed);
        return 1;
    }
    uint64_t due = periods_due(t, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    uint64_t done = atomic_load_explicit(&t->delivered, memory_order_relaxed);
    uint64_t w = due > done ? due - done : 1;
    if (w > 10000)
        w = 10000;
    atomic_fetch_add_explicit(&t->delivered, w, memory_order_relaxed);
    return (uint32_t)w;
}

static uint64_t cpu_of(pid_t tid, bool self)
{
    struct timespec ts;
    if (clock_gettime(self ? CLOCK_THREAD_CPUTIME_ID : thread_cpu_clock(tid), &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sets the accounting fields of t just before its engine is armed. */
static void account_begin(struct cgprof__thread *t, uint64_t first, bool self)
{
    t->period_ns = 1000000000ull / sample_hz;
    t->first_ns = first;
    t->arm_cpu_ns = cpu_of(atomic_load(&t->tid), self);
    atomic_store(&t->delivered, 0);
    t->armed = true;
}

static long perf_open(struct perf_event_attr *attr, pid_t tid)
{
    return syscall(SYS_perf_event_open, attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

/* Arms a task-clock perf event for t that signals t itself (F_SETOWN_EX)
 * with signo after one period of its CPU time, re-enabled by the handler
 * (PERF_EVENT_IOC_REFRESH), so no ring buffer is needed. exclude_kernel:
 * a period ending in kernel mode is skipped, so the signal is only ever
 * raised while the thread runs user code and is delivered on the way back
 * to it. Raised in kernel mode, it could be pending when the thread then
 * blocks, and nanosleep/poll/select/epoll_wait would return EINTR (they
 * do not restart even with SA_RESTART). The cost: time spent in system
 * calls is not sampled by this engine. */
static int arm_perf_locked(struct cgprof__thread *t, int signo, bool self)
{
    pid_t tid = atomic_load(&t->tid);
    uint64_t period = 1000000000ull / sample_hz;
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.sample_period = 1 + cgprof_random_u64() % period;
    attr.disabled = 1;
    attr.exclude_hv = 1;
    attr.exclude_kernel = perf_exclude_kernel;
    long fd = perf_open(&attr, tid);
    if (fd < 0 && (errno == EACCES || errno == EPERM) && !perf_exclude_kernel) {
        perf_exclude_kernel = true;
        attr.exclude_kernel = 1;
        fd = perf_open(&attr, tid);
    }
    if (fd < 0)
        return -errno;
    if (fd >= FD_MAP_SIZE) {
        close((int)fd);
        return -EMFILE;
    }
    struct f_owner_ex owner = { F_OWNER_TID, tid };
    uint64_t id = 0;
    if (fcntl((int)fd, F_SETFL, O_ASYNC) != 0 || fcntl((int)fd, F_SETSIG, signo) != 0 ||
        fcntl((int)fd, F_SETOWN_EX, &owner) != 0 ||
        ioctl((int)fd, PERF_EVENT_IOC_ID, &id) != 0) {
        int err = -errno;
        close((int)fd);
        return err;
    }
    t->perf_fd = (int)fd;
    t->perf_id = id;
    account_begin(t, attr.sample_period, self);
    atomic_store(&t->perf_first, true);
    atomic_store_explicit(&fd_map[fd], (uint16_t)(t - table + 1), memory_order_release);
    perf_fds++;
    if (ioctl((int)fd, PERF_EVENT_IOC_REFRESH, 1) != 0) {
        int err = -errno;
        perf_close_locked(t);
        return err;
    }
    return 0;
}

void cgprof__threads_set_engine(enum cgprof__engine e)
{
    engine_pref = e;
}

static void free_locked(struct cgprof__thread *t)
{
    disarm_locked(t);
    t->stack_lo = t->stack_hi = 0;
    atomic_store(&t->tid, 0);
    live_threads--;
}

/* Creates and starts the timer of t on signal signo. */
static int arm_timer_locked(struct cgprof__thread *t, int signo, bool self)
{
    struct sigevent sev;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = signo;
    sev.sigev_value.sival_ptr = t;
    sev._sigev_un._tid = atomic_load(&t->tid);
    clockid_t clk = self ? CLOCK_THREAD_CPUTIME_ID : thread_cpu_clock(atomic_load(&t->tid));
    if (timer_create(clk, &sev, &t->timer) != 0)
        return -errno;
    t->has_timer = true;
    long period = 1000000000L / (long)sample_hz;
    long first = 1 + (long)(cgprof_random_u64() % (uint64_t)period);
    account_begin(t, (uint64_t)first, self);
    struct itimerspec its = {
        .it_interval = { period / 1000000000L, period % 1000000000L },
        .it_value = { first / 1000000000L, first % 1000000000L },
    };
    if (timer_settime(t->timer, 0, &its, NULL) != 0) {
        int err = -errno;
        disarm_locked(t);
        return err;
    }
    return 0;
}

/* Arms t with the perf engine when allowed and descriptors are to spare,
 * else with a timer. */
static int arm_locked(struct cgprof__thread *t, int signo, bool self)
{
    if (engine_pref != CGPROF__ENGINE_TIMER && !perf_unavailable &&
        perf_fds < perf_fd_limit) {
        int rc = arm_perf_locked(t, signo, self);
        if (rc == 0)
            return 0;
        if (rc == -EACCES || rc == -EPERM || rc == -ENOENT || rc == -ENOSYS ||
            rc == -EOPNOTSUPP || rc == -EINVAL) {
            perf_unavailable = true;
            cgprof_info("perf_event_open unavailable (%s): CPU sampling uses "
                        "per-thread timers, whose resolution is the kernel tick",
                        cgprof_strerror(rc));
        }
    }
    return arm_timer_locked(t, signo, self);
}

/* Exported by the dynamic loader: where the initial thread's stack began. */
extern void *__libc_stack_end;

static void stack_bounds_of_self(struct cgprof__thread *t)
{
    /* The initial thread: pthread_getattr_np would parse /proc/self/maps
     * (slow, and at every process start); its frames all lie below
     * __libc_stack_end, and it cannot grow past RLIMIT_STACK. */
    if (gettid_raw() == getpid() && __libc_stack_end) {
        struct rlimit rl;
        uintptr_t hi = (uintptr_t)__libc_stack_end;
        uintptr_t size = 8u << 20;
        if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
            size = rl.rlim_cur;
        t->stack_lo = hi > size ? hi - size : 0;
        t->stack_hi = hi;
        return;
    }
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return;
    void *addr;
    size_t size;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
        t->stack_lo = (uintptr_t)addr;
        t->stack_hi = (uintptr_t)addr + size;
    }
    pthread_attr_destroy(&attr);
}

static void on_thread_exit(void *p)
{
    CGPROF_UNUSED(p);
    cgprof_sampler_thread_end();
}

int cgprof__threads_init(unsigned hz, pid_t agent)
{
    sample_hz = hz ? hz : 100;
    /* At most a quarter of the descriptor limit, and 1024, go to perf
     * events; threads past that get timers. */
    struct rlimit rl;
    perf_fd_limit = 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        perf_fd_limit = (unsigned)(rl.rlim_cur / 4 < 1024 ? rl.rlim_cur / 4 : 1024);
    else
        perf_fd_limit = 1024;
    if (engine_pref == CGPROF__ENGINE_PERF)
        perf_unavailable = false;
    if (agent)
        agent_tid = agent;
    if (!exit_key_ok && pthread_key_create(&exit_key, on_thread_exit) == 0)
        exit_key_ok = true;
    return 0;
}

/* Registers the calling thread with known stack bounds and arms its timer.
 * Tests: test/integration/shortthreads.sh */
int cgprof__threads_add_self(int signo)
{
    pid_t tid = gettid_raw();
    self_tid = tid;
    if (cgprof__threads_is_own(tid))
        return 0;
    struct cgprof__thread scratch;
    memset(&scratch, 0, sizeof(scratch));
    stack_bounds_of_self(&scratch);      /* may allocate: outside the lock */
    pthread_mutex_lock(&table_lock);
    struct cgprof__thread *t = find_locked(tid);
    if (!t)
        t = alloc_locked(tid);
    int rc = 0;
    if (t) {
        t->stack_lo = scratch.stack_lo;
        t->stack_hi = scratch.stack_hi;
        if (!t->has_timer && t->perf_fd < 0)
            rc = arm_locked(t, signo, true);
    } else {
        rc = CGPROF_ETOOBIG;
    }
    pthread_mutex_unlock(&table_lock);
    if (exit_key_ok)
        pthread_setspecific(exit_key, (void *)1);
    return rc;
}

/* The periods a thread ran after its last signal would be lost when it
 * exits; they go to the agent as a tail record for its last stack. Only
 * threads that were sampled at least once have a stack to add them to. */
static void push_tail(struct cgprof__thread *t, pid_t tid)
{
    if (!t->armed || atomic_load(&t->delivered) == 0)
        return;
    uint64_t due = periods_due(t, cpu_of(tid, true));
    uint64_t done = atomic_load(&t->delivered);
    if (due <= done)
        return;
    struct cgprof__sample *s = cgprof__ring_claim_sigsafe();
    if (!s)
        return;
    s->kind = CGPROF__SAMPLE_TAIL;
    s->tid = tid;
    s->weight = (uint32_t)(due - done < 10000 ? due - done : 10000);
    s->stack_len = 0;
    cgprof__ring_publish_sigsafe(s);
}

void cgprof__threads_remove_self(void)
{
    pid_t tid = gettid_raw();
    /* No more of our signals on this thread once its entry is gone. */
    sigset_t set;
    sigemptyset(&set);
    int sig = cgprof__signal_current();
    if (sig > 0) {
        sigaddset(&set, sig);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
    }
    pthread_mutex_lock(&table_lock);
    struct cgprof__thread *t = find_locked(tid);
    if (t) {
        push_tail(t, tid);
        free_locked(t);
    }
    pthread_mutex_unlock(&table_lock);
}

/* Scans /proc/self/task: arms threads we have not seen, forgets those that
 * are gone. Returns the number of live threads. */
unsigned cgprof__threads_scan(int signo)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return live_threads;
    pthread_mutex_lock(&table_lock);
    for (unsigned i = 0; i < table_high; i++)
        table[i].seen = false;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        pid_t tid = (pid_t)atoi(de->d_name);
        if (tid <= 0 || cgprof__threads_is_own(tid))
            continue;
        struct cgprof__thread *t = find_locked(tid);
        if (!t) {
            t = alloc_locked(tid);
            if (t && arm_locked(t, signo, false) != 0) {
                free_locked(t);          /* it exited meanwhile */
                continue;
            }
        }
        if (t)
            t->seen = true;
    }
    closedir(d);
    for (unsigned i = 0; i < table_high; i++)
        if (atomic_load(&table[i].tid) != 0 && !table[i].seen)
            free_locked(&table[i]);
    unsigned n = live_threads;
    pthread_mutex_unlock(&table_lock);
    return n;
}

/* Re-creates every timer on a new signal (the host took the old one). */
void cgprof__threads_rearm_all(int signo)
{
    pid_t self = gettid_raw();
    pthread_mutex_lock(&table_lock);
    for (unsigned i = 0; i < table_high; i++) {
        struct cgprof__thread *t = &table[i];
        pid_t tid = atomic_load(&t->tid);
        if (tid == 0)
            continue;
        disarm_locked(t);
        if (arm_locked(t, signo, tid == self) != 0)
            free_locked(t);
    }
    pthread_mutex_unlock(&table_lock);
}

void cgprof__threads_disarm_all(void)
{
    pthread_mutex_lock(&table_lock);
    for (unsigned i = 0; i < table_high; i++)
        if (atomic_load(&table[i].tid) != 0)
            free_locked(&table[i]);
    pthread_mutex_unlock(&table_lock);
}

/* fork child: only the calling thread exists; timers are not inherited,
 * perf descriptors are (and watch the parent's threads): close them. */
void cgprof__threads_after_fork(void)
{
    self_tid = 0;                        /* the child's thread has a new id */
    pthread_mutex_init(&table_lock, NULL);
    for (unsigned i = 0; i < table_high; i++) {
        table[i].has_timer = false;
        perf_close_locked(&table[i]);
        atomic_store(&table[i].tid, 0);
    }
    perf_fds = 0;
    table_high = 0;
    live_threads = 0;
}

void cgprof__threads_stats(unsigned *live, uint64_t *seen)
{
    pthread_mutex_lock(&table_lock);
    *live = live_threads;
    *seen = threads_seen;
    pthread_mutex_unlock(&table_lock);
}

void cgprof__threads_set_agent(pid_t tid)
{
    agent_tid = tid;
}

#define MAX_OWN 8
static _Atomic pid_t own_tids[MAX_OWN];

bool cgprof__threads_stack_bounds(pid_t tid, uintptr_t *lo, uintptr_t *hi)
{
    pthread_mutex_lock(&table_lock);
    struct cgprof__thread *t = find_locked(tid);
    bool ok = t && t->stack_lo < t->stack_hi;
    if (ok) {
        *lo = t->stack_lo;
        *hi = t->stack_hi;
    }
    pthread_mutex_unlock(&table_lock);
    return ok;
}

/* Async-signal-safe: a lock-free scan (the heap sampler's allocation path
 * may run in a signal handler that interrupted a holder of table_lock).
 * Only the thread itself writes its bounds, so reading its own is safe.
 * Tests: test/unit/sampler/test_heap.c */
bool cgprof__threads_bounds_sigsafe(pid_t tid, uintptr_t *lo, uintptr_t *hi)
{
    unsigned high = __atomic_load_n(&table_high, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < high && i < CGPROF__MAX_THREADS; i++) {
        if (atomic_load_explicit(&table[i].tid, memory_order_acquire) != tid)
            continue;
        uintptr_t l = table[i].stack_lo, h = table[i].stack_hi;
        if (l >= h)
            return false;
        *lo = l;
        *hi = h;
        return true;
    }
    return false;
}

bool cgprof__threads_is_own(pid_t tid)
{
    if (tid == agent_tid)
        return true;
    for (unsigned i = 0; i < MAX_OWN; i++)
        if (atomic_load(&own_tids[i]) == tid)
            return true;
    return false;
}

void cgprof_sampler_exclude_self(void)
{
    pid_t tid = gettid_raw();
    for (unsigned i = 0; i < MAX_OWN; i++) {
        pid_t expected = 0;
        if (atomic_compare_exchange_strong(&own_tids[i], &expected, tid))
            break;
    }
    pthread_mutex_lock(&table_lock);
    struct cgprof__thread *t = find_locked(tid);
    if (t)
        free_locked(t);
    pthread_mutex_unlock(&table_lock);
}
