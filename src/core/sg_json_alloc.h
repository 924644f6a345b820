/*
 * sg_json_alloc: jansson's allocations, watched.  Out of memory, jansson's
 * parser (2.14, and 2.15 still) fails with a syntax error or with no
 * message at all, and its lexer drops a byte it has no room for and goes
 * on: a value comes out changed, or, when the byte was a closing quote, the
 * lexer runs past the end of its buffer.  So a parse of untrusted input
 * runs inside a watch: the first failed allocation makes every later one in
 * the watch fail too, which stops the lexer before it uses a short buffer,
 * and the parse is then known to be void.
 */
#ifndef SG_JSON_ALLOC_H
#define SG_JSON_ALLOC_H

#include <stdbool.h>

/* Routes jansson's allocations through here; once, before other jansson calls. */
void sg_json_alloc_install(void);
/* Starts a watch of this thread's jansson allocations.  Watches do not nest. */
void sg_json_alloc_watch(void);
/* Ends the watch; true when an allocation failed during it (discard the result). */
bool sg_json_alloc_unwatch(void);

#endif
