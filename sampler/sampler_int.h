/* Declarations shared by the files of sampler/ only (nothing outside this
 * folder includes it): the sample ring, the thread table, modules and
 * unwinding, symbol tables, perf maps and demangling. */
#ifndef CGPROF_SAMPLER_INT_H
#define CGPROF_SAMPLER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "sampler.h"

/* ---- symbol tables (symtab.c) ------------------------------------------ */

struct cgprof__symtab;

/* Builds a function-symbol table for the ELF file at path whose bytes are
 * mapped at image (len bytes): .symtab, else .dynsym; when the file has no
 * .symtab, a separate debug file found by build-id under
 * /usr/lib/debug/.build-id/ (or .gnu_debuglink) is used when present.
 * Addresses are link-time virtual addresses. NULL when nothing usable or
 * on OOM. Agent thread only. */
struct cgprof__symtab *cgprof__symtab_new(const char *path, const void *image, size_t len);
/* The function containing vaddr: its raw (possibly mangled) name, and its
 * start in *start when not NULL. NULL when no symbol covers vaddr. */
const char *cgprof__symtab_lookup(const struct cgprof__symtab *t, uint64_t vaddr,
                                  uint64_t *start);
size_t cgprof__symtab_count(const struct cgprof__symtab *t);
void cgprof__symtab_free(struct cgprof__symtab *t);

/* ---- JIT perf maps (perfmap.c) ----------------------------------------- */

struct cgprof__perfmap;

/* /tmp/perf-<pid>.map ("START SIZE name", hex, as Node --perf-basic-prof,
 * Python -X perf and JVM perf-map agents write it). */
struct cgprof__perfmap *cgprof__perfmap_new(pid_t pid);
/* Same for an explicit path (tests, or a map in another directory). */
struct cgprof__perfmap *cgprof__perfmap_new_path(const char *path);
/* Reads lines appended since the last call (the file only grows; a file
 * that shrank or was replaced is re-read whole). Returns entries added. */
int cgprof__perfmap_refresh(struct cgprof__perfmap *m);
/* Name of the entry covering addr (later entries win), or NULL. The name
 * stays valid until the map is freed or its file is found replaced. */
const char *cgprof__perfmap_lookup(const struct cgprof__perfmap *m, uint64_t addr);
void cgprof__perfmap_free(struct cgprof__perfmap *m);

/* ---- demangling (demangle.c) ------------------------------------------- */

/* Demangles C++ (Itanium, through the host's __cxa_demangle when libstdc++
 * is loaded) and Rust (legacy: hash suffix removed; v0: paths) names.
 * Returns a cgprof_malloc'd string, or NULL when name is not mangled or
 * cannot be demangled (the caller keeps the raw name). */
char *cgprof__demangle(const char *name);


/* ---- the sample ring (ring.c; handler-reachable) ----------------------- */

/* Registers in libunwind's x86_64 numbering (UNW_X86_64_RAX..RIP). */
#define CGPROF__NREGS 17
#define CGPROF__STACK_COPY (64 * 1024)
#define CGPROF__RING_SLOTS 64

/* A slot's state word: the state in its low two bits, above them a
 * generation that every claim bumps, so a stale ticket (below) cannot
 * cancel a slot that was reused. */
enum { CGPROF__SLOT_FREE = 0, CGPROF__SLOT_WRITING = 1, CGPROF__SLOT_READY = 2,
       CGPROF__SLOT_TAKEN = 3 };
#define CGPROF__SLOT_STATE(w) ((unsigned)(w) & 3u)
_Static_assert(CGPROF__RING_SLOTS <= 256, "tickets hold the slot index in 8 bits");

/* A slot holds a stack, or a thread's unsampled tail at its exit: periods
 * that ran out after its last signal, added to its last stack. */
enum { CGPROF__SAMPLE_STACK = 0, CGPROF__SAMPLE_TAIL = 1, CGPROF__SAMPLE_HEAP = 2 };

struct cgprof__sample {
    int kind;
    pid_t tid;
    /* 1 + timer overruns: CPU timers expire on scheduler ticks, so at rates
     * above the kernel's HZ one signal stands for several periods. */
    uint32_t weight;
    uint64_t regs[CGPROF__NREGS];
    /* CGPROF__SAMPLE_HEAP: the sampled allocation (heap.c). */
    uint64_t heap_addr, heap_size, heap_serial;
    uint64_t stack_start;       /* address of stack[0] in the sampled thread */
    uint32_t stack_len;
    unsigned char stack[CGPROF__STACK_COPY];
};

/* Maps the ring (agent side, once). Returns 0 or -errno. */
int cgprof__ring_init(void);
/* Async-signal-safe. Claims a free slot, or NULL (and counts a drop). */
struct cgprof__sample *cgprof__ring_claim_sigsafe(void);
/* Async-signal-safe. Publishes a slot filled by the handler. */
void cgprof__ring_publish_sigsafe(struct cgprof__sample *s);
/* Agent thread: the next ready slot at or after *cursor, or NULL. */
struct cgprof__sample *cgprof__ring_next_ready(unsigned *cursor);
/* Agent thread: takes a ready slot before reading it; false when it was
 * cancelled meanwhile (then it is not the agent's). */
bool cgprof__ring_take(struct cgprof__sample *s);
/* Agent thread: frees a ready or taken slot. */
void cgprof__ring_release(struct cgprof__sample *s);
/* Async-signal-safe. The ticket of a claimed slot: its generation and
 * index, never 0. */
uint32_t cgprof__ring_ticket_sigsafe(const struct cgprof__sample *s);
/* Async-signal-safe. Withdraws the ready slot of ticket before the agent
 * takes it (a sampled block freed first: the agent need never see it);
 * false when the agent has it or the slot was reused. */
bool cgprof__ring_cancel_sigsafe(uint32_t ticket);
uint64_t cgprof__ring_dropped(void);
/* Async-signal-safe: wakes the agent blocked in cgprof_sampler_wait. */
void cgprof__ring_wake_sigsafe(void);
int cgprof__ring_wake_fd(void);
void cgprof__ring_wake_clear(void);
/* fork child: every slot back to free. */
void cgprof__ring_reset(void);

/* ---- thread table (threads.c) ------------------------------------------ */

#define CGPROF__MAX_THREADS 4096

struct cgprof__thread {
    _Atomic pid_t tid;          /* 0 = free entry */
    uintptr_t stack_lo, stack_hi; /* 0,0 = unknown bounds */
    timer_t timer;              /* timer engine */
    bool has_timer;
    bool armed;                 /* accounting fields are valid */
    bool seen;                  /* mark for /proc scans */
    int perf_fd;                /* perf engine: task-clock event, or -1 */
    uint64_t perf_id;           /* its PERF_EVENT_IOC_ID, checked before close */
    uint64_t perf_period_ns;
    _Atomic bool perf_first;    /* first period was shortened at random */
    /* Accounting shared by both engines: a signal stands for every period
     * of the thread's CPU time that elapsed since the previous one. */
    uint64_t arm_cpu_ns;        /* thread CPU time when armed */
    uint64_t first_ns;          /* random first period */
    uint64_t period_ns;
    _Atomic uint64_t delivered; /* periods accounted so far */
};

/* CPU-time engines. The timer engine (timer_create on the thread's CPU
 * clock) works everywhere but its timers expire on scheduler ticks, so a
 * thread shorter than a tick may never be sampled. The perf engine (a
 * task-clock perf event per thread, hrtimer-driven, signalling its own
 * thread) samples at the exact rate; it is used when perf_event_open is
 * allowed and the thread count leaves file descriptors to spare. */
enum cgprof__engine { CGPROF__ENGINE_AUTO = 0, CGPROF__ENGINE_PERF, CGPROF__ENGINE_TIMER };
void cgprof__threads_set_engine(enum cgprof__engine e);
/* Async-signal-safe: the entry whose perf event is fd, or NULL. */
struct cgprof__thread *cgprof__thread_from_fd_sigsafe(int fd);
/* Async-signal-safe: re-enables t's perf event for one more period. */
void cgprof__thread_perf_rearm_sigsafe(struct cgprof__thread *t);
/* Async-signal-safe, on the thread itself: how many periods this signal
 * stands for. Periods whose expiry raised no signal (timer expiries
 * between scheduler ticks, perf periods that ended in kernel mode) are
 * counted here and so attributed to the user stack now on the thread. */
uint32_t cgprof__thread_take_periods_sigsafe(struct cgprof__thread *t);

/* Async-signal-safe: the calling thread's id (cached once it registered). */
pid_t cgprof__thread_self_tid_sigsafe(void);
/* Async-signal-safe: true when p points at an entry of the table. */
bool cgprof__thread_is_entry_sigsafe(const void *p);
int cgprof__threads_init(unsigned hz, pid_t agent_tid);
void cgprof__threads_set_agent(pid_t tid);
/* True for the agent and the threads marked with cgprof_sampler_exclude_self. */
bool cgprof__threads_is_own(pid_t tid);
/* states.c: forget cached leaves (the profile was reset). */
void cgprof__states_forget(void);
#ifdef CGPROF_UNIT_TEST
enum cgprof_counter cgprof__states_classify_syscall(long nr, const uint64_t *args);
enum cgprof_counter cgprof__states_refine(enum cgprof_counter c, const char *const *frames,
                                          size_t n);
#endif
/* Known stack bounds of a thread (registered through pthread_create or the
 * thread that started the sampler). */
bool cgprof__threads_stack_bounds(pid_t tid, uintptr_t *lo, uintptr_t *hi);
int cgprof__threads_add_self(int signo);
void cgprof__threads_remove_self(void);
unsigned cgprof__threads_scan(int signo);
void cgprof__threads_rearm_all(int signo);
void cgprof__threads_disarm_all(void);
void cgprof__threads_after_fork(void);
void cgprof__threads_stats(unsigned *live, uint64_t *seen);

/* Async-signal-safe, lock-free: the registered stack bounds of thread
 * tid, false when unknown. */
bool cgprof__threads_bounds_sigsafe(pid_t tid, uintptr_t *lo, uintptr_t *hi);

/* ---- heap sampling (heap.c) -------------------------------------------- */

/* Agent thread: unwinds a CGPROF__SAMPLE_HEAP sample and gives the live
 * allocation its site. */
void cgprof__heap_attribute(const struct cgprof__sample *s);
/* Total capacity: the smallest of the cgroup memory limit, RLIMIT_AS,
 * RLIMIT_DATA and physical memory. */
uint64_t cgprof__heap_capacity(void);
/* Pieces exposed for the unit tests. */
double cgprof__heap_ln(double u);
double cgprof__heap_one_minus_exp_neg(double x);
void cgprof__heap_estimate(uint64_t size, uint64_t iv, double *bytes, double *objects);
int64_t cgprof__heap_next_gap(uint64_t *rng, uint64_t iv);
int cgprof__heap_set_init(void);
bool cgprof__heap_set_insert_sigsafe(uint64_t addr, uint64_t size, uint64_t serial, uint32_t site);
bool cgprof__heap_set_remove_sigsafe(uint64_t addr);
size_t cgprof__heap_set_count(void);

/* ---- signal handling (signal.c) ---------------------------------------- */

/* Async-signal-safe: copies the live stack from sp into s (stack_start,
 * stack, stack_len; at most CGPROF__STACK_COPY bytes): up to hi when
 * [lo, hi) is the thread's known stack and holds sp, else as far as memory
 * is mapped. Unchecked under ASan (stacks hold redzones by design). Used by
 * the CPU signal handler and the heap sampler. */
void cgprof__sample_stack_sigsafe(struct cgprof__sample *s, uintptr_t sp, uintptr_t lo,
                                  uintptr_t hi);

/* Picks and installs the handler; returns the signal number or -errno. */
int cgprof__signal_install(void);
int cgprof__signal_current(void);
/* True when the disposition of our signal is still our handler. */
bool cgprof__signal_still_ours(void);
/* Enables / disables capture (late signals are then ignored). */
void cgprof__signal_set_active(bool on);

/* ---- modules and unwinding (modules.c, unwind.c) ----------------------- */

struct cgprof__module;

/* Agent thread: refreshes the module table when dlopen/dlclose happened
 * (cheap check) or when forced. Returns true when it changed. */
bool cgprof__modules_refresh(bool force);
/* The module whose mapped segments cover addr, or NULL. */
struct cgprof__module *cgprof__modules_find(uint64_t addr);
/* Reads 8 bytes at runtime address addr from our private copy of the
 * file-backed image of a module (never from the host's mapping, which a
 * dlclose may remove). Returns 0 or -1. */
int cgprof__modules_read(uint64_t addr, uint64_t *val);
/* Unwind-table lookup data for a module: runtime address of
 * .eh_frame_hdr's search table, its FDE count, and the text range. */
int cgprof__module_eh_table(const struct cgprof__module *m, uint64_t *hdr,
                            uint64_t *table, uint64_t *count,
                            uint64_t *start_ip, uint64_t *end_ip);
/* "module:function" or "module+0xOFF" for a code address (ip already
 * adjusted to point inside the call instruction). Cached; the string
 * lives until the next module change. */
const char *cgprof__modules_frame_name(uint64_t ip);
uint64_t cgprof__modules_generation(void);
void cgprof__modules_cleanup(void);

int cgprof__unwind_init(void);
/* The calling thread (the agent) has every signal blocked for good. */
void cgprof__unwind_thread_has_full_mask(void);
/* Unwinds one captured sample into pcs (leaf first); returns the frame
 * count, and sets *complete to false when the unwind stopped early. */
size_t cgprof__unwind(const struct cgprof__sample *s, uint64_t *pcs, size_t max,
                      bool *complete);
void cgprof__unwind_flush(void);

#endif
