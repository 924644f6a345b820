/*
 * sg_lua_json: Lua values <-> jansson, for everything that crosses the
 * sandbox boundary (run()'s result, ctx.call arguments and results, the
 * input) and for ctx.json.encode/decode.
 *
 * Lua -> JSON reads tables with raw access only (lua_next, lua_rawgeti):
 * no metamethod (__index, __pairs, __len, __tostring...) ever runs, so a
 * script cannot make the serializer execute code or lie about contents.
 *
 *   nil -> null        boolean -> true/false        integer -> integer
 *   float -> real (NaN and infinities refused)      string -> string (UTF-8 only)
 *   table with keys exactly 1..n -> array
 *   table with string keys only -> object
 *   empty table -> {} (an empty object: ctx.call arguments are objects;
 *                      a script returning "no items" as [] cannot be told apart)
 *   anything else (functions, coroutines, userdata, mixed or gapped keys,
 *   keys that are not text or 1..n, cycles, nesting deeper than
 *   SG_LUA_JSON_MAX_DEPTH) -> refused with a sentence naming the place,
 *   e.g. "result.items[3].when is a function ...".  List positions are
 *   shown as Lua indices (from 1).
 *
 * JSON -> Lua: null becomes nil (so a null array element leaves a hole,
 * and a null field is absent), arrays become tables 1..n, numbers keep
 * integer/real.
 */
#ifndef SG_LUA_JSON_H
#define SG_LUA_JSON_H

#include <jansson.h>
#include <lua.h>
#include <stddef.h>

/* Nested objects and arrays allowed, as the gateway's own limits.max_json_depth default. */
#define SG_LUA_JSON_MAX_DEPTH 32
/*
 * The JSON tree is malloc'd outside the Lua memory cap, and shared tables
 * are written once per reference (a chain of 32 tables each holding the
 * next one twice would be 2^32 values), so size is capped separately.
 */
#define SG_LUA_JSON_MAX_VALUES (1u << 18)
#define SG_LUA_JSON_MAX_BYTES (8u << 20) /* text in strings and field names */

/*
 * Converts the value at idx to a new JSON value.  Never raises a Lua error
 * and never runs Lua code.  On refusal returns NULL and writes a sentence
 * into err, naming the place starting from `root` (e.g. "result").
 */
json_t *sg_lua_json_from_lua(lua_State *L, int idx, const char *root, char *err, size_t errlen);

/*
 * Pushes the Lua value of j.  May raise a Lua memory error, so j must be
 * owned by something that survives a longjmp.  Returns 0, or -1 with a
 * sentence in err and nothing pushed when j nests too deeply.
 */
int sg_lua_json_to_lua(lua_State *L, const json_t *j, char *err, size_t errlen);

#endif
