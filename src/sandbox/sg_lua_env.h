/*
 * sg_lua_env: the language layer of the template sandbox.  Runs one untrusted
 * Lua 5.4 script in a fresh, restricted lua_State and says, in words a
 * non-expert can act on, how the run ended.
 *
 * The script (main.lua) defines a global `function run(input, ctx)` and
 * returns a JSON-able value.  Its globals come from an allowlist:
 *
 *   assert error getmetatable ipairs next pairs rawequal rawget rawlen rawset
 *   select tonumber tostring type _VERSION _G, print (same as ctx.log),
 *   pcall xpcall load setmetatable collectgarbage (wrapped, see sg_lua_guard.h),
 *   string (no dump/pack/unpack/packsize), table, math, utf8, coroutine.
 *
 * `ctx` offers exactly call(name, args), log(...), input, json.encode,
 * json.decode and now().  There is no os, io, package, require, debug,
 * dofile, loadfile, string.dump, and no way to load a binary chunk.
 *
 * This layer assumes the VM can be broken: the worker process around it
 * (namespaces, seccomp, cgroup, the parent's wall-clock kill) must hold on its
 * own.  Budgets here are about fairness and clear errors.
 */
#ifndef SG_LUA_ENV_H
#define SG_LUA_ENV_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct sg_lua_limits {
	uint64_t instructions; /* VM instructions for the whole run, coroutines included */
	size_t memory_bytes;   /* cap for everything the lua_State allocates */
	uint32_t calls;        /* ctx.call() budget */
	size_t log_bytes; /* total ctx.log text kept; beyond it lines are dropped and counted */
};

enum sg_lua_stop {
	SG_LUA_OK,
	SG_LUA_COMPILE_ERROR,
	SG_LUA_SCRIPT_ERROR,
	SG_LUA_INSTRUCTIONS,
	SG_LUA_MEMORY,
	SG_LUA_CALLS,
	SG_LUA_GUARD,      /* a string/table guard refused and the script did not catch it */
	SG_LUA_BAD_RESULT, /* run() returned something that cannot become JSON */
	SG_LUA_NO_RUN,     /* main.lua defines no function run */
};

struct sg_lua_host {
	void *ud;
	/*
	 * ctx.call("connector.operation", args).  `args` is borrowed for the
	 * duration of the call (a JSON object when the script passed no
	 * arguments).  Returns 0 and a new reference in *result, or -1 and a
	 * new reference in *error: a JSON object with at least "code" and
	 * "detail", which the script sees as a raised error table it may catch
	 * with pcall.  NULL: ctx.call raises "not available".
	 */
	int (*call)(void *ud, const char *capability, json_t *args, json_t **result,
	            json_t **error);
	int64_t (*now_ms)(void *ud); /* ctx.now(); NULL: ctx.now raises "not available" */
};

struct sg_lua_outcome {
	enum sg_lua_stop stop;
	json_t *output;    /* owned; set when stop == SG_LUA_OK */
	json_t *logs;      /* owned array of strings (NULL only if malloc failed) */
	char message[512]; /* plain explanation; names the limit and its value when one stopped the
	                      run */
	int line;          /* main.lua line of the error when known, else 0 */
	/*
	 * Counted in prepaid windows of SG_LUA_HOOK_INTERVAL plus charged C
	 * work, so it may exceed the true count by up to one window per
	 * thread (each coroutine pays its first window when created); it
	 * never exceeds limits.instructions.
	 */
	uint64_t instructions;
	size_t peak_memory; /* highest number of bytes the lua_State held at once */
	uint32_t calls;     /* ctx.call() calls passed to the host */
};

/*
 * For `sandgate apply`: compiles src as text only and runs nothing.  Returns
 * 0, or -1 with "CHUNKNAME:LINE: explanation" in msg (always NUL-terminated
 * when msglen > 0) and the line in *line (0 when unknown).  chunkname is
 * the file name to show, e.g. "main.lua"; names over 48 bytes are cut.
 */
int sg_lua_compile_check(const char *chunkname, const char *src, size_t len, char *msg,
                         size_t msglen, int *line);

/*
 * Runs src (named chunkname in messages) in a fresh state: the chunk's top
 * level, then run(input, ctx).  input may be NULL (the script sees nil).
 * lim must not be NULL; host may be NULL.  Always fills *out; release it with
 * sg_lua_outcome_clear().  Never raises, never aborts on script behaviour.
 */
void sg_lua_run(const char *chunkname, const char *src, size_t len, const json_t *input,
                const struct sg_lua_limits *lim, const struct sg_lua_host *host,
                struct sg_lua_outcome *out);

/* Releases output and logs.  Safe on a zeroed outcome and safe twice. */
void sg_lua_outcome_clear(struct sg_lua_outcome *out);

/* Stable lower-case name of a stop, e.g. "instructions", for logs and problem codes. */
const char *sg_lua_stop_name(enum sg_lua_stop stop);

#endif
