/*
 * The ctx object a template's run(input, ctx) receives, and nothing else:
 * log (also print), call, now, input, json.encode and json.decode.  The
 * host (the worker) does what call and now need; every value crossing
 * into Lua is built here from JSON, never shared.
 */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/sg_lua_env_int.h"
#include "sandbox/sg_lua_json.h"

const char sg_lua_call_error_key = 0;

/* ---- ctx.log and print ---- */

/* Length of the valid UTF-8 sequence at s (as jansson accepts it), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80                    ? 1
	             : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
	             : s[0] >= 0xe0 && s[0] <= 0xef ? 3
	             : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
	                                            : 0;
	unsigned char lo = 0x80, hi = 0xbf;

	if (len == 0 || len > n)
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0; /* overlong */
	else if (s[0] == 0xed)
		hi = 0x9f; /* surrogates */
	else if (s[0] == 0xf0)
		lo = 0x90; /* overlong */
	else if (s[0] == 0xf4)
		hi = 0x8f; /* beyond U+10FFFF */
	for (size_t i = 1; i < len; i++, lo = 0x80, hi = 0xbf)
		if (s[i] < lo || s[i] > hi)
			return 0;
	return len;
}

/* Pushes s with each byte that is not valid UTF-8 replaced by U+FFFD. */
static const char *
push_utf8(lua_State *L, const char *s, size_t *len)
{
	luaL_Buffer b;
	size_t n = *len, k;

	luaL_buffinit(L, &b);
	for (size_t i = 0; i < n; i += k ? k : 1) {
		k = utf8_seq((const unsigned char *)s + i, n - i);
		if (k)
			luaL_addlstring(&b, s + i, k);
		else
			luaL_addstring(&b, "\xef\xbf\xbd");
	}
	luaL_pushresult(&b);
	return lua_tolstring(L, -1, len);
}

int
sg_lua_ctx_log(lua_State *L)
{
	struct run *r = run_of(L);
	int n = lua_gettop(L);
	luaL_Buffer b;
	size_t len;

	sg_lua_guard_check(L); /* nothing leaves the sandbox after a stop, not even a log line */
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, ' ');
		luaL_tolstring(L, i, NULL); /* may run __tostring: ordinary, budgeted Lua */
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	const char *s = lua_tolstring(L, -1, &len);
	sg_lua_guard_charge(L, len / SG_LUA_CHARGE_BYTES + 1);
	s = push_utf8(L, s, &len);
	if (len > r->lim->log_bytes - r->log_used) {
		r->log_dropped++;
		return 0;
	}
	if (json_array_append_new(r->logs, json_stringn(s, len)) != 0) {
		r->log_dropped++;
		return 0;
	}
	r->log_used += len;
	return 0;
}

/* ---- ctx.call, ctx.now, ctx.json ---- */

/* Pushes j (owned by r->held), or raises "<what>: <reason>". */
static void
push_held(lua_State *L, struct run *r, const char *what)
{
	char err[160];

	if (sg_lua_json_to_lua(L, r->held, err, sizeof err) != 0) {
		hold(r, NULL);
		luaL_error(L, "%s: %s", what, err);
	}
	hold(r, NULL);
}

static int
ctx_call(lua_State *L)
{
	struct run *r = run_of(L);
	size_t nlen;
	const char *name = luaL_checklstring(L, 1, &nlen);
	json_t *args, *result = NULL, *error = NULL;
	char err[256];

	luaL_argcheck(L, nlen > 0 && nlen <= CAPABILITY_MAX && strlen(name) == nlen, 1,
	              "expected a name like \"connector.operation\"");
	if (r->host == NULL || r->host->call == NULL)
		return luaL_error(L, "ctx.call is not available here");
	sg_lua_guard_check(L); /* a stopped run reaches the gateway no more */
	if (r->calls >= r->lim->calls)
		return sg_lua_guard_stop(L, SG_LUA_CALLS);
	args = lua_isnoneornil(L, 2) ? json_object()
	                             : sg_lua_json_from_lua(L, 2, "args", err, sizeof err);
	if (args == NULL)
		return luaL_error(L, "ctx.call(\"%s\"): %s", name, err);
	hold(r, args);
	r->calls++;
	int rc = r->host->call(r->host->ud, name, args, &result, &error);
	if (rc == 0) {
		json_decref(error);
		hold(r, result);
		push_held(L, r, "ctx.call result");
		return 1;
	}
	json_decref(result);
	if (error == NULL)
		error = json_pack("{s:s,s:s}", "code", "call_failed", "detail",
		                  "the gateway gave no reason");
	hold(r, error);
	push_held(L, r, "ctx.call error");
	lua_pushvalue(L, -1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &sg_lua_call_error_key);
	memcpy(r->call_name, name, nlen + 1);
	return lua_error(L);
}

static int
ctx_now(lua_State *L)
{
	struct run *r = run_of(L);

	if (r->host == NULL || r->host->now_ms == NULL)
		return luaL_error(L, "ctx.now is not available here");
	lua_pushinteger(L, (lua_Integer)r->host->now_ms(r->host->ud));
	return 1;
}

static int
json_encode(lua_State *L)
{
	struct run *r = run_of(L);
	char err[256];
	luaL_Buffer b;

	luaL_checkany(L, 1);
	json_t *j = sg_lua_json_from_lua(L, 1, "value", err, sizeof err);
	if (j == NULL)
		return luaL_error(L, "ctx.json.encode: %s", err);
	hold(r, j);
	size_t n = json_dumpb(j, NULL, 0, ENCODE_FLAGS);
	if (n == 0) {
		hold(r, NULL);
		return luaL_error(L, "ctx.json.encode: out of memory");
	}
	if (n > SG_LUA_STRING_MAX) {
		hold(r, NULL);
		return sg_lua_guard_refuse(L,
		                           "ctx.json.encode: the JSON text would be %I bytes; "
		                           "at most %I are allowed",
		                           (lua_Integer)n, (lua_Integer)SG_LUA_STRING_MAX);
	}
	sg_lua_guard_charge(L, n / 8);
	json_dumpb(j, luaL_buffinitsize(L, &b, n), n, ENCODE_FLAGS);
	luaL_pushresultsize(&b, n);
	hold(r, NULL);
	return 1;
}

static int
json_decode(lua_State *L)
{
	struct run *r = run_of(L);
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	json_error_t jerr;

	sg_lua_guard_charge(L, len);
	json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (j == NULL)
		return luaL_error(L, "ctx.json.decode: not valid JSON at line %d, column %d: %s",
		                  jerr.line, jerr.column, jerr.text);
	hold(r, j);
	push_held(L, r, "ctx.json.decode");
	return 1;
}

/* ctx: exactly call, log, now, input, json.{encode,decode}. */
void
sg_lua_push_ctx(lua_State *L, int input)
{
	lua_createtable(L, 0, 5);
	lua_pushcfunction(L, ctx_call);
	lua_setfield(L, -2, "call");
	lua_pushcfunction(L, sg_lua_ctx_log);
	lua_setfield(L, -2, "log");
	lua_pushcfunction(L, ctx_now);
	lua_setfield(L, -2, "now");
	lua_pushvalue(L, input);
	lua_setfield(L, -2, "input");
	lua_createtable(L, 0, 2);
	lua_pushcfunction(L, json_encode);
	lua_setfield(L, -2, "encode");
	lua_pushcfunction(L, json_decode);
	lua_setfield(L, -2, "decode");
	lua_setfield(L, -2, "json");
}
