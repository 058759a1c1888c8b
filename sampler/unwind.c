/* Unwinding a captured sample on the agent thread with libunwind's remote
 * interface: registers come from the sample, stack memory from the copied
 * stack, unwind tables and code bytes from our private copies of the module
 * files (modules.c). Nothing here reads the host's live memory, so a sample
 * taken inside malloc, the loader or a dlclose'd library is just data.
 * libunwind falls back to a frame-pointer step where no CFI is found. */
#include <libunwind.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "sampler_int.h"

/* Exported by libunwind (the ptrace and coredump accessors use it) but not
 * declared in its public headers. */
extern int _Ux86_64_dwarf_search_unwind_table(unw_addr_space_t as, unw_word_t ip,
                                              unw_dyn_info_t *di, unw_proc_info_t *pi,
                                              int need_unwind_info, void *arg);

static unw_addr_space_t space;

/* libunwind blocks every signal around its internal locks and pools: two
 * sigprocmask system calls per step on the agent thread, which already
 * has every signal blocked for life. The library link wraps sigprocmask
 * (-Wl,--wrap=sigprocmask, so only the statically linked libunwind and we
 * see this) and skips the call there. */
static __thread bool mask_is_full __attribute__((tls_model("initial-exec")));

void cgprof__unwind_thread_has_full_mask(void)
{
    mask_is_full = true;
}

int __wrap_sigprocmask(int how, const sigset_t *set, sigset_t *old);
int __wrap_sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    if (!mask_is_full)
        return pthread_sigmask(how, set, old);
    if (old)
        sigfillset(old);
    return 0;
}

static int find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi,
                          int need_unwind_info, void *arg)
{
    struct cgprof__module *m = cgprof__modules_find(ip);
    uint64_t hdr, table, count, start, end;
    if (!m || cgprof__module_eh_table(m, &hdr, &table, &count, &start, &end) != 0)
        return -UNW_ENOINFO;
    unw_dyn_info_t di;
    memset(&di, 0, sizeof(di));
    di.start_ip = start;
    di.end_ip = end;
    di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
    di.u.rti.segbase = hdr;
    di.u.rti.table_data = table;
    di.u.rti.table_len = count * 8 / sizeof(unw_word_t);
    return _Ux86_64_dwarf_search_unwind_table(as, ip, &di, pi, need_unwind_info, arg);
}

static void put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
    /* libunwind frees table-format info from its own pool. */
    CGPROF_UNUSED(as);
    CGPROF_UNUSED(pi);
    CGPROF_UNUSED(arg);
}

static int get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *addr, void *arg)
{
    CGPROF_UNUSED(as);
    CGPROF_UNUSED(addr);
    CGPROF_UNUSED(arg);
    return -UNW_ENOINFO;
}

static int access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val,
                      int write, void *arg)
{
    CGPROF_UNUSED(as);
    const struct cgprof__sample *s = arg;
    if (write)
        return -UNW_EINVAL;
    /* Overflow-safe: the unwinder asks for garbage addresses such as -8. */
    if (addr >= s->stack_start && addr - s->stack_start <= s->stack_len &&
        s->stack_len - (addr - s->stack_start) >= sizeof(*val)) {
        memcpy(val, s->stack + (addr - s->stack_start), sizeof(*val));
        return 0;
    }
    uint64_t v;
    if (cgprof__modules_read(addr, &v) == 0) {
        *val = v;
        return 0;
    }
    return -UNW_EINVAL;
}

static int access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val,
                      int write, void *arg)
{
    CGPROF_UNUSED(as);
    const struct cgprof__sample *s = arg;
    if (write || reg < 0 || reg >= CGPROF__NREGS)
        return -UNW_EBADREG;
    *val = s->regs[reg];
    return 0;
}

static int access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val,
                        int write, void *arg)
{
    CGPROF_UNUSED(as);
    CGPROF_UNUSED(reg);
    CGPROF_UNUSED(val);
    CGPROF_UNUSED(write);
    CGPROF_UNUSED(arg);
    return -UNW_EBADREG;
}

static int resume(unw_addr_space_t as, unw_cursor_t *c, void *arg)
{
    CGPROF_UNUSED(as);
    CGPROF_UNUSED(c);
    CGPROF_UNUSED(arg);
    return -UNW_EINVAL;
}

static int get_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t n,
                         unw_word_t *off, void *arg)
{
    CGPROF_UNUSED(as);
    CGPROF_UNUSED(addr);
    CGPROF_UNUSED(buf);
    CGPROF_UNUSED(n);
    CGPROF_UNUSED(off);
    CGPROF_UNUSED(arg);
    return -UNW_ENOINFO;
}

static unw_accessors_t accessors = {
    .find_proc_info = find_proc_info,
    .put_unwind_info = put_unwind_info,
    .get_dyn_info_list_addr = get_dyn_info_list_addr,
    .access_mem = access_mem,
    .access_reg = access_reg,
    .access_fpreg = access_fpreg,
    .resume = resume,
    .get_proc_name = get_proc_name,
};

int cgprof__unwind_init(void)
{
    if (space)
        return 0;
    space = unw_create_addr_space(&accessors, 0);
    if (!space)
        return CGPROF_ENOMEM;
    /* Only the agent thread unwinds: a per-thread cache needs no lock (the
     * global one takes a mutex and two sigprocmask calls per lookup). */
    unw_set_caching_policy(space, UNW_CACHE_PER_THREAD);
    return 0;
}

void cgprof__unwind_flush(void)
{
    if (space)
        unw_flush_cache(space, 0, 0);
}

/* Tests: test/integration/cpusplit.sh, test/unit/sampler/test_unwind.c */
size_t cgprof__unwind(const struct cgprof__sample *s, uint64_t *pcs, size_t max,
                      bool *complete)
{
    *complete = false;
    if (!space || max == 0)
        return 0;
    unw_cursor_t c;
    if (unw_init_remote(&c, space, (void *)(uintptr_t)s) != 0) {
        pcs[0] = s->regs[16];
        return 1;
    }
    size_t n = 0;
    bool adjust = false;          /* return addresses point after the call */
    for (;;) {
        unw_word_t ip = 0;
        if (unw_get_reg(&c, UNW_REG_IP, &ip) != 0 || ip == 0)
            break;
        pcs[n++] = adjust ? ip - 1 : ip;
        if (n == max)
            break;
        adjust = unw_is_signal_frame(&c) <= 0;
        int r = unw_step(&c);
        if (r == 0) {
            *complete = true;
            break;
        }
        if (r < 0)
            break;
    }
    return n;
}
