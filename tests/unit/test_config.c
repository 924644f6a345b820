/*
 * test_config: sandgate.yaml parsing, and the sg_yaml layer beneath it.
 * Error text is API, so the messages are compared whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../support/sg_testdiag.h"

#include "core/sg_config.h"
#include "core/sg_yaml.h"

#ifndef SG_SOURCE_ROOT
#define SG_SOURCE_ROOT "."
#endif

/* `c` starts zeroed or holds an earlier result, which is freed first. */
static int
parse(struct sg_config *c, const char *text, struct sg_diags *d)
{
	sg_config_free(c);
	sg_config_defaults(c);
	return sg_config_parse(c, "t.yaml", text, strlen(text), d);
}

static void
test_defaults(void **state)
{
	(void)state;
	struct sg_config c = {0};
	sg_config_defaults(&c);
	assert_string_equal(c.listen_host, "127.0.0.1");
	assert_int_equal(c.listen_port, 8080);
	assert_int_equal(c.threads, 2);
	assert_string_equal(c.data_dir, "./data");
	assert_int_equal(c.max_header_bytes, 8192);
	assert_int_equal(c.max_body_bytes, 1048576);
	assert_int_equal(c.max_json_depth, 32);
	assert_int_equal(c.read_timeout_ms, 10000);
	assert_int_equal(c.idle_timeout_ms, 60000);
	assert_int_equal(c.drain_timeout_ms, 10000);
	assert_int_equal(c.simulator_seed, 42);
	assert_true(c.log_requests);
	assert_int_equal(c.record_queue, 8192);
	assert_int_equal(c.throttle_cells, 1048576);
	sg_config_free(&c);
	sg_config_free(NULL);
}

static void
test_empty_file_keeps_defaults(void **state)
{
	(void)state;
	struct sg_config c = {0};
	struct sg_diags d = {0};
	assert_int_equal(parse(&c, "# nothing set\n", &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(c.threads, 2);
	sg_config_free(&c);
}

static void
test_every_key(void **state)
{
	(void)state;
	static const char text[] = "listen: \"[::1]:9090\"\n"
	                           "threads: 8\n"
	                           "data_dir: /var/lib/sandgate\n"
	                           "limits:\n"
	                           "  max_header_bytes: 16384\n"
	                           "  max_body_bytes: 2097152\n"
	                           "  max_json_depth: 16\n"
	                           "  read_timeout: 250ms\n"
	                           "  idle_timeout: 2m\n"
	                           "  drain_timeout: 0s\n"
	                           "simulator:\n"
	                           "  seed: 7\n"
	                           "log:\n"
	                           "  requests: false\n"
	                           "record:\n"
	                           "  queue: 1024\n"
	                           "throttle:\n"
	                           "  cells: 4096\n";
	struct sg_config c = {0};
	struct sg_diags d = {0};
	assert_int_equal(parse(&c, text, &d), 0);
	assert_int_equal(d.n, 0);
	assert_string_equal(c.listen_host, "::1");
	assert_int_equal(c.listen_port, 9090);
	assert_int_equal(c.threads, 8);
	assert_string_equal(c.data_dir, "/var/lib/sandgate");
	assert_int_equal(c.max_header_bytes, 16384);
	assert_int_equal(c.max_body_bytes, 2097152);
	assert_int_equal(c.max_json_depth, 16);
	assert_int_equal(c.read_timeout_ms, 250);
	assert_int_equal(c.idle_timeout_ms, 120000);
	assert_int_equal(c.drain_timeout_ms, 0);
	assert_int_equal(c.simulator_seed, 7);
	assert_false(c.log_requests);
	assert_int_equal(c.record_queue, 1024);
	assert_int_equal(c.throttle_cells, 4096);
	sg_config_free(&c);
}

static void
test_unknown_key_points_at_line(void **state)
{
	(void)state;
	struct sg_config c = {0};
	struct sg_diags d = {0};
	assert_int_equal(
	    parse(&c, "listen: 127.0.0.1:9000\nlimits:\n    max_body_byte: 2048\n", &d), -1);
	assert_int_equal(d.n, 1);
	assert_string_equal(
	    diag_at(&d, 0),
	    "t.yaml:3:5: unknown key \"max_body_byte\" (did you mean \"max_body_bytes\"?)");
	/* A file with errors changes nothing, not even the valid keys. */
	assert_int_equal(c.listen_port, 8080);
	sg_diags_free(&d);
	assert_int_equal(parse(&c, "thraeds: 4\nzzzzzz: 1\n", &d), -1);
	assert_int_equal(d.n, 2);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:1:1: unknown key \"thraeds\" (did you mean \"threads\"?)");
	assert_string_equal(diag_at(&d, 1), "t.yaml:2:1: unknown key \"zzzzzz\" in sandgate.yaml: "
	                                    "remove it");
	sg_diags_free(&d);
	sg_config_free(&c);
}

static void
test_bad_duration(void **state)
{
	(void)state;
	struct sg_config c = {0};
	struct sg_diags d = {0};
	assert_int_equal(parse(&c, "limits:\n  read_timeout: 10x\n  idle_timeout: 10\n", &d), -1);
	assert_int_equal(d.n, 2);
	assert_string_equal(diag_at(&d, 0), "t.yaml:2:17: limits.read_timeout: expected a duration "
	                                    "such as 250ms, 10s, 5m, 1h or 2d, got \"10x\"");
	assert_string_equal(diag_at(&d, 1), "t.yaml:3:17: limits.idle_timeout: expected a duration "
	                                    "such as 250ms, 10s, 5m, 1h or 2d, got \"10\"");
	sg_diags_free(&d);
	assert_int_equal(parse(&c, "limits:\n  read_timeout: 0s\n  idle_timeout: 2d\n", &d), -1);
	assert_int_equal(d.n, 2);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:2:17: limits.read_timeout: must be from 1ms to 1d, got \"0s\"");
	assert_string_equal(diag_at(&d, 1),
	                    "t.yaml:3:17: limits.idle_timeout: must be from 1ms to 1d, got \"2d\"");
	sg_diags_free(&d);
	sg_config_free(&c);
}

static void
test_queue_and_shedding(void **state)
{
	(void)state;
	struct sg_config c = {0};
	struct sg_diags d = {0};
	sg_config_defaults(&c);
	assert_int_equal(c.queue_wait_ms, 2000);
	assert_int_equal(c.shed_background_pct, 50);
	assert_int_equal(parse(&c,
	                       "throttle:\n  queue_wait: 0s\n  queue_depth: 3\n"
	                       "shedding:\n  max_in_flight: 10\n",
	                       &d),
	                 0);
	assert_int_equal(c.queue_wait_ms, 0);
	assert_int_equal(c.queue_depth, 3);
	assert_int_equal(c.shed_max_in_flight, 10);
	assert_int_equal(parse(&c, "throttle:\n  queue_wait: 61s\n", &d), -1);
	assert_string_equal(diag_at(&d, 0), "t.yaml:2:15: throttle.queue_wait: must be from 0ms to "
	                                    "60s, got \"61s\"");
	sg_diags_free(&d);
	assert_int_equal(
	    parse(&c, "shedding:\n  background_percent: 90\n  normal_percent: 80\n", &d), -1);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:2:3: shedding: background_percent (90) is above "
	                    "normal_percent (80); background work must be shed first");
	sg_diags_free(&d);
	sg_config_free(&c);
}

static void
test_redis_settings(void **state)
{
	(void)state;
	struct sg_config c = {0};
	struct sg_diags d = {0};
	sg_config_defaults(&c);
	assert_int_equal(c.throttle_backend, SG_BACKEND_LOCAL);
	assert_int_equal(parse(&c,
	                       "throttle:\n  backend: redis\nredis:\n  host: redis.internal\n"
	                       "  port: 6380\n  failure_mode: deny\n  nodes: 3\n",
	                       &d),
	                 0);
	assert_int_equal(c.throttle_backend, SG_BACKEND_REDIS);
	assert_string_equal(c.redis_host, "redis.internal");
	assert_int_equal(c.redis_port, 6380);
	assert_int_equal(c.redis_failure, SG_REDIS_FAIL_DENY);
	assert_int_equal(c.redis_nodes, 3);
	assert_int_equal(c.redis_timeout_ms, 50);
	assert_int_equal(parse(&c,
	                       "throttle:\n  backend: redsi\nredis:\n  host: \"bad host\"\n"
	                       "  failure_mode: panic\n",
	                       &d),
	                 -1);
	assert_string_equal(diag_at(&d, 0), "t.yaml:2:12: throttle.backend: unknown \"redsi\" (did "
	                                    "you mean \"redis\"?); use local or redis");
	assert_string_equal(diag_at(&d, 1),
	                    "t.yaml:4:9: redis.host: expected a host name or address "
	                    "such as 127.0.0.1 or redis.internal, got \"bad host\"");
	assert_string_equal(diag_at(&d, 2),
	                    "t.yaml:5:17: redis.failure_mode: unknown \"panic\"; use "
	                    "local, deny or allow");
	sg_diags_free(&d);
	sg_config_free(&c);
}

static void
test_duration_parse(void **state)
{
	(void)state;
	uint64_t ms = 0;
	assert_int_equal(sg_duration_parse_ms("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(sg_duration_parse_ms("10s", &ms), 0);
	assert_int_equal(ms, 10000);
	assert_int_equal(sg_duration_parse_ms("5m", &ms), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(sg_duration_parse_ms("1h", &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(sg_duration_parse_ms("2d", &ms), 0);
	assert_int_equal(ms, 172800000);
	assert_int_equal(sg_duration_parse_ms("10", &ms), -1);
	assert_int_equal(sg_duration_parse_ms("s", &ms), -1);
	assert_int_equal(sg_duration_parse_ms("-1s", &ms), -1);
	assert_int_equal(sg_duration_parse_ms("1.5s", &ms), -1);
	assert_int_equal(sg_duration_parse_ms("10 s", &ms), -1);
	assert_int_equal(sg_duration_parse_ms("99999999999999999999ms", &ms), -1);
	assert_int_equal(sg_duration_parse_ms("999999999999999999d", &ms), -1);
	assert_int_equal(sg_duration_parse_ms(NULL, &ms), -1);
}

static void
test_ranges(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int rc;
	} cases[] = {
	    {"threads: 0\n", -1},
	    {"threads: 1\n", 0},
	    {"threads: 64\n", 0},
	    {"threads: 65\n", -1},
	    {"limits: { max_header_bytes: 1023 }\n", -1},
	    {"limits: { max_header_bytes: 1024 }\n", 0},
	    {"limits: { max_header_bytes: 1048576 }\n", 0},
	    {"limits: { max_header_bytes: 1048577 }\n", -1},
	    {"limits: { max_body_bytes: 67108864 }\n", 0},
	    {"limits: { max_body_bytes: 67108865 }\n", -1},
	    {"limits: { max_json_depth: 1 }\n", -1},
	    {"limits: { max_json_depth: 2 }\n", 0},
	    {"limits: { max_json_depth: 64 }\n", 0},
	    {"limits: { max_json_depth: 65 }\n", -1},
	    {"limits: { drain_timeout: 0ms }\n", 0},
	    {"limits: { drain_timeout: 1d }\n", 0},
	    {"limits: { drain_timeout: 86400001ms }\n", -1},
	    {"record: { queue: 15 }\n", -1},
	    {"record: { queue: 16 }\n", 0},
	    {"record: { queue: 16777216 }\n", 0},
	    {"record: { queue: 16777217 }\n", -1},
	    {"throttle: { cells: 1023 }\n", -1},
	    {"throttle: { cells: 1024 }\n", 0},
	    {"throttle: { cells: 67108864 }\n", 0},
	    {"throttle: { cells: 67108865 }\n", -1},
	    {"simulator: { seed: -1 }\n", -1},
	    {"simulator: { seed: 0 }\n", 0},
	    {"simulator: { seed: 9223372036854775807 }\n", 0},
	    {"simulator: { seed: 9223372036854775808 }\n", -1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_config c = {0};
		struct sg_diags d = {0};
		int rc = parse(&c, cases[i].text, &d);
		if (rc != cases[i].rc)
			fail_msg("%s: rc %d, want %d", cases[i].text, rc, cases[i].rc);
		assert_int_equal(d.n, rc == 0 ? 0 : 1);
		sg_diags_free(&d);
		sg_config_free(&c);
	}
	struct sg_config c = {0};
	struct sg_diags d = {0};
	assert_int_equal(parse(&c, "threads: 65\n", &d), -1);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:1:10: threads: expected an integer from 1 to 64, got \"65\"");
	sg_diags_free(&d);
	sg_config_free(&c);
}

static void
test_wrong_types(void **state)
{
	(void)state;
	static const char text[] = "threads: two\n"
	                           "limits: 5\n"
	                           "log:\n"
	                           "  requests: yes\n"
	                           "data_dir: [a, b]\n"
	                           "record: { queue: \"100\" }\n";
	struct sg_config c = {0};
	struct sg_diags d = {0};
	assert_int_equal(parse(&c, text, &d), -1);
	assert_int_equal(d.n, 5);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:1:10: threads: expected an integer from 1 to 64, got \"two\"");
	assert_string_equal(diag_at(&d, 1), "t.yaml:2:9: limits: expected a mapping, got \"5\"");
	assert_string_equal(
	    diag_at(&d, 2),
	    "t.yaml:4:13: log.requests: expected a boolean (true or false), got \"yes\"");
	assert_string_equal(diag_at(&d, 3), "t.yaml:5:12: data_dir: expected a string, got a list");
	assert_string_equal(
	    diag_at(&d, 4),
	    "t.yaml:6:18: record.queue: expected an integer from 16 to 16777216, got \"100\"");
	sg_diags_free(&d);
	assert_int_equal(parse(&c, "- threads\n", &d), -1);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:1:3: sandgate.yaml: expected a mapping, got a list");
	sg_diags_free(&d);
	sg_config_free(&c);
}

static void
test_listen(void **state)
{
	(void)state;
	struct sg_config c = {0};
	sg_config_defaults(&c);
	assert_int_equal(sg_config_set_listen(&c, "0.0.0.0:1"), 0);
	assert_string_equal(c.listen_host, "0.0.0.0");
	assert_int_equal(c.listen_port, 1);
	assert_int_equal(sg_config_set_listen(&c, "localhost:65535"), 0);
	assert_string_equal(c.listen_host, "localhost");
	assert_int_equal(c.listen_port, 65535);
	assert_int_equal(sg_config_set_listen(&c, "[fe80::1]:443"), 0);
	assert_string_equal(c.listen_host, "fe80::1");
	assert_int_equal(c.listen_port, 443);
	assert_int_equal(sg_config_set_listen(&c, "localhost:0"), -1);
	assert_int_equal(sg_config_set_listen(&c, "localhost:65536"), -1);
	assert_int_equal(sg_config_set_listen(&c, "localhost"), -1);
	assert_int_equal(sg_config_set_listen(&c, ":80"), -1);
	assert_int_equal(sg_config_set_listen(&c, "::1:80"), -1);
	assert_int_equal(sg_config_set_listen(&c, "[nothex]:80"), -1);
	assert_int_equal(sg_config_set_listen(&c, "host:8o"), -1);
	assert_int_equal(sg_config_set_listen(&c, "host:"), -1);
	assert_int_equal(sg_config_set_listen(&c, "bad host:80"), -1);
	/* Failures leave the previous value. */
	assert_string_equal(c.listen_host, "fe80::1");
	assert_int_equal(c.listen_port, 443);

	struct sg_diags d = {0};
	assert_int_equal(sg_config_parse(&c, "t.yaml", "listen: 8080\n", 13, &d), -1);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:1:9: listen: expected host:port with a port "
	                    "from 1 to 65535, such as 127.0.0.1:8080 or [::1]:8080, or off, got "
	                    "\"8080\"");
	sg_diags_free(&d);
	assert_int_equal(sg_config_set_listen(&c, "off"), 0);
	assert_int_equal(c.listen_port, 0);
	sg_config_free(&c);
}

static void
test_listen_tls(void **state)
{
	(void)state;
	struct sg_config c = {0};
	struct sg_diags d = {0};
	sg_config_defaults(&c);
	assert_int_equal(c.tls_port, 0);
	assert_null(c.tls_cert);
	/* Both listeners. */
	assert_int_equal(parse(&c,
	                       "listen: 127.0.0.1:9080\nlisten_tls:\n  address: \"[::1]:9443\"\n"
	                       "  cert: /etc/c.pem\n  key: /etc/k.pem\n  client_ca: /etc/ca.pem\n",
	                       &d),
	                 0);
	assert_int_equal(c.listen_port, 9080);
	assert_string_equal(c.tls_host, "::1");
	assert_int_equal(c.tls_port, 9443);
	assert_string_equal(c.tls_cert, "/etc/c.pem");
	assert_string_equal(c.tls_key, "/etc/k.pem");
	assert_string_equal(c.tls_client_ca, "/etc/ca.pem");
	/* TLS without a word on listen: TLS only; client_ca is optional. */
	assert_int_equal(
	    parse(&c, "listen_tls:\n  address: 0.0.0.0:443\n  cert: c.pem\n  key: k.pem\n", &d), 0);
	assert_int_equal(c.listen_port, 0);
	assert_int_equal(c.tls_port, 443);
	assert_null(c.tls_client_ca);
	assert_int_equal(parse(&c,
	                       "listen: \"off\"\nlisten_tls:\n  address: 127.0.0.1:443\n"
	                       "  cert: c.pem\n  key: k.pem\n",
	                       &d),
	                 0);
	assert_int_equal(c.listen_port, 0);
	/* Every mistake in one pass, at its line and column. */
	assert_int_equal(parse(&c,
	                       "listen: \"off\"\nlisten_tls:\n  address: 8443\n  cert: \"\"\n"
	                       "  client_cert: x.pem\n",
	                       &d),
	                 -1);
	assert_int_equal(d.n, 4);
	assert_string_equal(diag_at(&d, 0), "t.yaml:3:3: listen_tls: key (the certificate's "
	                                    "private key in PEM) is missing");
	assert_string_equal(diag_at(&d, 1),
	                    "t.yaml:3:12: listen_tls.address: expected host:port with a port "
	                    "from 1 to 65535, such as 127.0.0.1:8443 or [::1]:8443, got \"8443\"");
	assert_string_equal(diag_at(&d, 2),
	                    "t.yaml:4:9: listen_tls.cert: expected a path of 1 to 4000 bytes");
	assert_string_equal(
	    diag_at(&d, 3),
	    "t.yaml:5:3: unknown key \"client_cert\" (did you mean \"client_ca\"?)");
	/* A file with errors changes nothing. */
	assert_int_equal(c.listen_port, 8080);
	assert_int_equal(c.tls_port, 0);
	sg_diags_free(&d);
	assert_int_equal(parse(&c, "listen: \"off\"\n", &d), -1);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:1:9: listen: off leaves the gateway without a listener; set "
	                    "listen_tls too, or give listen an address");
	sg_diags_free(&d);
	assert_int_equal(parse(&c, "listen_tls: 127.0.0.1:8443\n", &d), -1);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:1:13: listen_tls: expected a mapping, got \"127.0.0.1:8443\"");
	sg_diags_free(&d);
	sg_config_free(&c);
}

static void
test_yaml_syntax_errors(void **state)
{
	(void)state;
	struct sg_config c = {0};
	struct sg_diags d = {0};
	assert_int_equal(parse(&c, "threads: 2\nlimits: [1\n", &d), -1);
	assert_true(d.n >= 1);
	assert_true(d.v[0].line >= 2);
	assert_non_null(strstr(d.v[0].msg, "YAML syntax error: "));
	sg_diags_free(&d);

	assert_int_equal(parse(&c, "threads: 2\nlisten: 1.2.3.4:5\nthreads: 3\n", &d), -1);
	assert_int_equal(d.n, 1);
	assert_string_equal(diag_at(&d, 0), "t.yaml:3:1: duplicate key \"threads\": each key may "
	                                    "appear only once in a mapping");
	sg_diags_free(&d);

	/* Invalid UTF-8 is refused before libfyaml sees it (it once looped on this). */
	assert_int_equal(parse(&c,
	                       "%25\x8e"
	                       "12",
	                       &d),
	                 -1);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:1:4: invalid UTF-8 (byte 0x8e): save the file as UTF-8");
	sg_diags_free(&d);
	assert_int_equal(parse(&c, "data_dir: \"caf\xc3\xa9\"\nthreads: \xed\xa0\x80\n", &d), -1);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:2:10: invalid UTF-8 (byte 0xed): save the file as UTF-8");
	sg_diags_free(&d);
	assert_int_equal(parse(&c, "data_dir: \"caf\xc3\xa9 \xf0\x9f\x98\x80\"\n", &d), 0);
	assert_string_equal(c.data_dir, "caf\xc3\xa9 \xf0\x9f\x98\x80");
	/* So are control characters: libfyaml 0.7.12 crashes on a NUL. */
	assert_int_equal(sg_config_parse(&c, "t.yaml", "threads: 2\nx: \0\n", 16, &d), -1);
	assert_string_equal(diag_at(&d, 0), "t.yaml:2:4: control character (byte 0x00) is not "
	                                    "allowed in YAML: remove it");
	sg_diags_free(&d);
	assert_int_equal(parse(&c, "data_dir: \"\xc2\x9b\"\n", &d), -1);
	assert_int_equal(d.v[0].col, 12);
	sg_diags_free(&d);
	/* A tab after ':' crashes libfyaml 0.7.12 in one context; refused before it. */
	assert_int_equal(parse(&c, "? ::\t:", &d), -1);
	assert_string_equal(diag_at(&d, 0), "t.yaml:1:5: tab after ':': use spaces here");
	sg_diags_free(&d);
	assert_int_equal(parse(&c, "threads:\t4\n", &d), 0);
	assert_int_equal(c.threads, 4);
	/* '' escapes decode correctly one at a time, and two in a row are refused. */
	assert_int_equal(parse(&c, "data_dir: 'it''s'\n", &d), 0);
	assert_string_equal(c.data_dir, "it's");
	assert_int_equal(parse(&c, "data_dir: 'it''''s'\n", &d), -1);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:1:11: two or more '' escapes in a row in a "
	                    "single-quoted string: use a double-quoted string instead");
	sg_diags_free(&d);

	assert_int_equal(parse(&c, "threads: 2\n---\nthreads: 3\n", &d), -1);
	assert_string_equal(diag_at(&d, 0), "t.yaml:3:1: only one YAML document per file: move "
	                                    "the document after \"---\" into its own file");
	sg_diags_free(&d);
	sg_config_free(&c);
}

static void
test_yaml_refuses_anchors(void **state)
{
	(void)state;
	struct sg_config c = {0};
	struct sg_diags d = {0};
	static const char text[] = "limits: &l { max_json_depth: 8 }\n"
	                           "log: *l\n"
	                           "record:\n  <<: { queue: 100 }\n"
	                           "threads: !!int 3\n";
	assert_int_equal(parse(&c, text, &d), -1);
	assert_int_equal(d.n, 4);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:1:14: YAML anchors (&name) are not allowed: remove the anchor");
	assert_string_equal(
	    diag_at(&d, 1),
	    "t.yaml:2:6: YAML aliases (*name) are not allowed: write the value out");
	assert_string_equal(diag_at(&d, 2),
	                    "t.yaml:4:3: YAML merge keys (<<) are not allowed: write the keys out");
	assert_non_null(strstr(diag_at(&d, 3), "t.yaml:5:16: YAML tags (!tag) are not allowed"));
	sg_diags_free(&d);
	sg_config_free(&c);
}

static void
test_yaml_size_limit(void **state)
{
	(void)state;
	size_t len = 1024 * 1024 + 1;
	char *big = malloc(len);
	assert_non_null(big);
	memset(big, '#', len);
	big[len - 1] = '\n';
	struct sg_diags d = {0};
	/* Exactly 1 MiB of comment is fine; one byte more is refused. */
	struct fy_document *doc = sg_yaml_parse("big.yaml", big, len - 1, &d);
	assert_non_null(doc);
	assert_int_equal(d.n, 0);
	fy_document_destroy(doc);
	assert_null(sg_yaml_parse("big.yaml", big, len, &d));
	assert_int_equal(d.n, 1);
	assert_string_equal(
	    d.v[0].msg, "file is 1048577 bytes, over the 1 MiB limit: split it into smaller files");
	sg_diags_free(&d);
	free(big);
}

/* n unknown keys, one error each; past 100 the file gets one final note instead. */
static void
check_error_cap(int n, size_t want)
{
	char *text = calloc((size_t)n, 16);
	assert_non_null(text);
	for (int i = 0; i < n; i++)
		sprintf(text + strlen(text), "zz%d: 1\n", i);
	struct sg_config c = {0};
	struct sg_diags d = {0};
	assert_int_equal(parse(&c, text, &d), -1);
	assert_int_equal(d.n, want);
	assert_int_equal(d.v[0].line, 1);
	bool capped = strcmp(d.v[d.n - 1].msg, "too many errors; fix these and try again") == 0;
	assert_int_equal(capped, n > 100);
	sg_diags_free(&d);
	sg_config_free(&c);
	free(text);
}

static void
test_error_cap(void **state)
{
	(void)state;
	check_error_cap(99, 99);
	check_error_cap(100, 100);
	check_error_cap(101, 101);
	check_error_cap(5000, 101);
}

static void
test_yaml_to_json(void **state)
{
	(void)state;
	static const char text[] = "a: 1\nb: 1.5\nc: true\nd: ~\ne: \"1\"\nf: [x, 'y']\ng: 0x1f\n"
	                           "h: 1.0.0\ni: 99999999999999999999\n";
	struct sg_diags d = {0};
	struct fy_document *doc = sg_yaml_parse("j.yaml", text, strlen(text), &d);
	assert_non_null(doc);
	struct fy_node *root = fy_document_root(doc);
	json_t *j = sg_yaml_to_json("j.yaml", root, &d);
	assert_null(j);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.v[0].line, 9);
	sg_diags_free(&d);
	/* Drop the out-of-range integer and convert again. */
	fy_document_destroy(doc);
	doc = sg_yaml_parse("j.yaml", text, strlen(text) - strlen("i: 99999999999999999999\n"), &d);
	j = sg_yaml_to_json("j.yaml", fy_document_root(doc), &d);
	assert_non_null(j);
	char *dump = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(dump, "{\"a\":1,\"b\":1.5,\"c\":true,\"d\":null,\"e\":\"1\","
	                          "\"f\":[\"x\",\"y\"],\"g\":31,\"h\":\"1.0.0\"}");
	free(dump);
	json_decref(j);
	fy_document_destroy(doc);
}

static void
test_sandbox_settings(void **state)
{
	(void)state;
	struct sg_config c = {0};
	struct sg_diags d = {0};
	assert_int_equal(parse(&c, "", &d), 0);
	assert_true(c.sandbox_enabled);
	assert_int_equal(c.sandbox_cgroups, SG_CGROUPS_STRICT);
	static const char good[] = "sandbox:\n  cgroups: best_effort\n  tenant_memory: 64MiB\n"
	                           "  worker_memory: 1GiB\n  tenant_cpu_percent: 0\n"
	                           "  prefork: 0\n  tenant_runs: 2\n";
	assert_int_equal(parse(&c, good, &d), 0);
	assert_int_equal(c.sandbox_cgroups, SG_CGROUPS_BEST_EFFORT);
	assert_int_equal(c.sandbox_tenant_memory, 64ull << 20);
	assert_int_equal(c.sandbox_worker_memory, 1ull << 30);
	assert_int_equal(c.sandbox_tenant_cpu_pct, 0);
	assert_int_equal(c.sandbox_prefork, 0);
	assert_int_equal(c.sandbox_tenant_runs, 2);
	static const char bad[] = "sandbox:\n  cgroups: strickt\n  tenant_memory: 64MB\n"
	                          "  worker_memory: 1MiB\n";
	assert_int_equal(parse(&c, bad, &d), -1);
	assert_int_equal(d.n, 3);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:2:12: sandbox.cgroups: unknown \"strickt\" (did you mean "
	                    "\"strict\"?); use strict, best_effort or off");
	assert_string_equal(diag_at(&d, 1),
	                    "t.yaml:3:18: sandbox.tenant_memory: expected a size such as 512MiB, "
	                    "64KiB or 2GiB, got \"64MB\"");
	assert_string_equal(diag_at(&d, 2),
	                    "t.yaml:4:18: sandbox.worker_memory: must be 0 (no ceiling) or from 16 "
	                    "MiB to 64 GiB, got \"1MiB\"");
	sg_diags_free(&d);
	static const char io[] = "sandbox:\n  tenant_io_device: \"254:0\"\n"
	                         "  tenant_io_read_bps: 10MiB\n";
	assert_int_equal(parse(&c, io, &d), 0);
	assert_string_equal(c.sandbox_io_device, "254:0");
	assert_int_equal(c.sandbox_io_read_bps, 10u << 20);
	static const char io_bad[] = "sandbox:\n  tenant_io_write_bps: 1MiB\n";
	assert_int_equal(parse(&c, io_bad, &d), -1);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:2:3: sandbox: tenant_io_read_bps and tenant_io_write_bps need "
	                    "tenant_io_device, the disk they apply to (MAJOR:MINOR, e.g. 8:0)");
	sg_diags_free(&d);
	assert_int_equal(parse(&c, "sandbox:\n  tenant_io_device: sda\n", &d), -1);
	assert_non_null(strstr(diag_at(&d, 0), "t.yaml:2:21: sandbox.tenant_io_device: expected"));
	sg_diags_free(&d);
	sg_config_free(&c);
}

static void
test_audit_settings(void **state)
{
	(void)state;
	struct sg_config c = {0};
	struct sg_diags d = {0};
	sg_config_defaults(&c);
	assert_true(sg_config_audit_fail_closed(&c, true));
	assert_false(sg_config_audit_fail_closed(&c, false));
	assert_int_equal(c.audit_deadline_ms, 5000);
	assert_int_equal(parse(&c,
	                       "audit:\n  on_failure:\n    live: fail_open\n    sandbox: "
	                       "fail_closed\n  backlog_deadline: 250ms\n",
	                       &d),
	                 0);
	assert_false(sg_config_audit_fail_closed(&c, true));
	assert_true(sg_config_audit_fail_closed(&c, false));
	assert_int_equal(c.audit_deadline_ms, 250);
	/* One word sets both modes; a mode left out keeps its default. */
	assert_int_equal(parse(&c, "audit:\n  on_failure: fail_closed\n", &d), 0);
	assert_true(sg_config_audit_fail_closed(&c, true));
	assert_true(sg_config_audit_fail_closed(&c, false));
	assert_int_equal(parse(&c, "audit:\n  on_failure:\n    live: fail_open\n", &d), 0);
	assert_false(sg_config_audit_fail_closed(&c, true));
	assert_false(sg_config_audit_fail_closed(&c, false));

	assert_int_equal(parse(&c,
	                       "audit:\n  on_failure: fail_close\n  backlog_deadline: 2h\n"
	                       "  backlog_deadlin: 1s\n",
	                       &d),
	                 -1);
	assert_int_equal(d.n, 3);
	assert_string_equal(diag_at(&d, 0), "t.yaml:2:15: audit.on_failure: unknown \"fail_close\" "
	                                    "(did you mean \"fail_closed\"?); use fail_closed or "
	                                    "fail_open");
	assert_string_equal(diag_at(&d, 1), "t.yaml:3:21: audit.backlog_deadline: must be from 1ms "
	                                    "to 3600s, got \"2h\"");
	assert_string_equal(diag_at(&d, 2), "t.yaml:4:3: unknown key \"backlog_deadlin\" (did you "
	                                    "mean \"backlog_deadline\"?)");
	sg_diags_free(&d);
	assert_int_equal(
	    parse(&c, "audit:\n  on_failure:\n    liv: fail_open\n    sandbox: 3\n", &d), -1);
	assert_int_equal(d.n, 2);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:3:5: unknown key \"liv\" (did you mean \"live\"?)");
	assert_string_equal(diag_at(&d, 1), "t.yaml:4:14: audit.on_failure.sandbox: unknown \"3\"; "
	                                    "use fail_closed or fail_open");
	sg_diags_free(&d);
	sg_config_free(&c);
}

/* audit.retention: off by default, days past what 32-bit milliseconds hold, "off" again. */
static void
test_audit_retention(void **state)
{
	(void)state;
	struct sg_config c = {0};
	struct sg_diags d = {0};
	sg_config_defaults(&c);
	assert_int_equal(c.audit_retention_ms, 0);
	assert_int_equal(parse(&c, "audit:\n  retention: 90d\n", &d), 0);
	assert_true(c.audit_retention_ms == 90ull * 86400 * 1000);
	assert_int_equal(parse(&c, "audit:\n  retention: 1s\n", &d), 0);
	assert_true(c.audit_retention_ms == 1000);
	assert_int_equal(parse(&c, "audit:\n  retention: \"off\"\n", &d), 0);
	assert_true(c.audit_retention_ms == 0);
	assert_int_equal(parse(&c, "audit:\n  retention: 2d\n", &d), 0);
	assert_int_equal(parse(&c, "audit:\n  retention: off\n", &d), 0);
	assert_true(c.audit_retention_ms == 0);
	assert_int_equal(parse(&c, "audit:\n  retention: 500ms\n", &d), -1);
	assert_int_equal(d.n, 1);
	assert_string_equal(diag_at(&d, 0), "t.yaml:2:14: audit.retention: expected \"off\" or a "
	                                    "duration from 1s to 36600d such as 90d or 12h, got "
	                                    "\"500ms\"");
	sg_diags_free(&d);
	sg_config_free(&c);
}

static void
test_secrets_warn_before(void **state)
{
	(void)state;
	struct sg_config c = {0};
	struct sg_diags d = {0};
	sg_config_defaults(&c);
	assert_int_equal(c.secrets_warn_before_ms, 14u * 86400 * 1000);
	assert_int_equal(parse(&c, "secrets:\n  warn_before: 30d\n", &d), 0);
	assert_int_equal(c.secrets_warn_before_ms, 30u * 86400 * 1000);
	/* Past 45 days the figure would not fit; refused, not wrapped. */
	assert_int_equal(parse(&c, "secrets:\n  warn_before: 60d\n", &d), -1);
	assert_int_equal(d.n, 1);
	assert_non_null(strstr(diag_at(&d, 0), "secrets.warn_before: must be from"));
	sg_diags_free(&d);
	sg_config_free(&c);
}

static void
test_load_example_file(void **state)
{
	(void)state;
	struct sg_config c, def;
	struct sg_diags d = {0};
	sg_config_defaults(&c);
	sg_config_defaults(&def);
	int rc = sg_config_load(&c, SG_SOURCE_ROOT "/examples/sandgate.yaml", &d);
	sg_diags_print(&d, stderr);
	assert_int_equal(rc, 0);
	/* The example documents every default, so loading it changes nothing. */
	assert_string_equal(c.data_dir, def.data_dir);
	assert_string_equal(c.listen_host, def.listen_host);
	assert_int_equal(c.listen_port, def.listen_port);
	assert_int_equal(c.threads, def.threads);
	assert_int_equal(c.max_header_bytes, def.max_header_bytes);
	assert_int_equal(c.max_body_bytes, def.max_body_bytes);
	assert_int_equal(c.max_json_depth, def.max_json_depth);
	assert_int_equal(c.read_timeout_ms, def.read_timeout_ms);
	assert_int_equal(c.idle_timeout_ms, def.idle_timeout_ms);
	assert_int_equal(c.drain_timeout_ms, def.drain_timeout_ms);
	assert_string_equal(c.admin_host, def.admin_host);
	assert_int_equal(c.admin_port, def.admin_port);
	assert_int_equal(c.header_timeout_ms, def.header_timeout_ms);
	assert_int_equal(c.body_timeout_ms, def.body_timeout_ms);
	assert_int_equal(c.max_connections, def.max_connections);
	assert_int_equal(c.max_conns_per_addr, def.max_conns_per_addr);
	assert_string_equal(c.unauth_rate, def.unauth_rate);
	assert_int_equal(c.unauth_burst, def.unauth_burst);
	assert_int_equal(c.unauth_audit_ms, def.unauth_audit_ms);
	assert_int_equal(c.simulator_seed, def.simulator_seed);
	assert_int_equal(c.log_requests, def.log_requests);
	assert_int_equal(c.record_queue, def.record_queue);
	assert_int_equal(c.audit_live, def.audit_live);
	assert_int_equal(c.audit_sandbox, def.audit_sandbox);
	assert_int_equal(c.audit_deadline_ms, def.audit_deadline_ms);
	assert_int_equal(c.throttle_cells, def.throttle_cells);
	assert_int_equal(c.sandbox_enabled, def.sandbox_enabled);
	assert_int_equal(c.sandbox_cgroups, def.sandbox_cgroups);
	assert_int_equal(c.sandbox_tenant_memory, def.sandbox_tenant_memory);
	assert_int_equal(c.sandbox_worker_memory, def.sandbox_worker_memory);
	assert_int_equal(c.sandbox_tenant_cpu_pct, def.sandbox_tenant_cpu_pct);
	assert_int_equal(c.sandbox_prefork, def.sandbox_prefork);
	sg_config_free(&def);

	assert_int_equal(sg_config_load(&c, SG_SOURCE_ROOT "/no/such/file.yaml", &d), -1);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.v[0].line, 0);
	assert_string_equal(d.v[0].msg, "cannot open: No such file or directory");
	sg_diags_free(&d);
	sg_config_free(&c);
}

static void
test_session_settings(void **state)
{
	(void)state;
	struct sg_config c = {0};
	struct sg_diags d = {0};
	assert_int_equal(parse(&c, "", &d), 0);
	assert_int_equal(c.sessions_max_per_key, 10);
	assert_int_equal(parse(&c, "sessions:\n  max_per_key: 1\n", &d), 0);
	assert_int_equal(c.sessions_max_per_key, 1);
	assert_int_equal(parse(&c, "sessions:\n  max_per_key: 100000\n", &d), 0);
	assert_int_equal(c.sessions_max_per_key, 100000);
	assert_int_equal(parse(&c, "sessions:\n  max_per_key: 0\n  max_per_kye: 3\n", &d), -1);
	assert_int_equal(d.n, 2);
	assert_string_equal(diag_at(&d, 0), "t.yaml:2:16: sessions.max_per_key: expected an "
	                                    "integer from 1 to 100000, got \"0\"");
	assert_non_null(strstr(diag_at(&d, 1), "t.yaml:3:3: "));
	assert_non_null(strstr(diag_at(&d, 1), "max_per_kye"));
	assert_int_equal(c.sessions_max_per_key, 10); /* a file with errors changes nothing */
	sg_diags_free(&d);
	sg_config_free(&c);
}

static void
test_transport_settings(void **state)
{
	(void)state;
	struct sg_config c = {0};
	struct sg_diags d = {0};
	sg_config_defaults(&c);
	assert_string_equal(c.admin_host, "127.0.0.1");
	assert_int_equal(c.admin_port, 8091);
	assert_null(c.admin_token_file);
	assert_int_equal(c.header_timeout_ms, 10000);
	assert_int_equal(c.body_timeout_ms, 30000);
	assert_int_equal(c.max_connections, 0);
	assert_int_equal(c.max_conns_per_addr, 256);
	assert_string_equal(c.unauth_rate, "10/s");
	assert_int_equal(c.unauth_burst, 100);
	assert_int_equal(c.unauth_audit_ms, 10000);
	assert_int_equal(parse(&c,
	                       "admin_listen: \"[::1]:9999\"\nadmin_token_file: /etc/sg.token\n"
	                       "limits:\n  header_timeout: 1s\n  body_timeout: 2s\n"
	                       "  max_connections: 100\n  max_connections_per_address: 0\n"
	                       "  unauthenticated_rate: 30/m\n  unauthenticated_burst: 5\n"
	                       "  unauthenticated_audit_every: 0s\n",
	                       &d),
	                 0);
	assert_string_equal(c.admin_host, "::1");
	assert_int_equal(c.admin_port, 9999);
	assert_string_equal(c.admin_token_file, "/etc/sg.token");
	assert_int_equal(c.header_timeout_ms, 1000);
	assert_int_equal(c.body_timeout_ms, 2000);
	assert_int_equal(c.max_connections, 100);
	assert_int_equal(c.max_conns_per_addr, 0);
	assert_string_equal(c.unauth_rate, "30/m");
	assert_int_equal(c.unauth_burst, 5);
	assert_int_equal(c.unauth_audit_ms, 0);
	assert_int_equal(parse(&c, "admin_listen: off\n", &d), 0);
	assert_int_equal(c.admin_port, 0);
	/* Every mistake in one pass, each at its line and column. */
	assert_int_equal(parse(&c,
	                       "admin_listen: 127.0.0.1\nlimits:\n  header_timeout: 0s\n"
	                       "  max_connections: -1\n  unauthenticated_rate: fast\n"
	                       "admin_token_file: \"\"\n",
	                       &d),
	                 -1);
	assert_int_equal(d.n, 5);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:1:15: admin_listen: expected host:port with a port from 1 to "
	                    "65535, such as 127.0.0.1:8091, or off, got \"127.0.0.1\"");
	assert_string_equal(
	    diag_at(&d, 1),
	    "t.yaml:3:19: limits.header_timeout: must be from 1ms to 1d, got \"0s\"");
	assert_string_equal(diag_at(&d, 2), "t.yaml:4:20: limits.max_connections: expected an "
	                                    "integer from 0 to 1000000, got \"-1\"");
	assert_string_equal(diag_at(&d, 3), "t.yaml:5:25: limits.unauthenticated_rate: expected a "
	                                    "rate such as 1/s, 30/m or 500/h, got \"fast\"");
	assert_string_equal(diag_at(&d, 4),
	                    "t.yaml:6:19: admin_token_file: expected a path of 1 to 4000 bytes");
	/* A file with errors changes nothing. */
	assert_int_equal(c.admin_port, 8091);
	sg_diags_free(&d);
	sg_config_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_empty_file_keeps_defaults),
	    cmocka_unit_test(test_every_key),
	    cmocka_unit_test(test_unknown_key_points_at_line),
	    cmocka_unit_test(test_bad_duration),
	    cmocka_unit_test(test_duration_parse),
	    cmocka_unit_test(test_ranges),
	    cmocka_unit_test(test_wrong_types),
	    cmocka_unit_test(test_listen),
	    cmocka_unit_test(test_listen_tls),
	    cmocka_unit_test(test_yaml_syntax_errors),
	    cmocka_unit_test(test_yaml_refuses_anchors),
	    cmocka_unit_test(test_yaml_size_limit),
	    cmocka_unit_test(test_error_cap),
	    cmocka_unit_test(test_queue_and_shedding),
	    cmocka_unit_test(test_redis_settings),
	    cmocka_unit_test(test_yaml_to_json),
	    cmocka_unit_test(test_sandbox_settings),
	    cmocka_unit_test(test_session_settings),
	    cmocka_unit_test(test_audit_settings),
	    cmocka_unit_test(test_audit_retention),
	    cmocka_unit_test(test_secrets_warn_before),
	    cmocka_unit_test(test_load_example_file),
	    cmocka_unit_test(test_transport_settings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
