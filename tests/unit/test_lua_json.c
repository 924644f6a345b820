/*
 * The Lua <-> JSON bridge: round trips, arrays vs objects, refusals with
 * their place named, caps at N-1/N/N+1, and that no metamethod ever runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/sg_lua_json.h"

static int
setup(void **state)
{
	lua_State *L = luaL_newstate();
	luaL_openlibs(L);
	*state = L;
	return 0;
}

static int
teardown(void **state)
{
	lua_close(*state);
	return 0;
}

static char err[256];

/* Encodes the value of a Lua expression; checks the stack is left as found. */
static json_t *
enc(lua_State *L, const char *expr)
{
	char src[4096];
	snprintf(src, sizeof src, "return %s", expr);
	if (luaL_dostring(L, src) != LUA_OK)
		fail_msg("%s", lua_tostring(L, -1));
	int top = lua_gettop(L);
	json_t *j = sg_lua_json_from_lua(L, -1, "result", err, sizeof err);
	assert_int_equal(lua_gettop(L), top);
	lua_pop(L, 1);
	return j;
}

static void
expect_json(lua_State *L, const char *expr, const char *want)
{
	json_t *j = enc(L, expr);
	if (j == NULL)
		fail_msg("%s: %s", expr, err);
	char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	assert_string_equal(text, want);
	free(text);
	json_decref(j);
}

static void
expect_refusal(lua_State *L, const char *expr, const char *want)
{
	json_t *j = enc(L, expr);
	if (j != NULL)
		fail_msg("%s was accepted", expr);
	if (strstr(err, want) == NULL)
		fail_msg("%s: \"%s\" does not contain \"%s\"", expr, err, want);
}

static void
test_values(void **state)
{
	lua_State *L = *state;
	expect_json(L, "nil", "null");
	expect_json(L, "true", "true");
	expect_json(L, "42", "42");
	expect_json(L, "math.maxinteger", "9223372036854775807");
	expect_json(L, "math.mininteger", "-9223372036854775808");
	expect_json(L, "1.5", "1.5");
	expect_json(L, "2.0", "2.0"); /* a float stays a float */
	expect_json(L, "'h\\u{e9}llo'", "\"h\xc3\xa9llo\"");
	expect_json(L, "'a\\0b'", "\"a\\u0000b\"");
	expect_json(L, "{}", "{}"); /* empty table: an object, by choice */
	expect_json(L, "{1, 'two', {3}}", "[1,\"two\",[3]]");
	expect_json(L, "{b = 1, a = {c = false}}", "{\"a\":{\"c\":false},\"b\":1}");
	expect_json(L, "{['1'] = 'text key'}", "{\"1\":\"text key\"}");
	expect_json(L, "{[1.0] = 'a', [2] = 'b'}", "[\"a\",\"b\"]"); /* 1.0 is the key 1 */
	expect_json(L, "{['k\\0'] = 1}", "{\"k\\u0000\":1}");
	/* The same table twice is fine; only a table inside itself is a cycle. */
	expect_json(L, "(function() local s = {1} return {s, s, {x = s}} end)()",
	            "[[1],[1],{\"x\":[1]}]");
}

static void
test_refusals_name_the_place(void **state)
{
	lua_State *L = *state;
	expect_refusal(L, "print", "result is a function; only tables, text, numbers");
	expect_refusal(L, "{items = {{}, {when = print}}}", "result.items[2].when is a function");
	expect_refusal(L, "{['a b'] = {coroutine.create(print)}}",
	               "result[\"a b\"][1] is a thread");
	expect_refusal(L, "{x = io.stdout}", "result.x is a userdata");
	expect_refusal(L, "0/0", "result is not a number (NaN)");
	expect_refusal(L, "{v = 1/0}", "result.v is infinite");
	expect_refusal(L, "{-1/0}", "result[1] is infinite");
	expect_refusal(L, "'\\xff'", "result is text that is not valid UTF-8");
	expect_refusal(L, "{['\\xff'] = 1}", "not valid UTF-8");
	expect_refusal(L, "{1, 2, x = 3}", "result mixes list items");
	expect_refusal(L, "{1, nil, 3}",
	               "result is a list with gaps: it has 2 items but its highest position is 3");
	expect_refusal(L, "{[0] = 'zero'}", "result has a key 0;");
	expect_refusal(L, "{[-1] = 1}", "result has a key -1;");
	expect_refusal(L, "{[1.5] = 1}", "result has a key 1.5;");
	expect_refusal(L, "{[true] = 1}", "result has a key true;");
	expect_refusal(L, "{[{}] = 1}", "result has a key of type table;");
	expect_refusal(L, "(function() local t = {} t.self = t return t end)()",
	               "result.self contains itself (a cycle)");
	expect_refusal(L, "(function() local t = {{}} t[1][1] = t return {t} end)()",
	               "result[1][1][1] contains itself");
}

/* Raw access only: no metamethod runs, and none can change what is seen. */
static void
test_metatables_ignored(void **state)
{
	lua_State *L = *state;
	const char *boom = "function() error('metamethod ran') end";
	char expr[1024];
	snprintf(expr, sizeof expr,
	         "setmetatable({1, 2}, {__index = %s, __len = %s, __pairs = %s, __tostring = %s, "
	         "__newindex = %s, __eq = %s, __metatable = 'locked', __name = 'X'})",
	         boom, boom, boom, boom, boom, boom);
	expect_json(L, expr, "[1,2]");
	expect_json(L, "setmetatable({}, {__index = {a = 1}})", "{}");
	expect_json(L, "setmetatable({a = 1}, {__pairs = function() return next, {b = 2} end})",
	            "{\"a\":1}");
}

static void
nest(char *expr, size_t len, int depth)
{
	size_t at = 0;
	for (int i = 0; i < depth && at + 2 < len; i++)
		expr[at++] = '{';
	for (int i = 0; i < depth && at + 2 < len; i++)
		expr[at++] = '}';
	expr[at] = '\0';
}

/* 32 nested tables are fine; 33 are refused, both ways. */
static void
test_depth_cap(void **state)
{
	lua_State *L = *state;
	char expr[256];
	for (int d = SG_LUA_JSON_MAX_DEPTH - 1; d <= SG_LUA_JSON_MAX_DEPTH + 1; d++) {
		nest(expr, sizeof expr, d);
		json_t *j = enc(L, expr);
		assert_int_equal(j != NULL, d <= SG_LUA_JSON_MAX_DEPTH);
		if (j == NULL)
			assert_non_null(strstr(err, "is nested more than 32 levels deep"));
		json_decref(j);

		char text[256];
		for (int i = 0; i < d; i++)
			text[i] = '[', text[d + i] = ']';
		text[2 * d] = '\0';
		j = json_loads(text, 0, NULL);
		int top = lua_gettop(L);
		int rc = sg_lua_json_to_lua(L, j, err, sizeof err);
		assert_int_equal(rc == 0, d <= SG_LUA_JSON_MAX_DEPTH);
		assert_int_equal(lua_gettop(L), top + (rc == 0));
		if (rc != 0)
			assert_string_equal(err, "the JSON is nested more than 32 levels deep");
		lua_settop(L, top);
		json_decref(j);
	}
}

/* Shared tables are written once per reference, so size is capped, not just depth. */
static void
test_size_caps(void **state)
{
	lua_State *L = *state;
	expect_refusal(L,
	               "(function() local t = {} for i = 1, 30 do t = {t, t} end return t end)()",
	               "makes the JSON have more than 262144 values");
	char expr[128];
	/* N values: a list of N-1 items plus itself. */
	for (int d = -1; d <= 1; d++) {
		snprintf(expr, sizeof expr,
		         "(function() local t = {} for i = 1, %u do t[i] = 0 end return t end)()",
		         SG_LUA_JSON_MAX_VALUES - 1 + d);
		json_t *j = enc(L, expr);
		assert_int_equal(j != NULL, d <= 0);
		json_decref(j);
	}
	for (int d = -1; d <= 1; d++) {
		snprintf(expr, sizeof expr, "{('x'):rep(%u), ('y'):rep(%u)}",
		         SG_LUA_JSON_MAX_BYTES / 2, SG_LUA_JSON_MAX_BYTES / 2 + d);
		json_t *j = enc(L, expr);
		assert_int_equal(j != NULL, d <= 0);
		if (j == NULL)
			assert_non_null(
			    strstr(err, "result[2] makes the JSON text longer than 8388608 bytes"));
		json_decref(j);
	}
}

/* JSON -> Lua -> JSON gives back the same document (nulls aside, which become nil). */
static void
test_round_trip(void **state)
{
	lua_State *L = *state;
	static const char *const docs[] = {
	    "{}",
	    "[]",
	    "[1,2,3]",
	    "{\"a\":{\"b\":[true,false,\"x\"]},\"n\":-0.5}",
	    "\"caf\\u00e9 \\ud83d\\ude00\"",
	    "9007199254740993",
	    "1e300",
	    "[[[[1]]]]",
	    "{\"k\":\"v\\u0000\"}", /* jansson refuses NUL in keys it parses */
	};
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		json_t *in = json_loads(docs[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		assert_non_null(in);
		assert_int_equal(sg_lua_json_to_lua(L, in, err, sizeof err), 0);
		json_t *out = sg_lua_json_from_lua(L, -1, "result", err, sizeof err);
		lua_pop(L, 1);
		if (out == NULL)
			fail_msg("%s: %s", docs[i], err);
		/* An empty array comes back as {}: Lua cannot tell them apart. */
		if (strcmp(docs[i], "[]") != 0 && !json_equal(in, out))
			fail_msg("%s changed", docs[i]);
		json_decref(in);
		json_decref(out);
	}
	/* null: an absent field, a hole in a list. */
	json_t *in = json_loads("{\"a\":null,\"b\":[1,null,3],\"c\":1}", 0, NULL);
	assert_int_equal(sg_lua_json_to_lua(L, in, err, sizeof err), 0);
	lua_setglobal(L, "doc");
	assert_int_equal(
	    luaL_dostring(L, "assert(doc.a == nil and doc.b[2] == nil and doc.b[3] == 3)\n"
	                     "assert(math.type(doc.c) == 'integer')"),
	    LUA_OK);
	json_decref(in);
	assert_int_equal(sg_lua_json_to_lua(L, NULL, err, sizeof err), 0);
	assert_true(lua_isnil(L, -1));
	lua_pop(L, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_values, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals_name_the_place, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_metatables_ignored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_depth_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_size_caps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
