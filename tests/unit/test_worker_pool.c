/*
 * The gateway's worker pool as a data structure: real descriptors (pipe
 * ends) stand in for worker sockets, so that closing is checked too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/sg_worker_pool.h"

static int
open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* A descriptor to hand the pool; the other end of the pipe is closed. */
static int
new_fd(void)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[1]);
	return p[0];
}

static bool
is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void
test_checkout_reuses_an_idle_worker_of_the_same_tenant(void **state)
{
	(void)state;
	struct sg_worker_pool *p = sg_worker_pool_new(4, 10);
	assert_non_null(p);
	assert_null(sg_worker_pool_checkout(p, "acme")); /* empty: spawn one */
	int fd = new_fd();
	assert_int_equal(sg_worker_pool_add(p, 100, fd, "acme"), 0);
	const struct sg_pool_worker *w = sg_worker_pool_find(p, 100);
	assert_non_null(w);
	assert_int_equal(w->state, SG_POOL_BUSY); /* its spawner reads READY first */
	assert_string_equal(w->tenant, "acme");
	assert_null(sg_worker_pool_checkout(p, "acme")); /* busy is not idle */
	assert_int_equal(sg_worker_pool_checkin(p, 100, "acme", true), SG_POOL_KEPT);
	w = sg_worker_pool_checkout(p, "acme");
	assert_non_null(w);
	assert_int_equal(w->pid, 100);
	assert_int_equal(w->fd, fd);
	assert_int_equal(w->runs_done, 1);
	assert_int_equal(w->state, SG_POOL_BUSY);
	sg_worker_pool_free(p);
	assert_false(is_open(fd));
}

static void
test_a_worker_never_serves_another_tenant(void **state)
{
	(void)state;
	struct sg_worker_pool *p = sg_worker_pool_new(4, 10);
	assert_int_equal(sg_worker_pool_add(p, 100, new_fd(), "acme"), 0);
	assert_int_equal(sg_worker_pool_checkin(p, 100, "acme", false), SG_POOL_KEPT);
	assert_null(sg_worker_pool_checkout(p, "globex"));
	assert_null(sg_worker_pool_checkout(p, "acm"));   /* a prefix is another tenant */
	assert_null(sg_worker_pool_checkout(p, "acme2")); /* and so is an extension */
	assert_null(sg_worker_pool_checkout(p, "ACME"));
	assert_null(sg_worker_pool_checkout(p, ""));
	assert_int_equal(sg_worker_pool_add(p, 200, new_fd(), "globex"), 0);
	const struct sg_pool_worker *w = sg_worker_pool_checkout(p, "acme");
	assert_non_null(w);
	assert_int_equal(w->pid, 100);
	/* Given back under another name: refused, and it stays busy. */
	assert_int_equal(sg_worker_pool_checkin(p, 100, "globex", true), -1);
	assert_int_equal(sg_worker_pool_find(p, 100)->state, SG_POOL_BUSY);
	assert_int_equal(sg_worker_pool_find(p, 100)->runs_done, 0);
	/* And a worker not checked out cannot be checked in. */
	assert_int_equal(sg_worker_pool_checkin(p, 100, "acme", true), SG_POOL_KEPT);
	assert_int_equal(sg_worker_pool_checkin(p, 100, "acme", true), -1);
	assert_int_equal(sg_worker_pool_checkin(p, 999, "acme", true), -1);
	size_t idle, busy;
	sg_worker_pool_count(p, "acme", &idle, &busy);
	assert_int_equal(idle, 1);
	assert_int_equal(busy, 0);
	sg_worker_pool_count(p, NULL, &idle, &busy);
	assert_int_equal(idle, 1);
	assert_int_equal(busy, 1);
	sg_worker_pool_free(p);
}

static void
test_checkin_retires_after_max_runs(void **state)
{
	(void)state;
	struct sg_worker_pool *p = sg_worker_pool_new(4, 3);
	int fd = new_fd();
	assert_int_equal(sg_worker_pool_add(p, 100, fd, "acme"), 0);
	assert_int_equal(sg_worker_pool_checkin(p, 100, "acme", false), SG_POOL_KEPT); /* READY */
	for (int run = 1; run <= 2; run++) {                                           /* N-1 */
		assert_non_null(sg_worker_pool_checkout(p, "acme"));
		assert_int_equal(sg_worker_pool_checkin(p, 100, "acme", true), SG_POOL_KEPT);
	}
	assert_non_null(sg_worker_pool_checkout(p, "acme"));
	assert_int_equal(sg_worker_pool_checkin(p, 100, "acme", true), SG_POOL_RETIRED); /* N */
	assert_null(sg_worker_pool_find(p, 100));
	assert_false(is_open(fd));
	assert_null(sg_worker_pool_checkout(p, "acme"));
	assert_int_equal(sg_worker_pool_retire(p, 100), -1); /* its EXITED notice comes later */
	sg_worker_pool_free(p);
}

static void
test_retire_forgets_busy_and_idle_workers(void **state)
{
	(void)state;
	struct sg_worker_pool *p = sg_worker_pool_new(4, 10);
	int fds[3] = {new_fd(), new_fd(), new_fd()};
	for (int i = 0; i < 3; i++)
		assert_int_equal(sg_worker_pool_add(p, 100 + i, fds[i], "acme"), 0);
	assert_int_equal(sg_worker_pool_checkin(p, 101, "acme", true), SG_POOL_KEPT);
	assert_int_equal(sg_worker_pool_retire(p, 100), 0); /* busy: killed on a deadline */
	assert_int_equal(sg_worker_pool_retire(p, 101), 0); /* idle: died by itself */
	assert_false(is_open(fds[0]));
	assert_false(is_open(fds[1]));
	assert_true(is_open(fds[2]));
	assert_null(sg_worker_pool_find(p, 100));
	assert_null(sg_worker_pool_find(p, 101));
	assert_int_equal(sg_worker_pool_find(p, 102)->fd, fds[2]); /* moved, intact */
	assert_int_equal(sg_worker_pool_retire(p, 100), -1);
	sg_worker_pool_free(p);
	assert_false(is_open(fds[2]));
}

static void
test_add_refuses_what_it_cannot_book(void **state)
{
	(void)state;
	int before = open_fds();
	struct sg_worker_pool *p = sg_worker_pool_new(2, 10);
	char long_name[SG_POOL_TENANT_MAX + 2];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	int fd = new_fd();
	assert_int_equal(sg_worker_pool_add(p, 0, fd, "acme"), -1);
	assert_int_equal(sg_worker_pool_add(p, -5, fd, "acme"), -1);
	assert_int_equal(sg_worker_pool_add(p, 100, -1, "acme"), -1);
	assert_int_equal(sg_worker_pool_add(p, 100, fd, ""), -1);
	assert_int_equal(sg_worker_pool_add(p, 100, fd, NULL), -1);
	assert_int_equal(sg_worker_pool_add(p, 100, fd, long_name), -1);
	long_name[SG_POOL_TENANT_MAX] = '\0'; /* exactly 64: fine */
	assert_int_equal(sg_worker_pool_add(p, 100, fd, long_name), 0);
	int other = new_fd();
	assert_int_equal(sg_worker_pool_add(p, 100, other, "acme"), -1); /* booked already */
	assert_int_equal(sg_worker_pool_add(p, 101, other, "acme"), 0);
	int third = new_fd();
	assert_int_equal(sg_worker_pool_add(p, 102, third, "acme"), -1); /* full */
	assert_true(is_open(third));                                     /* not taken */
	close(third);
	assert_null(sg_worker_pool_new(0, 10));
	assert_null(sg_worker_pool_new(10, 0));
	assert_null(sg_worker_pool_new(SIZE_MAX / 2, 10));
	sg_worker_pool_free(p);
	sg_worker_pool_free(NULL);
	assert_int_equal(open_fds(), before);
}

static void
test_shortfall_hints_at_preforking(void **state)
{
	(void)state;
	struct sg_worker_pool *p = sg_worker_pool_new(4, 10);
	assert_int_equal(sg_worker_pool_shortfall(p, "acme", 2), 2);
	assert_int_equal(sg_worker_pool_add(p, 100, new_fd(), "acme"), 0);
	assert_int_equal(sg_worker_pool_shortfall(p, "acme", 2), 2); /* busy does not count */
	assert_int_equal(sg_worker_pool_checkin(p, 100, "acme", false), SG_POOL_KEPT);
	assert_int_equal(sg_worker_pool_shortfall(p, "acme", 2), 1);
	assert_int_equal(sg_worker_pool_shortfall(p, "globex", 5), 3); /* room for 3 more */
	assert_int_equal(sg_worker_pool_shortfall(p, "acme", 0), 0);
	sg_worker_pool_free(p);
}

static void
test_idlest_names_the_worker_to_evict(void **state)
{
	(void)state;
	struct sg_worker_pool *p = sg_worker_pool_new(3, 10);
	assert_int_equal(sg_worker_pool_add(p, 11, new_fd(), "acme"), 0);
	assert_int_equal(sg_worker_pool_add(p, 12, new_fd(), "globex"), 0);
	assert_int_equal(sg_worker_pool_add(p, 13, new_fd(), "acme"), 0);
	assert_true(sg_worker_pool_full(p));
	assert_null(sg_worker_pool_idlest(p, NULL)); /* all busy */
	sg_worker_pool_checkin(p, 13, "acme", true);
	sg_worker_pool_checkin(p, 12, "globex", true);
	sg_worker_pool_checkin(p, 11, "acme", true);
	assert_int_equal(sg_worker_pool_idlest(p, NULL)->pid, 13);
	assert_int_equal(sg_worker_pool_idlest(p, "acme")->pid, 12);
	assert_int_equal(sg_worker_pool_idlest(p, "nobody")->pid, 13);
	sg_worker_pool_checkout(p, "acme"); /* takes one of acme's; 12 is still the idlest other */
	assert_int_equal(sg_worker_pool_idlest(p, "acme")->pid, 12);
	assert_int_equal(sg_worker_pool_retire(p, 12), 0);
	assert_false(sg_worker_pool_full(p));
	assert_null(sg_worker_pool_idlest(p, "acme"));
	sg_worker_pool_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_checkout_reuses_an_idle_worker_of_the_same_tenant),
	    cmocka_unit_test(test_a_worker_never_serves_another_tenant),
	    cmocka_unit_test(test_checkin_retires_after_max_runs),
	    cmocka_unit_test(test_retire_forgets_busy_and_idle_workers),
	    cmocka_unit_test(test_add_refuses_what_it_cannot_book),
	    cmocka_unit_test(test_shortfall_hints_at_preforking),
	    cmocka_unit_test(test_idlest_names_the_worker_to_evict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
