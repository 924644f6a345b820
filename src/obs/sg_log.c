#include "core/sg_io.h"
#include "obs/sg_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum sg_log_level min_level = SG_LOG_INFO;
static const char *level_names[] = {"debug", "info", "warn", "error"};

void
sg_log_set_level(enum sg_log_level l)
{
	min_level = l;
}

/*
 * RFC 3339 UTC with microseconds.  The date and time part changes once a
 * second, so each thread formats it once a second and reuses it.
 */
static void
timestamp(char *out, size_t n)
{
	static _Thread_local time_t cached_sec = -1;
	static _Thread_local char cached[24];
	struct timeval tv;
	gettimeofday(&tv, NULL);
	if (tv.tv_sec != cached_sec) {
		struct tm tm;
		gmtime_r(&tv.tv_sec, &tm);
		strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
		cached_sec = tv.tv_sec;
	}
	/* "%s.%06ldZ" without a printf: lines are written on every request. */
	size_t len = strlen(cached);
	if (n < len + 9)
		return;
	memcpy(out, cached, len);
	out[len] = '.';
	long us = (long)tv.tv_usec;
	for (int i = 6; i >= 1; i--, us /= 10)
		out[len + (size_t)i] = (char)('0' + us % 10);
	out[len + 7] = 'Z';
	out[len + 8] = '\0';
}

json_t *
sg_log_line(const char *level, const char *msg)
{
	char ts[40];
	timestamp(ts, sizeof(ts));
	return json_pack("{s:s, s:s, s:s}", "ts", ts, "level", level, "msg", msg);
}

/* The line as newline-terminated text; takes the reference. */
static char *
render(json_t *line, size_t *len)
{
	char *text = json_dumps(line, JSON_COMPACT);
	json_decref(line);
	if (text == NULL)
		return NULL;
	*len = strlen(text);
	text[(*len)++] = '\n'; /* the NUL's byte becomes the newline */
	return text;
}

static void
log_now(json_t *line)
{
	size_t n;
	if (line == NULL)
		return;
	char *text = render(line, &n);
	if (text)
		(void)sg_write_all(STDERR_FILENO, text, n); /* a full stderr must not stop requests */
	free(text);
}

#define LOGBUF_FLUSH_AT (32 * 1024)

void
sg_logbuf_line_begin(struct sg_logbuf *b, struct sg_jw *w, const char *level, const char *msg)
{
	char ts[40];
	timestamp(ts, sizeof(ts));
	b->line_start = b->text.len;
	sg_jw_begin(w, &b->text);
	sg_jw_object(w);
	sg_jw_keyz(w, "ts");
	sg_jw_stringz(w, ts);
	sg_jw_keyz(w, "level");
	sg_jw_stringz(w, level);
	sg_jw_keyz(w, "msg");
	sg_jw_stringz(w, msg);
}

void
sg_logbuf_line_end(struct sg_logbuf *b, struct sg_jw *w)
{
	sg_jw_object_end(w);
	if (sg_jw_end(w) != 0) {
		b->text.len = b->line_start;
		return;
	}
	/* The writer always leaves room for a NUL after the value: the newline takes it. */
	b->text.data[b->text.len++] = '\n';
	if (b->text.len >= LOGBUF_FLUSH_AT)
		sg_logbuf_flush(b);
}

void
sg_logbuf_flush(struct sg_logbuf *b)
{
	if (b->text.len > 0)
		(void)sg_write_all(STDERR_FILENO, b->text.data, b->text.len);
	b->text.len = 0;
}

void
sg_logbuf_free(struct sg_logbuf *b)
{
	sg_logbuf_flush(b);
	sg_jbuf_release(&b->text);
}

void
sg_log(enum sg_log_level l, json_t *extra, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	if (l < min_level) {
		json_decref(extra);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *line = sg_log_line(level_names[l], msg);
	if (line && extra)
		json_object_update(line, extra);
	json_decref(extra);
	log_now(line);
}
