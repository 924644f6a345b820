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
	snprintf(out, n, "%s.%06ldZ", cached, (long)tv.tv_usec);
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

static int
logbuf_reserve(struct sg_logbuf *b, size_t n)
{
	if (b->len + n <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : LOGBUF_FLUSH_AT * 2;
	while (cap < b->len + n)
		cap *= 2;
	char *nb = realloc(b->buf, cap);
	if (nb == NULL)
		return -1;
	b->buf = nb;
	b->cap = cap;
	return 0;
}

void
sg_logbuf_append(struct sg_logbuf *b, json_t *line)
{
	if (line == NULL)
		return;
	/* Serialise in place; a line that does not fit is retried once in a bigger buffer. */
	size_t need = logbuf_reserve(b, 1024) == 0
	    ? json_dumpb(line, b->buf + b->len, b->cap - b->len - 1, JSON_COMPACT) : 0;
	if (need >= b->cap - b->len - 1 && logbuf_reserve(b, need + 2) == 0)
		need = json_dumpb(line, b->buf + b->len, b->cap - b->len - 1, JSON_COMPACT);
	if (need > 0 && need < b->cap - b->len - 1) {
		b->len += need;
		b->buf[b->len++] = '\n';
	}
	json_decref(line);
	if (b->len >= LOGBUF_FLUSH_AT)
		sg_logbuf_flush(b);
}

void
sg_logbuf_flush(struct sg_logbuf *b)
{
	(void)sg_write_all(STDERR_FILENO, b->buf, b->len);
	b->len = 0;
}

void
sg_logbuf_free(struct sg_logbuf *b)
{
	sg_logbuf_flush(b);
	free(b->buf);
	b->buf = NULL;
	b->cap = 0;
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
