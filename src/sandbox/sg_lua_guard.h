/*
 * sg_lua_guard: the run's budgets and the guarded library functions.
 *
 * Instruction budget.  A count hook is armed before any script code runs.
 * Every thread runs in windows of at most SG_LUA_HOOK_INTERVAL instructions
 * that are paid from the one budget *before* they run (a new coroutine pays
 * its first window when it is created), so threads share the budget and no
 * thread can run unpaid instructions.  For plain Lua in one thread the limit
 * is exact: the budget-th instruction runs, the next one does not.  Charged C
 * work and coroutines' unused windows can make a run stop up to one window
 * early.
 *
 * Sticky stops.  When the instruction budget, the memory cap or the ctx.call
 * budget stops a run, the stop is recorded here and the hooks of the current
 * and main threads are set to fire on every instruction.  Every later hook,
 * pcall, xpcall, coroutine.resume/close/wrap, ctx.call and ctx.log raises it
 * again, so no script can swallow it, and nothing leaves a stopped run.
 * Two Lua details make this harder than it looks: the hook raises with
 * hooks switched off until the error unwinds, so an xpcall message handler
 * (called before unwinding) and the __close handlers of a coroutine that
 * died of the stop would run unseen; the guarded xpcall skips the script's
 * handler once stopped, and the guarded coroutine.wrap never closes such a
 * coroutine (coroutine.close refuses once stopped).
 *
 * C work.  A count hook never fires inside a C function, so the guarded
 * functions charge their work to the same budget before doing it:
 *   - 1 instruction per SG_LUA_CHARGE_BYTES bytes built or scanned,
 *   - SG_LUA_CHARGE_ELEMENT per table element read or written (about 40 ns
 *     each through lua_geti/lua_seti, against about 4 ns per VM instruction),
 *   - 1 per piece string.rep copies and per string.format conversion,
 *   - SG_LUA_CHARGE_ELEMENT * n * log2(n) for table.sort of n elements,
 *   - 1 per byte parsed by load and ctx.json.decode,
 *   - 1 per SG_LUA_CHARGE_PATTERN units of a pattern's worst-case estimate.
 * Work that stays unseen: the VM's own long-string operations (.., ==) and
 * vararg copies cost time linear in data the memory cap bounds, per
 * instruction.  The worker's wall-clock kill is the backstop for those.
 *
 * Caps (chosen so one guarded call stays around 0.1 s or less on this machine):
 */
#ifndef SG_LUA_GUARD_H
#define SG_LUA_GUARD_H

#include <lua.h>
#include <stdint.h>

#include "sandbox/sg_lua_env.h"

/* Instructions per hook window.  Any count hook costs about 1.5x in tight loops; 100 vs 10000 made
 * no measurable difference, so the smaller window gives tighter accounting. */
#define SG_LUA_HOOK_INTERVAL 100
/* Largest string string.rep, string.format and table.concat may build, and ctx.json.encode. */
#define SG_LUA_STRING_MAX (16u << 20)
/* Longest text the pattern functions (find, match, gmatch, gsub) accept. */
#define SG_LUA_SUBJECT_MAX (4u << 20)
/* Longest pattern. */
#define SG_LUA_PATTERN_MAX 512
/* Most repetition items (x*, x+, x-, x?) in one pattern. */
#define SG_LUA_PATTERN_REPEATS 16
/*
 * Most matcher steps one pattern call may need in the worst case, as
 * estimated before it runs (see pattern_work in sg_lua_guard.c): matches
 * may begin at each byte the first item can take; only repetitions branch,
 * each over the longest run of subject bytes its class matches, unless the
 * item after it must consume a byte outside that class; %b and %1-%9 scan.
 * Plus 4 per subject byte.  Measured here at about 3.3 ns a unit at worst,
 * so the slowest call accepted takes about 0.1 s: ("a"):rep(5400):find("a*b").
 * ("a"):rep(800):find(".-.-.-b"), which stock Lua runs for minutes,
 * estimates at 4e11 and is refused; ISO-date or trim patterns on ordinary
 * text estimate at a few units per byte.
 */
#define SG_LUA_PATTERN_WORK_MAX 30000000u
#define SG_LUA_CHARGE_BYTES 64
#define SG_LUA_CHARGE_ELEMENT 4
#define SG_LUA_CHARGE_PATTERN 8

/*
 * Per-run state, reached from any thread through lua_getextraspace (Lua
 * copies the main thread's extra space into every new thread).
 */
struct sg_lua_guard {
	uint64_t budget;       /* limits.instructions */
	uint64_t paid;         /* instructions paid for: windows armed plus C work */
	enum sg_lua_stop stop; /* the sticky limit that stopped the run, or SG_LUA_OK */
	lua_State *main;
};

/* Installs g on the new state L and arms the hook.  Allocates nothing, raises nothing. */
void sg_lua_guard_start(lua_State *L, struct sg_lua_guard *g);
struct sg_lua_guard *sg_lua_guard_get(lua_State *L);
/* Instructions the run used: what was paid, at most the budget. */
uint64_t sg_lua_guard_used(const struct sg_lua_guard *g);

/* Charges n instructions of C work; raises the sticky budget stop when they do not fit. */
void sg_lua_guard_charge(lua_State *L, uint64_t n);
/* Records `why` unless a stop is already recorded, and raises it.  Never returns. */
int sg_lua_guard_stop(lua_State *L, enum sg_lua_stop why);
/* Raises if the run is already stopped (e.g. the allocator gave up). */
void sg_lua_guard_check(lua_State *L);
/*
 * Raises a refusal of work over a size or complexity cap: "where:
 * message".  The script may catch it; if it does not,
 * sg_lua_guard_is_refusal() recognises the error value at the top level
 * and the run ends with SG_LUA_GUARD.  A feature templates simply do not
 * have (__gc, collectgarbage("collect")) is an ordinary script error.
 */
int sg_lua_guard_refuse(lua_State *L, const char *fmt, ...);
int sg_lua_guard_is_refusal(lua_State *L, int idx);

/*
 * Library installers.  `real` is the stock library table (for base: the
 * stock globals), `box` the sandbox table being built.  Each puts guarded
 * versions of its functions into box, keeping the stock functions they wrap
 * only as upvalues.  Call sg_lua_guard_base first: it also creates the stop
 * error value.  env is the sandbox global table, load's default environment.
 */
void sg_lua_guard_base(lua_State *L, int real, int box, int env);
void sg_lua_guard_string(lua_State *L, int real, int box); /* sg_lua_guard_string.c */
void sg_lua_guard_table(lua_State *L, int real, int box);  /* sg_lua_guard_table.c */

/* ---- for the guard files only ---- */

/* A guarded function's tail: calls upvalue 1 (the stock function) with its arguments. */
int sg_lua_guard_call_stock(lua_State *L);
/* Puts fn into box[name], with real[name] as its upvalue when it wraps one. */
void sg_lua_guard_install(lua_State *L, int real, int box, const char *name, lua_CFunction fn,
                          int wraps);
/* Refuses (sg_lua_guard_refuse) a string of `size` bytes made by `fn`: over the cap. */
int sg_lua_guard_too_long(lua_State *L, const char *fn, uint64_t size);
/* Saturating arithmetic for prices: UINT64_MAX means "more than anything allowed". */
uint64_t sg_lua_sat_mul(uint64_t a, uint64_t b);
uint64_t sg_lua_sat_add(uint64_t a, uint64_t b);
void sg_lua_guard_coroutine(lua_State *L, int real, int box);

#endif
