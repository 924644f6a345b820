/*
 * The run registry (who may read which run, what is forgotten first, the
 * store behind it) and the run document (how each way a run can end is
 * named and explained).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runs/sg_run_doc.h"
#include "runs/sg_runs.h"
#include "../support/sg_testdir.h"
#include "store/sg_store.h"

static char *
text(const char *s)
{
	char *t = strdup(s);
	assert_non_null(t);
	return t;
}

static void
test_registry_is_per_tenant(void **state)
{
	(void)state;
	struct sg_runs *rs = sg_runs_new(4, NULL);
	assert_non_null(rs);
	assert_int_equal(sg_runs_publish(rs, "run_1", "acme", text("{\"v\":1}"), false), 0);
	assert_int_equal(sg_runs_running(rs), 1);
	char *got = sg_runs_get(rs, "run_1", "acme");
	assert_string_equal(got, "{\"v\":1}");
	free(got);
	assert_null(sg_runs_get(rs, "run_1", "globex"));
	assert_null(sg_runs_get(rs, "run_2", "acme"));
	/* A newer document replaces the old one in place. */
	assert_int_equal(sg_runs_publish(rs, "run_1", "acme", text("{\"v\":2}"), true), 0);
	assert_int_equal(sg_runs_running(rs), 0);
	got = sg_runs_get(rs, "run_1", "acme");
	assert_string_equal(got, "{\"v\":2}");
	free(got);
	sg_runs_free(rs);
}

static void
test_registry_forgets_finished_runs_first(void **state)
{
	(void)state;
	struct sg_runs *rs = sg_runs_new(2, NULL);
	assert_int_equal(sg_runs_publish(rs, "run_a", "t", text("a"), false), 0);
	assert_int_equal(sg_runs_publish(rs, "run_b", "t", text("b"), false), 0);
	/* Full of running runs: a third cannot be held. */
	assert_int_equal(sg_runs_publish(rs, "run_c", "t", text("c"), false), -1);
	assert_int_equal(sg_runs_publish(rs, "run_a", "t", text("a2"), true), 0);
	assert_int_equal(sg_runs_publish(rs, "run_c", "t", text("c"), false), 0);
	char *b = sg_runs_get(rs, "run_b", "t"), *c = sg_runs_get(rs, "run_c", "t");
	assert_string_equal(b, "b");
	assert_string_equal(c, "c");
	assert_null(sg_runs_get(rs, "run_a", "t"));
	free(b);
	free(c);
	sg_runs_free(rs);
}

/* Records which thread answered a read, and when. */
struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	pthread_t by;
};

static void
on_done(void *arg)
{
	struct waiter *w = arg;
	pthread_mutex_lock(&w->mu);
	w->by = pthread_self();
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Waits up to 10 s for the answer; the reader runs on its own time. */
static bool
wait_done(struct waiter *w)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&w->mu);
	while (!w->done && pthread_cond_timedwait(&w->cv, &w->mu, &ts) == 0)
		;
	bool done = w->done;
	w->done = false;
	pthread_mutex_unlock(&w->mu);
	return done;
}

static void
put_old_run(const char *dir)
{
	char err[256];
	struct sg_store *s = sg_store_open(dir, err, sizeof(err));
	assert_non_null(s);
	struct sg_run_row row = {.id = "run_old",
	                         .tenant = "acme",
	                         .user = "ann",
	                         .template_name = "t",
	                         .status = "succeeded",
	                         .started_us = 1,
	                         .ended_us = 2,
	                         .doc = "{\"id\":\"run_old\"}"};
	assert_int_equal(sg_store_put_runs(s, &row, 1), 0);
	sg_store_close(s);
}

/*
 * A run that has left memory is read from the store on the registry's
 * reader thread, never the caller's (an I/O thread must not wait on
 * disk), and the caller is told through `done`.
 */
static void
test_registry_reads_old_runs_on_its_reader_thread(void **state)
{
	(void)state;
	char dir[256], *doc = NULL;
	int marker;
	struct waiter w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	assert_int_equal(sg_testdir_make(dir, sizeof(dir), "runs"), 0);
	put_old_run(dir);
	struct sg_runs *rs = sg_runs_new(2, dir);
	/* Memory only: the caller learns the run is not held, and nothing reads the store. */
	assert_null(sg_runs_get(rs, "run_old", "acme"));
	assert_int_equal(sg_runs_lookup(rs, "run_old", "acme", &doc), 1);
	assert_null(doc);

	struct sg_runs_read *rd = sg_runs_read_new(rs, "run_old", "acme", &marker);
	assert_non_null(rd);
	assert_ptr_equal(sg_runs_read_user(rd), &marker);
	sg_runs_read_submit(rs, rd, on_done, &w);
	assert_true(wait_done(&w));
	assert_false(pthread_equal(w.by, pthread_self()));
	assert_int_equal(sg_runs_read_finish(rs, rd, &doc), 0);
	assert_string_equal(doc, "{\"id\":\"run_old\"}");
	free(doc);

	/* Another tenant's run is not found, in memory or in the store. */
	rd = sg_runs_read_new(rs, "run_old", "globex", NULL);
	sg_runs_read_submit(rs, rd, on_done, &w);
	assert_true(wait_done(&w));
	assert_int_equal(sg_runs_read_finish(rs, rd, &doc), 1);
	assert_int_equal(sg_runs_publish(rs, "run_new", "acme", text("{}"), true), 0);
	assert_int_equal(sg_runs_lookup(rs, "run_new", "globex", &doc), -1);

	/* Never submitted: finishing is an error; submitted and never finished: freed at free. */
	rd = sg_runs_read_new(rs, "run_old", "acme", NULL);
	assert_int_equal(sg_runs_read_finish(rs, rd, &doc), -1);
	rd = sg_runs_read_new(rs, "run_old", "acme", NULL);
	sg_runs_read_submit(rs, rd, on_done, &w);
	assert_true(wait_done(&w));
	sg_runs_free(rs);
	sg_testdir_remove(dir);
}

/*
 * A store read that waits on a lock holds no lock of the registry: runs
 * are published and looked up meanwhile.  (The old registry read the store
 * with its mutex held, on the asking I/O thread.)
 */
static void
test_slow_store_read_blocks_nothing(void **state)
{
	(void)state;
	char dir[256], path[300], *doc = NULL;
	struct waiter w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	sqlite3 *lock;
	assert_int_equal(sg_testdir_make(dir, sizeof(dir), "runs"), 0);
	put_old_run(dir);
	snprintf(path, sizeof(path), "%s/sandgate.db", dir);
	assert_int_equal(sqlite3_open(path, &lock), SQLITE_OK);
	/* In WAL mode only an exclusive locking mode keeps readers out. */
	assert_int_equal(sqlite3_exec(lock,
	                              "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;"
	                              " UPDATE meta SET value = value WHERE key = 'revision'",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	struct sg_runs *rs = sg_runs_new(2, dir);
	struct sg_runs_read *rd = sg_runs_read_new(rs, "run_old", "acme", NULL);
	sg_runs_read_submit(rs, rd, on_done, &w);
	assert_int_equal(sg_runs_publish(rs, "run_a", "acme", text("{\"a\":1}"), true), 0);
	assert_int_equal(sg_runs_lookup(rs, "run_a", "acme", &doc), 0);
	free(doc);
	pthread_mutex_lock(&w.mu);
	bool answered_under_lock = w.done;
	pthread_mutex_unlock(&w.mu);
	sqlite3_close(lock); /* the read goes through now */
	assert_true(wait_done(&w));
	assert_false(answered_under_lock);
	assert_int_equal(sg_runs_read_finish(rs, rd, &doc), 0);
	assert_string_equal(doc, "{\"id\":\"run_old\"}");
	free(doc);
	sg_runs_free(rs);
	sg_testdir_remove(dir);
}

/* ---- the document ---- */

static const struct sg_template_limits LIMITS = {
    .wall_ms = 2000, .cpu_ms = 500, .memory_bytes = 16 << 20, .instructions = 1000, .calls = 4};

static json_t *
render(struct sg_run_doc *d)
{
	json_t *j = sg_run_doc_json(d);
	assert_non_null(j);
	return j;
}

static void
test_done_frames_are_named(void **state)
{
	(void)state;
	static const struct {
		enum sg_frame_stop stop;
		const char *code, *limit;
		enum sg_problem_code problem;
	} cases[] = {
	    {SG_STOP_COMPILE_ERROR, "compile_error", NULL, SG_P_TEMPLATE_FAILED},
	    {SG_STOP_SCRIPT_ERROR, "script_error", NULL, SG_P_TEMPLATE_FAILED},
	    {SG_STOP_NO_RUN, "no_run_function", NULL, SG_P_TEMPLATE_FAILED},
	    {SG_STOP_BAD_RESULT, "bad_result", NULL, SG_P_TEMPLATE_FAILED},
	    {SG_STOP_INSTRUCTIONS, "limit_exceeded", "instructions", SG_P_TEMPLATE_LIMIT},
	    {SG_STOP_MEMORY, "limit_exceeded", "memory", SG_P_TEMPLATE_LIMIT},
	    {SG_STOP_CALLS, "limit_exceeded", "calls", SG_P_TEMPLATE_LIMIT},
	    {SG_STOP_GUARD, "limit_exceeded", "string_operation", SG_P_TEMPLATE_LIMIT},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_run_doc d = {0};
		assert_int_equal(sg_run_doc_init(&d), 0);
		struct sg_frame_done f = {.run_id = "run_x",
		                          .stop = cases[i].stop,
		                          .message = "main.lua:3: boom",
		                          .line = 3};
		sg_run_doc_done(&d, &f, &LIMITS);
		assert_int_equal(d.problem, cases[i].problem);
		json_t *j = render(&d);
		assert_string_equal(json_string_value(json_object_get(j, "status")), "failed");
		json_t *err = json_object_get(j, "error");
		assert_string_equal(json_string_value(json_object_get(err, "code")), cases[i].code);
		assert_non_null(json_string_value(json_object_get(err, "remediation")));
		json_t *sb = json_object_get(j, "stopped_by");
		if (cases[i].limit == NULL) {
			assert_true(json_is_null(sb));
			assert_int_equal(json_integer_value(json_object_get(err, "line")), 3);
		} else {
			assert_string_equal(json_string_value(json_object_get(sb, "limit")),
			                    cases[i].limit);
			assert_non_null(
			    strstr(json_string_value(json_object_get(sb, "remediation")),
			           cases[i].stop == SG_STOP_GUARD ? "smaller" : "limits."));
		}
		json_decref(j);
		sg_run_doc_clear(&d);
	}
}

static void
test_success_carries_output_and_usage(void **state)
{
	(void)state;
	struct sg_run_doc d = {0};
	assert_int_equal(sg_run_doc_init(&d), 0);
	snprintf(d.id, sizeof(d.id), "run_1");
	json_t *out = json_pack("{s:i}", "n", 7), *logs = json_pack("[s]", "hello");
	struct sg_frame_done f = {.run_id = "run_1",
	                          .stop = SG_STOP_OK,
	                          .output = out,
	                          .logs = logs,
	                          .instructions = 42,
	                          .peak_memory = 4096};
	sg_run_doc_done(&d, &f, &LIMITS);
	json_decref(out);
	json_decref(logs);
	json_t *j = render(&d);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "output"), "n")), 7);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "logs"), 0)),
	                    "hello");
	json_t *u = json_object_get(j, "usage");
	assert_int_equal(json_integer_value(json_object_get(u, "instructions")), 42);
	assert_true(json_is_null(json_object_get(j, "error")));
	json_decref(j);
	sg_run_doc_clear(&d);
}

static const char *
vanished_code(bool have, int status, bool oom)
{
	static char code[96];
	struct sg_run_doc d = {0};
	assert_int_equal(sg_run_doc_init(&d), 0);
	sg_run_doc_vanished(&d, have, status, oom, 64 << 20);
	snprintf(code, sizeof(code), "%s%s%s", d.error_code, d.limit[0] ? "/" : "", d.limit);
	assert_int_equal(d.status, SG_RUN_FAILED);
	sg_run_doc_clear(&d);
	return code;
}

static void
test_a_vanished_worker_is_explained(void **state)
{
	(void)state;
	/* Wait statuses as waitpid() gives them: signal in the low bits, exit code above. */
	assert_string_equal(vanished_code(true, SIGSYS, false), "forbidden_syscall");
	assert_string_equal(vanished_code(true, SIGSEGV, false), "worker_crashed");
	assert_string_equal(vanished_code(true, SIGKILL, true), "limit_exceeded/tenant_memory");
	assert_string_equal(vanished_code(true, 11 << 8, false), "worker_crashed");
	assert_string_equal(vanished_code(false, 0, false), "worker_crashed");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_registry_is_per_tenant),
	    cmocka_unit_test(test_registry_forgets_finished_runs_first),
	    cmocka_unit_test(test_registry_reads_old_runs_on_its_reader_thread),
	    cmocka_unit_test(test_slow_store_read_blocks_nothing),
	    cmocka_unit_test(test_done_frames_are_named),
	    cmocka_unit_test(test_success_carries_output_and_usage),
	    cmocka_unit_test(test_a_vanished_worker_is_explained),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
