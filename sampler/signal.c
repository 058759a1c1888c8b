/* The profiling signal: choosing a free one (SIGPROF if unused, else a free
 * real-time signal from the top down), installing the handler with
 * SA_RESTART|SA_SIGINFO|SA_ONSTACK, and the handler itself. The handler
 * copies the interrupted registers and the live part of the stack into a
 * ring slot and returns; unwinding happens on the agent thread. Signals that
 * are not from our timers are chained to the previous handler. errno is
 * saved and restored; no locks, no allocation, no stdio in here. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "sampler_int.h"

static _Atomic int current_signo;
static _Atomic bool capture_active;
static struct sigaction previous[_NSIG];   /* what was there before us */

/* Async-signal-safe. Copies [from, from+len) of our own address space into
 * dst, stopping at the first unmapped page; returns the bytes copied. Used
 * when the thread's stack bounds are unknown. */
static size_t copy_unknown_sigsafe(void *dst, uintptr_t from, size_t len)
{
    struct iovec local = { dst, len };
    struct iovec remote[CGPROF__STACK_COPY / 4096 + 1];
    size_t n = 0, off = 0;
    while (off < len && n < CGPROF_ARRAY_SIZE(remote)) {
        uintptr_t a = from + off;
        size_t chunk = 4096 - (a & 4095);
        if (chunk > len - off)
            chunk = len - off;
        remote[n].iov_base = (void *)a;
        remote[n].iov_len = chunk;
        n++;
        off += chunk;
    }
    ssize_t got = syscall(SYS_process_vm_readv, (long)getpid(), &local, 1UL,
                          remote, (unsigned long)n, 0UL);
    return got > 0 ? (size_t)got : 0;
}

/* Async-signal-safe. Copies live stack. Under AddressSanitizer (unit
 * tests) the copy must not be checked: stacks hold redzones by design. */
#ifdef __SANITIZE_ADDRESS__
__attribute__((no_sanitize("address")))
static void copy_stack_sigsafe(void *dst, const void *src, size_t len)
{
    const volatile unsigned char *s = src;
    unsigned char *d = dst;
    for (size_t i = 0; i < len; i++)
        d[i] = s[i];
}
#else
static void copy_stack_sigsafe(void *dst, const void *src, size_t len)
{
    memcpy(dst, src, len);
}
#endif

/* Async-signal-safe. Tests: test/unit/sampler/test_sampler.c,
 * test/unit/sampler/test_heap.c */
void cgprof__sample_stack_sigsafe(struct cgprof__sample *s, uintptr_t sp, uintptr_t lo,
                                  uintptr_t hi)
{
    size_t len;
    s->stack_start = sp;
    if (lo < hi && sp >= lo && sp < hi) {
        len = hi - sp;
        if (len > CGPROF__STACK_COPY)
            len = CGPROF__STACK_COPY;
        copy_stack_sigsafe(s->stack, (const void *)sp, len);
    } else {
        len = copy_unknown_sigsafe(s->stack, sp, CGPROF__STACK_COPY);
    }
    s->stack_len = (uint32_t)len;
}

/* Async-signal-safe. Fills a slot from the interrupted context. */
static void capture_sigsafe(const ucontext_t *uc, const struct cgprof__thread *t,
                            uint32_t periods)
{
    struct cgprof__sample *s = cgprof__ring_claim_sigsafe();
    if (!s)
        return;
    const greg_t *g = uc->uc_mcontext.gregs;
    /* libunwind's x86_64 numbering */
    s->regs[0] = (uint64_t)g[REG_RAX];
    s->regs[1] = (uint64_t)g[REG_RDX];
    s->regs[2] = (uint64_t)g[REG_RCX];
    s->regs[3] = (uint64_t)g[REG_RBX];
    s->regs[4] = (uint64_t)g[REG_RSI];
    s->regs[5] = (uint64_t)g[REG_RDI];
    s->regs[6] = (uint64_t)g[REG_RBP];
    s->regs[7] = (uint64_t)g[REG_RSP];
    s->regs[8] = (uint64_t)g[REG_R8];
    s->regs[9] = (uint64_t)g[REG_R9];
    s->regs[10] = (uint64_t)g[REG_R10];
    s->regs[11] = (uint64_t)g[REG_R11];
    s->regs[12] = (uint64_t)g[REG_R12];
    s->regs[13] = (uint64_t)g[REG_R13];
    s->regs[14] = (uint64_t)g[REG_R14];
    s->regs[15] = (uint64_t)g[REG_R15];
    s->regs[16] = (uint64_t)g[REG_RIP];

    pid_t tid = cgprof__thread_self_tid_sigsafe();
    s->tid = tid;
    s->kind = CGPROF__SAMPLE_STACK;
    s->weight = periods;
    bool known = atomic_load_explicit(&t->tid, memory_order_relaxed) == tid;
    cgprof__sample_stack_sigsafe(s, (uintptr_t)g[REG_RSP], known ? t->stack_lo : 0,
                                 known ? t->stack_hi : 0);
    cgprof__ring_publish_sigsafe(s);
}

/* Async-signal-safe. Hands a signal that is not ours to whoever had the
 * signal before us; default and ignore dispositions are left alone (we
 * only take signals whose disposition was default or ignore). */
static void chain_sigsafe(int sig, siginfo_t *si, void *uc)
{
    const struct sigaction *old = &previous[sig];
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction)
            old->sa_sigaction(sig, si, uc);
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
    }
}

/* Async-signal-safe. */
static void handler_sigsafe(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    struct cgprof__thread *t;
    if (si && si->si_code == SI_TIMER && cgprof__thread_is_entry_sigsafe(si->si_value.sival_ptr)) {
        if (atomic_load_explicit(&capture_active, memory_order_relaxed))
            capture_sigsafe(uc, si->si_value.sival_ptr,
                            cgprof__thread_take_periods_sigsafe(si->si_value.sival_ptr));
    } else if (si && (si->si_code == POLL_HUP || si->si_code == POLL_IN) &&
               (t = cgprof__thread_from_fd_sigsafe(si->si_fd)) != NULL) {
        if (atomic_load_explicit(&capture_active, memory_order_relaxed)) {
            capture_sigsafe(uc, t, cgprof__thread_take_periods_sigsafe(t));
            cgprof__thread_perf_rearm_sigsafe(t);
        }
    } else {
        chain_sigsafe(sig, si, uc);
    }
    errno = saved;
}

static bool disposition_free(int sig, struct sigaction *old)
{
    if (sigaction(sig, NULL, old) != 0)
        return false;
    if (old->sa_flags & SA_SIGINFO)
        return old->sa_sigaction == handler_sigsafe;
    return old->sa_handler == SIG_DFL || old->sa_handler == SIG_IGN;
}

/* Picks SIGPROF when its disposition is default or ignore, else the
 * highest free real-time signal, and installs the handler there. Re-callable:
 * the agent moves to a new signal when the host takes ours.
 * Tests: test/integration/host_signals.sh */
int cgprof__signal_install(void)
{
    int avoid = atomic_load(&current_signo);
    struct sigaction old;
    int chosen = 0;
    if (avoid != SIGPROF && disposition_free(SIGPROF, &old))
        chosen = SIGPROF;
    for (int sig = SIGRTMAX - 1; !chosen && sig >= SIGRTMIN + 2; sig--)
        if (sig != avoid && disposition_free(sig, &old))
            chosen = sig;
    if (!chosen)
        return -EBUSY;
    if (!((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == handler_sigsafe))
        previous[chosen] = old;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = handler_sigsafe;
    sa.sa_flags = SA_RESTART | SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(chosen, &sa, NULL) != 0)
        return -errno;
    atomic_store(&current_signo, chosen);
    return chosen;
}

int cgprof__signal_current(void)
{
    return atomic_load(&current_signo);
}

bool cgprof__signal_still_ours(void)
{
    int sig = atomic_load(&current_signo);
    struct sigaction cur;
    if (sig == 0 || sigaction(sig, NULL, &cur) != 0)
        return false;
    return (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == handler_sigsafe;
}

void cgprof__signal_set_active(bool on)
{
    atomic_store(&capture_active, on);
}
