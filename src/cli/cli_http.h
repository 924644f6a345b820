/*
 * cli_http: one blocking HTTP/1.1 request to a running gateway, for the
 * subcommands that talk to it (`run`, `sandbox status`).  Built on
 * libevent's evhttp client with a private event_base, so the CLI never
 * writes HTTP itself.  https:// goes through bufferevent_openssl, with the
 * server's certificate verified against --cacert, $SANDGATE_CACERT or the
 * system's CAs, and its name (or IP address) checked.
 */
#ifndef SG_CLI_HTTP_H
#define SG_CLI_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#define SG_CLI_DEFAULT_URL "http://127.0.0.1:8080"
/* What --cacert says in every subcommand's --help. */
#define SG_CLI_CACERT_HELP                                                                         \
	"  --cacert FILE the CAs (PEM) an https:// gateway's certificate must chain to;\n"         \
	"                default $SANDGATE_CACERT, else the system's CAs\n"

struct sg_cli_http_req {
	const char *method;   /* "GET" or "POST" */
	const char *base_url; /* --url: http[s]://HOST[:PORT][/PREFIX] */
	/* --cacert: PEM CAs that https:// certificates must chain to; NULL: $SANDGATE_CACERT,
	 * else the system's CAs. */
	const char *cacert;
	const char *path;     /* "/v1/...", appended to the base's path; may carry "?query" */
	/* Extra headers as name, value, name, value, ..., NULL; may be NULL. */
	const char *const *headers;
	const char *body; /* NULL: no body */
	size_t body_len;
	int timeout_s; /* for connecting, sending and each wait for the answer */
};

struct sg_cli_http_resp {
	int status; /* HTTP status of the answer */
	char *body; /* malloc'd, NUL-terminated (the body may hold NULs itself) */
	size_t body_len;
	char *content_type; /* malloc'd copies of these headers, or NULL when absent */
	char *location;
	char *retry_after;
};

enum sg_cli_http_rc {
	SG_CLI_HTTP_OK,          /* an answer arrived, whatever its status */
	SG_CLI_HTTP_BAD_URL,     /* a usage error: --url is not http[s]://HOST[:PORT], or the
	                            CA file cannot be read */
	SG_CLI_HTTP_UNREACHABLE, /* nothing to connect to: no gateway there */
	SG_CLI_HTTP_FAILED,      /* connected, but no complete answer (timeout, closed, TLS) */
};

/*
 * Sends one request and waits for the answer.  On SG_CLI_HTTP_OK, `out`
 * holds it (free with sg_cli_http_resp_free); otherwise `err` holds a
 * sentence naming the URL, ready for sg_cli_fail("%s", err).
 *
 * When the host has several addresses (localhost: ::1 and 127.0.0.1), each
 * is tried in turn, but only while the connection itself fails: a request
 * is never sent twice.  Ignores SIGPIPE for the rest of the process.
 */
enum sg_cli_http_rc sg_cli_http_do(const struct sg_cli_http_req *rq, struct sg_cli_http_resp *out,
                                   char *err, size_t errlen);
/* Frees what `r` holds; r itself may be reused.  NULL does nothing. */
void sg_cli_http_resp_free(struct sg_cli_http_resp *r);

/* A string member of the gateway's answer, or "-" when absent or not a string. */
const char *sg_cli_str(const json_t *o, const char *name);
/*
 * Prints label, then text (NULL: none) from the gateway and a newline,
 * control characters shown as \xNN: a template's log line or error message
 * must not drive the terminal.
 */
void sg_cli_put_line(FILE *out, const char *label, const char *text);

#endif
