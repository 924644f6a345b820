/*
 * sg_json: the request path's JSON.  Parsing is simdjson's DOM, writing is
 * RapidJSON's Writer, both behind this C interface in one C++ file
 * (sg_json.cpp); the rest of the project stays C.
 *
 * Reading.  Each thread has one parser and one padded input buffer, reused
 * for every parse, so a parse allocates nothing once both have grown to the
 * largest body seen.  A parsed document lives until the same thread parses
 * again: sg_json_doc_live() says whether it still does, and a step that may
 * have been suspended in between parses again (0.3 µs per KiB) rather than
 * keep a document alive across requests.
 *
 * sg_json_parse is as strict as the gateway wants, stricter than simdjson:
 * besides invalid UTF-8, lone surrogates and trailing bytes (which simdjson
 * refuses itself) it refuses duplicate keys, "\u0000" in any string or key,
 * a raw NUL byte and nesting deeper than the caller's cap.
 *
 * Writing.  A writer appends one JSON value to an sg_jbuf, whose memory
 * comes from the thread's slab (sg_slab), so a reply allocates nothing once
 * the slab holds blocks.  Errors are sticky: after the first failure every
 * call does nothing and sg_jw_end reports it.
 */
#ifndef SG_JSON_H
#define SG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define SG_JSON_ALIGN(n) alignas(n)
extern "C" {
#else
#define SG_JSON_ALIGN(n) _Alignas(n)
#endif

enum sg_json_type {
	SG_JSON_NULL,
	SG_JSON_BOOL,
	SG_JSON_INT,    /* an integer that fits int64_t */
	SG_JSON_UINT,   /* an integer above INT64_MAX that fits uint64_t */
	SG_JSON_DOUBLE, /* a number written with a fraction or an exponent */
	SG_JSON_STRING,
	SG_JSON_ARRAY,
	SG_JSON_OBJECT,
};

/* A value inside a parsed document; copy it freely while the document lives. */
struct sg_json_val {
	const void *doc;
	size_t at;
};

struct sg_json_doc {
	struct sg_json_val root;
	const void *parser; /* the thread's parser that made it */
	uint64_t generation;
};

enum sg_json_rc {
	SG_JSON_OK,
	SG_JSON_MALFORMED, /* not JSON, or JSON the gateway refuses (duplicates, NUL) */
	SG_JSON_TOO_DEEP,  /* nested more deeply than the cap */
	SG_JSON_NO_MEMORY,
};

struct sg_json_error {
	/* For a person: where and what, e.g. "line 1, column 9: Missing a colon ...". */
	char message[256];
	/* RFC 6901 pointer to the value at fault when known ("" is the root). */
	char pointer[256];
};

/*
 * Parses `len` bytes of `text` with the calling thread's parser.  Objects
 * and arrays may nest `max_depth` levels ([[1]] is 2).  On failure `err`
 * (may be NULL) says why.  The text need not be NUL-terminated or padded.
 */
enum sg_json_rc sg_json_parse(const char *text, size_t len, int max_depth, struct sg_json_doc *doc,
                              struct sg_json_error *err);
/*
 * Frees what this thread's parser holds (its document included): the next
 * parse allocates again.  For tests that must see a cold parse.
 */
void sg_json_thread_release(void);

/* Whether `len` bytes at `s` are valid UTF-8 (what sg_jw_string accepts). */
bool sg_json_utf8_valid(const char *s, size_t len);
/* Whether `doc` is still readable: this thread made it and has not parsed since. */
bool sg_json_doc_live(const struct sg_json_doc *doc);

enum sg_json_type sg_json_type(struct sg_json_val v);
bool sg_json_is_number(struct sg_json_val v);
bool sg_json_bool(struct sg_json_val v);
int64_t sg_json_int(struct sg_json_val v);
uint64_t sg_json_uint(struct sg_json_val v);
/* Any number as a double (an integer may round). */
double sg_json_double(struct sg_json_val v);
/* The string's bytes (valid UTF-8, NUL-terminated, no NUL inside) and its length. */
const char *sg_json_string(struct sg_json_val v, size_t *len);
/* Members of an object or elements of an array; 0 for a scalar. */
size_t sg_json_size(struct sg_json_val v);
/* The member `key` of an object; false when absent or `v` is no object. */
bool sg_json_get(struct sg_json_val v, const char *key, size_t key_len, struct sg_json_val *out);

/* The value at RFC 6901 pointer `ptr` ("" is `v` itself); false when there is none. */
bool sg_json_pointer(struct sg_json_val v, const char *ptr, struct sg_json_val *out);

/* Walks an object's members or an array's elements in order. */
struct sg_json_iter {
	SG_JSON_ALIGN(8) unsigned char state[80];
};
void sg_json_iter_init(struct sg_json_iter *it, struct sg_json_val container);
/* The next element; for objects also its key (else *key is NULL).  False at the end. */
bool sg_json_iter_next(struct sg_json_iter *it, const char **key, size_t *key_len,
                       struct sg_json_val *v);

/*
 * A growable output buffer.  Memory comes from the thread's slab and goes
 * back with sg_jbuf_release; `data` is NUL-terminated after each value.
 */
struct sg_jbuf {
	char *data;
	size_t len;
	size_t cap;
};
void sg_jbuf_release(struct sg_jbuf *b);

/* Room for a RapidJSON Writer, its stream and its level stack. */
#define SG_JW_STATE 1536

struct sg_jw {
	SG_JSON_ALIGN(16) unsigned char state[SG_JW_STATE];
};

/* Starts writing one value at the end of `out`. */
void sg_jw_begin(struct sg_jw *w, struct sg_jbuf *out);
/* 0 when one complete value was written; -1 (out of memory, NaN, bad UTF-8, misuse). */
int sg_jw_end(struct sg_jw *w);

void sg_jw_object(struct sg_jw *w);
void sg_jw_object_end(struct sg_jw *w);
void sg_jw_array(struct sg_jw *w);
void sg_jw_array_end(struct sg_jw *w);
void sg_jw_key(struct sg_jw *w, const char *key, size_t len);
void sg_jw_keyz(struct sg_jw *w, const char *key);
/* A string, which must be valid UTF-8 (else the writer fails). */
void sg_jw_string(struct sg_jw *w, const char *s, size_t len);
void sg_jw_stringz(struct sg_jw *w, const char *s);
void sg_jw_int(struct sg_jw *w, int64_t v);
void sg_jw_uint(struct sg_jw *w, uint64_t v);
/* A finite double (NaN and infinities fail the writer). */
void sg_jw_double(struct sg_jw *w, double v);
void sg_jw_bool(struct sg_jw *w, bool v);
void sg_jw_null(struct sg_jw *w);
/* `json` is one complete JSON value, written as is (no check). */
void sg_jw_raw(struct sg_jw *w, const char *json, size_t len);
/* A copy of a parsed value (the document must be live). */
void sg_jw_value(struct sg_jw *w, struct sg_json_val v);

/*
 * Opens room for one value that another writer appends next: begin a
 * second writer on the same buffer and write the value with it.  So a part
 * that may turn out impossible is written where it belongs, and abandoned
 * by cutting the buffer's len back to what it was after this call.  `w`
 * takes nothing else until that value is complete.
 */
void sg_jw_slot(struct sg_jw *w);
/* Whether a write has failed (sg_jw_end will say -1 whatever comes next). */
bool sg_jw_failed(const struct sg_jw *w);

#ifdef __cplusplus
}
#endif

#endif
