#include "catalog/sg_apply.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalog/sg_snapshot.h"
#include "core/sg_yaml.h"

struct doc_list {
	struct sg_store_doc *v;
	size_t n, cap;
};

static int
push_doc(struct doc_list *l, const char *kind, const char *name, const char *file, char *text)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct sg_store_doc *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	struct sg_store_doc *d = &l->v[l->n++];
	memset(d, 0, sizeof(*d));
	d->kind = strdup(kind);
	d->name = strdup(name);
	d->file = strdup(file);
	d->text = text;
	return 0;
}

static char *
read_file(const char *path, struct sg_diags *d)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		sg_diags_add(d, path, 0, 0, "cannot read: %s", strerror(errno));
		return NULL;
	}
	char *buf = malloc(SG_APPLY_MAX_FILE + 1);
	size_t n = buf ? fread(buf, 1, SG_APPLY_MAX_FILE + 1, f) : 0;
	fclose(f);
	if (buf && n > SG_APPLY_MAX_FILE) {
		sg_diags_add(d, path, 0, 0, "file is larger than %d bytes; split it",
		             SG_APPLY_MAX_FILE);
		free(buf);
		return NULL;
	}
	if (buf)
		buf[n] = '\0';
	if (buf && strlen(buf) != n) {
		sg_diags_add(d, path, 0, 0, "file contains a NUL byte; is it really YAML?");
		free(buf);
		return NULL;
	}
	return buf;
}

static const char *
scalar_at(struct fy_document *doc, const char *key)
{
	struct fy_node *root = fy_document_root(doc);
	if (root == NULL || !fy_node_is_mapping(root))
		return NULL;
	struct fy_node *n = fy_node_mapping_lookup_by_string(root, key, FY_NT);
	return (n && fy_node_is_scalar(n)) ? fy_node_get_scalar0(n) : NULL;
}

/*
 * A template's script lives beside its manifest as main.lua and is stored
 * as its own document, so a changed script alone makes a new version.
 * A missing main.lua is reported when the template is checked.
 */
static void
load_template_source(struct doc_list *l, const char *manifest, const char *name, struct sg_diags *d)
{
	char path[4096];
	const char *slash = strrchr(manifest, '/');
	int dir = slash ? (int)(slash - manifest) : 1;
	snprintf(path, sizeof(path), "%.*s/main.lua", dir, slash ? manifest : ".");
	struct stat st;
	if (stat(path, &st) != 0)
		return;
	char *text = read_file(path, d);
	if (text != NULL && push_doc(l, "template_source", name, path, text) != 0) {
		sg_diags_add(d, path, 0, 0, "out of memory");
		free(text);
	}
}

/* Reads one file and works out its kind and name; the full check comes later. */
static void
load_file(struct doc_list *l, const char *path, struct sg_diags *d)
{
	char *text = read_file(path, d);
	if (text == NULL)
		return;
	struct fy_document *doc = sg_yaml_parse(path, text, strlen(text), d);
	if (doc == NULL) {
		free(text);
		return;
	}
	const char *kind = scalar_at(doc, "kind");
	const char *name = scalar_at(doc, "name");
	if (kind == NULL || (strcmp(kind, "connector") != 0 && strcmp(kind, "policy") != 0 &&
	                     strcmp(kind, "template") != 0)) {
		sg_yaml_error(d, path, fy_document_root(doc),
		              "a definition needs \"kind: connector\", \"kind: policy\" or \"kind: "
		              "template\" at the top");
		free(text);
	} else if (name == NULL || *name == '\0') {
		sg_yaml_error(d, path, fy_document_root(doc),
		              "a definition needs a \"name:\" at the top");
		free(text);
	} else if (push_doc(l, kind, name, path, text) != 0) {
		sg_diags_add(d, path, 0, 0, "out of memory");
		free(text);
	} else if (strcmp(kind, "template") == 0) {
		load_template_source(l, path, name, d);
	}
	fy_document_destroy(doc);
}

static bool
is_yaml_name(const char *name)
{
	size_t n = strlen(name);
	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
	       (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk(struct doc_list *l, const char *path, int depth, struct sg_diags *d);

/* Sorted, so that errors and versions come out in the same order every time. */
static void
walk_dir(struct doc_list *l, const char *path, int depth, struct sg_diags *d)
{
	DIR *dir = opendir(path);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	if (dir == NULL) {
		sg_diags_add(d, path, 0, 0, "cannot open directory: %s", strerror(errno));
		return;
	}
	while ((e = readdir(dir)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (depth == 0 && strcmp(e->d_name, "sandgate.yaml") == 0)
			continue; /* server config, not a definition */
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			char **v = realloc(names, cap * sizeof(*v));
			if (v == NULL)
				break;
			names = v;
		}
		names[n++] = strdup(e->d_name);
	}
	closedir(dir);
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		char child[4096];
		snprintf(child, sizeof(child), "%s/%s", path, names[i]);
		walk(l, child, depth + 1, d);
		free(names[i]);
	}
	free(names);
}

static void
walk(struct doc_list *l, const char *path, int depth, struct sg_diags *d)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		sg_diags_add(d, path, 0, 0, "cannot read: %s", strerror(errno));
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		if (depth > 8)
			sg_diags_add(d, path, 0, 0, "directories nest too deeply");
		else
			walk_dir(l, path, depth, d);
	} else if (depth == 0 || is_yaml_name(path)) {
		load_file(l, path, d);
	}
}

static void
free_docs(struct doc_list *l)
{
	sg_store_docs_free(l->v, l->n);
	l->v = NULL;
	l->n = l->cap = 0;
}

static struct sg_store_doc *
find_doc(struct sg_store_doc *v, size_t n, const char *kind, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].kind, kind) == 0 && strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

static void
check_duplicates(const struct doc_list *l, struct sg_diags *d)
{
	for (size_t i = 0; i < l->n; i++) {
		struct sg_store_doc *first = find_doc(l->v, i, l->v[i].kind, l->v[i].name);
		if (first)
			sg_diags_add(d, l->v[i].file, 0, 0, "%s \"%s\" is also defined in %s",
			             l->v[i].kind, l->v[i].name, first->file);
	}
}

/* What is live after this apply: the incoming documents plus untouched live ones. */
static struct sg_store_doc *
merge(const struct doc_list *in, struct sg_store_doc *live, size_t n_live, size_t *n_out)
{
	struct sg_store_doc *v = calloc(in->n + n_live + 1, sizeof(*v));
	size_t n = 0;
	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < in->n; i++)
		v[n++] = in->v[i];
	for (size_t i = 0; i < n_live; i++)
		if (!find_doc(in->v, in->n, live[i].kind, live[i].name))
			v[n++] = live[i];
	*n_out = n;
	return v; /* shallow: the strings stay owned by `in` and `live` */
}

static void
report_doc(json_t *report, const struct sg_store_doc *doc, const char *result, int64_t version)
{
	if (report)
		json_array_append_new(report,
		                      json_pack("{s:s, s:s, s:s, s:I, s:s}", "kind", doc->kind,
		                                "name", doc->name, "file", doc->file, "version",
		                                (json_int_t)version, "result", result));
}

static int
store_changes(struct sg_store *s, const struct doc_list *in, struct sg_store_doc *live,
              size_t n_live, int64_t rev, bool dry_run, struct sg_diags *d, json_t *report)
{
	struct sg_store_doc *changed = calloc(in->n + 1, sizeof(*changed));
	size_t n = 0;
	char err[256];
	if (changed == NULL)
		return -1;
	for (size_t i = 0; i < in->n; i++) {
		struct sg_store_doc *prev = find_doc(live, n_live, in->v[i].kind, in->v[i].name);
		if (prev && strcmp(prev->text, in->v[i].text) == 0)
			report_doc(report, prev, "unchanged", prev->version);
		else
			changed[n++] = in->v[i];
	}
	int rc = 0;
	if (n > 0 && !dry_run && sg_store_apply_if(s, changed, n, rev, err, sizeof(err)) != 0) {
		sg_diags_add(d, NULL, 0, 0, "%s", err);
		rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		bool existed = find_doc(live, n_live, changed[i].kind, changed[i].name) != NULL;
		report_doc(report, &changed[i],
		           dry_run ? "valid" : (existed ? "updated" : "created"),
		           changed[i].version);
	}
	free(changed);
	return rc;
}

int
sg_apply(struct sg_store *s, const char *const *paths, size_t n, uint64_t sim_seed, bool dry_run,
         struct sg_diags *d, json_t *report)
{
	struct doc_list in = {0};
	struct sg_store_doc *live = NULL, *merged = NULL;
	size_t n_live = 0, n_merged = 0, errs = d->n;
	int64_t rev = -1;
	int rc = -1;

	for (size_t i = 0; i < n; i++)
		walk(&in, paths[i], 0, d);
	if (d->n == errs)
		check_duplicates(&in, d);
	if (d->n == errs && in.n == 0)
		sg_diags_add(
		    d, NULL, 0, 0,
		    "no definitions found: expected *.yaml files with \"kind: connector\" or "
		    "\"kind: policy\"");
	if (d->n != errs)
		goto out;
	/*
	 * Read the revision before the documents: if anything lands between
	 * here and the write, the write sees a moved revision and refuses.
	 */
	if (sg_store_revision(s, &rev) != 0 || sg_store_live_docs(s, &live, &n_live) != 0) {
		sg_diags_add(d, NULL, 0, 0, "cannot read the stored definitions");
		goto out;
	}
	merged = merge(&in, live, n_live, &n_merged);
	struct sg_defs *defs = merged ? sg_defs_build(merged, n_merged, sim_seed, d) : NULL;
	if (defs == NULL)
		goto out;
	sg_defs_unref(defs);
	rc = store_changes(s, &in, live, n_live, rev, dry_run, d, report);
out:
	free(merged);
	sg_store_docs_free(live, n_live);
	free_docs(&in);
	return d->n == errs ? rc : -1;
}
