/*
 * sg_failalloc: a failing allocator for fault loops, in the way of SQLite's
 * and Lua's test suites.  Once armed with n, the n-th allocation fails, and
 * with `persistent` every later one too; `sg_failalloc_count()` says how many
 * allocations were asked for since arming, so a loop knows when it has run
 * out of points to fail.
 *
 * What it reaches:
 *   - the project's own code (libsg.a and the test itself): malloc, calloc,
 *     realloc, strdup, strndup, asprintf and vasprintf, through the
 *     linker's --wrap, so only an executable linked with those flags
 *     (tests/unit/meson.build) may use this file;
 *   - jansson, through the gateway's own watch (core/sg_json_alloc.c), whose
 *     malloc is in libsg.a;
 *   - Vectorscan (schema patterns), through hs_set_allocator();
 *   - Lua, because the sandbox's allocator (sg_lua_env.c) calls realloc
 *     from libsg.a.
 * What it cannot reach: libfyaml 0.7.12 has no allocator hook (that came
 * with 0.9's fy_allocator), and being a shared library its mallocs bypass
 * --wrap; so YAML parsing itself never fails here, but everything the
 * loaders build from a parsed document does.  SQLite is not hooked: none of
 * the operations under test touch the store.
 */
#ifndef SG_FAILALLOC_H
#define SG_FAILALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* Routes jansson and Vectorscan through the counter; disarmed until armed. */
void sg_failalloc_install(void);
/* Gives jansson and Vectorscan their own allocators back. */
void sg_failalloc_uninstall(void);

/* Fails allocation n (1-based) from now on; with `persistent`, every later one too. */
void sg_failalloc_arm(size_t n, bool persistent);
/* Every allocation succeeds again; the count stays readable. */
void sg_failalloc_disarm(void);
/* Allocations asked for since the last arm. */
size_t sg_failalloc_count(void);
/* Allocations refused since the last arm. */
size_t sg_failalloc_failures(void);

/*
 * Bytes the sanitizer's allocator holds right now, or 0 without ASan: a
 * cheap per-iteration leak check (LeakSanitizer still checks at exit).
 */
size_t sg_failalloc_live_bytes(void);
/* Has LeakSanitizer print what is unreachable now, with where it was allocated. */
void sg_failalloc_report_leaks(void);

#endif
