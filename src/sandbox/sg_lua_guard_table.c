/*
 * Guards on the table library: loops whose length the script controls pay
 * as they go.  See sg_lua_guard.h for the accounting model.
 */
#include "sandbox/sg_lua_guard.h"

#include <ctype.h>
#include <lauxlib.h>
#include <limits.h>
#include <string.h>

/* ---- table: loops whose length a script controls pay as they go ---- */

/*
 * #t can be huge without memory behind it (__len, or a border found by
 * doubling such as t[1], t[2], t[4] ... t[2^30]), so these loops charge
 * every few elements instead of trusting a length.
 */
static void
tick(lua_State *L, uint64_t *moved)
{
	if ((++*moved & 63) == 0)
		sg_lua_guard_charge(L, 64 * SG_LUA_CHARGE_ELEMENT);
}

static int
g_insert(lua_State *L)
{
	uint64_t moved = 0;
	lua_Integer pos;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_Integer e = luaL_intop(+, luaL_len(L, 1), 1); /* first empty slot */
	switch (lua_gettop(L)) {
	case 2:
		pos = e;
		break;
	case 3:
		pos = luaL_checkinteger(L, 2);
		luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2,
		              "position out of bounds");
		for (lua_Integer i = e; i > pos; i--) {
			lua_geti(L, 1, i - 1);
			lua_seti(L, 1, i);
			tick(L, &moved);
		}
		break;
	default:
		return luaL_error(L, "wrong number of arguments to 'insert'");
	}
	lua_seti(L, 1, pos);
	return 0;
}

static int
g_remove(lua_State *L)
{
	uint64_t moved = 0;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_Integer size = luaL_len(L, 1);
	lua_Integer pos = luaL_optinteger(L, 2, size);
	if (pos != size)
		luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2,
		              "position out of bounds");
	lua_geti(L, 1, pos);
	for (; pos < size; pos++) {
		lua_geti(L, 1, pos + 1);
		lua_seti(L, 1, pos);
		tick(L, &moved);
	}
	lua_pushnil(L);
	lua_seti(L, 1, pos);
	return 1;
}

static int
g_move(lua_State *L)
{
	lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
	lua_Integer t = luaL_checkinteger(L, 4);
	int tt = lua_isnoneornil(L, 5) ? 1 : 5;
	uint64_t moved = 0;

	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checktype(L, tt, LUA_TTABLE);
	if (e >= f) {
		luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
		lua_Integer n = e - f + 1;
		luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
		/* Copy upwards unless that would overwrite elements not yet copied. */
		int up = t > e || t <= f || !lua_rawequal(L, 1, tt);
		for (lua_Integer k = 0; k < n; k++) {
			lua_Integer i = up ? k : n - 1 - k;
			lua_geti(L, 1, f + i);
			lua_seti(L, tt, t + i);
			tick(L, &moved);
		}
	}
	lua_pushvalue(L, tt);
	return 1;
}

static int
g_concat(lua_State *L)
{
	luaL_Buffer b;
	size_t lsep, len;
	uint64_t size = 0, moved = 0;

	luaL_checktype(L, 1, LUA_TTABLE);
	const char *sep = luaL_optlstring(L, 2, "", &lsep);
	lua_Integer i = luaL_optinteger(L, 3, 1);
	lua_Integer last = lua_isnoneornil(L, 4) ? luaL_len(L, 1) : luaL_checkinteger(L, 4);
	luaL_buffinit(L, &b);
	for (; i <= last; i++) {
		lua_geti(L, 1, i);
		if (!lua_isstring(L, -1))
			return luaL_error(L, "invalid value (%s) at index %I in table for 'concat'",
			                  luaL_typename(L, -1), (LUAI_UACINT)i);
		lua_tolstring(L, -1, &len);
		size += len + (i < last ? lsep : 0);
		if (size > SG_LUA_STRING_MAX)
			return sg_lua_guard_too_long(L, "table.concat", size);
		luaL_addvalue(&b);
		if (i < last)
			luaL_addlstring(&b, sep, lsep);
		tick(L, &moved);
		if (i == LUA_MAXINTEGER)
			break;
	}
	sg_lua_guard_charge(L, size / SG_LUA_CHARGE_BYTES);
	luaL_pushresult(&b);
	return 1;
}

static int
g_unpack(lua_State *L)
{
	lua_Integer i = luaL_optinteger(L, 2, 1);
	lua_Integer e = lua_isnoneornil(L, 3) ? luaL_len(L, 1) : luaL_checkinteger(L, 3);

	if (i > e)
		return 0;
	lua_Unsigned n = (lua_Unsigned)e - (lua_Unsigned)i;
	if (n >= (lua_Unsigned)INT_MAX || !lua_checkstack(L, (int)++n))
		return luaL_error(L, "too many results to unpack");
	sg_lua_guard_charge(L, sg_lua_sat_mul(n, SG_LUA_CHARGE_ELEMENT));
	for (; i < e; i++)
		lua_geti(L, 1, i);
	lua_geti(L, 1, e);
	return (int)n;
}

/*
 * Sort is priced from the raw length, which is what the stock sort sees
 * once __len is ruled out (a __len could answer differently each call).
 */
static int
g_sort(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	if (luaL_getmetafield(L, 1, "__len") != LUA_TNIL)
		return luaL_error(
		    L, "table.sort: tables with a __len metamethod cannot be sorted in templates");
	uint64_t n = lua_rawlen(L, 1), lg = 1;
	while (lg < 64 && (n >> lg) != 0)
		lg++;
	sg_lua_guard_charge(L, sg_lua_sat_mul(sg_lua_sat_mul(n, lg), SG_LUA_CHARGE_ELEMENT));
	return sg_lua_guard_call_stock(L);
}

void
sg_lua_guard_table(lua_State *L, int real, int box)
{
	sg_lua_guard_install(L, real, box, "insert", g_insert, 0);
	sg_lua_guard_install(L, real, box, "remove", g_remove, 0);
	sg_lua_guard_install(L, real, box, "move", g_move, 0);
	sg_lua_guard_install(L, real, box, "concat", g_concat, 0);
	sg_lua_guard_install(L, real, box, "unpack", g_unpack, 0);
	sg_lua_guard_install(L, real, box, "sort", g_sort, 1);
}
