/*
 * fuzz_lua: arbitrary bytes as a template script, run under tight limits
 * with a host stub, then compile-checked.  Every run must end in one of the
 * outcomes, within its limits, explained when it failed; ASan, UBSan and
 * LSan catch the rest.  A hang is a finding too (libFuzzer's -timeout).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sandbox/sg_lua_env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Names starting with 'f' fail with an error object; others echo their arguments. */
static int
stub_call(void *ud, const char *capability, json_t *args, json_t **result, json_t **error)
{
	(void)ud;
	if (capability[0] == 'f') {
		*error = json_pack("{s:s,s:s}", "code", "failed", "detail", capability);
		return -1;
	}
	*result = json_pack("{s:s,s:O}", "called", capability, "args", args);
	return 0;
}

static int64_t
stub_now(void *ud)
{
	(void)ud;
	return 42;
}

/*
 * Inputs starting with 0x01 are read as snippet numbers and assembled into a
 * valid script, so the fuzzer combines the abuses (stops caught in
 * coroutines, __close, patterns, table loops, bombs) instead of mostly
 * writing syntax errors.  State is shared through globals s, t, g, co, c2, m.
 */
static const char *const snippets[] = {
    "while true do end",
    "pcall(function() while true do end end)",
    "xpcall(function() while true do end end, function() while true do end end)",
    "for i = 1, 300 do g = (g or 0) + i end",
    "s = (s or 'ab') .. (s or 'ab')",
    "t = t or {} t[#t + 1] = s or 1",
    "t = t or {} t.self = t",
    "co = coroutine.wrap(function() while true do coroutine.yield(s) end end)",
    "if co then pcall(co) end",
    "c2 = coroutine.create(function(...) for i = 1, 50 do coroutine.yield(i) end end)",
    "if c2 then coroutine.resume(c2, s) end",
    "if c2 then pcall(coroutine.close, c2) end",
    "local c <close> = setmetatable({}, {__close = function() ctx.log('closed') end})",
    "local c <close> = setmetatable({}, {__close = function() while true do end end})",
    "pcall(ctx.call, 'crm.get', t)",
    "pcall(ctx.call, 'fail.it', {x = s})",
    "ctx.log(s, t, g)",
    "print(#(s or ''))",
    "pcall(string.find, s or 'aaa', '.-.-.-b')",
    "pcall(string.gsub, s or 'aaa', '%w+', string.upper)",
    "for w in (s or 'a b'):gmatch('%a+') do g = w end",
    "pcall(string.rep, s or 'x', 1e6)",
    "pcall(string.format, '%s%99.99f%q', s, 1.5, s or 'q')",
    "pcall(table.concat, t or {}, ',')",
    "pcall(table.insert, t or {}, 1, s)",
    "pcall(table.remove, t or {}, 1)",
    "pcall(table.sort, t or {})",
    "pcall(table.move, t or {}, 1, 1e6, 2)",
    "pcall(table.unpack, t or {})",
    "pcall(setmetatable, t or {}, {__gc = false})",
    "m = setmetatable({}, {__index = rawlen, __len = function() return 1e9 end})",
    "if m then pcall(table.insert, m, 1, 1) end",
    "pcall(load, 'return ' .. tostring(g))",
    "pcall(load, '\\27Lua')",
    "local f = load('return ...', 'x', 't', {}) if f then f(s) end",
    "pcall(ctx.json.encode, t)",
    "t = ctx.json.decode('[1,{\"a\":null},\"x\"]')",
    "pcall(ctx.json.decode, s or '{')",
    "pcall(collectgarbage)",
    "g = collectgarbage('count')",
    "local function r(n) return r(n + 1) + 1 end pcall(r, 1)",
    "s = string.rep('', 2^40)",
    "error(s or 'boom')",
    "error({code = 'x', detail = s})",
    "do return t end",
    "t = {1, 2, 3, x = 1}",
    "t = {s = s, n = g, list = {1, 2, 3}}",
    "s = getmetatable('')",
    "s = tostring(ctx.now())",
    "t = ctx.input",
};

#define NSNIPPETS (sizeof snippets / sizeof snippets[0])

/* Writes the assembled script into buf; returns its length. */
static size_t
assemble(const uint8_t *data, size_t size, char *buf, size_t cap)
{
	size_t n = 0;
	const char *head = "function run(input, ctx)\n", *tail = "return t\nend\n";

	memcpy(buf, head, strlen(head));
	n = strlen(head);
	for (size_t i = 1; i < size && i <= 64; i++) {
		const char *sn = snippets[data[i] % NSNIPPETS];
		size_t len = strlen(sn);
		if (n + len + 16 + strlen(tail) > cap)
			break;
		memcpy(buf + n, "do ", 3);
		memcpy(buf + n + 3, sn, len);
		memcpy(buf + n + 3 + len, " end\n", 5);
		n += len + 8;
	}
	memcpy(buf + n, tail, strlen(tail));
	return n + strlen(tail);
}

static int
outcome_ok(const struct sg_lua_outcome *o, const struct sg_lua_limits *lim)
{
	return o->stop <= SG_LUA_NO_RUN && (o->stop == SG_LUA_OK) == (o->output != NULL) &&
	       (o->stop == SG_LUA_OK || o->message[0] != '\0') &&
	       o->instructions <= lim->instructions && o->peak_memory <= lim->memory_bytes &&
	       o->calls <= lim->calls && json_is_array(o->logs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct sg_lua_limits lim = {20000, 2u << 20, 4, 512};
	static const struct sg_lua_host host = {NULL, stub_call, stub_now};
	struct sg_lua_outcome out;
	char msg[256];
	int line;

	static char script[16384];
	const char *src = (const char *)data;

	if (size > 0 && data[0] == 0x01) {
		size = assemble(data, size, script, sizeof script);
		src = script;
	}
	json_t *input = json_pack("{s:i,s:[s,s],s:{s:f}}", "n", 7, "tags", "a", "b", "o", "x", 1.5);
	sg_lua_run("main.lua", src, size, input, &lim, &host, &out);
	if (!outcome_ok(&out, &lim))
		__builtin_trap();
	int rc = sg_lua_compile_check("main.lua", src, size, msg, sizeof msg, &line);
	if ((rc != 0 && msg[0] == '\0') || (out.stop == SG_LUA_COMPILE_ERROR && rc == 0))
		__builtin_trap();
	sg_lua_outcome_clear(&out);
	sg_lua_outcome_clear(&out);
	json_decref(input);
	return 0;
}
