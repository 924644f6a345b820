/*
 * sg_yaml: the thin layer over libfyaml that every file loader shares:
 * parse with positions, walk mappings, convert subtrees to jansson, and
 * report errors at a node's line and column.
 */
#ifndef SG_YAML_H
#define SG_YAML_H

#include <jansson.h>
#include <libfyaml.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/sg_diag.h"

/*
 * Parses one YAML document.  Syntax errors go to `d` with the file, line and
 * column; returns NULL then.  Free with fy_document_destroy().
 */
struct fy_document *sg_yaml_parse(const char *file, const char *text, size_t len,
    struct sg_diags *d);

/* 1-based position of a node's start. */
void sg_yaml_pos(struct fy_node *n, int *line, int *col);

/* Adds a diagnostic located at `n`. */
void sg_yaml_error(struct sg_diags *d, const char *file, struct fy_node *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Converts a subtree to JSON.  Plain scalars become numbers, booleans or
 * null when they look like one (YAML 1.2 core schema); quoted scalars stay
 * strings.  Returns NULL and reports to `d` on anchors/aliases or merge keys
 * that cannot be represented, or nesting past 64 levels.
 */
json_t *sg_yaml_to_json(const char *file, struct fy_node *n, struct sg_diags *d);

/*
 * Helpers for loaders that walk a document by hand.  Each reports its own
 * error at the node and returns -1 (or NULL); `what` names the setting in
 * messages, e.g. "limits.read_timeout".  Strings returned are owned by the
 * document.
 */
/* Value of `key` in a mapping; NULL when absent or `map` is not a mapping. */
struct fy_node *sg_yaml_get(struct fy_node *map, const char *key);
/*
 * Checks that `map` is a mapping ("WHAT: expected a mapping" otherwise) and
 * reports each key not in `known` with a "did you mean" hint; -1 when any.
 */
int sg_yaml_check_keys(struct sg_diags *d, const char *file, struct fy_node *map,
    const char *what, const char *const *known, size_t n_known);
/* Text of a non-null scalar without NUL bytes; NULL after "WHAT: expected a string". */
const char *sg_yaml_str(struct sg_diags *d, const char *file, struct fy_node *n, const char *what);
int sg_yaml_bool(struct sg_diags *d, const char *file, struct fy_node *n, const char *what,
    bool *out);
/* A plain integer scalar within [min, max]. */
int sg_yaml_int(struct sg_diags *d, const char *file, struct fy_node *n, const char *what,
    long long min, long long max, long long *out);
/* A plain finite number scalar. */
int sg_yaml_num(struct sg_diags *d, const char *file, struct fy_node *n, const char *what,
    double *out);
/* Orders the diagnostics added since index `from` by line and column (stable). */
void sg_yaml_sort_diags(struct sg_diags *d, size_t from);

#endif
