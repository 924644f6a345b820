/*
 * The template VM: escapes and abuse (bytecode, metatable back doors,
 * swallowed limits, pathological patterns, bombs), limits at N-1/N/N+1,
 * ctx, and the words a template author reads when a run fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "sandbox/sg_lua_env.h"
#include "sandbox/sg_lua_guard.h"

struct host_state {
	int calls;
	char last[64];
	json_t *last_args;
};

static struct host_state hs;

/* "fail.it" answers with an error object, "fail.bare" with none; anything else echoes. */
static int
host_call(void *ud, const char *cap, json_t *args, json_t **result, json_t **error)
{
	struct host_state *h = ud;

	h->calls++;
	snprintf(h->last, sizeof h->last, "%s", cap);
	json_decref(h->last_args);
	h->last_args = json_deep_copy(args);
	if (strcmp(cap, "fail.it") == 0) {
		*error = json_pack("{s:s,s:s,s:i}", "code", "not_found", "detail",
		                   "no such customer", "status", 404);
		return -1;
	}
	if (strcmp(cap, "fail.bare") == 0)
		return -1;
	*result = json_pack("{s:s,s:O}", "called", cap, "args", args);
	return 0;
}

static int64_t
host_now(void *ud)
{
	(void)ud;
	return 1700000000123;
}

static const struct sg_lua_host host = {&hs, host_call, host_now};
static const struct sg_lua_limits LIM = {1000000, 8u << 20, 5, 1024};

static struct sg_lua_outcome
run_with(const char *src, const struct sg_lua_limits *lim, const json_t *input)
{
	struct sg_lua_outcome o;

	sg_lua_run("main.lua", src, strlen(src), input, lim, &host, &o);
	assert_non_null(o.logs);
	assert_true(o.instructions <= lim->instructions);
	assert_true(o.peak_memory <= lim->memory_bytes);
	assert_true(o.calls <= lim->calls);
	assert_true((o.stop == SG_LUA_OK) == (o.output != NULL));
	assert_true(o.stop == SG_LUA_OK || o.message[0] != '\0');
	return o;
}

static struct sg_lua_outcome
run_src(const char *src)
{
	return run_with(src, &LIM, NULL);
}

#define assert_stop(o, want)                                                                       \
	do {                                                                                       \
		if ((o).stop != (want))                                                            \
			fail_msg("stop %s, want %s: %s", sg_lua_stop_name((o).stop),               \
			         sg_lua_stop_name(want), (o).message);                             \
	} while (0)

#define assert_contains(hay, needle)                                                               \
	do {                                                                                       \
		if (strstr((hay), (needle)) == NULL)                                               \
			fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle));               \
	} while (0)

/* The output as compact JSON with sorted keys; valid until the next call. */
static const char *
out_text(const struct sg_lua_outcome *o)
{
	static char buf[4096];
	size_t n = o->output ? json_dumpb(o->output, buf, sizeof buf - 1,
	                                  JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
	                     : 0;
	buf[n < sizeof buf ? n : 0] = '\0';
	return buf;
}

/* Runs a script that returns "ok" when every check inside it held. */
static void
expect_ok(const char *src)
{
	struct sg_lua_outcome o = run_src(src);
	assert_stop(o, SG_LUA_OK);
	assert_string_equal(out_text(&o), "\"ok\"");
	sg_lua_outcome_clear(&o);
}

static void
expect_stop(const char *src, enum sg_lua_stop want, const char *text)
{
	struct sg_lua_outcome o = run_src(src);
	assert_stop(o, want);
	if (text != NULL)
		assert_contains(o.message, text);
	sg_lua_outcome_clear(&o);
}

static double
now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- results, input, ctx ---- */

static void
test_returns_json(void **state)
{
	(void)state;
	json_t *in = json_pack("{s:i,s:[s,s]}", "x", 41, "tags", "a", "b");
	struct sg_lua_outcome o =
	    run_with("function run(input, ctx)\n"
	             "  return {x = input.x + 1, same = ctx.input == input,\n"
	             "    n = #input.tags, f = 1.5, t = true, list = {3, 2, 1}, e = {}}\n"
	             "end\n",
	             &LIM, in);
	assert_stop(o, SG_LUA_OK);
	assert_string_equal(
	    out_text(&o),
	    "{\"e\":{},\"f\":1.5,\"list\":[3,2,1],\"n\":2,\"same\":true,\"t\":true,\"x\":42}");
	sg_lua_outcome_clear(&o);
	sg_lua_outcome_clear(&o); /* safe twice */
	json_decref(in);

	struct sg_lua_outcome z = {0};
	sg_lua_outcome_clear(&z);
	o = run_src("function run(input) assert(input == nil) end");
	assert_stop(o, SG_LUA_OK);
	assert_string_equal(out_text(&o), "null");
	sg_lua_outcome_clear(&o);
}

static void
test_ctx_offers_exactly(void **state)
{
	(void)state;
	json_t *in = json_object();
	struct sg_lua_outcome o = run_with(
	    "function run(input, ctx)\n"
	    "  local k = {} for name in pairs(ctx) do k[#k + 1] = name end\n"
	    "  table.sort(k) assert(table.concat(k, ' ') == 'call input json log now', "
	    "table.concat(k, ' '))\n"
	    "  k = {} for name in pairs(ctx.json) do k[#k + 1] = name end\n"
	    "  table.sort(k) assert(table.concat(k, ' ') == 'decode encode')\n"
	    "  assert(ctx.now() == 1700000000123)\n"
	    "  assert(ctx.json.encode({b = {1, 2}, a = 'x'}) == '{\"a\":\"x\",\"b\":[1,2]}')\n"
	    "  local d = ctx.json.decode('{\"k\":[1,2.5,\"s\"],\"n\":null,\"t\":true}')\n"
	    "  assert(d.k[1] == 1 and math.type(d.k[1]) == 'integer' and d.k[2] == 2.5)\n"
	    "  assert(d.k[3] == 's' and d.n == nil and d.t == true)\n"
	    "  local ok, e = pcall(ctx.json.decode, '{\"a\": }')\n"
	    "  assert(not ok and e:find('not valid JSON at line 1, column 7', 1, true), e)\n"
	    "  ok, e = pcall(ctx.json.encode, {f = print})\n"
	    "  assert(not ok and e:find('value.f is a function', 1, true), e)\n"
	    "  return 'ok'\n"
	    "end\n",
	    &LIM, in);
	assert_stop(o, SG_LUA_OK);
	assert_string_equal(out_text(&o), "\"ok\"");
	sg_lua_outcome_clear(&o);
	json_decref(in);
}

static void
test_ctx_call(void **state)
{
	(void)state;
	hs.calls = 0;
	struct sg_lua_outcome o =
	    run_src("function run(input, ctx)\n"
	            "  local r = ctx.call('crm.get', {id = 7, tags = {'a'}})\n"
	            "  local r2 = ctx.call('crm.list')\n"
	            "  return {r.called, r.args.id, r.args.tags[1], r2.called}\n"
	            "end\n");
	assert_stop(o, SG_LUA_OK);
	assert_string_equal(out_text(&o), "[\"crm.get\",7,\"a\",\"crm.list\"]");
	assert_int_equal(o.calls, 2);
	assert_int_equal(hs.calls, 2);
	assert_string_equal(hs.last, "crm.list");
	assert_true(json_is_object(hs.last_args) && json_object_size(hs.last_args) == 0);
	sg_lua_outcome_clear(&o);

	/* Arguments that cannot become JSON never reach the host. */
	hs.calls = 0;
	expect_stop("function run(i, ctx)\n ctx.call('crm.get', {when = os})\n ctx.call('crm.get', "
	            "{f = print}) end",
	            SG_LUA_SCRIPT_ERROR,
	            "main.lua line 3: ctx.call(\"crm.get\"): args.f is a function");
	assert_int_equal(hs.calls, 1);
	expect_stop("function run(i, ctx) ctx.call('') end", SG_LUA_SCRIPT_ERROR,
	            "connector.operation");
	expect_stop("function run(i, ctx) ctx.call('a\\0b') end", SG_LUA_SCRIPT_ERROR,
	            "connector.operation");
}

/* The error the host returns is a table the script may catch; uncaught, it is worded. */
static void
test_ctx_call_error_table(void **state)
{
	(void)state;
	expect_ok("function run(i, ctx)\n"
	          "  local ok, e = pcall(ctx.call, 'fail.it', {id = 9})\n"
	          "  assert(not ok and type(e) == 'table')\n"
	          "  assert(e.code == 'not_found' and e.detail == 'no such customer' and e.status "
	          "== 404)\n"
	          "  ok, e = pcall(ctx.call, 'fail.bare')\n"
	          "  assert(not ok and e.code == 'call_failed', tostring(e.code))\n"
	          "  return 'ok'\n"
	          "end\n");
	struct sg_lua_outcome o = run_src("function run(i, ctx)\n\n  ctx.call('fail.it')\nend\n");
	assert_stop(o, SG_LUA_SCRIPT_ERROR);
	assert_int_equal(o.line, 3);
	assert_string_equal(
	    o.message,
	    "main.lua line 3: ctx.call(\"fail.it\") failed with not_found: no such customer");
	sg_lua_outcome_clear(&o);
	/* Rethrown after inspection, it is still recognised. */
	expect_stop("function run(i, ctx) local _, e = pcall(ctx.call, 'fail.it') error(e) end",
	            SG_LUA_SCRIPT_ERROR, "ctx.call(\"fail.it\") failed with not_found");
}

/* Limit N = 3: N-1 and N calls succeed, N+1 stops the run, even under pcall. */
static void
test_calls_budget(void **state)
{
	(void)state;
	struct sg_lua_limits lim = LIM;
	lim.calls = 3;
	const char *fmt =
	    "function run(i, ctx) for k = 1, %d do ctx.call('a.b') end return 'ok' end";
	char src[128];
	for (int n = 2; n <= 4; n++) {
		snprintf(src, sizeof src, fmt, n);
		struct sg_lua_outcome o = run_with(src, &lim, NULL);
		assert_stop(o, n <= 3 ? SG_LUA_OK : SG_LUA_CALLS);
		assert_int_equal(o.calls, n <= 3 ? n : 3);
		if (n == 4)
			assert_string_equal(o.message, "the template tried to make more than its 3 "
			                               "ctx.call() calls (stopped at "
			                               "main.lua line 1); raise limits.calls in "
			                               "template.yaml or make fewer calls "
			                               "per run");
		sg_lua_outcome_clear(&o);
	}
	struct sg_lua_outcome o =
	    run_with("function run(i, ctx)\n"
	             "  for k = 1, 10 do pcall(ctx.call, 'a.b') end\n"
	             "  local co = coroutine.wrap(function() ctx.call('a.b') end)\n"
	             "  pcall(co)\n"
	             "  return 'escaped'\n"
	             "end\n",
	             &lim, NULL);
	assert_stop(o, SG_LUA_CALLS);
	sg_lua_outcome_clear(&o);
}

static void
test_no_host(void **state)
{
	(void)state;
	struct sg_lua_outcome o;
	const char *src =
	    "function run(i, ctx)\n"
	    "  local ok, e = pcall(ctx.call, 'a.b') assert(not ok and e:find('not available'))\n"
	    "  ok, e = pcall(ctx.now) assert(not ok and e:find('not available'))\n"
	    "  return 'ok'\n"
	    "end\n";
	sg_lua_run(NULL, src, strlen(src), NULL, &LIM, NULL, &o);
	assert_stop(o, SG_LUA_OK);
	sg_lua_outcome_clear(&o);
}

/* log_bytes N: a line that fits exactly is kept, one byte more is dropped and counted. */
static void
test_logs(void **state)
{
	(void)state;
	struct sg_lua_limits lim = LIM;
	const char *src = "function run(i, ctx)\n"
	                  "  ctx.log('a', 1, true, nil, {}) print('0123456789') ctx.log('x')\n"
	                  "end\n";
	lim.log_bytes = 11; /* N: '0123456789' (10 bytes) and 'x' (1) fit exactly */
	struct sg_lua_outcome o =
	    run_with("function run(i, ctx) print('0123456789') ctx.log('x') end", &lim, NULL);
	assert_stop(o, SG_LUA_OK);
	assert_int_equal(json_array_size(o.logs), 2);
	sg_lua_outcome_clear(&o);
	lim.log_bytes = 12; /* N+1 */
	o = run_with("function run(i, ctx) print('0123456789') ctx.log('x') end", &lim, NULL);
	assert_int_equal(json_array_size(o.logs), 2);
	sg_lua_outcome_clear(&o);
	lim.log_bytes = 10; /* N-1 for the pair: the second line no longer fits */
	o = run_with("function run(i, ctx) print('0123456789') ctx.log('x') ctx.log('y') end", &lim,
	             NULL);
	assert_int_equal(json_array_size(o.logs), 2);
	assert_string_equal(json_string_value(json_array_get(o.logs, 0)), "0123456789");
	assert_string_equal(
	    json_string_value(json_array_get(o.logs, 1)),
	    "[sandgate] 2 log lines were dropped: the template may log 10 bytes per run "
	    "(limits.log_bytes)");
	sg_lua_outcome_clear(&o);
	lim.log_bytes = 9; /* N-1 for the first line */
	o = run_with("function run(i, ctx) print('0123456789') end", &lim, NULL);
	assert_int_equal(json_array_size(o.logs), 1);
	assert_string_equal(json_string_value(json_array_get(o.logs, 0)),
	                    "[sandgate] 1 log line was dropped: the template may log 9 bytes per "
	                    "run (limits.log_bytes)");
	sg_lua_outcome_clear(&o);

	lim.log_bytes = 1024;
	o = run_with(src, &lim, NULL);
	assert_contains(json_string_value(json_array_get(o.logs, 0)), "a 1 true nil table: ");
	sg_lua_outcome_clear(&o);
	/* Bytes that are not UTF-8 become U+FFFD, so the log stays valid JSON text. */
	o = run_with("function run(i, ctx) ctx.log('a\\255b\\237\\160\\128c') end", &lim, NULL);
	assert_string_equal(json_string_value(json_array_get(o.logs, 0)),
	                    "a\xef\xbf\xbd"
	                    "b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	                    "c");
	sg_lua_outcome_clear(&o);
}

/* ---- compile errors and messages ---- */

static void
test_compile_errors(void **state)
{
	(void)state;
	char msg[256];
	int line = -1;
	const char *good = "function run() return 1 end";
	assert_int_equal(
	    sg_lua_compile_check("main.lua", good, strlen(good), msg, sizeof msg, &line), 0);
	assert_int_equal(line, 0);

	const char *bad = "function run()\n  local x = 1\n  local y = = 2\nend\n";
	assert_int_equal(sg_lua_compile_check("main.lua", bad, strlen(bad), msg, sizeof msg, &line),
	                 -1);
	assert_int_equal(line, 3);
	assert_string_equal(msg, "main.lua:3: unexpected symbol near '='");

	struct sg_lua_outcome o = run_src(bad);
	assert_stop(o, SG_LUA_COMPILE_ERROR);
	assert_int_equal(o.line, 3);
	assert_string_equal(o.message, "main.lua line 3: syntax error: unexpected symbol near '='");
	sg_lua_outcome_clear(&o);

	const char *open = "function run()\n  if true then\nend\n";
	assert_int_equal(
	    sg_lua_compile_check("t/main.lua", open, strlen(open), msg, sizeof msg, &line), -1);
	assert_int_equal(line, 4); /* <eof> is after the last newline */
	assert_string_equal(
	    msg, "t/main.lua:4: 'end' expected (to close 'function' at line 1) near <eof>");

	/* Precompiled bytecode is refused before Lua looks at it. */
	const char bin[] = "\x1bLua\x54\x00\x19\x93\r\n\x1a\n";
	assert_int_equal(
	    sg_lua_compile_check("main.lua", bin, sizeof bin - 1, msg, sizeof msg, &line), -1);
	assert_int_equal(line, 1);
	assert_string_equal(
	    msg,
	    "main.lua:1: the file is precompiled Lua bytecode; templates must be Lua source text");
	sg_lua_run("main.lua", bin, sizeof bin - 1, NULL, &LIM, &host, &o);
	assert_stop(o, SG_LUA_COMPILE_ERROR);
	sg_lua_outcome_clear(&o);

	/* Long names are cut, never overflowing. */
	char name[200];
	memset(name, 'n', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	assert_int_equal(sg_lua_compile_check(name, bad, strlen(bad), msg, sizeof msg, &line), -1);
	assert_int_equal(line, 3);
	/* No room for a message: still the line, and no write. */
	assert_int_equal(sg_lua_compile_check("main.lua", bad, strlen(bad), msg, 0, &line), -1);
	assert_int_equal(line, 3);
}

static void
test_script_errors_are_worded(void **state)
{
	(void)state;
	struct sg_lua_outcome o = run_src("function run()\n  local t = nil\n  return t.x\nend\n");
	assert_stop(o, SG_LUA_SCRIPT_ERROR);
	assert_int_equal(o.line, 3);
	assert_string_equal(o.message, "main.lua line 3: attempt to index a nil value (local 't')");
	sg_lua_outcome_clear(&o);

	/* error() with level 0 or a table has no position in its text: the stack gives it. */
	o = run_src("function run()\n\n  error('plain words', 0)\nend\n");
	assert_int_equal(o.line, 3);
	assert_string_equal(o.message, "main.lua line 3: plain words");
	sg_lua_outcome_clear(&o);
	o = run_src("local function f()\n  error({code = 'E1', detail = 'went wrong'})\nend\n"
	            "function run() f() end\n");
	assert_int_equal(o.line, 2);
	assert_string_equal(o.message, "main.lua line 2: uncaught error E1: went wrong");
	sg_lua_outcome_clear(&o);
	/* A rethrown message keeps the line where it began. */
	o = run_src("function run()\n  local ok, e = pcall(error, 'deep')\n  local ok2, e2 = "
	            "pcall(function() error('inner') end)\n  error(e2)\nend\n");
	assert_int_equal(o.line, 3);
	assert_string_equal(o.message, "main.lua line 3: inner");
	sg_lua_outcome_clear(&o);

	expect_stop("function run() error() end", SG_LUA_SCRIPT_ERROR, "without a message");
	expect_stop("function run() error(42) end", SG_LUA_SCRIPT_ERROR, "raised a number");
	expect_stop("function run() return os.time() end", SG_LUA_SCRIPT_ERROR,
	            "(global 'os'); templates have no os library; ctx.now() gives the time");
	expect_stop("local json = require('json')", SG_LUA_SCRIPT_ERROR, "templates are one file");
	expect_stop("return 1", SG_LUA_NO_RUN, "main.lua defines no function run (it is nil)");
	expect_stop("run = 5", SG_LUA_NO_RUN, "(it is number)");
	expect_stop("function run() return function() end end", SG_LUA_BAD_RESULT,
	            "run() returned a value that cannot become JSON: result is a function");
	expect_stop("function run() return {items = {{}, {when = coroutine.create(print)}}} end",
	            SG_LUA_BAD_RESULT, "result.items[2].when is a thread");
	expect_stop("function run() return {[1] = 1, [3] = 3} end", SG_LUA_BAD_RESULT,
	            "result is a list with gaps: it has 2 items but its highest position is 3");
}

/* ---- escapes ---- */

static void
test_no_bytecode(void **state)
{
	(void)state;
	expect_ok("function run()\n"
	          "  assert(string.dump == nil and ('').dump == nil)\n"
	          "  assert(string.pack == nil and string.unpack == nil)\n"
	          "  local bin = '\\27Lua\\84\\0\\25\\147\\r\\n\\26\\n\\4\\8\\8'\n"
	          "  local f, e = load(bin)\n"
	          "  assert(f == nil and e:find('binary chunk'), e)\n"
	          "  f, e = load(bin, 'x', 'b')\n"
	          "  assert(f == nil and e:find('binary chunk'), e)\n"
	          "  f, e = load(bin, 'x', 'bt', _G)\n"
	          "  assert(f == nil and e:find('binary chunk'), e)\n"
	          "  local parts, k = {'\\27Lu', 'a\\84\\0'}, 0\n"
	          "  f, e = load(function() k = k + 1 return parts[k] end)\n"
	          "  assert(f == nil and e:find('binary chunk'), e)\n"
	          "  assert(load('return 1 + 1')() == 2)\n"
	          "  return 'ok'\n"
	          "end\n");
}

static void
test_string_metatable_locked(void **state)
{
	(void)state;
	expect_ok("function run()\n"
	          "  assert(getmetatable('') == false)\n"
	          "  assert(not pcall(function() return getmetatable('').__index end))\n"
	          "  assert(not pcall(rawset, getmetatable(''), '__index', {}))\n"
	          "  assert(not pcall(setmetatable, '', {}))\n"
	          "  assert(('x').rep == string.rep and ('x'):upper() == 'X')\n"
	          "  assert(('x').dump == nil and ('x').pack == nil)\n"
	          "  assert(('10') + 1 == 11)\n"
	          "  return 'ok'\n"
	          "end\n");
}

/* The global table is the allowlist, exactly: a name added by mistake fails here. */
static void
test_globals_are_the_allowlist(void **state)
{
	(void)state;
	expect_ok(
	    "function run()\n"
	    "  local k = {} for name in pairs(_G) do k[#k + 1] = name end\n"
	    "  table.sort(k)\n"
	    "  local want = '_G _VERSION assert collectgarbage coroutine error getmetatable ipairs "
	    "'\n"
	    "    .. 'load math next pairs pcall print rawequal rawget rawlen rawset run select '\n"
	    "    .. 'setmetatable string table tonumber tostring type utf8 xpcall'\n"
	    "  assert(table.concat(k, ' ') == want, table.concat(k, ' '))\n"
	    "  local function names(t) local r = {} for n in pairs(t) do r[#r + 1] = n end "
	    "table.sort(r) return table.concat(r, ' ') end\n"
	    "  assert(names(string) == 'byte char find format gmatch gsub len lower match rep "
	    "reverse sub upper', names(string))\n"
	    "  assert(names(table) == 'concat insert move pack remove sort unpack', names(table))\n"
	    "  assert(names(coroutine) == 'close create isyieldable resume running status wrap "
	    "yield')\n"
	    "  assert(names(utf8) == 'char charpattern codepoint codes len offset')\n"
	    "  return 'ok'\n"
	    "end\n");
}

static void
test_no_way_to_os_io_debug(void **state)
{
	(void)state;
	expect_ok("local top = os or io or debug or package or require\n"
	          "function run()\n"
	          "  assert(top == nil)\n"
	          "  for _, n in ipairs({'os', 'io', 'debug', 'package', 'require', 'dofile', "
	          "'loadfile', 'loadstring', 'module', 'newproxy', 'warn'}) do\n"
	          "    assert(_G[n] == nil and _ENV[n] == nil and rawget(_G, n) == nil, n)\n"
	          "    assert(load('return ' .. n)() == nil, n)\n"
	          "    assert(load('return ' .. n, 'x', 't', _G)() == nil, n)\n"
	          "    assert(load('return _ENV.' .. n, 'x', 't')() == nil, n)\n"
	          "    assert(string[n] == nil and getmetatable(_G) == nil, n)\n"
	          "  end\n"
	          "  local env = {} load('y = 2', 'c', 't', env)()\n"
	          "  assert(env.y == 2 and y == nil)\n"
	          "  load('z = 3')() assert(z == 3)\n"
	          "  assert(load('return 1', 'c', 't', nil)() == 1)\n"
	          "  assert(getmetatable(print) == nil and getmetatable(1) == nil and "
	          "getmetatable(true) == nil)\n"
	          "  return 'ok'\n"
	          "end\n");
}

/* Run 1 poisons everything it can reach; run 2 sees a clean state. */
static void
test_runs_share_nothing(void **state)
{
	(void)state;
	struct sg_lua_outcome o = run_src("POISON = 1\n"
	                                  "string.upper = function() return 'poisoned' end\n"
	                                  "rawset(string, 'rep', nil)\n"
	                                  "table.insert = nil math.pi = 3\n"
	                                  "function run() return ('x'):upper() end\n");
	assert_stop(o, SG_LUA_OK);
	assert_string_equal(out_text(&o), "\"poisoned\"");
	sg_lua_outcome_clear(&o);
	expect_ok("function run()\n"
	          "  assert(POISON == nil and ('x'):upper() == 'X' and string.rep ~= nil)\n"
	          "  assert(table.insert ~= nil and math.pi > 3.14)\n"
	          "  return 'ok'\n"
	          "end\n");
}

/* __gc would run with hooks off; {__gc = false} marks the object too, then gets a function. */
static void
test_gc_metamethods_refused(void **state)
{
	(void)state;
	expect_stop(
	    "function run() setmetatable({}, {__gc = function() while true do end end}) end",
	    SG_LUA_SCRIPT_ERROR, "a metatable with a __gc field is not allowed");
	expect_stop("function run()\n"
	            "  local mt = {__gc = false}\n"
	            "  local t = setmetatable({}, mt)\n"
	            "  mt.__gc = function() while true do end end\n"
	            "end\n",
	            SG_LUA_SCRIPT_ERROR, "main.lua line 3: setmetatable");
	/* Added after setmetatable, __gc is never called; a refusal can be caught. */
	expect_ok("function run()\n"
	          "  local mt = {} local t = setmetatable({}, mt)\n"
	          "  mt.__gc = function() while true do end end\n"
	          "  t = nil\n"
	          "  local ok, e = pcall(setmetatable, {}, {__gc = true})\n"
	          "  assert(not ok and e:find('__gc'))\n"
	          "  assert(type(collectgarbage('count')) == 'number')\n"
	          "  for _, opt in ipairs({'collect', 'stop', 'step', 'incremental', "
	          "'generational'}) do\n"
	          "    assert(not pcall(collectgarbage, opt), opt)\n"
	          "  end\n"
	          "  assert(not pcall(collectgarbage))\n"
	          "  return 'ok'\n"
	          "end\n");
}

/* ---- the instruction budget ---- */

static enum sg_lua_stop
stop_at_budget(const char *src, uint64_t budget)
{
	struct sg_lua_limits lim = LIM;
	lim.instructions = budget;
	struct sg_lua_outcome o = run_with(src, &lim, NULL);
	enum sg_lua_stop s = o.stop;
	if (s == SG_LUA_INSTRUCTIONS) {
		char want[64];
		snprintf(want, sizeof want, "the template used its %llu instruction budget",
		         (unsigned long long)budget);
		assert_contains(o.message, want);
		assert_int_equal(o.instructions, budget);
	}
	sg_lua_outcome_clear(&o);
	return s;
}

/* The smallest budget that lets src finish, by bisection. */
static uint64_t
min_budget(const char *src)
{
	uint64_t lo = 0, hi = 10000000;
	assert_int_equal(stop_at_budget(src, hi), SG_LUA_OK);
	assert_int_equal(stop_at_budget(src, lo), SG_LUA_INSTRUCTIONS);
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (stop_at_budget(src, mid) == SG_LUA_OK)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

static uint64_t stock_instructions;

static void
count_every_instruction(lua_State *L, lua_Debug *ar)
{
	(void)L;
	(void)ar;
	stock_instructions++;
}

/* What stock Lua's hook sees src run (top level, then run()): an independent count. */
static uint64_t
stock_count(const char *src)
{
	lua_State *L = luaL_newstate();
	luaL_openlibs(L);
	stock_instructions = 0;
	lua_sethook(L, count_every_instruction, LUA_MASKCOUNT, 1);
	assert_int_equal(luaL_loadbufferx(L, src, strlen(src), "=main.lua", "t"), LUA_OK);
	assert_int_equal(lua_pcall(L, 0, 0, 0), LUA_OK);
	lua_getglobal(L, "run");
	lua_pushnil(L);
	lua_newtable(L);
	assert_int_equal(lua_pcall(L, 2, 1, 0), LUA_OK);
	lua_close(L);
	return stock_instructions;
}

static void
test_budget_is_exact(void **state)
{
	(void)state;
	const char *src =
	    "function run() local x = 0 for i = 1, 2000 do x = x + i end return x end";
	uint64_t b = min_budget(src);
	assert_int_equal(b, stock_count(src)); /* the budget-th instruction runs, no more */
	const char *calls =
	    "local function f(n) if n > 0 then return f(n - 1) + 1 end return 0 end\n"
	    "function run() local t = {} for i = 1, 300 do t[i] = f(i % 7) end return #t end";
	assert_int_equal(min_budget(calls), stock_count(calls));
	assert_int_equal(stop_at_budget(src, b - 1), SG_LUA_INSTRUCTIONS);
	assert_int_equal(stop_at_budget(src, b), SG_LUA_OK);
	assert_int_equal(stop_at_budget(src, b + 1), SG_LUA_OK);
	/* An empty numeric for loop is one FORLOOP instruction per turn. */
	char a[128], c[128];
	snprintf(a, sizeof a, "function run() for i = 1, %d do end end", 1000);
	snprintf(c, sizeof c, "function run() for i = 1, %d do end end", 1001);
	assert_int_equal(min_budget(c) - min_budget(a), 1);
	/* The chunk's top level counts too: the hook is armed before any script code. */
	assert_int_equal(stop_at_budget("while true do end", 100000), SG_LUA_INSTRUCTIONS);
	assert_int_equal(stop_at_budget("function run() end", 0), SG_LUA_INSTRUCTIONS);
	struct sg_lua_limits lim = LIM;
	lim.instructions = 1000;
	struct sg_lua_outcome o =
	    run_with("function run()\n  while true do end\nend\n", &lim, NULL);
	assert_string_equal(
	    o.message,
	    "the template used its 1000 instruction budget (stopped at main.lua line 2); raise "
	    "limits.instructions in template.yaml or do less work per run");
	assert_int_equal(o.line, 2);
	sg_lua_outcome_clear(&o);
}

/* Every way Lua offers to catch an error, tried on the budget stop. */
static void
test_budget_cannot_be_swallowed(void **state)
{
	(void)state;
	static const char *const srcs[] = {
	    "function run() while true do pcall(function() while true do end end) end end",
	    "function run() pcall(function() while true do end end) return 'escaped' end",
	    "function run() xpcall(function() while true do end end, print) return 'escaped' end",
	    /* The handler runs inside the hook, where Lua has hooks off. */
	    "function run() xpcall(function() while true do end end, function() while true do end "
	    "end) return 'escaped' end",
	    "function run() local co = coroutine.create(function() while true do end end)\n  "
	    "coroutine.resume(co) return 'escaped' end",
	    "function run() pcall(coroutine.wrap(function() while true do end end)) return "
	    "'escaped' end",
	    "function run() local co = coroutine.wrap(function() pcall(function() while true do "
	    "end end) coroutine.yield(1) end)\n  co() return 'escaped' end",
	    "function run() local x <close> = setmetatable({}, {__close = function() while true do "
	    "end end})\n  while true do end end",
	    /* A coroutine dying of the stop dies with hooks off: its __close must never run. */
	    "function run() local co = coroutine.wrap(function()\n  local x <close> = "
	    "setmetatable({}, {__close = function() while true do end end})\n  while true do end "
	    "end) pcall(co) return 'escaped' end",
	    "function run() local co = coroutine.create(function()\n  local x <close> = "
	    "setmetatable({}, {__close = function() while true do end end})\n  while true do end "
	    "end) coroutine.resume(co) pcall(coroutine.close, co) return 'escaped' end",
	    "function run() local t = setmetatable({}, {__index = function(t, k) while true do end "
	    "end}) return pcall(function() return t.x end) end",
	    "function run() return pcall(string.gsub, ('x'):rep(10), '.', function() while true do "
	    "end end) end",
	    "function run() return pcall(table.sort, {3, 2, 1}, function(a, b) while true do end "
	    "end) end",
	    "function run() return pcall(tostring, setmetatable({}, {__tostring = function() while "
	    "true do end end})) end",
	    "function run() local co = coroutine.wrap(function() while true do coroutine.yield() "
	    "end end)\n  while true do co() end end",
	};
	struct sg_lua_limits lim = LIM;
	lim.instructions = 200000;
	for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
		double t0 = now_s();
		struct sg_lua_outcome o = run_with(srcs[i], &lim, NULL);
		if (o.stop != SG_LUA_INSTRUCTIONS)
			fail_msg("script %zu: %s: %s", i, sg_lua_stop_name(o.stop), o.message);
		assert_true(now_s() - t0 < 5.0);
		sg_lua_outcome_clear(&o);
	}
}

/*
 * Coroutines share the one budget: a million coroutines each running
 * fewer instructions than a hook window still pay for every one.
 */
static void
test_budget_shared_by_coroutines(void **state)
{
	(void)state;
	struct sg_lua_limits lim = LIM;
	lim.instructions = 1000000;
	lim.log_bytes = 4096;
	/*
	 * Each turn runs ~10 instructions in the main thread and ~85 in a
	 * coroutine too short to reach its own hook: a budget counting only the
	 * main thread would allow ~100000 turns, a shared one under 10000.
	 */
	struct sg_lua_outcome o =
	    run_with("function run(i, ctx) for k = 1, 1e6 do\n"
	             "  coroutine.wrap(function() for j = 1, 80 do end end)()\n"
	             "  if k % 500 == 0 then ctx.log(k) end end end",
	             &lim, NULL);
	assert_stop(o, SG_LUA_INSTRUCTIONS);
	size_t turns = json_array_size(o.logs);
	assert_true(turns > 0);
	long last = atol(json_string_value(json_array_get(o.logs, turns - 1)));
	if (last >= 10000)
		fail_msg("%ld turns ran on a budget of 1000000", last);
	sg_lua_outcome_clear(&o);
	/* A stop caught in a coroutine nested below another reaches the gateway no more. */
	hs.calls = 0;
	o = run_with("function run(i, ctx)\n"
	             "  local a = coroutine.wrap(function()\n"
	             "    pcall(coroutine.wrap(function() while true do end end))\n"
	             "    ctx.call('after.stop') ctx.log('after the stop') end)\n"
	             "  pcall(a) return 'escaped' end",
	             &lim, NULL);
	assert_stop(o, SG_LUA_INSTRUCTIONS);
	assert_int_equal(hs.calls, 0);
	assert_int_equal(json_array_size(o.logs), 0);
	sg_lua_outcome_clear(&o);
	/* Yielding through pcall still works (pcall is continuation-safe). */
	expect_ok("function run()\n"
	          "  local co = coroutine.wrap(function()\n"
	          "    local ok, v = pcall(function() coroutine.yield(1) return 2 end)\n"
	          "    coroutine.yield(v) return 3 end)\n"
	          "  assert(co() == 1 and co() == 2 and co() == 3)\n"
	          "  local ok, e = xpcall(error, function(m) return 'handled: ' .. m end, 'x', 0)\n"
	          "  assert(not ok and e == 'handled: x', e)\n"
	          "  local c2 = coroutine.create(function(a) local b = coroutine.yield(a + 1) "
	          "return b * 2 end)\n"
	          "  local _, v1 = coroutine.resume(c2, 1) local _, v2 = coroutine.resume(c2, 5)\n"
	          "  assert(v1 == 2 and v2 == 10 and coroutine.status(c2) == 'dead')\n"
	          "  return 'ok'\n"
	          "end\n");
}

/* ---- memory ---- */

static void
test_memory_bombs(void **state)
{
	(void)state;
	static const char *const srcs[] = {
	    "function run() local s = 'x' while true do s = s .. s end end",
	    "function run() pcall(function() local s = 'x' while true do s = s .. s end end) "
	    "return 'escaped' end",
	    "function run() local t = {} for i = 1, 1e9 do t[i] = i end end",
	    "function run() local t = {} while true do t[#t + 1] = {} end end",
	    "function run() pcall(function() local t = {} for i = 1, 1e9 do t[i] = i end end) "
	    "return 'escaped' end",
	    "function run() pcall(coroutine.wrap(function() local t = {} for i = 1, 1e9 do t[i] = "
	    "i .. '' end end)) return 'escaped' end",
	    "function run() local co = coroutine.create(function() local t = {} for i = 1, 1e9 do "
	    "t[i] = i .. '' end end)\n  coroutine.resume(co) return 'escaped' end",
	    "function run() local s = ('x'):rep(1000000) local t = {} for i = 1, 100 do t[i] = s "
	    ".. i end end",
	};
	struct sg_lua_limits lim = LIM;
	lim.instructions = 100000000;
	lim.memory_bytes = 4u << 20;
	for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
		struct sg_lua_outcome o = run_with(srcs[i], &lim, NULL);
		if (o.stop != SG_LUA_MEMORY)
			fail_msg("script %zu: %s: %s", i, sg_lua_stop_name(o.stop), o.message);
		assert_contains(o.message,
		                "the template needed more than its 4194304-byte memory limit");
		assert_contains(o.message, "raise limits.memory_bytes in template.yaml");
		sg_lua_outcome_clear(&o);
	}
	/*
	 * load() runs the parser protected and returns (nil, "not enough
	 * memory"): only the allocator can tell that the cap was hit even after
	 * a full collection, and make that a stop.
	 */
	lim.memory_bytes = 8u << 20;
	struct sg_lua_outcome o =
	    run_with("function run()\n"
	             "  local f, e = load('return {' .. ('1,'):rep(1000000) .. '}')\n"
	             "  return 'escaped: ' .. tostring(e)\n"
	             "end\n",
	             &lim, NULL);
	assert_stop(o, SG_LUA_MEMORY);
	sg_lua_outcome_clear(&o);
	/* Garbage near the cap is collected, not a stop. */
	lim.memory_bytes = 1u << 20;
	o = run_with(
	    "function run() for i = 1, 300 do local s = ('x'):rep(200000) .. i end return 'ok' end",
	    &lim, NULL);
	assert_stop(o, SG_LUA_OK);
	sg_lua_outcome_clear(&o);
	/* A cap too small for the sandbox itself is reported, not crashed on. */
	lim.memory_bytes = 1000;
	o = run_with("function run() end", &lim, NULL);
	assert_stop(o, SG_LUA_MEMORY);
	sg_lua_outcome_clear(&o);
}

static enum sg_lua_stop
stop_at_memory(const char *src, size_t cap)
{
	struct sg_lua_limits lim = LIM;
	lim.memory_bytes = cap;
	struct sg_lua_outcome o = run_with(src, &lim, NULL);
	enum sg_lua_stop s = o.stop;
	sg_lua_outcome_clear(&o);
	return s;
}

static void
test_memory_cap_boundary(void **state)
{
	(void)state;
	const char *src =
	    "function run() local t = {} for i = 1, 2000 do t[i] = 'item ' .. i end return #t end";
	size_t lo = 1000, hi = 4u << 20;
	assert_int_equal(stop_at_memory(src, lo), SG_LUA_MEMORY);
	assert_int_equal(stop_at_memory(src, hi), SG_LUA_OK);
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (stop_at_memory(src, mid) == SG_LUA_OK)
			hi = mid;
		else
			lo = mid;
	}
	assert_int_equal(stop_at_memory(src, hi - 1), SG_LUA_MEMORY);
	assert_int_equal(stop_at_memory(src, hi), SG_LUA_OK);
	assert_int_equal(stop_at_memory(src, hi + 1), SG_LUA_OK);
}

/* ---- recursion ---- */

static void
test_deep_recursion(void **state)
{
	(void)state;
	struct sg_lua_limits lim = LIM;
	lim.instructions = 100000000;
	lim.memory_bytes = 64u << 20;
	struct sg_lua_outcome o =
	    run_with("function run() local function f(n) return 1 + f(n + 1) end return f(1) end",
	             &lim, NULL);
	if (o.stop != SG_LUA_SCRIPT_ERROR && o.stop != SG_LUA_MEMORY)
		fail_msg("%s: %s", sg_lua_stop_name(o.stop), o.message);
	if (o.stop == SG_LUA_SCRIPT_ERROR)
		assert_contains(o.message, "stack overflow");
	sg_lua_outcome_clear(&o);
	expect_stop("function run() local t = setmetatable({}, {__index = function(t, k) return "
	            "t[k] end}) return t.x end",
	            SG_LUA_SCRIPT_ERROR, "stack overflow");
	expect_stop(
	    "function run() local function f(s) return (s:gsub('.', f)) end return f('ab') end",
	    SG_LUA_SCRIPT_ERROR, "stack overflow");
	expect_stop("function run() local t = setmetatable({}, {__tostring = function(t) return "
	            "tostring(t) end}) return tostring(t) end",
	            SG_LUA_SCRIPT_ERROR, "stack overflow");
	expect_stop("function run() local function f() local co = coroutine.wrap(f) return co() "
	            "end return f() end",
	            SG_LUA_SCRIPT_ERROR, "stack overflow");
	expect_stop("function run() local function f() return pcall(f) end return f() end",
	            SG_LUA_OK, NULL);
	expect_stop(
	    "function run() local function f() return select(2, xpcall(f, f)) end return f() end",
	    SG_LUA_OK, NULL);
}

/* ---- guards: patterns, string sizes, table loops ---- */

static void
test_pathological_patterns_refused(void **state)
{
	(void)state;
	static const char *const srcs[] = {
	    "function run() return string.rep('a', 1e5):find('.-.-.-.-.-.-b') end",
	    "function run() return ('a'):rep(800):find('.-.-.-b') end",
	    "function run() return ('a'):rep(1e5):match('(a*)*b') end",
	    "function run() return ('('):rep(1e5):find('%b()') end",
	    "function run() return ('x'):rep(1e5):gsub('(x+)%1y', '') end",
	    "function run() for w in ('a'):rep(1e5):gmatch('a-a-a-b') do end end",
	    "function run() return ('a'):rep(50000):find('.-b') end",
	    /* b* is disjoint from a but may match nothing, so the a* after it can take over */
	    "function run() return ('a'):rep(600):find('^a*b*a*b*a*c') end",
	};
	for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
		double t0 = now_s();
		struct sg_lua_outcome o = run_src(srcs[i]);
		if (o.stop != SG_LUA_GUARD)
			fail_msg("pattern %zu: %s: %s", i, sg_lua_stop_name(o.stop), o.message);
		assert_contains(o.message, "main.lua line 1: string.");
		assert_contains(o.message, "could take too long");
		assert_true(now_s() - t0 < 2.0);
		sg_lua_outcome_clear(&o);
	}
}

/* Everyday patterns pass, give Lua's answers, and cost a sane number of instructions. */
static void
test_ordinary_patterns_work(void **state)
{
	(void)state;
	struct sg_lua_limits lim = LIM;
	lim.instructions = 2000000;
	struct sg_lua_outcome o = run_with(
	    "function run()\n"
	    "  local text = ('hello world, this is a line of text 12345\\n'):rep(500)\n"
	    "  assert(('  padded  '):match('^%s*(.-)%s*$') == 'padded')\n"
	    "  assert(#(('  ' .. ('x y '):rep(2500) .. '  '):match('^%s*(.-)%s*$')) == 9999)\n"
	    "  local n = 0 for w in text:gmatch('%a+') do n = n + 1 end assert(n == 4000)\n"
	    "  assert(select(2, text:gsub('%s+', ' ')) == 4500)\n"
	    "  assert(select(2, ('name=value'):match('^(%w+)=(.*)$')) == 'value')\n"
	    "  assert(select(6, "
	    "('2024-01-02T03:04:05Z'):match('(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)')) == '05')\n"
	    "  n = 0 for f in ('a,b,c'):rep(1000, ','):gmatch('[^,]+') do n = n + 1 end assert(n "
	    "== 3000)\n"
	    "  assert(text:find('line of', 1, true) == 24)\n"
	    "  assert(('f(a(b)c)'):find('%b()') == 2)\n"
	    "  local prose = ('words (aside) and more words '):rep(400)\n"
	    "  assert(#prose:gsub('%b()', '') == #prose - 7 * 400)\n"
	    "  assert(('THE (quick) fox'):find('%f[%a]%a+%f[%A]', 5) == 6)\n"
	    "  assert(('x]y'):find('[]]') == 2 and ('a-b'):find('[%-]') == 2)\n"
	    "  assert(('^a'):gmatch('^a')() == '^a')\n"
	    "  assert(not pcall(string.find, 'x', '[a'))\n"
	    "  assert(not pcall(string.find, 'x', '%'))\n"
	    "  return 'ok'\n"
	    "end\n",
	    &lim, NULL);
	assert_stop(o, SG_LUA_OK);
	assert_true(o.instructions < 1000000);
	sg_lua_outcome_clear(&o);
}

/* Pattern caps at N-1, N, N+1: length, repetitions, subject size. */
static void
test_pattern_caps(void **state)
{
	(void)state;
	char src[256];
	for (int d = -1; d <= 1; d++) {
		snprintf(src, sizeof src,
		         "function run() return (('x'):rep(600)):find(('x'):rep(%d)) end",
		         SG_LUA_PATTERN_MAX + d);
		struct sg_lua_outcome o = run_src(src);
		assert_stop(o, d <= 0 ? SG_LUA_OK : SG_LUA_GUARD);
		if (d > 0)
			assert_contains(
			    o.message,
			    "the pattern is 513 bytes; patterns may be at most 512 bytes");
		sg_lua_outcome_clear(&o);

		snprintf(src, sizeof src, "function run() return ('x'):find(('x?'):rep(%d)) end",
		         SG_LUA_PATTERN_REPEATS + d);
		o = run_src(src);
		assert_stop(o, d <= 0 ? SG_LUA_OK : SG_LUA_GUARD);
		if (d > 0)
			assert_contains(o.message, "the pattern has more than 16 repetitions");
		sg_lua_outcome_clear(&o);
	}
	struct sg_lua_limits lim = LIM;
	lim.memory_bytes = 64u << 20;
	lim.instructions = 100000000; /* rep pays one per piece, find 1/16 of its estimate */
	for (int d = -1; d <= 1; d++) {
		snprintf(src, sizeof src,
		         "function run() return (('x'):rep(%u)):find('y', 1, true) end",
		         SG_LUA_SUBJECT_MAX + d);
		struct sg_lua_outcome o = run_with(src, &lim, NULL);
		assert_stop(o, d <= 0 ? SG_LUA_OK : SG_LUA_GUARD);
		if (d > 0)
			assert_contains(
			    o.message,
			    "the text is 4194305 bytes; patterns work on at most 4194304 bytes");
		sg_lua_outcome_clear(&o);
	}
}

/* Stock Lua spins for hours on rep('', 2^40): nothing is copied, but it loops n times. */
static void
test_string_size_caps(void **state)
{
	(void)state;
	struct sg_lua_limits lim = LIM;
	lim.memory_bytes = 96u << 20;
	lim.instructions = 100000000;
	char src[256];
	for (int d = -1; d <= 1; d++) {
		snprintf(src, sizeof src, "function run() return #string.rep('x', %u) end",
		         SG_LUA_STRING_MAX + d);
		struct sg_lua_outcome o = run_with(src, &lim, NULL);
		assert_stop(o, d <= 0 ? SG_LUA_OK : SG_LUA_GUARD);
		if (d > 0)
			assert_string_equal(
			    o.message, "main.lua line 1: string.rep would build a 16777217-byte "
			               "string, but templates may build strings of at most "
			               "16777216 bytes; build smaller pieces");
		sg_lua_outcome_clear(&o);
	}
	struct sg_lua_outcome o = run_with(
	    "function run()\n"
	    "  assert(string.rep('', 2^40) == '' and string.rep('x', 0) == '' and string.rep('x', "
	    "-1) == '')\n"
	    "  assert(string.rep('ab', 3, ',') == 'ab,ab,ab')\n"
	    "  assert(not pcall(string.rep, 'x', math.maxinteger))\n"
	    "  assert(not pcall(string.rep, 'xy', 2^62, 'sep'))\n"
	    "  local big = ('x'):rep(9 * 1024 * 1024)\n"
	    "  local ok, e = pcall(string.format, '%s%s', big, big)\n"
	    "  assert(not ok and e:find('string.format would build'), e)\n"
	    "  ok, e = pcall(table.concat, {big, big})\n"
	    "  assert(not ok and e:find('table.concat would build'), e)\n"
	    "  assert(#string.format('%s', big) == #big)\n"
	    "  assert(string.format('%5.1f|%-3d|%q|%s', 3.14159, 7, 'a\\n', setmetatable({}, "
	    "{__tostring = function() return 'T' end})) == '  3.1|7  |\"a\\\\\\n\"|T')\n"
	    "  assert(#string.format('%99.99f', 1e308) > 300)\n"
	    "  return 'ok'\n"
	    "end\n",
	    &lim, NULL);
	assert_stop(o, SG_LUA_OK);
	sg_lua_outcome_clear(&o);
}

/* The re-implemented table functions answer as the stock ones do. */
static void
test_table_functions_behave(void **state)
{
	(void)state;
	expect_ok(
	    "function run()\n"
	    "  local t = {1, 2, 3}\n"
	    "  table.insert(t, 4) table.insert(t, 1, 0)\n"
	    "  assert(table.concat(t, ',') == '0,1,2,3,4')\n"
	    "  assert(table.remove(t) == 4 and table.remove(t, 1) == 0 and #t == 3)\n"
	    "  assert(table.concat(t, ',', 2, 3) == '2,3' and table.concat({}, ',') == '')\n"
	    "  assert(table.concat({1, 2.5, 'x'}) == '12.5x')\n"
	    "  table.move(t, 1, 3, 2) assert(table.concat(t, ',') == '1,1,2,3')\n"
	    "  local u = table.move({1, 2, 3}, 1, 3, 1, {}) assert(#u == 3)\n"
	    "  table.move(t, 2, 4, 1) assert(table.concat(t, ',') == '1,2,3,3')\n"
	    "  assert(select('#', table.unpack({1, nil, 3}, 1, 3)) == 3)\n"
	    "  assert(select('#', table.unpack({})) == 0)\n"
	    "  local ok, e = pcall(table.insert, t, 10, 1) assert(not ok and e:find('position out "
	    "of bounds'), e)\n"
	    "  ok, e = pcall(table.insert, t, 1, 2, 3) assert(not ok and e:find('wrong number of "
	    "arguments'), e)\n"
	    "  ok, e = pcall(table.concat, {1, {}, 3}) assert(not ok and e:find('invalid value "
	    "%(table%) at index 2'), e)\n"
	    "  ok, e = pcall(table.unpack, {}, 1, 1e8) assert(not ok and e:find('too many "
	    "results'), e)\n"
	    "  local s = {5, 3, 9, 1} table.sort(s) assert(table.concat(s, ',') == '1,3,5,9')\n"
	    "  table.sort(s, function(a, b) return a > b end) assert(s[1] == 9)\n"
	    "  ok, e = pcall(table.sort, setmetatable({}, {__len = function() return 3 end}))\n"
	    "  assert(not ok and e:find('__len'), e)\n"
	    "  local p = table.pack(1, nil, 3) assert(p.n == 3)\n"
	    "  return 'ok'\n"
	    "end\n");
}

/*
 * Loops whose length the script controls pay as they go: a lying __len,
 * a length found by doubling (t[1], t[2], t[4] ... t[2^30] gives #t = 2^30),
 * or a range of nothing.  Each must end by the budget, fast.
 */
static void
test_table_loops_pay(void **state)
{
	(void)state;
	static const char *const srcs[] = {
	    "function run() return table.move({}, 1, math.maxinteger - 1, 2) end",
	    "function run() local t = setmetatable({}, {__len = function() return 2^40 end}) "
	    "table.insert(t, 1, 'x') end",
	    "function run() local t = setmetatable({}, {__len = function() return 2^40 end}) "
	    "table.remove(t, 1) end",
	    "function run() local u = {} for k = 30, 0, -1 do u[1 << k] = 1 end table.remove(u, 1) "
	    "end",
	    "function run() local u = {} for k = 30, 0, -1 do u[1 << k] = 1 end table.sort(u, "
	    "rawequal) end",
	    "function run() local t = setmetatable({}, {__index = function() return '' end}) "
	    "return table.concat(t, '', 1, 2^40) end",
	};
	for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
		double t0 = now_s();
		struct sg_lua_outcome o = run_src(srcs[i]);
		if (o.stop != SG_LUA_INSTRUCTIONS)
			fail_msg("script %zu: %s: %s", i, sg_lua_stop_name(o.stop), o.message);
		assert_true(now_s() - t0 < 5.0);
		sg_lua_outcome_clear(&o);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_returns_json),
	    cmocka_unit_test(test_ctx_offers_exactly),
	    cmocka_unit_test(test_ctx_call),
	    cmocka_unit_test(test_ctx_call_error_table),
	    cmocka_unit_test(test_calls_budget),
	    cmocka_unit_test(test_no_host),
	    cmocka_unit_test(test_logs),
	    cmocka_unit_test(test_compile_errors),
	    cmocka_unit_test(test_script_errors_are_worded),
	    cmocka_unit_test(test_no_bytecode),
	    cmocka_unit_test(test_string_metatable_locked),
	    cmocka_unit_test(test_globals_are_the_allowlist),
	    cmocka_unit_test(test_no_way_to_os_io_debug),
	    cmocka_unit_test(test_runs_share_nothing),
	    cmocka_unit_test(test_gc_metamethods_refused),
	    cmocka_unit_test(test_budget_is_exact),
	    cmocka_unit_test(test_budget_cannot_be_swallowed),
	    cmocka_unit_test(test_budget_shared_by_coroutines),
	    cmocka_unit_test(test_memory_bombs),
	    cmocka_unit_test(test_memory_cap_boundary),
	    cmocka_unit_test(test_deep_recursion),
	    cmocka_unit_test(test_pathological_patterns_refused),
	    cmocka_unit_test(test_ordinary_patterns_work),
	    cmocka_unit_test(test_pattern_caps),
	    cmocka_unit_test(test_string_size_caps),
	    cmocka_unit_test(test_table_functions_behave),
	    cmocka_unit_test(test_table_loops_pay),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	json_decref(hs.last_args);
	return rc;
}
