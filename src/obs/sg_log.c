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

static void
timestamp(char *out, size_t n)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + k, n - k, ".%06ldZ", (long)tv.tv_usec);
}

void
sg_log_json(json_t *line)
{
	char ts[40];
	if (line == NULL)
		return;
	timestamp(ts, sizeof(ts));
	/* "ts" first, so lines sort and scan well. */
	json_t *out = json_pack("{s:s}", "ts", ts);
	json_object_update(out, line);
	json_decref(line);
	char *text = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(out);
	if (text == NULL)
		return;
	size_t n = strlen(text);
	text[n] = '\n'; /* json_dumps leaves room for the NUL we overwrite */
	ssize_t w = write(STDERR_FILENO, text, n + 1);
	(void)w; /* a full or closed stderr must not take requests down */
	free(text);
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
	json_t *line = json_pack("{s:s, s:s}", "level", level_names[l], "msg", msg);
	if (line && extra)
		json_object_update(line, extra);
	json_decref(extra);
	sg_log_json(line);
}
