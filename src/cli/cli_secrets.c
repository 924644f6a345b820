/*
 * sandgate secrets set | list | rotate | rotate-master
 *
 * A value never comes from the command line (any user sees argv in ps):
 * only from a file its owner alone may read, or from standard input.  It
 * is sealed by the vault before it reaches the store and is never printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "catalog/sg_catalog.h"
#include "catalog/sg_connector.h"
#include "catalog/sg_snapshot.h"
#include "cli/cli.h"
#include "core/sg_fmt.h"
#include "core/sg_vault.h"

#define VALUE_MAX (64 * 1024)

static const char secrets_help[] =
    "usage: sandgate secrets set CONNECTOR (--from-file F | --stdin) [--next]\n"
    "                            [--expires YYYY-MM-DD] [--data-dir DIR] [--json]\n"
    "       sandgate secrets list [--data-dir DIR] [--json]\n"
    "       sandgate secrets rotate CONNECTOR [--data-dir DIR] [--json]\n"
    "       sandgate secrets rotate-master [--data-dir DIR] [--json]\n"
    "\n"
    "Connector credentials, sealed with the master key (SANDGATE_MASTER_KEY,\n"
    "SANDGATE_MASTER_KEY_FILE, or DATA_DIR/master.key).  The value is never taken\n"
    "on the command line: give a file only its owner may read, or standard input.\n"
    "One trailing newline is stripped.  For a basic-auth connector the value is\n"
    "user:password.  --next stores the credential a rotation moves to; 'rotate'\n"
    "makes it the current one.  'rotate-master' re-seals every credential under a\n"
    "new master key while a gateway serves.  A running gateway picks changes up\n"
    "within a second.  See docs/secrets.md.\n";

struct secrets_opts {
	const char *data_dir;
	const char *from_file;
	const char *expires;
	bool use_stdin, next, json;
};

static int
parse_opts(int argc, char **argv, struct secrets_opts *o)
{
	static const struct option opts[] = {
	    {"from-file", required_argument, NULL, 'f'},
	    {"stdin", no_argument, NULL, 's'},
	    {"next", no_argument, NULL, 'n'},
	    {"expires", required_argument, NULL, 'e'},
	    {"data-dir", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			o->from_file = optarg;
			break;
		case 's':
			o->use_stdin = true;
			break;
		case 'n':
			o->next = true;
			break;
		case 'e':
			o->expires = optarg;
			break;
		case 'd':
			o->data_dir = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			fputs(secrets_help, stdout);
			exit(0);
		default:
			fputs(secrets_help, stderr);
			return -1;
		}
	}
	return 0;
}

/* The connector name rule of the catalog: [a-z][a-z0-9_-]{0,63}. */
static bool
valid_connector(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64 || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

static const char *
one_connector(int argc, char **argv, const char *cmd)
{
	if (optind != argc - 1) {
		sg_cli_fail("secrets %s needs exactly one CONNECTOR (the value itself is never an "
		            "argument: use --from-file F or --stdin)",
		            cmd);
		return NULL;
	}
	if (!valid_connector(argv[optind])) {
		sg_cli_fail("\"%.64s\" is not a connector name ([a-z][a-z0-9_-]{0,63})",
		            argv[optind]);
		return NULL;
	}
	return argv[optind];
}

/* Reads all of `fd` (at most VALUE_MAX bytes) into sodium_malloc'd memory. */
static char *
read_value(int fd, const char *what, size_t *len)
{
	char *buf = sodium_malloc(VALUE_MAX + 1);
	size_t n = 0;
	if (buf == NULL)
		return sg_cli_fail("out of memory"), NULL;
	for (;;) {
		ssize_t r = read(fd, buf + n, VALUE_MAX + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			sg_cli_fail("cannot read %s: %s", what, strerror(errno));
			break;
		}
		if (r == 0) {
			*len = n;
			return buf;
		}
		n += (size_t)r;
		if (n > VALUE_MAX) {
			sg_cli_fail("%s holds more than %d bytes; a credential is shorter", what,
			            VALUE_MAX);
			break;
		}
	}
	sodium_free(buf);
	return NULL;
}

static char *
read_file_value(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return sg_cli_fail("cannot open %s: %s", path, strerror(errno)), NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return sg_cli_fail("%s is not a regular file", path), NULL;
	}
	if ((st.st_mode & 077) != 0) {
		close(fd);
		sg_cli_fail(
		    "%s may be read by its group or other users (mode %04o); run 'chmod 600 "
		    "%s' (and think about whether the credential leaked), then try again",
		    path, (unsigned)(st.st_mode & 07777), path);
		return NULL;
	}
	char *v = read_value(fd, path, len);
	close(fd);
	return v;
}

/* Typed at a terminal: not echoed, so the value is left on no screen and in no scrollback. */
static char *
read_stdin_value(size_t *len)
{
	struct termios was, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &was) == 0;
	if (tty) {
		quiet = was;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		fputs("credential (not shown; Enter, then Ctrl-D to end): ", stderr);
	}
	char *v = read_value(STDIN_FILENO, "standard input", len);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &was);
		fputc('\n', stderr);
	}
	return v;
}

/* Strips one trailing newline; refuses an empty value and bytes no HTTP header may carry. */
static int
check_value(char *v, size_t *len)
{
	if (*len > 0 && v[*len - 1] == '\n')
		(*len)--;
	if (*len > 0 && v[*len - 1] == '\r')
		(*len)--;
	v[*len] = '\0';
	if (*len == 0)
		return sg_cli_fail("the credential is empty; nothing was stored"), -1;
	for (size_t i = 0; i < *len; i++)
		if (v[i] == '\0' || v[i] == '\r' || v[i] == '\n')
			return sg_cli_fail(
			           "the credential holds a NUL, CR or line break, which no HTTP "
			           "header may carry; nothing was stored"),
			       -1;
	return 0;
}

/* The end of an expiry date's day is not used: a credential "expires on" the day's start, UTC. */
static int
parse_date(const char *s, int64_t *out)
{
	struct tm tm = {0};
	int y, m, d, n = 0;
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 || s[n] != '\0')
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	time_t t = timegm(&tm);
	struct tm back;
	gmtime_r(&t, &back);
	if (back.tm_year != tm.tm_year || back.tm_mon != tm.tm_mon || back.tm_mday != d)
		return -1;
	*out = (int64_t)t;
	return 0;
}

/*
 * What the applied catalog says of the connector.  One missing is not an
 * error: credentials are often set before the connector is applied, so
 * the value is stored with a warning.
 */
static int
check_catalog(struct sg_store *s, const char *name, const char *value)
{
	struct sg_diags d = {0};
	sg_defs_set_dlp_compile(false); /* only the catalog and roles are read here */
	struct sg_snapshot *snap = sg_snapshot_build(s, NULL, 0, &d);
	sg_diags_free(&d);
	const struct sg_connector *c = snap ? sg_catalog_find(snap->defs->catalog, name) : NULL;
	int rc = 0;
	if (c == NULL)
		fprintf(stderr,
		        "sandgate: warning: connector \"%s\" is not in the applied catalog; the "
		        "credential is stored and used once a connector of that name is applied\n",
		        name);
	else if ((c->auth_def.scheme == SG_AUTH_BASIC ||
	          (c->auth != NULL && strcmp(c->auth, "basic") == 0)) &&
	         strchr(value, ':') == NULL)
		rc = sg_cli_fail("connector \"%s\" uses basic auth: the credential must be "
		                 "user:password; nothing was stored",
		                 name);
	else if (c->auth_def.scheme == SG_AUTH_NONE &&
	         (c->auth == NULL || strcmp(c->auth, "none") == 0))
		fprintf(stderr,
		        "sandgate: warning: connector \"%s\" sends no credential (auth: none); the "
		        "credential is stored but unused until its auth changes\n",
		        name);
	sg_snapshot_unref(snap);
	return rc;
}

static void
print_json(json_t *o)
{
	json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(o);
}

static int
store_value(const struct secrets_opts *o, const char *connector, char *value, size_t len)
{
	char err[512], key_id[SG_VAULT_KEY_ID_LEN + 1], day[SG_DAY_LEN];
	const char *dir = sg_cli_data_dir(o->data_dir);
	const char *slot = o->next ? "next" : "current";
	int64_t expires = 0;
	if (o->expires && parse_date(o->expires, &expires) != 0)
		return sg_cli_fail("--expires must be a date like 2027-03-31, not \"%.32s\"",
		                   o->expires);
	struct sg_store *s = sg_cli_open_store(dir);
	if (s == NULL)
		return 1;
	int rc = check_catalog(s, connector, value) == 0 ? 0 : 1;
	if (rc == 0 && sg_store_secret_set(s, dir, connector, slot, value, len, expires, key_id,
	                                   err, sizeof(err)) != 0)
		rc = sg_cli_fail("%s; nothing was stored", err);
	sg_store_close(s);
	if (rc != 0)
		return rc;
	if (o->json) {
		json_t *out = json_pack("{s:s, s:s, s:s}", "connector", connector, "slot", slot,
		                        "key_id", key_id);
		sg_fmt_day(expires, day);
		json_object_set_new(out, "expires", expires ? json_string(day) : json_null());
		print_json(out);
	} else
		printf(
		    "stored the %s credential of connector %s (master key %s); a running gateway "
		    "uses it within a second\n",
		    slot, connector, key_id);
	return 0;
}

static int
secrets_set(int argc, char **argv)
{
	struct secrets_opts o = {0};
	size_t len = 0;
	if (parse_opts(argc, argv, &o) != 0)
		return 2;
	const char *connector = one_connector(argc, argv, "set");
	if (connector == NULL)
		return 2;
	if ((o.from_file != NULL) == o.use_stdin)
		return sg_cli_fail(
		    "give the credential with --from-file F or --stdin (one of them); "
		    "it is never taken on the command line, where ps shows it");
	char *value = o.use_stdin ? read_stdin_value(&len) : read_file_value(o.from_file, &len);
	if (value == NULL)
		return 1;
	int rc = check_value(value, &len) == 0 ? store_value(&o, connector, value, len) : 1;
	sodium_memzero(value, VALUE_MAX + 1);
	sodium_free(value);
	return rc;
}

static void
print_list(const struct sg_secret_row *v, size_t n, bool json)
{
	char created[SG_DAY_LEN], expires[SG_DAY_LEN];
	json_t *arr = json ? json_array() : NULL;
	if (!json)
		printf("%-24s  %-7s  %-16s  %-10s  %s\n", "CONNECTOR", "SLOT", "KEY ID", "CREATED",
		       "EXPIRES");
	for (size_t i = 0; i < n; i++) {
		sg_fmt_day(v[i].created_at, created);
		sg_fmt_day(v[i].expires_at, expires);
		if (!json) {
			printf("%-24s  %-7s  %-16s  %-10s  %s\n", v[i].connector, v[i].slot,
			       v[i].key_id, created, v[i].expires_at ? expires : "-");
			continue;
		}
		json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "connector", v[i].connector, "slot",
		                      v[i].slot, "key_id", v[i].key_id, "created_at",
		                      (json_int_t)v[i].created_at);
		json_object_set_new(o, "expires_at",
		                    v[i].expires_at ? json_integer(v[i].expires_at) : json_null());
		json_array_append_new(arr, o);
	}
	if (json)
		print_json(arr);
}

static int
secrets_list(int argc, char **argv)
{
	struct secrets_opts o = {0};
	struct sg_secret_row *v = NULL;
	size_t n = 0;
	if (parse_opts(argc, argv, &o) != 0)
		return 2;
	if (optind != argc)
		return sg_cli_fail("secrets list takes no arguments (see --help)");
	struct sg_store *s = sg_cli_open_store(sg_cli_data_dir(o.data_dir));
	if (s == NULL)
		return 1;
	int rc = sg_store_secrets_list(s, &v, &n);
	if (rc == 0)
		print_list(v, n, o.json);
	else
		sg_cli_fail("cannot read the secrets: %s", sg_store_last_error(s));
	free(v);
	sg_store_close(s);
	return rc == 0 ? 0 : 1;
}

static int
secrets_rotate(int argc, char **argv)
{
	struct secrets_opts o = {0};
	char err[512];
	if (parse_opts(argc, argv, &o) != 0)
		return 2;
	const char *connector = one_connector(argc, argv, "rotate");
	if (connector == NULL)
		return 2;
	const char *dir = sg_cli_data_dir(o.data_dir);
	struct sg_store *s = sg_cli_open_store(dir);
	if (s == NULL)
		return 1;
	int rc = sg_store_secret_promote(s, dir, connector, err, sizeof(err));
	sg_store_close(s);
	if (rc == 1)
		return sg_cli_fail(
		    "connector \"%s\" has no next credential to rotate to; store one "
		    "with 'sandgate secrets set %s --next --stdin' first",
		    connector, connector);
	if (rc != 0)
		return sg_cli_fail("%s; nothing was changed", err);
	if (o.json)
		print_json(json_pack("{s:s, s:s}", "connector", connector, "slot", "current"));
	else
		printf(
		    "connector %s: the next credential is now the current one; a running gateway "
		    "uses it within a second\n",
		    connector);
	return 0;
}

struct master_swap {
	const char *path;
	const char *old_id;
};

/* Runs inside the re-seal's transaction: see sg_store_secrets_reseal. */
static int
swap_key_file(void *arg, char *err, size_t errlen)
{
	struct master_swap *m = arg;
	return sg_vault_key_commit_new(m->path, m->old_id, err, errlen);
}

static int
rotate_master(struct sg_store *s, const char *dir, const char *path, bool json)
{
	char err[512];
	struct sg_vault_key old, next;
	size_t n = 0;
	if (sg_vault_key_load(&old, dir, err, sizeof(err)) != 0)
		return sg_cli_fail("%s", err);
	if (sg_vault_key_prepare_new(&next, path, err, sizeof(err)) != 0) {
		sg_vault_key_wipe(&old);
		return sg_cli_fail("%s; nothing was changed", err);
	}
	struct master_swap m = {path, old.id};
	int rc = sg_store_secrets_reseal(s, dir, &next, swap_key_file, &m, &n, err, sizeof(err));
	if (rc != 0)
		sg_cli_fail("%s; the secrets stay sealed as they were (run it again once fixed)",
		            err);
	else if (sg_vault_key_drop_old(path, old.id, err, sizeof(err)) != 0)
		fprintf(stderr, "sandgate: warning: %s; remove it by hand\n", err);
	if (rc == 0 && json)
		print_json(json_pack("{s:s, s:s, s:I}", "key_id", next.id, "previous_key_id",
		                     old.id, "resealed", (json_int_t)n));
	else if (rc == 0)
		printf("re-sealed %zu credentials under master key %s (was %s); %s holds the new "
		       "key: back it up now\n",
		       n, next.id, old.id, path);
	sg_vault_key_wipe(&old);
	sg_vault_key_wipe(&next);
	return rc == 0 ? 0 : 1;
}

static int
secrets_rotate_master(int argc, char **argv)
{
	struct secrets_opts o = {0};
	char path[4096], err[512];
	if (parse_opts(argc, argv, &o) != 0)
		return 2;
	if (optind != argc)
		return sg_cli_fail("secrets rotate-master takes no arguments (see --help)");
	const char *dir = sg_cli_data_dir(o.data_dir);
	if (sg_vault_key_path(dir, path, sizeof(path), err, sizeof(err)) != 0)
		return sg_cli_fail(
		    "%s, which sandgate cannot change; to rotate it, write the key to "
		    "a file only you may read, start everything with "
		    "SANDGATE_MASTER_KEY_FILE naming it instead, then run rotate-master",
		    err);
	struct sg_store *s = sg_cli_open_store(dir);
	if (s == NULL)
		return 1;
	int rc = rotate_master(s, dir, path, o.json);
	sg_store_close(s);
	return rc;
}

int
sg_cli_secrets(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int, char **);
	} cmds[] = {
	    {"set", secrets_set},
	    {"list", secrets_list},
	    {"rotate", secrets_rotate},
	    {"rotate-master", secrets_rotate_master},
	};
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(secrets_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (sodium_init() < 0)
		return sg_cli_fail("cannot initialise libsodium");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].run(argc - 1, argv + 1);
	sg_cli_fail("unknown secrets command \"%s\"", argv[1]);
	fputs(secrets_help, stderr);
	return 2;
}
