/*
 * sandgate dlp detokenize TOKEN --reason TEXT
 *
 * Turns a tokenize action's token back into its value, for an admin with
 * the installation's master key.  Reversing a token reveals what the screen
 * hid, so it is never silent: the audit gets a row naming who did it and
 * why (never the value) before anything is printed, and a refused token is
 * recorded too.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/sg_vault.h"
#include "dlp/sg_dlp_action.h"

#define TOKEN_MAX (64 * 1024)

static const char dlp_help[] =
    "usage: sandgate dlp detokenize TOKEN --reason TEXT [--user NAME] [--data-dir DIR] [--json]\n"
    "\n"
    "Prints the data class and the value behind a token that the DLP screen's\n"
    "tokenize action made.  It needs the master key of the gateway that made the\n"
    "token (SANDGATE_MASTER_KEY, SANDGATE_MASTER_KEY_FILE, or DATA_DIR/master.key).\n"
    "Every use is recorded in the audit with the reason and the user (--user, else\n"
    "$USER) before the value is shown: --reason is required.  See\n"
    "docs/data-protection.md.\n";

struct dlp_opts {
	const char *data_dir, *reason, *user;
	bool json;
};

static int
parse_opts(int argc, char **argv, struct dlp_opts *o)
{
	static const struct option opts[] = {
	    {"reason", required_argument, NULL, 'r'},   {"user", required_argument, NULL, 'u'},
	    {"data-dir", required_argument, NULL, 'd'}, {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
	};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			o->reason = optarg;
			break;
		case 'u':
			o->user = optarg;
			break;
		case 'd':
			o->data_dir = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			fputs(dlp_help, stdout);
			exit(0);
		default:
			fputs(dlp_help, stderr);
			return -1;
		}
	}
	return 0;
}

/* A reason is one line of text someone can read back in the audit. */
static int
check_reason(const char *r)
{
	size_t n = r != NULL ? strlen(r) : 0;
	if (n == 0 || strspn(r, " \t") == n)
		return sg_cli_fail(
		    "dlp detokenize needs --reason \"...\": say why the value must be "
		    "seen (a ticket, a request); it is recorded in the audit, and "
		    "nothing was revealed");
	if (n >= sizeof(((struct sg_decision *)0)->reason))
		return sg_cli_fail("--reason is longer than %zu bytes; shorten it (nothing was "
		                   "revealed)",
		                   sizeof(((struct sg_decision *)0)->reason) - 1);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)r[i] < 0x20 || r[i] == 0x7f)
			return sg_cli_fail(
			    "--reason holds a control character or a line break; give "
			    "one line (nothing was revealed)");
	return 0;
}

static const char *
who(const char *flag)
{
	const char *u = flag != NULL && *flag ? flag : getenv("USER");
	if (u != NULL && *u)
		return u;
	struct passwd *pw = getpwuid(getuid());
	return pw != NULL ? pw->pw_name : "unknown";
}

/*
 * Loads the master key without making one: a key made now could not have
 * made the token, and would leave a stray key file behind.
 */
static int
load_key(const char *dir, struct sg_dlp_token_key *tk)
{
	char path[4096], err[512];
	struct sg_vault_key k;
	if (sg_vault_key_path(dir, path, sizeof(path), err, sizeof(err)) == 0 &&
	    access(path, F_OK) != 0)
		return sg_cli_fail("no master key at %s (%s): run this with the data directory of "
		                   "the gateway that made the token (--data-dir), or point "
		                   "SANDGATE_MASTER_KEY_FILE at its key",
		                   path, strerror(errno));
	if (sg_vault_key_load(&k, dir, err, sizeof(err)) != 0)
		return sg_cli_fail("%s", err);
	sg_dlp_token_key_derive(tk, &k);
	sg_vault_key_wipe(&k);
	return 0;
}

static void
copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src);
}

/*
 * The audit row: who, why, the class, and which token (by its hash: equal
 * tokens name equal values, so the row can be matched to where the token
 * was seen, and it holds nothing a key could reverse), never the value.
 */
static int
record(struct sg_store *s, const struct dlp_opts *o, const char *token, const char *cls, bool ok,
       char trace[33])
{
	struct sg_decision d = {0};
	struct timeval tv;
	unsigned char id[16], th[16];
	char th_hex[33];
	gettimeofday(&tv, NULL);
	randombytes_buf(id, sizeof(id));
	sodium_bin2hex(trace, 33, id, sizeof(id));
	crypto_generichash(th, sizeof(th), (const unsigned char *)token, strlen(token), NULL, 0);
	sodium_bin2hex(th_hex, sizeof(th_hex), th, sizeof(th));
	d.ts_us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
	copy(d.trace_id, sizeof(d.trace_id), trace);
	copy(d.user, sizeof(d.user), who(o->user));
	copy(d.role, sizeof(d.role), "admin");
	copy(d.operation, sizeof(d.operation), "dlp.detokenize");
	copy(d.decision, sizeof(d.decision), "admin");
	copy(d.code, sizeof(d.code), ok ? "detokenize" : "detokenize_refused");
	copy(d.reason, sizeof(d.reason), o->reason);
	d.status = ok ? 200 : 403;
	json_t *ev = json_pack("[{s:s, s:s, s:s, s:s}]", "dir", "admin", "class", ok ? cls : "",
	                       "action", "detokenize", "token", th_hex);
	char *text = ev != NULL ? json_dumps(ev, JSON_COMPACT) : NULL;
	json_decref(ev);
	if (text == NULL || strlen(text) >= sizeof(d.dlp)) {
		free(text);
		return sg_cli_fail("cannot describe the detokenize for the audit; nothing was "
		                   "revealed");
	}
	copy(d.dlp, sizeof(d.dlp), text);
	free(text);
	if (sg_store_record(s, &d, 1) != 0)
		return sg_cli_fail("cannot record the detokenize in the audit (%s); nothing was "
		                   "revealed",
		                   sg_store_last_error(s));
	return 0;
}

static int
print_value(const char *cls, const char *value, size_t len, const char *trace, bool json)
{
	if (!json) {
		printf("class: %s\nvalue: %.*s\n", cls, (int)len, value);
		return 0;
	}
	json_t *o =
	    json_pack("{s:s, s:s%, s:s}", "class", cls, "value", value, len, "trace_id", trace);
	if (o == NULL)
		return sg_cli_fail("out of memory");
	json_dumpf(o, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(o);
	return 0;
}

static int
detokenize(struct sg_store *s, const struct dlp_opts *o, const struct sg_dlp_token_key *tk,
           const char *token)
{
	char cls[128], trace[33];
	size_t cap = strlen(token), len = 0;
	char *value = sodium_malloc(cap + 1);
	if (value == NULL)
		return sg_cli_fail("out of memory");
	bool ok = sg_dlp_detokenize(tk, token, cls, sizeof(cls), value, cap + 1, &len) == 0;
	int rc = record(s, o, token, cls, ok, trace);
	if (rc == 0 && !ok)
		rc = sg_cli_fail("not a token this gateway made: it is damaged, forged, or made "
		                 "under another master key (a token from before a master key "
		                 "rotation can no longer be reversed); the attempt was recorded");
	if (rc == 0)
		rc = print_value(cls, value, len, trace, o->json);
	sodium_free(value);
	return rc;
}

static int
dlp_detokenize(int argc, char **argv)
{
	struct dlp_opts o = {0};
	struct sg_dlp_token_key tk;
	if (parse_opts(argc, argv, &o) != 0)
		return 2;
	if (optind != argc - 1)
		return sg_cli_fail("dlp detokenize needs exactly one TOKEN (see --help)");
	const char *token = argv[optind];
	if (strncmp(token, "tok_", 4) != 0 || strlen(token) > TOKEN_MAX)
		return sg_cli_fail("\"%.40s\" is not a token: a DLP token starts with \"tok_\"",
		                   token);
	if (check_reason(o.reason) != 0)
		return 1;
	const char *dir = sg_cli_data_dir(o.data_dir);
	if (load_key(dir, &tk) != 0)
		return 1;
	struct sg_store *s = sg_cli_open_store(dir);
	int rc = s != NULL ? detokenize(s, &o, &tk, token) : 1;
	sodium_memzero(&tk, sizeof(tk));
	sg_store_close(s);
	return rc;
}

int
sg_cli_dlp(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(dlp_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (sodium_init() < 0)
		return sg_cli_fail("cannot initialise libsodium");
	if (strcmp(argv[1], "detokenize") == 0)
		return dlp_detokenize(argc - 1, argv + 1);
	sg_cli_fail("unknown dlp command \"%s\"", argv[1]);
	fputs(dlp_help, stderr);
	return 2;
}
