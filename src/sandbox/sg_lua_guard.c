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

/* Calls upvalue 1 (the stock function) with this call's arguments. */
static int
call_stock(lua_State *L)
{
	int n = lua_gettop(L);

	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, n, LUA_MULTRET);
	return lua_gettop(L);
}

/* Puts fn into box[name], with real[name] as its upvalue when it wraps one. */
static void
install(lua_State *L, int real, int box, const char *name, lua_CFunction fn, int wraps)
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
	return call_stock(L);
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
	return call_stock(L);
}

void
sg_lua_guard_base(lua_State *L, int real, int box, int env)
{
	lua_pushliteral(L, "the run was stopped by a sandgate limit");
	lua_rawsetp(L, LUA_REGISTRYINDEX, &stop_key);
	install(L, real, box, "pcall", g_pcall, 0);
	install(L, real, box, "xpcall", g_xpcall, 0);
	install(L, real, box, "setmetatable", g_setmetatable, 1);
	install(L, real, box, "collectgarbage", g_collectgarbage, 0);
	lua_getfield(L, real, "load");
	lua_pushvalue(L, env);
	lua_pushcclosure(L, g_load, 2);
	lua_setfield(L, box, "load");
}

void
sg_lua_guard_coroutine(lua_State *L, int real, int box)
{
	install(L, real, box, "create", g_cocreate, 0);
	install(L, real, box, "wrap", g_cowrap, 0);
	install(L, real, box, "resume", g_coresume, 1);
	install(L, real, box, "close", g_coresume, 1); /* same shape: co first, error as a value */
}

/* ---- string.rep, string.format ---- */

static uint64_t
sat_mul(uint64_t a, uint64_t b)
{
	return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int
too_long(lua_State *L, const char *fn, uint64_t size)
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

static int
g_rep(lua_State *L)
{
	size_t len, lsep;

	luaL_checklstring(L, 1, &len);
	lua_Integer n = luaL_checkinteger(L, 2);
	luaL_optlstring(L, 3, "", &lsep);
	/* Stock rep loops n times even when nothing is copied: rep("", 2^40) spins for hours. */
	if (n <= 0 || len + lsep == 0) {
		lua_pushliteral(L, "");
		return 1;
	}
	uint64_t size = sat_add(sat_mul(len, (uint64_t)n), sat_mul(lsep, (uint64_t)n - 1));
	if (size > SG_LUA_STRING_MAX)
		return too_long(L, "string.rep", size);
	sg_lua_guard_charge(L, (uint64_t)n + size / SG_LUA_CHARGE_BYTES);
	return call_stock(L);
}

/*
 * Upper bound of one conversion's output.  A %s argument that is not a
 * string or number is converted here (running its __tostring once, as
 * format would) and replaced by the result, so its length is known.
 */
static uint64_t
format_item(lua_State *L, int arg, char conv)
{
	size_t len = 0;

	/* Numbers: width and precision are at most 99; %99.99f of 1e308 is ~420 bytes. */
	if (conv != 's' && conv != 'q')
		return 512;
	if (lua_type(L, arg) == LUA_TSTRING)
		lua_tolstring(L, arg, &len);
	else if (lua_type(L, arg) == LUA_TNUMBER)
		len = 64;
	else if (conv == 's') {
		luaL_tolstring(L, arg, &len);
		lua_replace(L, arg);
	} else
		len = 64; /* nil and booleans; other types make %q fail */
	return conv == 'q' ? sat_add(sat_mul(len, 4), 2) : sat_add(len, 99);
}

static int
g_format(lua_State *L)
{
	size_t flen;
	const char *f = luaL_checklstring(L, 1, &flen), *end = f + flen;
	int top = lua_gettop(L), arg = 1;
	uint64_t size = 0, items = 0;

	while (f < end) {
		if (*f++ != '%') {
			size++;
			continue;
		}
		if (f < end && *f == '%') {
			f++, size++;
			continue;
		}
		/* Flags, width, precision; stock format rejects what it does not support. */
		f += strspn(f, "-+#0 123456789.");
		if (f >= end || ++arg > top)
			break;
		size = sat_add(size, format_item(L, arg, *f++));
		items++;
	}
	if (size > SG_LUA_STRING_MAX)
		return too_long(L, "string.format", size);
	sg_lua_guard_charge(L, items + size / SG_LUA_CHARGE_BYTES);
	return call_stock(L);
}

/* ---- pattern functions: refuse what could backtrack for long ---- */

/* Whether byte c is in class %cl, as Lua's matcher defines classes (same ctype, same locale). */
static int
class_has(int c, int cl)
{
	static const char names[] = "acdglpsuwx";
	static int (*const tests[])(int) = {isalpha, iscntrl, isdigit, isgraph, islower,
	                                    ispunct, isspace, isupper, isalnum, isxdigit};
	const char *at = cl != 0 ? strchr(names, tolower(cl)) : NULL;
	int in;

	if (at != NULL)
		in = tests[at - names](c) != 0;
	else if (tolower(cl) == 'z')
		in = c == 0; /* deprecated, still honoured by Lua */
	else
		return cl == c;
	return islower(cl) ? in : !in;
}

/* The ']' closing the set that starts at p ('['), or NULL when it is malformed. */
static const char *
set_close(const char *p, const char *pend)
{
	if (++p < pend && *p == '^')
		p++;
	for (;;) { /* the first byte is always a member, even ']' */
		if (p >= pend)
			return NULL;
		if (*p++ == '%' && p < pend)
			p++;
		if (p < pend && *p == ']')
			return p;
	}
}

/* Whether byte c is in the set [p .. close]. */
static int
set_has(int c, const char *p, const char *close)
{
	int yes = 1;

	if (p[1] == '^') {
		yes = 0;
		p++;
	}
	while (++p < close) {
		if (*p == '%') {
			if (class_has(c, (unsigned char)*++p))
				return yes;
		} else if (p[1] == '-' && p + 2 < close) {
			if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
				return yes;
			p += 2;
		} else if ((unsigned char)*p == c)
			return yes;
	}
	return !yes;
}

/* A single-byte class item: [p, end) is ".", "%x", "[set]" or a literal byte. */
static void
class_bits(const char *p, const char *end, unsigned char bits[32])
{
	for (int c = 0; c < 256; c++) {
		int in = *p == '.'   ? 1
		         : *p == '%' ? class_has(c, (unsigned char)p[1])
		         : *p == '[' ? set_has(c, p, end - 1)
		                     : c == (unsigned char)*p;
		if (in)
			bits[c >> 3] |= (unsigned char)(1u << (c & 7));
		else
			bits[c >> 3] &= (unsigned char)~(1u << (c & 7));
	}
}

/* End of the class item at p, or NULL when the pattern is malformed there. */
static const char *
class_end(const char *p, const char *pend)
{
	if (*p == '%')
		return p + 1 < pend ? p + 2 : NULL;
	if (*p == '[') {
		const char *c = set_close(p, pend);
		return c ? c + 1 : NULL;
	}
	return p + 1;
}

#define HAS(bits, c) ((bits)[(c) >> 3] & (1u << ((c)&7)))

/* One item as Lua's matcher sees it; capture parentheses cost nothing and are skipped. */
struct item {
	char kind;           /* 'c' class, 'b' %b, 'r' %1-%9, 'f' %f[set], '$' end anchor */
	char op;             /* for 'c': 0 or the repetition '*', '+', '-', '?' */
	const char *p, *end; /* 'c': the class text; 'b': p is the opening byte */
};

/*
 * Reads the next item at *pp.  Returns 1, 0 at the end, or -1 at a
 * malformed item: the matcher raises an error on reaching it, so nothing
 * after it ever runs.
 */
static int
next_item(const char **pp, const char *pend, struct item *it)
{
	const char *p = *pp;

	while (p < pend && (*p == '(' || *p == ')'))
		p++;
	if (p >= pend)
		return 0;
	it->op = 0;
	if (*p == '$' && p + 1 == pend) {
		it->kind = '$';
		*pp = pend;
		return 1;
	}
	if (*p == '%' && p + 1 < pend &&
	    (p[1] == 'b' || p[1] == 'f' || isdigit((unsigned char)p[1]))) {
		it->kind = p[1] == 'b' ? 'b' : p[1] == 'f' ? 'f' : 'r';
		it->p = p + 2 < pend ? p + 2 : NULL;
		if (it->kind == 'f') {
			const char *c =
			    it->p != NULL && *it->p == '[' ? set_close(it->p, pend) : NULL;
			if (c == NULL)
				return -1;
			*pp = c + 1;
		} else
			*pp = it->kind == 'b' && pend - p >= 4 ? p + 4
			      : it->kind == 'b'                ? pend
			                                       : p + 2;
		return 1;
	}
	if ((it->end = class_end(p, pend)) == NULL)
		return -1;
	it->kind = 'c';
	it->p = p;
	if (it->end < pend && memchr("*+-?", *it->end, 4) != NULL)
		it->op = *it->end;
	*pp = it->end + (it->op != 0);
	return 1;
}

/* Whether an item that must consume one byte first can never take a byte of `bits`. */
static int
blocks(const struct item *next, int have_next, const unsigned char bits[32])
{
	unsigned char other[32];

	if (!have_next || next->kind == '$')
		return 1; /* the first try succeeds or fails at once */
	if (next->kind == 'b')
		return next->p != NULL && !HAS(bits, (unsigned char)*next->p);
	if (next->kind != 'c' || (next->op != 0 && next->op != '+'))
		return 0;
	class_bits(next->p, next->end, other);
	for (int i = 0; i < 32; i++)
		if (bits[i] & other[i])
			return 0;
	return 1;
}

#define REPEATS_OVER (UINT64_MAX - 1) /* pattern_work: more than SG_LUA_PATTERN_REPEATS */

/*
 * Worst-case matcher steps for one call, saturating.  Lua's matcher
 * branches only at repetitions: x* and x+ try up to R+1 lengths (R: the
 * longest run of subject bytes x's class matches), x- the same lazily, x?
 * two.  A repetition followed by an item that must consume a byte outside
 * its class can continue from one length only: the others fail on their
 * first byte.  Visits of item i are at most starts times the branching of
 * the items before it; each visit costs 1, R+2 for a repetition, or n+1
 * for %b and back-references, which scan.  Plus 4 per subject byte for
 * trying each start.
 */
static uint64_t
pattern_work(lua_State *L, const char *s, size_t n, const char *p, size_t lp, int anchor)
{
	unsigned char rep[SG_LUA_PATTERN_REPEATS][32], first[32];
	uint64_t run[SG_LUA_PATTERN_REPEATS] = {0}, cur[SG_LUA_PATTERN_REPEATS] = {0};
	const char *q = p + anchor, *pend = p + lp;
	struct item it, next;
	size_t nrep = 0;
	int has_first = 0;

	for (int i = 0; next_item(&q, pend, &it) == 1; i++) {
		/* A first item that must consume a byte limits where matches can begin. */
		if (i == 0 && !anchor && it.kind == 'c' && (it.op == 0 || it.op == '+'))
			has_first = 1, class_bits(it.p, it.end, first);
		if (i == 0 && !anchor && it.kind == 'b' && it.p != NULL) {
			has_first = 1;
			memset(first, 0, sizeof first);
			first[(unsigned char)*it.p >> 3] |= (unsigned char)(1u << (*it.p & 7));
		}
		if (it.kind == 'c' && it.op != 0) {
			if (nrep == SG_LUA_PATTERN_REPEATS)
				return REPEATS_OVER;
			class_bits(it.p, it.end, rep[nrep++]);
		}
	}
	/* Longest run each repetition's class can take, and the bytes a match can begin at. */
	uint64_t starts = anchor ? 1 : has_first ? 1 : (uint64_t)n + 1;
	sg_lua_guard_charge(L, n * (nrep + 1) / SG_LUA_CHARGE_BYTES);
	for (size_t i = 0; i < n; i++) {
		unsigned c = (unsigned char)s[i];
		starts += has_first && HAS(first, c);
		for (size_t k = 0; k < nrep; k++) {
			cur[k] = HAS(rep[k], c) ? cur[k] + 1 : 0;
			run[k] = cur[k] > run[k] ? cur[k] : run[k];
		}
	}
	uint64_t work = sat_mul(n, 4), visits = starts;
	size_t k = 0;
	q = p + anchor;
	int have = next_item(&q, pend, &it) == 1;
	while (have) {
		int have_next = next_item(&q, pend, &next) == 1;
		uint64_t cost = 1, branch = 1;
		if (it.kind == 'c' && it.op != 0) {
			cost = run[k] + 2;
			branch = it.op == '?' ? 2 : run[k] + 1;
			if (blocks(&next, have_next, rep[k++]))
				branch = 1;
		} else if (it.kind == 'b' || it.kind == 'r')
			cost = (uint64_t)n + 1;
		work = sat_add(work, sat_mul(visits, cost));
		visits = sat_mul(visits, branch);
		it = next;
		have = have_next;
	}
	return work == REPEATS_OVER ? UINT64_MAX : work;
}

/* Checks one pattern call and charges for it; refuses (raises) when it could run too long. */
static void
pattern_guard(lua_State *L, const char *fn, int anchor_ok, int plain)
{
	size_t n, lp;
	const char *s = luaL_checklstring(L, 1, &n);
	const char *p = luaL_checklstring(L, 2, &lp);
	uint64_t work;

	if (n > SG_LUA_SUBJECT_MAX)
		sg_lua_guard_refuse(L,
		                    "%s: the text is %I bytes; patterns work on at most %I bytes",
		                    fn, (lua_Integer)n, (lua_Integer)SG_LUA_SUBJECT_MAX);
	if (lp > SG_LUA_PATTERN_MAX)
		sg_lua_guard_refuse(L,
		                    "%s: the pattern is %I bytes; patterns may be at most %I bytes",
		                    fn, (lua_Integer)lp, (lua_Integer)SG_LUA_PATTERN_MAX);
	if (plain)
		work = sat_add(sat_mul(n + 1, lp), sat_mul(n, 4));
	else
		work = pattern_work(L, s, n, p, lp, anchor_ok && lp > 0 && p[0] == '^');
	if (work == REPEATS_OVER)
		sg_lua_guard_refuse(
		    L,
		    "%s: the pattern has more than %d repetitions like '.-', '*', '+' or '?'; "
		    "split it into simpler patterns",
		    fn, SG_LUA_PATTERN_REPEATS);
	if (work > SG_LUA_PATTERN_WORK_MAX)
		sg_lua_guard_refuse(
		    L,
		    "%s: this pattern could take too long on a %I-byte text (it may need more "
		    "than %I steps); anchor it with '^', use fewer repetitions like '.-' or '*', "
		    "or split the text first",
		    fn, (lua_Integer)n, (lua_Integer)SG_LUA_PATTERN_WORK_MAX);
	sg_lua_guard_charge(L, work / SG_LUA_CHARGE_PATTERN);
}

static int
g_find(lua_State *L)
{
	pattern_guard(L, "string.find", 1, lua_toboolean(L, 4));
	return call_stock(L);
}

static int
g_match(lua_State *L)
{
	pattern_guard(L, "string.match", 1, 0);
	return call_stock(L);
}

/* gmatch does not treat '^' as an anchor; its whole iteration is priced at creation. */
static int
g_gmatch(lua_State *L)
{
	pattern_guard(L, "string.gmatch", 0, 0);
	return call_stock(L);
}

static int
g_gsub(lua_State *L)
{
	pattern_guard(L, "string.gsub", 1, 0);
	return call_stock(L);
}

void
sg_lua_guard_string(lua_State *L, int real, int box)
{
	install(L, real, box, "rep", g_rep, 1);
	install(L, real, box, "format", g_format, 1);
	install(L, real, box, "find", g_find, 1);
	install(L, real, box, "match", g_match, 1);
	install(L, real, box, "gmatch", g_gmatch, 1);
	install(L, real, box, "gsub", g_gsub, 1);
}

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
			return too_long(L, "table.concat", size);
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
	sg_lua_guard_charge(L, sat_mul(n, SG_LUA_CHARGE_ELEMENT));
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
	sg_lua_guard_charge(L, sat_mul(sat_mul(n, lg), SG_LUA_CHARGE_ELEMENT));
	return call_stock(L);
}

void
sg_lua_guard_table(lua_State *L, int real, int box)
{
	install(L, real, box, "insert", g_insert, 0);
	install(L, real, box, "remove", g_remove, 0);
	install(L, real, box, "move", g_move, 0);
	install(L, real, box, "concat", g_concat, 0);
	install(L, real, box, "unpack", g_unpack, 0);
	install(L, real, box, "sort", g_sort, 1);
}
