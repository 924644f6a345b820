#include "sg_failalloc.h"

#include "core/sg_json_alloc.h"

#include <errno.h>
#include <hs/hs.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The functions --wrap renames; they are the C library's (or ASan's). */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **out, const char *fmt, va_list ap);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_vasprintf(char **out, const char *fmt, va_list ap);
int __wrap_asprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* From the sanitizer runtime when there is one. */
size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));
void __sanitizer_print_stack_trace(void) __attribute__((weak));

static _Atomic bool armed;
static _Atomic bool persistent;
static _Atomic size_t target, seen, refused;
static int show_stacks = -1; /* SG_FAILALLOC_STACKS set: print where each refusal happens */

/* True when this allocation is to fail. */
static bool
fail_now(void)
{
	if (!atomic_load_explicit(&armed, memory_order_relaxed))
		return false;
	size_t n = atomic_fetch_add_explicit(&seen, 1, memory_order_relaxed) + 1;
	size_t t = atomic_load_explicit(&target, memory_order_relaxed);
	bool fail = persistent ? n >= t : n == t;
	if (fail) {
		atomic_fetch_add_explicit(&refused, 1, memory_order_relaxed);
		if (show_stacks && n == t && __sanitizer_print_stack_trace) {
			fprintf(stderr, "refusing allocation %zu:\n", n);
			__sanitizer_print_stack_trace();
		}
		errno = ENOMEM;
	}
	return fail;
}

void *
__wrap_malloc(size_t n)
{
	return fail_now() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __real_calloc(n, size);
}

void *
__wrap_realloc(void *p, size_t n)
{
	/* realloc(p, 0) frees: there is nothing to refuse. */
	if (n == 0 && p != NULL)
		return __real_realloc(p, n);
	return fail_now() ? NULL : __real_realloc(p, n);
}

char *
__wrap_strdup(const char *s)
{
	return fail_now() ? NULL : __real_strdup(s);
}

char *
__wrap_strndup(const char *s, size_t n)
{
	return fail_now() ? NULL : __real_strndup(s, n);
}

int
__wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
	/* glibc leaves *out undefined on failure; callers may rely only on -1. */
	return fail_now() ? -1 : __real_vasprintf(out, fmt, ap);
}

int
__wrap_asprintf(char **out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = __wrap_vasprintf(out, fmt, ap);
	va_end(ap);
	return rc;
}

/* Vectorscan frees with plain free(): its blocks come from malloc either way. */
static void *
library_malloc(size_t n)
{
	return fail_now() ? NULL : __real_malloc(n);
}

void
sg_failalloc_install(void)
{
	/* jansson allocates through libsg.a, where --wrap reaches, as in the gateway. */
	sg_json_alloc_install();
	if (hs_set_allocator(library_malloc, free) != HS_SUCCESS)
		fprintf(stderr, "%s: Vectorscan refused the allocator\n", __func__);
}

void
sg_failalloc_uninstall(void)
{
	sg_failalloc_disarm();
	json_set_alloc_funcs(__real_malloc, free);
	hs_set_allocator(NULL, NULL);
}

void
sg_failalloc_arm(size_t n, bool forever)
{
	if (show_stacks < 0)
		show_stacks = getenv("SG_FAILALLOC_STACKS") != NULL;
	atomic_store(&seen, 0);
	atomic_store(&refused, 0);
	atomic_store(&target, n);
	atomic_store(&persistent, forever);
	atomic_store(&armed, true);
}

void
sg_failalloc_disarm(void)
{
	atomic_store(&armed, false);
}

size_t
sg_failalloc_count(void)
{
	return atomic_load(&seen);
}

size_t
sg_failalloc_failures(void)
{
	return atomic_load(&refused);
}

size_t
sg_failalloc_live_bytes(void)
{
	return __sanitizer_get_current_allocated_bytes ? __sanitizer_get_current_allocated_bytes()
	                                               : 0;
}

void
sg_failalloc_report_leaks(void)
{
	if (__lsan_do_recoverable_leak_check)
		__lsan_do_recoverable_leak_check();
}
