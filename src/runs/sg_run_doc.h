/*
 * sg_run_doc: what GET /v1/runs/{id} shows of one template run, and the
 * plain-words explanation of how it ended.  Filled by the run's executor
 * on its I/O thread; rendered to JSON text for the registry and the store.
 */
#ifndef SG_RUN_DOC_H
#define SG_RUN_DOC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "catalog/sg_template.h"
#include "core/sg_problem.h"
#include "obs/sg_trace.h"
#include "sandbox/sg_frame.h"

enum sg_run_status { SG_RUN_RUNNING, SG_RUN_SUCCEEDED, SG_RUN_FAILED };

struct sg_run_doc {
	char id[40];
	char template_name[129];
	char version[64];
	char tenant[65], user[65], mode[16];
	struct sg_trace trace; /* the run's span; each ctx.call is a child span */
	int64_t started_us, ended_us;
	enum sg_run_status status;
	json_t *output; /* when succeeded */
	json_t *logs;   /* array of strings */
	json_t *calls;  /* array of spans */
	/* When failed. */
	enum sg_problem_code problem; /* template_failed, template_limit or sandbox_violation */
	char error_code[48];
	char message[600];
	int line;
	char limit[32]; /* "" unless a limit stopped the run */
	uint64_t limit_value;
	const char *limit_unit;
	/* Usage. */
	double wall_ms, cpu_ms;
	uint64_t peak_memory, instructions;
	uint32_t n_calls;
	pid_t worker_pid;
};

/* Empty arrays for logs and calls; -1 when out of memory. */
int sg_run_doc_init(struct sg_run_doc *d);
void sg_run_doc_clear(struct sg_run_doc *d);

/* The worker's DONE: success, or the script's error or limit. */
void sg_run_doc_done(struct sg_run_doc *d, const struct sg_frame_done *f,
                     const struct sg_template_limits *lim);
/* The gateway stopped the run at a limit it enforces itself (wall_time, cpu_time, calls). */
void sg_run_doc_limit(struct sg_run_doc *d, const char *limit, uint64_t value, const char *unit);
/*
 * The worker died mid-run.  have_status: its wait status is known;
 * oom_killed: the tenant's memory cgroup killed it (ceiling in bytes).
 */
void sg_run_doc_vanished(struct sg_run_doc *d, bool have_status, int status, bool oom_killed,
                         uint64_t tenant_memory);
/* The worker broke the protocol; it was killed. */
void sg_run_doc_protocol(struct sg_run_doc *d, const char *why);

/* The run document (new reference), NULL when out of memory. */
json_t *sg_run_doc_json(const struct sg_run_doc *d);

#endif
