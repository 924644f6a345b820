/*
 * For the Lua layer's own files (sg_lua_env.c runs a template,
 * sg_lua_ctx.c is the ctx object it hands the script): the run's state.
 */
#ifndef SG_LUA_ENV_INT_H
#define SG_LUA_ENV_INT_H

#include <jansson.h>
#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "sandbox/sg_lua_env.h"
#include "sandbox/sg_lua_guard.h"

#define NAME_MAX_LEN 48            /* shorter than LUA_IDSIZE, so Lua never cuts it */
#define COMPILE_MEMORY (64u << 20) /* compile checks run no code; this only bounds the parser */
#define CAPABILITY_MAX 128
#define ENCODE_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)

/* Bytes the state holds; an allocation that would pass the cap fails. */
struct mem {
	size_t cap, cur, peak;
	struct sg_lua_guard *guard; /* NULL for compile checks */
	/* The last refusal: Lua retries a failed allocation once, after a full collection. */
	const void *refused_ptr;
	size_t refused_osize, refused_nsize;
	int refusing;
};

struct run {
	struct sg_lua_guard guard; /* first: the guard pointer in extra space is also the run's */
	struct mem mem;
	const struct sg_lua_limits *lim;
	const struct sg_lua_host *host;
	const char *src;
	size_t len;
	const json_t *input;
	char name[NAME_MAX_LEN + 1];
	char chunkid[NAME_MAX_LEN + 2]; /* "=name": Lua shows it as is */
	char call_name[CAPABILITY_MAX + 1];
	json_t *output, *logs;
	json_t *held; /* the JSON value in flight across raising calls */
	size_t log_used;
	uint64_t log_dropped;
	uint32_t calls;
	enum sg_lua_stop stop; /* how the run ended unless guard.stop says otherwise */
	int line;
	char message[sizeof(((struct sg_lua_outcome *)0)->message)];
};

static inline struct run *
run_of(lua_State *L)
{
	return (struct run *)sg_lua_guard_get(L);
}

static inline void
hold(struct run *r, json_t *j)
{
	json_decref(r->held);
	r->held = j;
}

/* Registry key: the last error table ctx.call raised (its address is the key). */
extern const char sg_lua_call_error_key;

/* Pushes the ctx table for a run whose input is at stack index `input`. */
void sg_lua_push_ctx(lua_State *L, int input);
/* ctx.log, also the script's print. */
int sg_lua_ctx_log(lua_State *L);

#endif
