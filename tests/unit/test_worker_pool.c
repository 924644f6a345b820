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
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/sg_name.h"
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

/*
 * An owner, filled without the naming rule's check so that the pool's own
 * checks are what is tested.  Valid until 16 more are made.
 */
static const struct sg_pool_owner *
owner(const char *tenant, const char *user, const char *mode)
{
	static struct sg_pool_owner ring[16];
	static unsigned next;
	struct sg_pool_owner *o = &ring[next++ % 16];
	memset(o, 0, sizeof(*o));
	snprintf(o->tenant, sizeof(o->tenant), "%s", tenant);
	snprintf(o->user, sizeof(o->user), "%s", user);
	snprintf(o->mode, sizeof(o->mode), "%s", mode);
	return o;
}

#define O(tenant) owner(tenant, "ann", "sandbox")

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
	assert_null(sg_worker_pool_checkout(p, O("acme"))); /* empty: spawn one */
	int fd = new_fd();
	assert_int_equal(sg_worker_pool_add(p, 100, fd, O("acme")), 0);
	const struct sg_pool_worker *w = sg_worker_pool_find(p, 100);
	assert_non_null(w);
	assert_int_equal(w->state, SG_POOL_BUSY); /* its spawner reads READY first */
	assert_string_equal(w->owner.tenant, "acme");
	assert_null(sg_worker_pool_checkout(p, O("acme"))); /* busy is not idle */
	assert_int_equal(sg_worker_pool_checkin(p, 100, O("acme"), true), SG_POOL_KEPT);
	w = sg_worker_pool_checkout(p, O("acme"));
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
	assert_int_equal(sg_worker_pool_add(p, 100, new_fd(), O("acme")), 0);
	assert_int_equal(sg_worker_pool_checkin(p, 100, O("acme"), false), SG_POOL_KEPT);
	assert_null(sg_worker_pool_checkout(p, O("globex")));
	assert_null(sg_worker_pool_checkout(p, O("acm")));   /* a prefix is another tenant */
	assert_null(sg_worker_pool_checkout(p, O("acme2"))); /* and so is an extension */
	assert_null(sg_worker_pool_checkout(p, O("ACME")));
	assert_null(sg_worker_pool_checkout(p, O("")));
	assert_int_equal(sg_worker_pool_add(p, 200, new_fd(), O("globex")), 0);
	const struct sg_pool_worker *w = sg_worker_pool_checkout(p, O("acme"));
	assert_non_null(w);
	assert_int_equal(w->pid, 100);
	/* Given back under another name: refused, and it stays busy. */
	assert_int_equal(sg_worker_pool_checkin(p, 100, O("globex"), true), -1);
	assert_int_equal(sg_worker_pool_find(p, 100)->state, SG_POOL_BUSY);
	assert_int_equal(sg_worker_pool_find(p, 100)->runs_done, 0);
	/* And a worker not checked out cannot be checked in. */
	assert_int_equal(sg_worker_pool_checkin(p, 100, O("acme"), true), SG_POOL_KEPT);
	assert_int_equal(sg_worker_pool_checkin(p, 100, O("acme"), true), -1);
	assert_int_equal(sg_worker_pool_checkin(p, 999, O("acme"), true), -1);
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
	assert_int_equal(sg_worker_pool_add(p, 100, fd, O("acme")), 0);
	assert_int_equal(sg_worker_pool_checkin(p, 100, O("acme"), false),
	                 SG_POOL_KEPT);      /* READY */
	for (int run = 1; run <= 2; run++) { /* N-1 */
		assert_non_null(sg_worker_pool_checkout(p, O("acme")));
		assert_int_equal(sg_worker_pool_checkin(p, 100, O("acme"), true), SG_POOL_KEPT);
	}
	assert_non_null(sg_worker_pool_checkout(p, O("acme")));
	assert_int_equal(sg_worker_pool_checkin(p, 100, O("acme"), true), SG_POOL_RETIRED); /* N */
	assert_null(sg_worker_pool_find(p, 100));
	assert_false(is_open(fd));
	assert_null(sg_worker_pool_checkout(p, O("acme")));
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
		assert_int_equal(sg_worker_pool_add(p, 100 + i, fds[i], O("acme")), 0);
	assert_int_equal(sg_worker_pool_checkin(p, 101, O("acme"), true), SG_POOL_KEPT);
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
	char long_name[SG_NAME_MAX + 2]; /* one over the naming rule's length */
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	int fd = new_fd();
	assert_int_equal(sg_worker_pool_add(p, 0, fd, O("acme")), -1);
	assert_int_equal(sg_worker_pool_add(p, -5, fd, O("acme")), -1);
	assert_int_equal(sg_worker_pool_add(p, 100, -1, O("acme")), -1);
	assert_int_equal(sg_worker_pool_add(p, 100, fd, O("")), -1);
	assert_int_equal(sg_worker_pool_add(p, 100, fd, NULL), -1);
	assert_int_equal(sg_worker_pool_add(p, 100, fd, O(long_name)), -1);
	long_name[SG_NAME_MAX] = '\0'; /* exactly 63: fine */
	assert_int_equal(sg_worker_pool_add(p, 100, fd, O(long_name)), 0);
	int other = new_fd();
	assert_int_equal(sg_worker_pool_add(p, 100, other, O("acme")), -1); /* booked already */
	assert_int_equal(sg_worker_pool_add(p, 101, other, O("acme")), 0);
	int third = new_fd();
	assert_int_equal(sg_worker_pool_add(p, 102, third, O("acme")), -1); /* full */
	assert_true(is_open(third));                                        /* not taken */
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
	assert_int_equal(sg_worker_pool_shortfall(p, O("acme"), 2), 2);
	assert_int_equal(sg_worker_pool_add(p, 100, new_fd(), O("acme")), 0);
	assert_int_equal(sg_worker_pool_shortfall(p, O("acme"), 2), 2); /* busy does not count */
	assert_int_equal(sg_worker_pool_checkin(p, 100, O("acme"), false), SG_POOL_KEPT);
	assert_int_equal(sg_worker_pool_shortfall(p, O("acme"), 2), 1);
	assert_int_equal(sg_worker_pool_shortfall(p, O("globex"), 5), 3); /* room for 3 more */
	assert_int_equal(sg_worker_pool_shortfall(p, O("acme"), 0), 0);
	sg_worker_pool_free(p);
}

static void
test_idlest_names_the_worker_to_evict(void **state)
{
	(void)state;
	struct sg_worker_pool *p = sg_worker_pool_new(3, 10);
	assert_int_equal(sg_worker_pool_add(p, 11, new_fd(), O("acme")), 0);
	assert_int_equal(sg_worker_pool_add(p, 12, new_fd(), O("globex")), 0);
	assert_int_equal(sg_worker_pool_add(p, 13, new_fd(), O("acme")), 0);
	assert_true(sg_worker_pool_full(p));
	assert_null(sg_worker_pool_idlest(p, NULL)); /* all busy */
	sg_worker_pool_checkin(p, 13, O("acme"), true);
	sg_worker_pool_checkin(p, 12, O("globex"), true);
	sg_worker_pool_checkin(p, 11, O("acme"), true);
	assert_int_equal(sg_worker_pool_idlest(p, NULL)->pid, 13);
	assert_int_equal(sg_worker_pool_idlest(p, O("acme"))->pid, 12);
	assert_int_equal(sg_worker_pool_idlest(p, O("nobody"))->pid, 13);
	sg_worker_pool_checkout(p,
	                        O("acme")); /* takes one of acme's; 12 is still the idlest other */
	assert_int_equal(sg_worker_pool_idlest(p, O("acme"))->pid, 12);
	assert_int_equal(sg_worker_pool_retire(p, 12), 0);
	assert_false(sg_worker_pool_full(p));
	assert_null(sg_worker_pool_idlest(p, O("acme")));
	sg_worker_pool_free(p);
}

/*
 * A worker released by (t, u1, sandbox) is never handed to (t, u2, sandbox)
 * or (t, u1, live): one person's worker may hold their input and acts with
 * their credentials.
 */
static void
test_a_worker_never_serves_another_user_or_mode(void **state)
{
	(void)state;
	struct sg_worker_pool *p = sg_worker_pool_new(4, 10);
	const struct sg_pool_owner *u1 = owner("t", "u1", "sandbox");
	assert_int_equal(sg_worker_pool_add(p, 100, new_fd(), u1), 0);
	assert_int_equal(sg_worker_pool_checkin(p, 100, owner("t", "u1", "sandbox"), true),
	                 SG_POOL_KEPT);
	assert_null(sg_worker_pool_checkout(p, owner("t", "u2", "sandbox")));
	assert_null(sg_worker_pool_checkout(p, owner("t", "u1", "live")));
	assert_null(sg_worker_pool_checkout(p, owner("t", "u", "sandbox")));   /* a prefix */
	assert_null(sg_worker_pool_checkout(p, owner("t", "u1x", "sandbox"))); /* an extension */
	assert_null(sg_worker_pool_checkout(p, owner("t2", "u1", "sandbox")));
	/* Nor is it given back as theirs, and it stays as it was. */
	const struct sg_pool_worker *w = sg_worker_pool_checkout(p, owner("t", "u1", "sandbox"));
	assert_non_null(w);
	assert_int_equal(sg_worker_pool_checkin(p, 100, owner("t", "u2", "sandbox"), true), -1);
	assert_int_equal(sg_worker_pool_checkin(p, 100, owner("t", "u1", "live"), true), -1);
	assert_int_equal(sg_worker_pool_find(p, 100)->state, SG_POOL_BUSY);
	assert_int_equal(sg_worker_pool_checkin(p, 100, owner("t", "u1", "sandbox"), true),
	                 SG_POOL_KEPT);
	/* Each owner is preforked for on its own; the tenant counts them all. */
	assert_int_equal(sg_worker_pool_shortfall(p, owner("t", "u1", "sandbox"), 1), 0);
	assert_int_equal(sg_worker_pool_shortfall(p, owner("t", "u2", "sandbox"), 1), 1);
	assert_int_equal(sg_worker_pool_shortfall(p, owner("t", "u1", "live"), 1), 1);
	assert_int_equal(sg_worker_pool_add(p, 200, new_fd(), owner("t", "u2", "sandbox")), 0);
	size_t idle, busy;
	sg_worker_pool_count(p, "t", &idle, &busy);
	assert_int_equal(idle, 1);
	assert_int_equal(busy, 1);
	/* The idlest of another owner is u1's, even within the tenant. */
	assert_int_equal(sg_worker_pool_idlest(p, owner("t", "u2", "sandbox"))->pid, 100);
	assert_null(sg_worker_pool_idlest(p, owner("t", "u1", "sandbox")));
	sg_worker_pool_free(p);
}

static void
test_owner_set_checks_each_part(void **state)
{
	(void)state;
	struct sg_pool_owner o;
	char user[SG_POOL_NAME_MAX + 2], mode[SG_POOL_MODE_MAX + 2];
	assert_int_equal(sg_pool_owner_set(&o, "acme", "ann@acme.com", "live"), 0);
	assert_string_equal(o.user, "ann@acme.com"); /* users only compare; keys made before
	                                                the naming rule keep working */
	assert_int_equal(sg_pool_owner_set(&o, "acme.com", "ann", "live"), -1); /* a cgroup */
	assert_int_equal(sg_pool_owner_set(&o, "../x", "ann", "live"), -1);
	assert_int_equal(sg_pool_owner_set(&o, NULL, "ann", "live"), -1);
	assert_int_equal(sg_pool_owner_set(&o, "acme", "", "live"), -1);
	assert_int_equal(sg_pool_owner_set(&o, "acme", NULL, "live"), -1);
	assert_int_equal(sg_pool_owner_set(&o, "acme", "ann", ""), -1);
	for (size_t n = SG_POOL_NAME_MAX - 1; n <= SG_POOL_NAME_MAX + 1; n++) {
		memset(user, 'u', n);
		user[n] = '\0';
		assert_int_equal(sg_pool_owner_set(&o, "acme", user, "live"),
		                 n <= SG_POOL_NAME_MAX ? 0 : -1);
	}
	for (size_t n = SG_POOL_MODE_MAX - 1; n <= SG_POOL_MODE_MAX + 1; n++) {
		memset(mode, 'm', n);
		mode[n] = '\0';
		assert_int_equal(sg_pool_owner_set(&o, "acme", "ann", mode),
		                 n <= SG_POOL_MODE_MAX ? 0 : -1);
	}
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
	    cmocka_unit_test(test_a_worker_never_serves_another_user_or_mode),
	    cmocka_unit_test(test_owner_set_checks_each_part),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
