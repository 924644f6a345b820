/* sandgate keys create | list | revoke */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog/sg_snapshot.h"
#include "cli/cli.h"
#include "core/sg_config.h"
#include "core/sg_fmt.h"
#include "core/sg_name.h"

static const char keys_help[] =
    "usage: sandgate keys create --tenant T --user U --role R [--mode sandbox|live]\n"
    "                            [--ttl DURATION] [--data-dir DIR] [--json]\n"
    "       sandgate keys list [--data-dir DIR] [--json]\n"
    "       sandgate keys revoke ID [--data-dir DIR] [--json]\n"
    "       sandgate keys rotate ID [--overlap DURATION] [--data-dir DIR] [--json]\n"
    "\n"
    "A key is printed once, at creation; only its hash is stored.\n"
    "DURATION is like 30m, 12h or 90d.  Keys without --ttl never expire.\n"
    "rotate prints a successor for the same tenant, user, role and mode; the old\n"
    "key keeps working until the overlap ends (default 24h; 0 revokes it now),\n"
    "and every reply to it carries a Sandgate-Key-Expires header meanwhile.\n";

static bool
valid_label(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			strchr("._@-", ch)))
			return false;
	}
	return true;
}

static int
check_fields(const struct sg_new_key *nk)
{
	enum sg_mode m;
	char why[200];
	/* The tenant names a cgroup and the user a worker pool: one rule (sg_name.h) for both. */
	if (!sg_name_valid(nk->tenant))
		return sg_cli_fail("--tenant \"%.64s\": %s", nk->tenant,
		    sg_name_why(nk->tenant, why, sizeof(why))), -1;
	if (!sg_name_valid(nk->user))
		return sg_cli_fail("--user \"%.64s\": %s", nk->user,
		    sg_name_why(nk->user, why, sizeof(why))), -1;
	if (!valid_label(nk->role))
		return sg_cli_fail("--role must name a role from the policy, e.g. explorer"), -1;
	if (sg_mode_parse(nk->mode, &m) != 0)
		return sg_cli_fail("--mode must be sandbox or live, not \"%s\"", nk->mode), -1;
	return 0;
}

/* A new key and its record, not stored yet. */
static int
make_key(const uint8_t secret[SG_SERVER_SECRET_LEN], const struct sg_new_key *nk,
    char key_out[SG_KEY_MAX_LEN + 1], struct sg_key_record *rec)
{
	if (check_fields(nk) != 0)
		return -1;
	memset(rec, 0, sizeof(*rec));
	if (sg_key_generate(key_out, SG_KEY_MAX_LEN + 1, rec->id) != 0)
		return sg_cli_fail("cannot generate a key"), -1;
	sg_key_hash(secret, key_out, strlen(key_out), rec->hash);
	snprintf(rec->tenant, sizeof(rec->tenant), "%s", nk->tenant);
	snprintf(rec->user, sizeof(rec->user), "%s", nk->user);
	snprintf(rec->role, sizeof(rec->role), "%s", nk->role);
	snprintf(rec->mode, sizeof(rec->mode), "%s", nk->mode);
	rec->created_at = (int64_t)time(NULL);
	rec->expires_at = nk->ttl_s ? rec->created_at + nk->ttl_s : 0;
	return 0;
}

int
sg_cli_create_key(struct sg_store *s, const uint8_t secret[SG_SERVER_SECRET_LEN],
    const struct sg_new_key *nk, char key_out[SG_KEY_MAX_LEN + 1], struct sg_key_record *rec)
{
	if (make_key(secret, nk, key_out, rec) != 0)
		return -1;
	if (sg_store_key_insert(s, rec) != 0)
		return sg_cli_fail("cannot store the key"), -1;
	return 0;
}

static int
rotate_key(struct sg_store *s, const uint8_t secret[SG_SERVER_SECRET_LEN],
    const char *old_id, const struct sg_new_key *nk, int64_t overlap_s,
    char key_out[SG_KEY_MAX_LEN + 1], struct sg_key_record *rec)
{
	if (make_key(secret, nk, key_out, rec) != 0)
		return -1;
	int64_t end = overlap_s ? rec->created_at + overlap_s : 0;
	int rc = sg_store_key_rotate(s, old_id, rec, end, rec->created_at);
	if (rc == 1)
		return sg_cli_fail("key %s is no longer active (revoked, expired or already "
		    "rotated); see 'sandgate keys list'", old_id), -1;
	if (rc != 0)
		return sg_cli_fail("cannot store the rotation"), -1;
	return 0;
}

/* A key for a role the policy lacks would only ever get 403s; say so now. */
static int
check_role_exists(struct sg_store *s, const char *role)
{
	struct sg_diags d = {0};
	sg_defs_set_dlp_compile(false); /* only the catalog and roles are read here */
	struct sg_snapshot *snap = sg_snapshot_build(s, NULL, 0, &d);
	sg_diags_free(&d);
	if (snap == NULL)
		return 0; /* nothing applied yet: the role cannot be checked */
	const struct sg_policy *p = snap->defs->policy;
	int rc = 0;
	if (p->n_roles > 0 && sg_policy_role(p, role) == NULL) {
		const char **names = calloc(p->n_roles, sizeof(*names));
		for (size_t i = 0; names && i < p->n_roles; i++)
			names[i] = p->roles[i].name;
		const char *hint = names ? sg_did_you_mean(role, names, p->n_roles) : NULL;
		sg_cli_fail("role \"%s\" is not in the current policy%s%s%s (use --force to create "
			    "the key anyway)",
		    role, hint ? " (did you mean \"" : "", hint ? hint : "", hint ? "\"?)" : "");
		free(names);
		rc = -1;
	}
	sg_snapshot_unref(snap);
	return rc;
}

static void
print_created(const char *key, const struct sg_key_record *rec, bool json)
{
	if (json) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "key", key, "id",
		    rec->id, "tenant", rec->tenant, "user", rec->user, "role", rec->role, "mode",
		    rec->mode, "created_at", (json_int_t)rec->created_at);
		json_object_set_new(o, "expires_at",
		    rec->expires_at ? json_integer(rec->expires_at) : json_null());
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(o);
		return;
	}
	printf("%s\n", key);
	fprintf(stderr,
	    "Created key %s for %s/%s (role %s, %s mode). Store it now: it is not shown again.\n",
	    rec->id, rec->tenant, rec->user, rec->role, rec->mode);
}

struct keys_opts {
	struct sg_new_key nk;
	const char *data_dir;
	bool json;
	bool force;
	int64_t overlap_s; /* rotate: how long the old key keeps working */
};

static int
parse_keys_opts(int argc, char **argv, struct keys_opts *o)
{
	static const struct option opts[] = {
		{"tenant", required_argument, NULL, 't'},
		{"user", required_argument, NULL, 'u'},
		{"role", required_argument, NULL, 'r'},
		{"mode", required_argument, NULL, 'm'},
		{"ttl", required_argument, NULL, 'T'},
		{"data-dir", required_argument, NULL, 'd'},
		{"json", no_argument, NULL, 'j'},
		{"force", no_argument, NULL, 'f'},
		{"overlap", required_argument, NULL, 'O'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t ms;
	int ch;
	o->nk.mode = "sandbox";
	o->overlap_s = 24 * 3600;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 't': o->nk.tenant = optarg; break;
		case 'u': o->nk.user = optarg; break;
		case 'r': o->nk.role = optarg; break;
		case 'm': o->nk.mode = optarg; break;
		case 'd': o->data_dir = optarg; break;
		case 'j': o->json = true; break;
		case 'f': o->force = true; break;
		case 'T':
			if (sg_duration_parse_ms(optarg, &ms) != 0 || ms < 1000)
				return sg_cli_fail("--ttl must be a duration of at least 1s, like 30m, "
						   "12h or 90d"), -1;
			o->nk.ttl_s = (int64_t)(ms / 1000);
			break;
		case 'O':
			/* A bare 0 is unambiguous, unlike other bare numbers. */
			if (strcmp(optarg, "0") == 0)
				ms = 0;
			else if (sg_duration_parse_ms(optarg, &ms) != 0 || (ms != 0 && ms < 1000) ||
				 ms > 366ULL * 86400000)
				return sg_cli_fail("--overlap must be 0 (revoke the old key now) or a "
						   "duration from 1s to 366d, like 30m, 24h or 7d"), -1;
			o->overlap_s = (int64_t)(ms / 1000);
			break;
		case 'h': fputs(keys_help, stdout); exit(0);
		default: fputs(keys_help, stderr); return -1;
		}
	}
	return 0;
}

static int
keys_create(int argc, char **argv)
{
	struct keys_opts o = {0};
	uint8_t secret[SG_SERVER_SECRET_LEN];
	char key[SG_KEY_MAX_LEN + 1];
	struct sg_key_record rec;

	if (parse_keys_opts(argc, argv, &o) != 0)
		return 2;
	if (!o.nk.tenant || !o.nk.user || !o.nk.role)
		return sg_cli_fail("keys create needs --tenant, --user and --role (see --help)");
	const char *dir = sg_cli_data_dir(o.data_dir);
	struct sg_store *s = sg_cli_open_store(dir);
	if (s == NULL)
		return 1;
	int rc = 1;
	if (sg_cli_server_secret(dir, secret) == 0 && (o.force || check_role_exists(s, o.nk.role) == 0) &&
	    sg_cli_create_key(s, secret, &o.nk, key, &rec) == 0) {
		print_created(key, &rec, o.json);
		rc = 0;
	}
	explicit_bzero(key, sizeof(key));
	explicit_bzero(secret, sizeof(secret));
	sg_store_close(s);
	return rc;
}

static const char *
key_state(const struct sg_key_record *k, int64_t now)
{
	if (k->revoked_at)
		return "revoked";
	if (k->expires_at && now >= k->expires_at)
		return "expired";
	/* Still working, until its overlap ends. */
	if (k->replaced_by[0] != '\0')
		return "rotated";
	return "active";
}

static void
print_list(const struct sg_key_record *v, size_t n, bool json)
{
	int64_t now = (int64_t)time(NULL);
	json_t *arr = json ? json_array() : NULL;
	if (!json)
		printf("%-16s  %-12s  %-16s  %-10s  %-7s  %s\n", "ID", "TENANT", "USER", "ROLE", "MODE",
		    "STATE");
	for (size_t i = 0; i < n; i++) {
		const struct sg_key_record *k = &v[i];
		if (!json) {
			printf("%-16s  %-12s  %-16s  %-10s  %-7s  %s\n", k->id, k->tenant, k->user,
			    k->role, k->mode, key_state(k, now));
			continue;
		}
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}",
		    "id", k->id, "tenant", k->tenant, "user", k->user, "role", k->role, "mode",
		    k->mode, "state", key_state(k, now), "created_at", (json_int_t)k->created_at,
		    "expires_at", (json_int_t)k->expires_at, "revoked_at", (json_int_t)k->revoked_at));
		if (k->replaced_by[0] != '\0')
			json_object_set_new(json_array_get(arr, json_array_size(arr) - 1),
			    "replaced_by", json_string(k->replaced_by));
	}
	if (json) {
		json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(arr);
	}
}

static int
keys_list(int argc, char **argv)
{
	struct keys_opts o = {0};
	struct sg_key_record *v = NULL;
	size_t n = 0;
	if (parse_keys_opts(argc, argv, &o) != 0)
		return 2;
	struct sg_store *s = sg_cli_open_store(sg_cli_data_dir(o.data_dir));
	if (s == NULL)
		return 1;
	int rc = sg_store_keys_list(s, &v, &n);
	if (rc == 0)
		print_list(v, n, o.json);
	else
		sg_cli_fail("cannot read the key table");
	free(v);
	sg_store_close(s);
	return rc == 0 ? 0 : 1;
}

static int
keys_revoke(int argc, char **argv)
{
	struct keys_opts o = {0};
	if (parse_keys_opts(argc, argv, &o) != 0)
		return 2;
	if (optind != argc - 1)
		return sg_cli_fail("keys revoke needs exactly one key ID (see 'sandgate keys list')");
	const char *id = argv[optind];
	struct sg_store *s = sg_cli_open_store(sg_cli_data_dir(o.data_dir));
	if (s == NULL)
		return 1;
	int rc = sg_store_key_revoke(s, id, (int64_t)time(NULL));
	sg_store_close(s);
	if (rc < 0)
		return sg_cli_fail("cannot revoke key %s", id);
	if (rc == 1)
		return sg_cli_fail("no active key with ID \"%s\" (see 'sandgate keys list')", id);
	if (o.json) {
		json_t *out = json_pack("{s:s, s:s}", "id", id, "state", "revoked");
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(out);
	} else
		printf("revoked %s; a running gateway stops accepting it within a second\n", id);
	return 0;
}

/* The active key `id` into *out; 1 when there is none (unknown, revoked, expired). */
static int
find_active(struct sg_store *s, const char *id, struct sg_key_record *out)
{
	struct sg_key_record *v = NULL;
	size_t n = 0;
	int64_t now = (int64_t)time(NULL);
	if (sg_store_keys_list(s, &v, &n) != 0)
		return -1;
	int rc = 1;
	for (size_t i = 0; i < n && rc == 1; i++)
		if (strcmp(v[i].id, id) == 0 && strcmp(key_state(&v[i], now), "active") == 0) {
			*out = v[i];
			rc = 0;
		}
	explicit_bzero(v, n * sizeof(*v));
	free(v);
	return rc;
}

static void
print_rotated(const char *key, const struct sg_key_record *old, const struct sg_key_record *next,
    int64_t overlap_end, bool json)
{
	char until[SG_UTC_LEN];
	if (json) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "key", key, "id",
		    next->id, "replaces", old->id, "tenant", next->tenant, "user", next->user,
		    "role", next->role, "mode", next->mode, "created_at",
		    (json_int_t)next->created_at);
		json_object_set_new(o, "expires_at",
		    next->expires_at ? json_integer(next->expires_at) : json_null());
		json_object_set_new(o, "old_key_until", json_integer(overlap_end ? overlap_end
		                                                                 : next->created_at));
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(o);
		return;
	}
	printf("%s\n", key);
	if (overlap_end == 0) {
		fprintf(stderr, "Created key %s to replace %s, which is revoked. Store it now: it is "
		    "not shown again.\n", next->id, old->id);
		return;
	}
	sg_fmt_utc(overlap_end, until);
	fprintf(stderr, "Created key %s to replace %s, which keeps working until %s. Store it "
	    "now: it is not shown again.\n", next->id, old->id, until);
}

/*
 * The successor's own lifetime: as long as the old key was given, counted
 * from now, so a rotation neither shortens nor lifts a TTL.
 */
static int64_t
successor_ttl(const struct sg_key_record *old)
{
	return old->expires_at ? old->expires_at - old->created_at : 0;
}

static int
keys_rotate(int argc, char **argv)
{
	struct keys_opts o = {0};
	uint8_t secret[SG_SERVER_SECRET_LEN];
	char key[SG_KEY_MAX_LEN + 1];
	struct sg_key_record old, next;
	if (parse_keys_opts(argc, argv, &o) != 0)
		return 2;
	if (optind != argc - 1)
		return sg_cli_fail("keys rotate needs exactly one key ID (see 'sandgate keys list')");
	const char *id = argv[optind], *dir = sg_cli_data_dir(o.data_dir);
	struct sg_store *s = sg_cli_open_store(dir);
	if (s == NULL)
		return 1;
	int rc = find_active(s, id, &old);
	if (rc != 0) {
		sg_store_close(s);
		return rc < 0 ? sg_cli_fail("cannot read the key table")
			      : sg_cli_fail("no active key with ID \"%s\" (see 'sandgate keys list')",
				    id);
	}
	struct sg_new_key nk = {.tenant = old.tenant, .user = old.user, .role = old.role,
	    .mode = old.mode, .ttl_s = successor_ttl(&old)};
	rc = 1;
	if (sg_cli_server_secret(dir, secret) == 0 && (o.force || check_role_exists(s, nk.role) == 0) &&
	    rotate_key(s, secret, id, &nk, o.overlap_s, key, &next) == 0) {
		int64_t end = o.overlap_s ? next.created_at + o.overlap_s : 0;
		if (end && old.expires_at && old.expires_at < end)
			end = old.expires_at;
		print_rotated(key, &old, &next, end, o.json);
		rc = 0;
	}
	explicit_bzero(key, sizeof(key));
	explicit_bzero(secret, sizeof(secret));
	sg_store_close(s);
	return rc;
}

int
sg_cli_keys(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(keys_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "create") == 0)
		return keys_create(argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return keys_list(argc - 1, argv + 1);
	if (strcmp(argv[1], "revoke") == 0)
		return keys_revoke(argc - 1, argv + 1);
	if (strcmp(argv[1], "rotate") == 0)
		return keys_rotate(argc - 1, argv + 1);
	sg_cli_fail("unknown keys command \"%s\"", argv[1]);
	fputs(keys_help, stderr);
	return 2;
}
