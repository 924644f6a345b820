/*
 * Budgets and guarded library functions for template scripts.  See
 * sg_lua_guard.h for the accounting model and the caps.
 */
#include "sandbox/sg_lua_guard.h"

#include <ctype.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>

/* Registry keys: their addresses are unique light userdata. */
static const char stop_key, refusal_key;

#define BUDGET_MAX (UINT64_MAX / 4) /* keeps budget + 1 and paid + window from overflowing */

struct sg_lua_guard *
sg_lua_guard_get(lua_State *L)
{
	return *(struct sg_lua_guard **)lua_getextraspace(L);
}

uint64_t
sg_lua_guard_used(const struct sg_lua_guard *g)
{
	return g->paid < g->budget ? g->paid : g->budget;
}

static void hook(lua_State *L, lua_Debug *ar);

/*
 * Pays L's next window from the budget; only called while paid <= budget.
 * lua_sethook walks every frame of L, so it is called only when the window
 * size changes: near the end of the budget or for a new thread.
 */
static void
arm(lua_State *L, struct sg_lua_guard *g)
{
	uint64_t w = g->budget + 1 - g->paid;

	if (w > SG_LUA_HOOK_INTERVAL)
		w = SG_LUA_HOOK_INTERVAL;
	g->paid += w;
	if (lua_gethook(L) != hook || lua_gethookcount(L) != (int)w)
		lua_sethook(L, hook, LUA_MASKCOUNT, (int)w);
}

void
sg_lua_guard_start(lua_State *L, struct sg_lua_guard *g)
{
	*(struct sg_lua_guard **)lua_getextraspace(L) = g;
	if (g->budget > BUDGET_MAX)
		g->budget = BUDGET_MAX;
	g->paid = 0;
	g->stop = SG_LUA_OK;
	g->main = L;
	arm(L, g);
}

/* Raises the stop value.  In a hook Lua guarantees LUA_MINSTACK free slots. */
static int
raise_stop(lua_State *L)
{
	if (!lua_checkstack(L, 1))
		lua_settop(L, 0); /* only reachable in a C function, whose stack is its own */
	lua_rawgetp(L, LUA_REGISTRYINDEX, &stop_key);
	return lua_error(L);
}

/*
 * The window that just ended was paid, including the instruction about to
 * run.  If nothing is left, that instruction must not run: raise now, and
 * from here on on every instruction.
 */
static void
hook(lua_State *L, lua_Debug *ar)
{
	struct sg_lua_guard *g = sg_lua_guard_get(L);

	(void)ar;
	if (g->stop == SG_LUA_OK && g->paid <= g->budget) {
		arm(L, g);
		return;
	}
	sg_lua_guard_stop(L, SG_LUA_INSTRUCTIONS);
}

int
sg_lua_guard_stop(lua_State *L, enum sg_lua_stop why)
{
	struct sg_lua_guard *g = sg_lua_guard_get(L);

	if (g->stop == SG_LUA_OK)
		g->stop = why;
	lua_sethook(L, hook, LUA_MASKCOUNT, 1);
	if (g->main != L)
		lua_sethook(g->main, hook, LUA_MASKCOUNT, 1);
	return raise_stop(L);
}

void
sg_lua_guard_check(lua_State *L)
{
	if (sg_lua_guard_get(L)->stop != SG_LUA_OK)
		sg_lua_guard_stop(L, SG_LUA_OK);
}

void
sg_lua_guard_charge(lua_State *L, uint64_t n)
{
	struct sg_lua_guard *g = sg_lua_guard_get(L);

	g->paid = n > UINT64_MAX - g->paid ? UINT64_MAX : g->paid + n;
	if (g->paid > g->budget)
		sg_lua_guard_stop(L, SG_LUA_INSTRUCTIONS);
	sg_lua_guard_check(L);
}

int
sg_lua_guard_refuse(lua_State *L, const char *fmt, ...)
{
	va_list ap;

	luaL_where(L, 1);
	va_start(ap, fmt);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	lua_concat(L, 2);
	lua_pushvalue(L, -1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &refusal_key);
	return lua_error(L);
}

int
sg_lua_guard_is_refusal(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &refusal_key);
	int same = lua_type(L, -1) == LUA_TSTRING && lua_rawequal(L, idx, -1);
	lua_pop(L, 1);
	return same;
}

uint64_t
sg_lua_sat_mul(uint64_t a, uint64_t b)
{
	return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

uint64_t
sg_lua_sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Calls upvalue 1 (the stock function) with this call's arguments. */
int
sg_lua_guard_call_stock(lua_State *L)
{
	int n = lua_gettop(L);

	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, n, LUA_MULTRET);
	return lua_gettop(L);
}

/* Puts fn into box[name], with real[name] as its upvalue when it wraps one. */
void
sg_lua_guard_install(lua_State *L, int real, int box, const char *name, lua_CFunction fn, int wraps)
{
	if (wraps)
		lua_getfield(L, real, name);
	lua_pushcclosure(L, fn, wraps);
	lua_setfield(L, box, name);
}

/* ---- pcall, xpcall, coroutines: errors they catch must not include a stop ---- */

static int
pcall_done(lua_State *L, int status, lua_KContext base)
{
	if (status == LUA_ERRMEM)
		sg_lua_guard_stop(L, SG_LUA_MEMORY);
	sg_lua_guard_check(L);
	if (status != LUA_OK && status != LUA_YIELD) {
		lua_pushboolean(L, 0);
		lua_pushvalue(L, -2);
		return 2;
	}
	return lua_gettop(L) - (int)base;
}

static int
g_pcall(lua_State *L)
{
	luaL_checkany(L, 1);
	sg_lua_guard_check(L);
	lua_pushboolean(L, 1); /* the first result on success */
	lua_insert(L, 1);
	return pcall_done(L, lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, pcall_done), 0);
}

/*
 * The hook raises a stop from inside the hook, where Lua keeps hooks off
 * until the error unwinds, and Lua calls an xpcall message handler before
 * unwinding: a script's handler would run unseen.  So the handler is
 * wrapped, and skipped once the run is stopped (the hook raises nothing
 * else).
 */
static int
xpcall_handler(lua_State *L)
{
	if (sg_lua_guard_get(L)->stop != SG_LUA_OK)
		return 1; /* the error value, unchanged */
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

static int
g_xpcall(lua_State *L)
{
	int n = lua_gettop(L);

	luaL_checktype(L, 2, LUA_TFUNCTION);
	sg_lua_guard_check(L);
	lua_pushvalue(L, 2);
	lua_pushcclosure(L, xpcall_handler, 1);
	lua_replace(L, 2);
	lua_pushboolean(L, 1);
	lua_pushvalue(L, 1);
	lua_rotate(L, 3, 2); /* f, handler, true, f, args... */
	return pcall_done(L, lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, pcall_done), 2);
}

/*
 * A new coroutine for the function at index 1.  It pays its first window
 * now, so its last, partly used window is never unpaid.
 */
static lua_State *
new_coroutine(lua_State *L)
{
	struct sg_lua_guard *g = sg_lua_guard_get(L);

	luaL_checktype(L, 1, LUA_TFUNCTION);
	sg_lua_guard_check(L);
	if (g->paid > g->budget)
		sg_lua_guard_stop(L, SG_LUA_INSTRUCTIONS);
	lua_State *co = lua_newthread(L);
	arm(co, g);
	lua_pushvalue(L, 1);
	lua_xmove(L, co, 1);
	return co;
}

static int
g_cocreate(lua_State *L)
{
	new_coroutine(L);
	return 1;
}

/*
 * The function coroutine.wrap returns.  Unlike the stock one, it does not
 * close a coroutine that died of a stop: that coroutine died inside the
 * hook with hooks still off, and its __close handlers would run unseen.
 */
static int
wrap_call(lua_State *L)
{
	lua_State *co = lua_tothread(L, lua_upvalueindex(1));
	int n = lua_gettop(L), nres;

	sg_lua_guard_check(L);
	if (!lua_checkstack(co, n))
		return luaL_error(L, "too many arguments to resume");
	lua_xmove(L, co, n);
	int status = lua_resume(co, L, n, &nres);
	if (status == LUA_OK || status == LUA_YIELD) {
		if (!lua_checkstack(L, nres + 1)) {
			lua_pop(co, nres);
			return luaL_error(L, "too many results to resume");
		}
		lua_xmove(co, L, nres);
		return nres;
	}
	if (status == LUA_ERRMEM)
		sg_lua_guard_stop(L, SG_LUA_MEMORY);
	sg_lua_guard_check(L);
	if (lua_status(co) != LUA_OK && lua_status(co) != LUA_YIELD)
		lua_resetthread(co); /* died of an ordinary error: run its __close handlers */
	lua_xmove(co, L, 1);
	return lua_error(L);
}

static int
g_cowrap(lua_State *L)
{
	new_coroutine(L);
	lua_pushcclosure(L, wrap_call, 1);
	return 1;
}

/* resume and close return a coroutine's error as a value: look at it before the script does. */
static int
g_coresume(lua_State *L)
{
	lua_State *co = lua_tothread(L, 1);

	sg_lua_guard_check(L);
	lua_pushvalue(L, 1);
	lua_insert(L, 1); /* keeps co alive across the call */
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 2);
	lua_call(L, lua_gettop(L) - 2, LUA_MULTRET);
	if (co != NULL && lua_status(co) == LUA_ERRMEM)
		sg_lua_guard_stop(L, SG_LUA_MEMORY);
	sg_lua_guard_check(L);
	return lua_gettop(L) - 1;
}

/* ---- base ---- */

/*
 * A finalizer runs with hooks disabled, so it could loop unseen.  Lua marks
 * an object for finalization when its metatable has a non-nil __gc when
 * setmetatable is called, and looks __gc up again only when finalizing:
 * {__gc = false} later set to a function runs too.  Refuse any __gc value.
 */
static int
g_setmetatable(lua_State *L)
{
	if (lua_type(L, 2) == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(
			    L, "setmetatable: a metatable with a __gc field is not allowed in "
			       "templates (finalizers would run outside the instruction budget)");
		lua_pop(L, 1);
	}
	return sg_lua_guard_call_stock(L);
}

static int
g_collectgarbage(lua_State *L)
{
	const char *opt = luaL_optstring(L, 1, "collect");

	if (strcmp(opt, "count") != 0)
		return luaL_error(
		    L, "collectgarbage: only collectgarbage(\"count\") is available in templates");
	lua_pushnumber(L, lua_gc(L, LUA_GCCOUNT) + lua_gc(L, LUA_GCCOUNTB) / 1024.0);
	return 1;
}

/*
 * load(chunk [, name [, mode [, env]]]) with mode forced to "t" (text only,
 * also for chunks read from a function) and env defaulting to the sandbox
 * globals.  An env the script passes is a value it already holds.
 */
static int
g_load(lua_State *L)
{
	size_t len;

	if (lua_type(L, 1) == LUA_TSTRING) {
		lua_tolstring(L, 1, &len);
		sg_lua_guard_charge(L, len);
	}
	if (lua_gettop(L) >= 4)
		lua_settop(L, 4);
	else {
		lua_settop(L, 3);
		lua_pushvalue(L, lua_upvalueindex(2));
	}
	lua_pushliteral(L, "t");
	lua_replace(L, 3);
	return sg_lua_guard_call_stock(L);
}

void
sg_lua_guard_base(lua_State *L, int real, int box, int env)
{
	lua_pushliteral(L, "the run was stopped by a sandgate limit");
	lua_rawsetp(L, LUA_REGISTRYINDEX, &stop_key);
	sg_lua_guard_install(L, real, box, "pcall", g_pcall, 0);
	sg_lua_guard_install(L, real, box, "xpcall", g_xpcall, 0);
	sg_lua_guard_install(L, real, box, "setmetatable", g_setmetatable, 1);
	sg_lua_guard_install(L, real, box, "collectgarbage", g_collectgarbage, 0);
	lua_getfield(L, real, "load");
	lua_pushvalue(L, env);
	lua_pushcclosure(L, g_load, 2);
	lua_setfield(L, box, "load");
}

void
sg_lua_guard_coroutine(lua_State *L, int real, int box)
{
	sg_lua_guard_install(L, real, box, "create", g_cocreate, 0);
	sg_lua_guard_install(L, real, box, "wrap", g_cowrap, 0);
	sg_lua_guard_install(L, real, box, "resume", g_coresume, 1);
	sg_lua_guard_install(L, real, box, "close", g_coresume,
	                     1); /* same shape: co first, error as a value */
}

/* Refuses building a string of `size` bytes, over what templates may build. */
int
sg_lua_guard_too_long(lua_State *L, const char *fn, uint64_t size)
{
	if (size == UINT64_MAX)
		return sg_lua_guard_refuse(
		    L, "%s would build a string far larger than the %I bytes templates may build",
		    fn, (lua_Integer)SG_LUA_STRING_MAX);
	return sg_lua_guard_refuse(
	    L,
	    "%s would build a %I-byte string, but templates may build strings of at most %I "
	    "bytes; build smaller pieces",
	    fn, (lua_Integer)size, (lua_Integer)SG_LUA_STRING_MAX);
}
