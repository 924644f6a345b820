/*
 * One template run: a capped allocator, a global table built from an
 * allowlist, the ctx object (sg_lua_ctx.c), and the translation of however
 * the run ended into one sentence for the person who wrote the template.
 *
 * Everything that can raise runs inside lua_pcall (the "guardian"), and the
 * only malloc'd memory alive across raising calls hangs off struct run
 * (logs, output, the one JSON value in flight), which sg_lua_run frees after
 * lua_close whatever happened.
 */
#include "sandbox/sg_lua_env_int.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/sg_lua_guard.h"
#include "sandbox/sg_lua_json.h"

/* Formats into dst, control characters turned to spaces, "..." when cut. */
static void
say(char *dst, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (len == 0)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(dst, len, fmt, ap);
	va_end(ap);
	if (n < 0)
		dst[0] = '\0';
	else if ((size_t)n >= len && len > 4)
		memcpy(dst + len - 4, "...", 4);
	for (char *p = dst; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

/* ---- memory ---- */

static void *
refuse(struct mem *m, const void *ptr, size_t osize, size_t nsize)
{
	/*
	 * The same request refused twice in a row means it did not fit even
	 * after Lua's emergency full collection: the run is out of memory,
	 * whether or not Lua raises (some callers, like lua_checkstack, cope).
	 */
	if (m->refusing && m->refused_ptr == ptr && m->refused_osize == osize &&
	    m->refused_nsize == nsize && m->guard != NULL && m->guard->stop == SG_LUA_OK)
		m->guard->stop = SG_LUA_MEMORY;
	m->refusing = 1;
	m->refused_ptr = ptr;
	m->refused_osize = osize;
	m->refused_nsize = nsize;
	return NULL;
}

static void *
mem_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct mem *m = ud;
	size_t old = ptr != NULL ? osize : 0; /* for new blocks osize is a type tag */

	if (nsize == 0) {
		free(ptr);
		m->cur -= old;
		return NULL;
	}
	if (nsize > old && nsize - old > m->cap - m->cur)
		return refuse(m, ptr, osize, nsize);
	void *p = realloc(ptr, nsize);
	if (p == NULL && nsize > old)
		return refuse(m, ptr, osize, nsize);
	if (p == NULL)
		p = ptr; /* Lua assumes shrinking never fails: keep the bigger block */
	m->cur = m->cur - old + nsize;
	if (m->cur > m->peak)
		m->peak = m->cur;
	if (nsize > old)
		m->refusing = 0;
	return p;
}

static int
on_panic(lua_State *L)
{
	/* Defensive: every raising call runs under lua_pcall. */
	fprintf(stderr, "sandgate: %s: unprotected Lua error: %s\n", __func__,
	        lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
	abort();
}

/* ---- the global table: an allowlist, never the stock globals minus a few ---- */

static const char *const base_names[] = {
    "assert", "error",  "getmetatable", "ipairs",   "next",     "pairs", "rawequal", "rawget",
    "rawlen", "rawset", "select",       "tonumber", "tostring", "type",  "_VERSION", NULL};
/* find, format, gmatch, gsub, match, rep are guarded; dump, pack, packsize, unpack left out. */
static const char *const string_names[] = {"byte",    "char", "len",   "lower",
                                           "reverse", "sub",  "upper", NULL};
static const char *const table_names[] = {"pack", NULL}; /* the rest are guarded */
static const char *const math_names[] = {
    "abs",        "acos",      "asin", "atan",   "ceil",       "cos",        "exp",
    "floor",      "fmod",      "huge", "log",    "max",        "maxinteger", "min",
    "mininteger", "modf",      "pi",   "random", "randomseed", "sin",        "sqrt",
    "tan",        "tointeger", "type", "ult",    NULL};
static const char *const utf8_names[] = {"char", "charpattern", "codepoint", "codes",
                                         "len",  "offset",      NULL};
static const char *const coroutine_names[] = {"isyieldable", "running", "status", "yield", NULL};

static void
copy_names(lua_State *L, int from, int to, const char *const *names)
{
	for (; *names != NULL; names++) {
		lua_getfield(L, from, *names);
		lua_setfield(L, to, *names);
	}
}

/* env[name] = a fresh table with the allowed and guarded parts of a stock library. */
static void
add_lib(lua_State *L, int env, const char *name, lua_CFunction open, const char *const *names,
        void (*guard)(lua_State *, int, int))
{
	lua_pushcfunction(L, open);
	lua_call(L, 0, 1);
	int real = lua_gettop(L);
	lua_createtable(L, 0, 24);
	copy_names(L, real, real + 1, names);
	if (guard != NULL)
		guard(L, real, real + 1);
	lua_setfield(L, env, name);
	lua_pop(L, 1); /* the stock table: unreachable from now on */
}

/*
 * Strings share one metatable per state, whose __index is the stock string
 * table (with dump).  Point it at the sandbox table and lock it, so
 * getmetatable("") returns false.
 */
static void
lock_string_metatable(lua_State *L, int env)
{
	lua_pushliteral(L, "");
	lua_getmetatable(L, -1);
	lua_getfield(L, env, "string");
	lua_setfield(L, -2, "__index");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 2);
}

/* Pushes the sandbox globals and makes them the state's globals (what load and chunks see). */
static void
push_env(lua_State *L)
{
	lua_pushcfunction(L, luaopen_base);
	lua_call(L, 0, 1); /* the stock globals, a source to copy from only */
	int real = lua_gettop(L), env = real + 1;
	lua_createtable(L, 0, 32);
	copy_names(L, real, env, base_names);
	sg_lua_guard_base(L, real, env, env);
	lua_pushcfunction(L, sg_lua_ctx_log);
	lua_setfield(L, env, "print");
	lua_pushvalue(L, env);
	lua_setfield(L, env, "_G");
	add_lib(L, env, "string", luaopen_string, string_names, sg_lua_guard_string);
	add_lib(L, env, "table", luaopen_table, table_names, sg_lua_guard_table);
	add_lib(L, env, "math", luaopen_math, math_names, NULL);
	add_lib(L, env, "utf8", luaopen_utf8, utf8_names, NULL);
	add_lib(L, env, "coroutine", luaopen_coroutine, coroutine_names, sg_lua_guard_coroutine);
	lock_string_metatable(L, env);
	lua_pushvalue(L, env);
	lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
	lua_remove(L, real);
}

/* ---- errors, in words ---- */

/*
 * Strips every leading "name:LINE: " (a rethrown error gains one per
 * rethrow) and keeps the innermost line, where the error began.
 */
static const char *
strip_where(const char *name, const char *msg, int *line)
{
	size_t nl = strlen(name);

	while (strncmp(msg, name, nl) == 0 && msg[nl] == ':' &&
	       isdigit((unsigned char)msg[nl + 1])) {
		const char *p = msg + nl + 1;
		long n = 0;
		while (isdigit((unsigned char)*p))
			n = n < 1000000000 ? n * 10 + (*p++ - '0') : (p++, n);
		if (*p != ':')
			break;
		*line = (int)n;
		msg = p + 1 + (p[1] == ' ');
	}
	return msg;
}

static const struct {
	const char *needle, *hint;
} hints[] = {
    {"global 'os'", "templates have no os library; ctx.now() gives the time"},
    {"global 'io'", "templates cannot use files; ctx.call reaches data"},
    {"global 'require'", "templates are one file; put the code you need in main.lua"},
    {"global 'package'", "templates are one file; put the code you need in main.lua"},
    {"global 'dofile'", "templates are one file; put the code you need in main.lua"},
    {"global 'loadfile'", "templates are one file; put the code you need in main.lua"},
    {"global 'debug'", "the debug library is not available in templates"},
    {"field 'dump'", "string.dump is not available in templates"},
};

/* The error value on top of the stack, as one sentence for the template's author. */
static void
describe_error(struct run *r, lua_State *L)
{
	char text[400];
	const char *hint = "";

	if (lua_type(L, -1) == LUA_TSTRING) {
		say(text, sizeof text, "%s", strip_where(r->name, lua_tostring(L, -1), &r->line));
	} else if (lua_type(L, -1) == LUA_TTABLE) {
		lua_pushliteral(L, "code");
		lua_rawget(L, -2);
		lua_pushliteral(L, "detail");
		lua_rawget(L, -3);
		const char *code =
		    lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "(no code)";
		const char *detail = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
		lua_rawgetp(L, LUA_REGISTRYINDEX, &sg_lua_call_error_key);
		if (lua_rawequal(L, -1, -4))
			say(text, sizeof text, "ctx.call(\"%s\") failed with %s: %s", r->call_name,
			    code, detail);
		else
			say(text, sizeof text, "uncaught error %s: %s", code, detail);
		lua_pop(L, 3);
	} else if (lua_isnil(L, -1)) {
		say(text, sizeof text, "the script raised an error without a message");
	} else {
		say(text, sizeof text,
		    "the script raised a %s as an error; use error(\"some text\") "
		    "to say what went wrong",
		    luaL_typename(L, -1));
	}
	for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++)
		if (strstr(text, hints[i].needle) != NULL)
			hint = hints[i].hint;
	if (r->line > 0)
		say(r->message, sizeof r->message, "%s line %d: %s%s%s", r->name, r->line, text,
		    *hint ? "; " : "", hint);
	else
		say(r->message, sizeof r->message, "%s: %s%s%s", r->name, text, *hint ? "; " : "",
		    hint);
}

/* A failed load: returns the line (0 if unknown) and points *text at the explanation. */
static int
compile_text(lua_State *L, const char *name, const char *src, size_t len, const char **text)
{
	int line = 0;

	if (len > 0 && src[0] == LUA_SIGNATURE[0]) {
		*text = "the file is precompiled Lua bytecode; templates must be Lua source text";
		return 1;
	}
	*text =
	    strip_where(name, lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?", &line);
	return line;
}

/* ---- the run ---- */

/* Message handler: remembers the main.lua line where an uncaught error surfaced. */
static int
on_error(lua_State *L)
{
	struct run *r = run_of(L);
	lua_Debug ar;

	for (int level = 1; r->line == 0 && lua_getstack(L, level, &ar); level++)
		if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0 &&
		    strcmp(ar.source, r->chunkid) == 0)
			r->line = ar.currentline;
	return 1;
}

static int
failed(struct run *r, lua_State *L, int status)
{
	if (status == LUA_ERRMEM && r->guard.stop == SG_LUA_OK)
		r->guard.stop = SG_LUA_MEMORY;
	if (r->guard.stop != SG_LUA_OK)
		return 0; /* a limit: finish() words it */
	r->stop = sg_lua_guard_is_refusal(L, -1) ? SG_LUA_GUARD : SG_LUA_SCRIPT_ERROR;
	describe_error(r, L);
	return 0;
}

/*
 * Runs inside lua_pcall: builds the environment, runs the chunk's top
 * level, then run(input, ctx), and converts the result.  Stack: 1 message
 * handler, 2 globals.
 */
static int
guardian(lua_State *L)
{
	struct run *r = run_of(L);
	char err[256];
	int status;

	lua_pushcfunction(L, on_error);
	push_env(L);
	status = luaL_loadbufferx(L, r->src, r->len, r->chunkid, "t");
	if (status != LUA_OK) {
		if (status == LUA_ERRMEM)
			return failed(r, L, status);
		const char *text;
		r->stop = SG_LUA_COMPILE_ERROR;
		r->line = compile_text(L, r->name, r->src, r->len, &text);
		say(r->message, sizeof r->message, "%s line %d: syntax error: %s", r->name, r->line,
		    text);
		return 0;
	}
	if ((status = lua_pcall(L, 0, 0, 1)) != LUA_OK)
		return failed(r, L, status);
	lua_pushliteral(L, "run");
	if (lua_rawget(L, 2) != LUA_TFUNCTION) {
		r->stop = SG_LUA_NO_RUN;
		say(r->message, sizeof r->message,
		    "%s defines no function run (it is %s); add "
		    "'function run(input, ctx) ... end'",
		    r->name, luaL_typename(L, -1));
		return 0;
	}
	if (sg_lua_json_to_lua(L, r->input, err, sizeof err) != 0) {
		r->stop = SG_LUA_SCRIPT_ERROR;
		say(r->message, sizeof r->message, "the input cannot be given to the template: %s",
		    err);
		return 0;
	}
	sg_lua_push_ctx(L, lua_gettop(L));
	r->line = 0;
	if ((status = lua_pcall(L, 2, 1, 1)) != LUA_OK)
		return failed(r, L, status);
	if (r->guard.stop != SG_LUA_OK)
		return 0;
	r->output = sg_lua_json_from_lua(L, -1, "result", err, sizeof err);
	if (r->output == NULL) {
		r->stop = SG_LUA_BAD_RESULT;
		say(r->message, sizeof r->message,
		    "run() returned a value that cannot become JSON: %s", err);
	}
	return 0;
}

/* Words for a limit that stopped the run, naming the limit and its value. */
static void
describe_limit(struct run *r, enum sg_lua_stop stop)
{
	char at[80] = "";

	if (r->line > 0)
		snprintf(at, sizeof at, " (stopped at %s line %d)", r->name, r->line);
	if (stop == SG_LUA_INSTRUCTIONS)
		say(r->message, sizeof r->message,
		    "the template used its %llu instruction budget%s; "
		    "raise limits.instructions in template.yaml or do less work per run",
		    (unsigned long long)r->lim->instructions, at);
	else if (stop == SG_LUA_MEMORY)
		say(r->message, sizeof r->message,
		    "the template needed more than its %zu-byte memory "
		    "limit%s; raise limits.memory_bytes in template.yaml or keep less data in "
		    "memory "
		    "at once",
		    r->lim->memory_bytes, at);
	else
		say(r->message, sizeof r->message,
		    "the template tried to make more than its %lu "
		    "ctx.call() calls%s; raise limits.calls in template.yaml or make fewer calls "
		    "per run",
		    (unsigned long)r->lim->calls, at);
}

static void
finish(struct run *r, struct sg_lua_outcome *out)
{
	out->stop = r->guard.stop != SG_LUA_OK ? r->guard.stop : r->stop;
	if (r->guard.stop != SG_LUA_OK)
		describe_limit(r, r->guard.stop);
	if (out->stop == SG_LUA_OK) {
		out->output = r->output;
		r->output = NULL;
	}
	if (r->log_dropped > 0) {
		char note[160];
		say(note, sizeof note,
		    "[sandgate] %llu log line%s dropped: the template may log %zu bytes per run "
		    "(limits.log_bytes)",
		    (unsigned long long)r->log_dropped, r->log_dropped == 1 ? " was" : "s were",
		    r->lim->log_bytes);
		json_array_append_new(r->logs, json_string(note));
	}
	out->logs = r->logs;
	r->logs = NULL;
	memcpy(out->message, r->message, sizeof out->message);
	out->line = r->line;
	out->instructions = sg_lua_guard_used(&r->guard);
	out->peak_memory = r->mem.peak;
	out->calls = r->calls;
	json_decref(r->output);
	json_decref(r->held);
}

static void
set_name(struct run *r, const char *chunkname)
{
	snprintf(r->name, sizeof r->name, "%s", chunkname != NULL ? chunkname : "main.lua");
	snprintf(r->chunkid, sizeof r->chunkid, "=%s", r->name);
}

void
sg_lua_run(const char *chunkname, const char *src, size_t len, const json_t *input,
           const struct sg_lua_limits *lim, const struct sg_lua_host *host,
           struct sg_lua_outcome *out)
{
	struct run r;

	memset(&r, 0, sizeof r);
	memset(out, 0, sizeof *out);
	set_name(&r, chunkname);
	r.guard.budget = lim->instructions;
	r.mem.cap = lim->memory_bytes;
	r.mem.guard = &r.guard;
	r.lim = lim;
	r.host = host;
	r.src = src;
	r.len = len;
	r.input = input;
	r.logs = json_array();
	lua_State *L = lua_newstate(mem_alloc, &r.mem);
	if (L == NULL) {
		r.guard.stop = SG_LUA_MEMORY;
	} else {
		lua_atpanic(L, on_panic);
		sg_lua_guard_start(L, &r.guard);
		lua_pushcfunction(L, guardian);
		int status = lua_pcall(L, 0, 0, 0);
		if (status == LUA_ERRMEM && r.guard.stop == SG_LUA_OK)
			r.guard.stop = SG_LUA_MEMORY;
		else if (status != LUA_OK && r.guard.stop == SG_LUA_OK) {
			/* Defensive: the guardian catches script errors itself. */
			r.stop = SG_LUA_SCRIPT_ERROR;
			say(r.message, sizeof r.message, "the sandbox failed: %s",
			    lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "unknown error");
		}
		lua_close(L);
	}
	finish(&r, out);
}

struct check {
	const char *src, *chunkid;
	size_t len;
};

static int
load_only(lua_State *L)
{
	struct check *c = lua_touserdata(L, 1);

	lua_pushinteger(L, luaL_loadbufferx(L, c->src, c->len, c->chunkid, "t"));
	return 2;
}

int
sg_lua_compile_check(const char *chunkname, const char *src, size_t len, char *msg, size_t msglen,
                     int *line)
{
	struct run r; /* only its names */
	struct mem m = {.cap = COMPILE_MEMORY};
	struct check c = {src, r.chunkid, len};
	int rc = -1;

	set_name(&r, chunkname);
	*line = 0;
	if (msglen > 0)
		msg[0] = '\0';
	lua_State *L = lua_newstate(mem_alloc, &m);
	if (L == NULL) {
		say(msg, msglen, "%s: not enough memory to compile", r.name);
		return -1;
	}
	lua_atpanic(L, on_panic);
	lua_pushcfunction(L, load_only);
	lua_pushlightuserdata(L, &c);
	if (lua_pcall(L, 1, 2, 0) != LUA_OK)
		say(msg, msglen, "%s: not enough memory to compile", r.name);
	else if (lua_tointeger(L, -1) == LUA_OK)
		rc = 0;
	else {
		const char *text;
		lua_pop(L, 1);
		*line = compile_text(L, r.name, src, len, &text);
		if (*line > 0)
			say(msg, msglen, "%s:%d: %s", r.name, *line, text);
		else
			say(msg, msglen, "%s: %s", r.name, text);
	}
	lua_close(L);
	return rc;
}

void
sg_lua_outcome_clear(struct sg_lua_outcome *out)
{
	json_decref(out->output);
	json_decref(out->logs);
	out->output = NULL;
	out->logs = NULL;
}

const char *
sg_lua_stop_name(enum sg_lua_stop stop)
{
	static const char *const names[] = {"ok",           "compile_error", "script_error",
	                                    "instructions", "memory",        "calls",
	                                    "guard",        "bad_result",    "no_run"};

	return (unsigned)stop < sizeof names / sizeof names[0] ? names[stop] : "unknown";
}
