/* Declarations shared by the files of sampler/ only (nothing outside this
 * folder includes it): the sample ring, the thread table, modules and
 * unwinding, symbol tables, perf maps and demangling. */
#ifndef CGPROF_SAMPLER_INT_H
#define CGPROF_SAMPLER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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
/* Reads lines appended since the last call (the file only grows; a file
 * that shrank or was replaced is re-read whole). Returns entries added. */
int cgprof__perfmap_refresh(struct cgprof__perfmap *m);
/* Name of the entry covering addr (later entries win), or NULL. */
const char *cgprof__perfmap_lookup(const struct cgprof__perfmap *m, uint64_t addr);
void cgprof__perfmap_free(struct cgprof__perfmap *m);

/* ---- demangling (demangle.c) ------------------------------------------- */

/* Demangles C++ (Itanium, through the host's __cxa_demangle when libstdc++
 * is loaded) and Rust (legacy: hash suffix removed; v0: paths) names.
 * Returns a cgprof_malloc'd string, or NULL when name is not mangled or
 * cannot be demangled (the caller keeps the raw name). */
char *cgprof__demangle(const char *name);

#endif
