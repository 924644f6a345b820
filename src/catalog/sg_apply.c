#include "catalog/sg_apply.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
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
 * What one walk over a path given to apply knows.  Apply follows no
 * symbolic link to a directory: four links to "." beside one connector made
 * 4^8 copies of it (27 s, 262,144 errors), and a link can lead anywhere.
 * A link to a file is followed only when it stays inside `root`, so a
 * checkout cannot make apply read (and quote in its errors) a file from
 * elsewhere on the machine.  `dirs` holds the directories being walked, so
 * a loop that needs no link (a bind mount) is refused, not walked.
 */
#define WALK_MAX_DEPTH 8

struct walk {
	struct doc_list *l;
	struct sg_diags *d;
	char root[PATH_MAX]; /* the real path of the directory given (or of a file's) */
	struct stat dirs[WALK_MAX_DEPTH + 2];
	int n_dirs;
	size_t skipped_links;
	char first_skipped[PATH_MAX];
};

/* `real` is `root` itself or under it. */
static bool
inside(const char *root, const char *real)
{
	size_t n = strlen(root);
	if (n == 0)
		return false;
	if (n == 1 && root[0] == '/')
		return true;
	return strncmp(root, real, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

/*
 * A symbolic link found below a path given: 0 to read what it names, -1
 * to leave it (skipped, or refused with an error).
 */
static int
check_link(struct walk *w, const char *path, bool wanted)
{
	struct stat st;
	char real[PATH_MAX];
	if (stat(path, &st) != 0) {
		if (wanted)
			sg_diags_add(w->d, path, 0, 0, "a symbolic link to nothing (%s)",
			             strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		if (w->skipped_links++ == 0)
			snprintf(w->first_skipped, sizeof(w->first_skipped), "%s", path);
		return -1;
	}
	if (!wanted)
		return -1;
	if (realpath(path, real) == NULL) {
		sg_diags_add(w->d, path, 0, 0, "cannot resolve the symbolic link: %s",
		             strerror(errno));
		return -1;
	}
	if (!inside(w->root, real)) {
		sg_diags_add(w->d, path, 0, 0,
		             "a symbolic link to %s, outside %s: apply reads only files inside the "
		             "paths it is given; copy the file in, or name it with -f",
		             real, w->root);
		return -1;
	}
	return 0;
}

/*
 * A template's script lives beside its manifest as main.lua and is stored
 * as its own document, so a changed script alone makes a new version.
 * A missing main.lua is reported when the template is checked.
 */
static void
load_template_source(struct walk *w, const char *manifest, const char *name)
{
	char path[4096];
	const char *slash = strrchr(manifest, '/');
	int dir = slash ? (int)(slash - manifest) : 1;
	snprintf(path, sizeof(path), "%.*s/main.lua", dir, slash ? manifest : ".");
	struct stat st;
	if (lstat(path, &st) != 0 || (S_ISLNK(st.st_mode) && check_link(w, path, true) != 0))
		return;
	char *text = read_file(path, w->d);
	if (text != NULL && push_doc(w->l, "template_source", name, path, text) != 0) {
		sg_diags_add(w->d, path, 0, 0, "out of memory");
		free(text);
	}
}

/* Reads one file and works out its kind and name; the full check comes later. */
static void
load_file(struct walk *w, const char *path)
{
	struct sg_diags *d = w->d;
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
	} else if (push_doc(w->l, kind, name, path, text) != 0) {
		sg_diags_add(d, path, 0, 0, "out of memory");
		free(text);
	} else if (strcmp(kind, "template") == 0) {
		load_template_source(w, path, name);
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

static void walk(struct walk *w, const char *path, int depth);

/* Sorted, so that errors and versions come out in the same order every time. */
static void
walk_dir(struct walk *w, const char *path, int depth)
{
	DIR *dir = opendir(path);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	if (dir == NULL) {
		sg_diags_add(w->d, path, 0, 0, "cannot open directory: %s", strerror(errno));
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
		walk(w, child, depth + 1);
		free(names[i]);
	}
	free(names);
}

/* -1 when the directory `st` is already being walked: a loop. */
static int
enter_dir(struct walk *w, const char *path, const struct stat *st)
{
	for (int i = 0; i < w->n_dirs; i++)
		if (w->dirs[i].st_dev == st->st_dev && w->dirs[i].st_ino == st->st_ino) {
			sg_diags_add(w->d, path, 0, 0,
			             "this directory is one of its own parents again (a bind "
			             "mount?); apply refuses the loop: give it the inner "
			             "directory instead");
			return -1;
		}
	w->dirs[w->n_dirs++] = *st;
	return 0;
}

static void
walk(struct walk *w, const char *path, int depth)
{
	struct stat st;
	/* Paths given are followed as given; links found below them are not. */
	if (depth > 0 && lstat(path, &st) == 0 && S_ISLNK(st.st_mode) &&
	    check_link(w, path, is_yaml_name(path)) != 0)
		return;
	if (stat(path, &st) != 0) {
		sg_diags_add(w->d, path, 0, 0, "cannot read: %s", strerror(errno));
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		if (depth > WALK_MAX_DEPTH) {
			sg_diags_add(w->d, path, 0, 0, "directories nest too deeply");
		} else if (enter_dir(w, path, &st) == 0) {
			walk_dir(w, path, depth);
			w->n_dirs--;
		}
	} else if (depth == 0 || is_yaml_name(path)) {
		load_file(w, path);
	}
}

/* Walks one path given to apply; links to directories are noted once, on stderr. */
static void
walk_path(struct doc_list *l, const char *path, struct sg_diags *d)
{
	struct walk *w = calloc(1, sizeof(*w));
	struct stat st;
	char dir[PATH_MAX];
	if (w == NULL) {
		sg_diags_add(d, path, 0, 0, "out of memory");
		return;
	}
	w->l = l;
	w->d = d;
	/* A file given alone: its directory bounds where its main.lua may point. */
	snprintf(dir, sizeof(dir), "%s", path);
	if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
		char *slash = strrchr(dir, '/');
		if (slash == NULL)
			snprintf(dir, sizeof(dir), ".");
		else
			slash[slash == dir] = '\0';
	}
	if (realpath(dir, w->root) == NULL)
		w->root[0] = '\0'; /* walk reports the path it cannot read */
	walk(w, path, 0);
	if (w->skipped_links > 0)
		fprintf(stderr,
		        "%s: note: skipped %zu symbolic link%s to %s; apply follows no links to "
		        "directories (give the directory itself with -f)\n",
		        w->first_skipped, w->skipped_links, w->skipped_links == 1 ? "" : "s",
		        w->skipped_links == 1 ? "a directory" : "directories");
	free(w);
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
		walk_path(&in, paths[i], d);
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
