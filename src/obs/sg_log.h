/*
 * sg_log: JSON lines on stderr.  One line per request, plus server events.
 * A line is built in memory and written with one write(2), so lines from
 * different threads never interleave.
 */
#ifndef SG_LOG_H
#define SG_LOG_H

#include <jansson.h>
#include <stddef.h>

#include "json/sg_json.h"

enum sg_log_level { SG_LOG_DEBUG, SG_LOG_INFO, SG_LOG_WARN, SG_LOG_ERROR };

void sg_log_set_level(enum sg_log_level l);
/* Server event: {"ts","level","msg", ...extra}.  `extra` is stolen and may be NULL. */
void sg_log(enum sg_log_level l, json_t *extra, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * A new line object that starts with "ts", "level" and "msg"; add fields,
 * then hand it to sg_logbuf_append.  Every line is built this way, so "ts"
 * always comes first.
 */
json_t *sg_log_line(const char *level, const char *msg);

/*
 * A per-thread buffer for access-log lines, so that a busy thread pays one
 * write(2) per batch instead of one per request.  The owner flushes it on a
 * short timer and before exiting; a line is never split between writes.
 * Lines are written in place by the JSON writer: no value is built.
 */
struct sg_logbuf {
	struct sg_jbuf text;
	size_t line_start;
};

/* Starts a line {"ts","level","msg", ...} in `b`; add members through `w`, then end it. */
void sg_logbuf_line_begin(struct sg_logbuf *b, struct sg_jw *w, const char *level,
                          const char *msg);
/* Ends the line; one the writer failed on is dropped whole. */
void sg_logbuf_line_end(struct sg_logbuf *b, struct sg_jw *w);
void sg_logbuf_flush(struct sg_logbuf *b);
void sg_logbuf_free(struct sg_logbuf *b);

#endif
