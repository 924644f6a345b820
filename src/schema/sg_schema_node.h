/*
 * sg_schema_node: what sg_schema.c (compile), sg_schema_validate.c and
 * sg_schema_format.c share.  Private to src/schema/.
 */
#ifndef SG_SCHEMA_NODE_H
#define SG_SCHEMA_NODE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "schema/sg_schema.h"

#define SG_SCHEMA_PTR_MAX sizeof(((struct sg_schema_error *)0)->pointer)
#define SG_SCHEMA_MSG_MAX sizeof(((struct sg_schema_error *)0)->message)
#define SG_SCHEMA_PRINTF(f, a) __attribute__((format(printf, f, a)))

enum {
	T_STRING = 1,
	T_NUMBER = 2,
	T_INTEGER = 4,
	T_BOOLEAN = 8,
	T_OBJECT = 16,
	T_ARRAY = 32,
	T_NULL = 64
};

struct sg_schema_type_name {
	const char *name;
	const char *phrase;
	unsigned bit;
};
extern const struct sg_schema_type_name sg_schema_type_names[];
extern const size_t sg_schema_n_types;

/* Slots in node.bound and node.count; keyword table entries name them. */
enum { B_MIN, B_MAX, B_XMIN, B_XMAX, N_BOUNDS };
enum { C_MIN_LEN, C_MAX_LEN, C_MIN_ITEMS, C_MAX_ITEMS, N_COUNTS };

/* The formats that are checked; any other name is an annotation. */
enum sg_schema_format {
	SG_FORMAT_NONE,
	SG_FORMAT_DATE_TIME,
	SG_FORMAT_DATE,
	SG_FORMAT_EMAIL,
	SG_FORMAT_URI,
	SG_FORMAT_UUID,
};

struct prop {
	const char *name; /* owned by the schema document, like every borrowed json_t here */
	size_t len;
	struct node *schema;
};

/* Written only while compiling; read-only from then on. */
struct node {
	const json_t *src;   /* the schema document's node this was compiled from */
	bool never;          /* the schema `false`: nothing is allowed here */
	unsigned types;      /* T_* bits; 0 accepts every type */
	const json_t *enums; /* array, or NULL */
	const json_t *konst; /* NULL when absent (a JSON null is not NULL) */
	char enum_msg[SG_SCHEMA_MSG_MAX];
	char const_msg[SG_SCHEMA_MSG_MAX];
	unsigned has_bound; /* bit i set when bound[i] applies */
	double bound[N_BOUNDS];
	size_t count[N_COUNTS];
	struct sg_pattern *re; /* NULL: no pattern */
	const char *pattern;
	enum sg_schema_format format; /* SG_FORMAT_NONE also for unchecked names */
	struct prop *props;           /* sorted by sg_schema_prop_cmp, for bsearch */
	size_t n_props;
	const json_t *required;  /* array of strings, or NULL */
	struct node *additional; /* NULL: extra properties are allowed */
	struct node *items;
	const char *data_class; /* x-data-class ("pii.email"), or NULL */
};

/* One x-data-class of the schema, where an instance holds it. */
struct sg_schema_hint {
	char *pointer;          /* RFC 6901, "*" for any item or extra member */
	const char *data_class; /* owned by the schema document */
};

struct sg_schema {
	json_t *doc;
	struct node *root;
	struct sg_schema_hint *hints;
	size_t n_hints;
};

int sg_schema_prop_cmp(const void *a, const void *b);
/* The compiled node made from `src`, or NULL. */
const struct node *sg_schema_find_node(const struct node *n, const json_t *src);
bool sg_schema_is_integral(double d);

/* The format named `name`; SG_FORMAT_NONE for one that is not checked. */
enum sg_schema_format sg_schema_format_lookup(const char *name);
/*
 * Whether `s` (`len` bytes of UTF-8) is a valid `f`.  When it is not, `msg`
 * says what is wrong and what a valid one looks like.
 */
bool sg_schema_format_check(enum sg_schema_format f, const char *s, size_t len, char *msg,
                            size_t msg_len);

/*
 * A JSON pointer under construction.  A segment that does not fit leaves the
 * pointer at its parent, so a long pointer is clipped but never names the
 * wrong place.
 */
struct sg_schema_ptr {
	char buf[SG_SCHEMA_PTR_MAX];
	size_t len;
	int clipped; /* segments pushed but not written */
	bool off;    /* nobody will read the pointer: skip the bookkeeping */
};

static inline size_t
sg_schema_ptr_push(struct sg_schema_ptr *p, const char *seg, size_t n)
{
	size_t saved = p->len, need = 1 + n;

	if (p->off)
		return saved;
	for (size_t i = 0; i < n; i++)
		need += seg[i] == '~' || seg[i] == '/';
	/* A NUL byte cannot be carried in a C string. */
	if (p->clipped || memchr(seg, '\0', n) || p->len + need >= SG_SCHEMA_PTR_MAX) {
		p->clipped++;
		return saved;
	}
	p->buf[p->len++] = '/';
	for (size_t i = 0; i < n; i++) {
		bool esc = seg[i] == '~' || seg[i] == '/';
		if (esc)
			p->buf[p->len++] = '~';
		p->buf[p->len++] = !esc ? seg[i] : seg[i] == '~' ? '0' : '1';
	}
	p->buf[p->len] = '\0';
	return saved;
}

static inline size_t
sg_schema_ptr_push_index(struct sg_schema_ptr *p, size_t i)
{
	char tmp[24];
	if (p->off)
		return p->len;
	int n = snprintf(tmp, sizeof(tmp), "%zu", i);
	return sg_schema_ptr_push(p, tmp, (size_t)n);
}

static inline void
sg_schema_ptr_pop(struct sg_schema_ptr *p, size_t saved)
{
	if (p->off)
		return;
	if (p->clipped > 0) {
		p->clipped--;
		return;
	}
	p->len = saved;
	p->buf[saved] = '\0';
}

static inline void
sg_schema_fill(struct sg_schema_error *e, const struct sg_schema_ptr *at, const char *fmt,
               va_list ap)
{
	memcpy(e->pointer, at->buf, at->len + 1);
	vsnprintf(e->message, SG_SCHEMA_MSG_MAX, fmt, ap);
}

#endif
