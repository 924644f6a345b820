/*
 * cgroup detection: where each controller lives, seen from this process.
 *
 * It reads the mount table and /proc/self/cgroup, never a fixed path:
 * distributions, containers and systemd put hierarchies in different
 * places, and a group made outside the process's own cgroup would escape
 * whatever was delegated to the gateway.  Each controller is judged on its
 * own, since hybrid systems split them between v1 and v2.
 */
#include "sandbox/sg_cgroup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* v1 spells io "blkio"; cpuacct is v1's CPU usage, a hierarchy of its own. */
static const char *const v1_names[] = {"cpu", "memory", "pids", "blkio", "cpuacct"};
enum { V1_CPUACCT = SG_CGROUP_NCTRL, N_V1 };

/* This process's cgroup in each hierarchy, from /proc/self/cgroup. */
struct self_cgroup {
	const char *v2;       /* NULL when absent */
	const char *v1[N_V1]; /* NULL when absent */
	char *text;
};

/* True when comma-separated `list` holds `name`. */
static bool
has_option(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; p != NULL; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

static char *
slurp(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *text = NULL;
	size_t cap = 0;
	if (f == NULL || getdelim(&text, &cap, '\0', f) < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, f ? "empty" : strerror(errno));
		free(text);
		text = NULL;
	}
	if (f != NULL)
		fclose(f);
	return text;
}

/* Lines "ID:controllers:path"; "0::path" is the v2 one. */
static int
read_self(const char *file, struct self_cgroup *s, char *err, size_t errlen)
{
	char *save = NULL;
	memset(s, 0, sizeof(*s));
	if ((s->text = slurp(file, err, errlen)) == NULL)
		return -1;
	for (char *line = strtok_r(s->text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *ctrls = strchr(line, ':');
		char *path = ctrls ? strchr(ctrls + 1, ':') : NULL;
		if (path == NULL)
			continue;
		*ctrls++ = *path++ = '\0';
		if (strcmp(line, "0") == 0 && *ctrls == '\0')
			s->v2 = path;
		for (int i = 0; i < N_V1; i++)
			if (*ctrls && has_option(ctrls, v1_names[i]))
				s->v1[i] = path;
	}
	return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void
unescape(char *s)
{
	char *out = s;
	for (; *s; s++)
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	*out = '\0';
}

struct mount {
	char *root, *point, *fstype, *super;
};

/* "ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS" */
static bool
parse_mount(char *line, struct mount *m)
{
	char *save = NULL, *f[6], *t;
	for (int i = 0; i < 6; i++)
		if ((f[i] = strtok_r(i ? NULL : line, " ", &save)) == NULL)
			return false;
	while ((t = strtok_r(NULL, " ", &save)) != NULL && strcmp(t, "-") != 0)
		;
	m->fstype = strtok_r(NULL, " ", &save);
	if (t == NULL || m->fstype == NULL || strtok_r(NULL, " ", &save) == NULL)
		return false;
	m->super = strtok_r(NULL, " ", &save);
	m->root = f[3];
	m->point = f[4];
	unescape(m->root);
	unescape(m->point);
	return m->super != NULL;
}

/*
 * <root prefix><mount point><own path below the mount's root>.  False when
 * the process's cgroup is not below the mount's root (a bind of another
 * part of the tree), or when the result is too long.
 */
static bool
base_path(char *out, const char *prefix, const struct mount *m, const char *own)
{
	size_t n = strcmp(m->root, "/") == 0 ? 0 : strlen(m->root);
	if (strncmp(own, m->root, n) != 0 || (own[n] != '\0' && own[n] != '/'))
		return false;
	const char *rel = strcmp(own + n, "/") == 0 ? "" : own + n;
	const char *point = strcmp(m->point, "/") == 0 ? "" : m->point;
	return (size_t)snprintf(out, SG_CGROUP_PATH_MAX, "%s%s%s", prefix, point, rel) <
	       SG_CGROUP_PATH_MAX;
}

/* Every v1 hierarchy we look for and the v2 one, in this process's view. */
struct found {
	char v2[SG_CGROUP_PATH_MAX];
	char v1[N_V1][SG_CGROUP_PATH_MAX];
};

static void
scan_mounts(char *text, const char *prefix, const struct self_cgroup *self, struct found *fd)
{
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct mount m;
		if (!parse_mount(line, &m))
			continue;
		if (strcmp(m.fstype, "cgroup2") == 0 && !fd->v2[0] && self->v2)
			if (!base_path(fd->v2, prefix, &m, self->v2))
				fd->v2[0] = '\0';
		for (int i = 0; i < N_V1 && strcmp(m.fstype, "cgroup") == 0; i++)
			if (!fd->v1[i][0] && self->v1[i] && has_option(m.super, v1_names[i]) &&
			    !base_path(fd->v1[i], prefix, &m, self->v1[i]))
				fd->v1[i][0] = '\0';
	}
}

/* v2 serves a controller when our own group offers it and we may make groups there. */
static bool
v2_serves(const char *base, enum sg_cgroup_ctrl c, struct sg_cgroup_hierarchy *h)
{
	char offered[256];
	if (sg_cgroup_read(base, "cgroup.controllers", offered, sizeof(offered)) == -1)
		offered[0] = '\0';
	offered[strcspn(offered, "\n")] = '\0';
	if (!sg_cgroup_listed(offered, sg_cgroup_ctrl_name(c))) {
		snprintf(h->why, sizeof(h->why),
		         "no cgroup %s controller is available: cgroup v2 offers this process's "
		         "group only \"%s\" and no cgroup v1 %s hierarchy is mounted; enable %s in "
		         "the parent's cgroup.subtree_control",
		         sg_cgroup_ctrl_name(c), offered, v1_names[c], sg_cgroup_ctrl_name(c));
		return false;
	}
	if (access(base, W_OK) == -1) {
		snprintf(h->why, sizeof(h->why),
		         "cgroup v2 offers %s, but this process may not make groups under %s: %s; "
		         "delegate that cgroup to the gateway's user",
		         sg_cgroup_ctrl_name(c), base, strerror(errno));
		return false;
	}
	return true;
}

static void
choose(struct sg_cgroup_system *sys, const struct found *fd)
{
	for (enum sg_cgroup_ctrl c = 0; c < SG_CGROUP_NCTRL; c++) {
		struct sg_cgroup_hierarchy *h = &sys->ctrl[c];
		snprintf(h->why, sizeof(h->why), "no cgroup %s controller is mounted; mount it",
		         sg_cgroup_ctrl_name(c));
		if (fd->v2[0] && v2_serves(fd->v2, c, h)) {
			h->version = SG_CGROUP_V2;
			memcpy(h->base, fd->v2, sizeof(h->base));
		} else if (fd->v1[c][0]) {
			h->version = SG_CGROUP_V1;
			memcpy(h->base, fd->v1[c], sizeof(h->base));
		}
		if (h->version != SG_CGROUP_NONE)
			h->why[0] = '\0';
	}
	memcpy(sys->cpuacct_base, fd->v1[V1_CPUACCT], sizeof(sys->cpuacct_base));
}

int
sg_cgroup_detect(const struct sg_cgroup_where *w, struct sg_cgroup_system *sys, char *err,
                 size_t errlen)
{
	struct self_cgroup self;
	const char *prefix = w && w->root ? w->root : "";
	const char *mountinfo = w && w->mountinfo ? w->mountinfo : "/proc/self/mountinfo";
	memset(sys, 0, sizeof(*sys));
	snprintf(sys->group, sizeof(sys->group), "sandgate");
	if (read_self(w && w->self_cgroup ? w->self_cgroup : "/proc/self/cgroup", &self, err,
	              errlen) == -1)
		return -1;
	char *mounts = slurp(mountinfo, err, errlen);
	struct found *fd = calloc(1, sizeof(*fd));
	if (mounts != NULL && fd == NULL)
		snprintf(err, errlen, "out of memory");
	if (mounts != NULL && fd != NULL) {
		scan_mounts(mounts, prefix, &self, fd);
		choose(sys, fd);
	}
	int rc = mounts != NULL && fd != NULL ? 0 : -1;
	free(fd);
	free(mounts);
	free(self.text);
	return rc;
}

json_t *
sg_cgroup_system_json(const struct sg_cgroup_system *sys)
{
	json_t *o = json_object();
	for (enum sg_cgroup_ctrl c = 0; o != NULL && c < SG_CGROUP_NCTRL; c++) {
		const struct sg_cgroup_hierarchy *h = &sys->ctrl[c];
		json_t *e = h->version == SG_CGROUP_NONE
		                ? json_pack("{s:s, s:s}", "version", "none", "reason", h->why)
		                : json_pack("{s:s, s:s}", "version",
		                            sg_cgroup_version_name(h->version), "base", h->base);
		if (json_object_set_new(o, sg_cgroup_ctrl_name(c), e) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}
