/*
 * Lua <-> JSON through jansson.  The Lua -> JSON direction calls only API
 * functions that cannot raise (lua_next on an untouched key, lua_rawgeti,
 * lua_to*, lua_checkstack), so the partly built json_t held in C locals is
 * never leaked by a longjmp.
 */
#include "sandbox/sg_lua_json.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct seg {
	const char *key; /* NULL: a list position */
	size_t keylen;
	lua_Integer index;
};

struct enc {
	lua_State *L;
	const char *root;
	int depth;
	const void *open[SG_LUA_JSON_MAX_DEPTH]; /* tables on the current path: cycles */
	struct seg path[SG_LUA_JSON_MAX_DEPTH];
	size_t values, bytes;
	char *err;
	size_t errlen;
};

/* Appends one path step: .name for plain names, ["..."] otherwise (cut, non-printables as '?'). */
static size_t
put_seg(char *buf, size_t len, size_t at, const struct seg *s)
{
	if (s->key == NULL)
		return at + (size_t)snprintf(buf + at, len - at, "[%lld]", (long long)s->index);
	int plain = s->keylen > 0 && s->keylen <= 40 && !(s->key[0] >= '0' && s->key[0] <= '9');
	for (size_t i = 0; plain && i < s->keylen; i++) {
		char c = s->key[i];
		plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '_';
	}
	if (plain)
		return at + (size_t)snprintf(buf + at, len - at, ".%.*s", (int)s->keylen, s->key);
	char shown[44];
	size_t n = s->keylen < 40 ? s->keylen : 40;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s->key[i];
		shown[i] = c >= 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
	}
	memcpy(shown + n, s->keylen > 40 ? "..." : "", s->keylen > 40 ? 4 : 1);
	return at + (size_t)snprintf(buf + at, len - at, "[\"%s\"]", shown);
}

/* Writes "<path> <reason>" into the caller's buffer; always returns NULL. */
static json_t *
fail(struct enc *e, const char *fmt, ...)
{
	char path[200];
	size_t at = (size_t)snprintf(path, sizeof path, "%s", e->root);
	va_list ap;

	for (int i = 0; i < e->depth && at < sizeof path; i++)
		at = put_seg(path, sizeof path, at, &e->path[i]);
	if (e->errlen == 0)
		return NULL;
	int n = snprintf(e->err, e->errlen, "%s ", path);
	if (n >= 0 && (size_t)n < e->errlen) {
		va_start(ap, fmt);
		vsnprintf(e->err + n, e->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return NULL;
}

static json_t *enc_value(struct enc *e, int idx);

/* The key at the top of the stack, described for a message. */
static void
describe_key(lua_State *L, char *buf, size_t len)
{
	switch (lua_type(L, -1)) {
	case LUA_TNUMBER:
		if (lua_isinteger(L, -1))
			snprintf(buf, len, "%lld", (long long)lua_tointeger(L, -1));
		else
			snprintf(buf, len, "%.14g", lua_tonumber(L, -1));
		break;
	case LUA_TBOOLEAN:
		snprintf(buf, len, "%s", lua_toboolean(L, -1) ? "true" : "false");
		break;
	default:
		snprintf(buf, len, "of type %s", lua_typename(L, lua_type(L, -1)));
	}
}

/*
 * First pass: is the table a list (keys exactly 1..n), an object (string
 * keys only), or neither?  Sets *n to the list length, 0 for an object.
 */
static int
classify(struct enc *e, int idx, lua_Integer *n)
{
	lua_State *L = e->L;
	lua_Integer count = 0, max = 0;
	size_t names = 0;
	char key[64];

	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		lua_pop(L, 1);
		if (lua_type(L, -1) == LUA_TSTRING)
			names++;
		else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
			count++;
			if (lua_tointeger(L, -1) > max)
				max = lua_tointeger(L, -1);
		} else {
			describe_key(L, key, sizeof key);
			fail(e,
			     "has a key %s; JSON fields must be text, and lists must use keys 1, "
			     "2, 3...",
			     key);
			return -1;
		}
	}
	if (names > 0 && count > 0) {
		fail(e, "mixes list items (keys 1, 2...) with named fields; JSON needs one or the "
		        "other");
		return -1;
	}
	if (max != count) {
		fail(e, "is a list with gaps: it has %lld items but its highest position is %lld",
		     (long long)count, (long long)max);
		return -1;
	}
	*n = count;
	return 0;
}

static json_t *
enc_array(struct enc *e, int idx, lua_Integer n)
{
	json_t *a = json_array();

	for (lua_Integer i = 1; a != NULL && i <= n; i++) {
		e->path[e->depth - 1] = (struct seg){NULL, 0, i};
		lua_rawgeti(e->L, idx, i);
		json_t *v = enc_value(e, lua_gettop(e->L));
		lua_pop(e->L, 1);
		if (v == NULL || json_array_append_new(a, v) != 0) {
			json_decref(a);
			return v == NULL ? NULL : fail(e, "could not be stored (out of memory)");
		}
	}
	return a != NULL ? a : fail(e, "could not be stored (out of memory)");
}

static json_t *
enc_object(struct enc *e, int idx)
{
	lua_State *L = e->L;
	json_t *o = json_object();
	size_t klen;

	if (o == NULL)
		return fail(e, "could not be stored (out of memory)");
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		const char *k = lua_tolstring(L, -2, &klen); /* a string: classify checked */
		e->path[e->depth - 1] = (struct seg){k, klen, 0};
		e->bytes += klen;
		json_t *v =
		    e->bytes > SG_LUA_JSON_MAX_BYTES
		        ? fail(e, "makes the JSON text longer than %u bytes", SG_LUA_JSON_MAX_BYTES)
		        : enc_value(e, lua_gettop(L));
		lua_pop(L, 1);
		if (v == NULL || json_object_setn_new(o, k, klen, v) != 0) {
			json_decref(o); /* the caller resets the stack, key included */
			return v == NULL ? NULL
			                 : fail(e, "has a field name that is not valid UTF-8 text");
		}
	}
	return o;
}

static json_t *
enc_table(struct enc *e, int idx)
{
	const void *id = lua_topointer(e->L, idx);
	lua_Integer n;

	for (int i = 0; i < e->depth; i++)
		if (e->open[i] == id)
			return fail(e, "contains itself (a cycle); JSON cannot represent that");
	if (e->depth == SG_LUA_JSON_MAX_DEPTH)
		return fail(e, "is nested more than %d levels deep", SG_LUA_JSON_MAX_DEPTH);
	if (classify(e, idx, &n) != 0)
		return NULL;
	e->open[e->depth++] = id;
	json_t *v = n > 0 ? enc_array(e, idx, n) : enc_object(e, idx);
	e->depth--;
	return v;
}

static json_t *
enc_value(struct enc *e, int idx)
{
	lua_State *L = e->L;
	size_t len;

	if (++e->values > SG_LUA_JSON_MAX_VALUES)
		return fail(e, "makes the JSON have more than %u values", SG_LUA_JSON_MAX_VALUES);
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		return json_null();
	case LUA_TBOOLEAN:
		return json_boolean(lua_toboolean(L, idx));
	case LUA_TNUMBER: {
		if (lua_isinteger(L, idx))
			return json_integer((json_int_t)lua_tointeger(L, idx));
		double d = lua_tonumber(L, idx);
		if (!isfinite(d))
			return fail(e, "is %s, which JSON cannot represent",
			            isnan(d) ? "not a number (NaN)" : "infinite");
		return json_real(d);
	}
	case LUA_TSTRING: {
		const char *s = lua_tolstring(L, idx, &len);
		if ((e->bytes += len) > SG_LUA_JSON_MAX_BYTES)
			return fail(e, "makes the JSON text longer than %u bytes",
			            SG_LUA_JSON_MAX_BYTES);
		json_t *j = json_stringn(s, len);
		return j != NULL ? j : fail(e, "is text that is not valid UTF-8");
	}
	case LUA_TTABLE:
		return enc_table(e, idx);
	default:
		return fail(e,
		            "is a %s; only tables, text, numbers, booleans and nil can become JSON",
		            lua_typename(L, lua_type(L, idx)));
	}
}

json_t *
sg_lua_json_from_lua(lua_State *L, int idx, const char *root, char *err, size_t errlen)
{
	struct enc e = {.L = L, .root = root, .err = err, .errlen = errlen};
	int top = lua_gettop(L);

	if (errlen > 0)
		err[0] = '\0';
	/* Each level holds a key and a value; checking once keeps the walk raise-free. */
	if (!lua_checkstack(L, 2 * SG_LUA_JSON_MAX_DEPTH + 8))
		return fail(&e, "could not be converted (out of memory)");
	json_t *j = enc_value(&e, lua_absindex(L, idx));
	lua_settop(L, top);
	return j;
}

struct dec {
	lua_State *L;
	char *err;
	size_t errlen;
};

static int
dec_value(struct dec *d, const json_t *j, int depth)
{
	lua_State *L = d->L;
	const char *k;
	size_t klen, i;
	json_t *v;

	luaL_checkstack(L, 3, "JSON value nested too deeply");
	if ((json_is_object(j) || json_is_array(j)) && depth == SG_LUA_JSON_MAX_DEPTH) {
		snprintf(d->err, d->errlen, "the JSON is nested more than %d levels deep",
		         SG_LUA_JSON_MAX_DEPTH);
		return -1;
	}
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		lua_createtable(L, 0,
		                (int)(json_object_size(j) < 1024 ? json_object_size(j) : 1024));
		json_object_keylen_foreach((json_t *)j, k, klen, v)
		{
			if (json_is_null(v))
				continue;
			lua_pushlstring(L, k, klen);
			if (dec_value(d, v, depth + 1) != 0)
				return -1;
			lua_rawset(L, -3);
		}
		return 0;
	case JSON_ARRAY:
		lua_createtable(L, (int)(json_array_size(j) < 1024 ? json_array_size(j) : 1024), 0);
		json_array_foreach(j, i, v)
		{
			if (json_is_null(v))
				continue;
			if (dec_value(d, v, depth + 1) != 0)
				return -1;
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		return 0;
	case JSON_STRING:
		lua_pushlstring(L, json_string_value(j), json_string_length(j));
		return 0;
	case JSON_INTEGER:
		lua_pushinteger(L, (lua_Integer)json_integer_value(j));
		return 0;
	case JSON_REAL:
		lua_pushnumber(L, json_real_value(j));
		return 0;
	case JSON_TRUE:
	case JSON_FALSE:
		lua_pushboolean(L, json_is_true(j));
		return 0;
	default:
		lua_pushnil(L);
		return 0;
	}
}

int
sg_lua_json_to_lua(lua_State *L, const json_t *j, char *err, size_t errlen)
{
	char none[1];
	struct dec d = {L, errlen > 0 ? err : none, errlen > 0 ? errlen : sizeof none};
	int top = lua_gettop(L);

	d.err[0] = '\0';
	if (j == NULL) {
		lua_pushnil(L);
		return 0;
	}
	if (dec_value(&d, j, 0) != 0) {
		lua_settop(L, top);
		return -1;
	}
	return 0;
}
