/*
 * Guards on the string library: string.rep and string.format are priced
 * by the size they would build, the pattern functions by the work their
 * pattern could take on the text.  See sg_lua_guard.h for the caps.
 */
#include "sandbox/sg_lua_guard.h"

#include <ctype.h>
#include <lauxlib.h>
#include <limits.h>
#include <string.h>

/* ---- string.rep, string.format ---- */

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
	uint64_t size =
	    sg_lua_sat_add(sg_lua_sat_mul(len, (uint64_t)n), sg_lua_sat_mul(lsep, (uint64_t)n - 1));
	if (size > SG_LUA_STRING_MAX)
		return sg_lua_guard_too_long(L, "string.rep", size);
	sg_lua_guard_charge(L, (uint64_t)n + size / SG_LUA_CHARGE_BYTES);
	return sg_lua_guard_call_stock(L);
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
	return conv == 'q' ? sg_lua_sat_add(sg_lua_sat_mul(len, 4), 2) : sg_lua_sat_add(len, 99);
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
		size = sg_lua_sat_add(size, format_item(L, arg, *f++));
		items++;
	}
	if (size > SG_LUA_STRING_MAX)
		return sg_lua_guard_too_long(L, "string.format", size);
	sg_lua_guard_charge(L, items + size / SG_LUA_CHARGE_BYTES);
	return sg_lua_guard_call_stock(L);
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
	uint64_t work = sg_lua_sat_mul(n, 4), visits = starts;
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
		work = sg_lua_sat_add(work, sg_lua_sat_mul(visits, cost));
		visits = sg_lua_sat_mul(visits, branch);
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
		work = sg_lua_sat_add(sg_lua_sat_mul(n + 1, lp), sg_lua_sat_mul(n, 4));
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
	return sg_lua_guard_call_stock(L);
}

static int
g_match(lua_State *L)
{
	pattern_guard(L, "string.match", 1, 0);
	return sg_lua_guard_call_stock(L);
}

/* gmatch does not treat '^' as an anchor; its whole iteration is priced at creation. */
static int
g_gmatch(lua_State *L)
{
	pattern_guard(L, "string.gmatch", 0, 0);
	return sg_lua_guard_call_stock(L);
}

static int
g_gsub(lua_State *L)
{
	pattern_guard(L, "string.gsub", 1, 0);
	return sg_lua_guard_call_stock(L);
}

void
sg_lua_guard_string(lua_State *L, int real, int box)
{
	sg_lua_guard_install(L, real, box, "rep", g_rep, 1);
	sg_lua_guard_install(L, real, box, "format", g_format, 1);
	sg_lua_guard_install(L, real, box, "find", g_find, 1);
	sg_lua_guard_install(L, real, box, "match", g_match, 1);
	sg_lua_guard_install(L, real, box, "gmatch", g_gmatch, 1);
	sg_lua_guard_install(L, real, box, "gsub", g_gsub, 1);
}
