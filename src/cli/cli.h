/*
 * The sandgate command line.  One file per subcommand; this header holds
 * what they share.  Every subcommand has --help, exits non-zero on error,
 * and offers --json where its output is data.
 */
#ifndef SG_CLI_H
#define SG_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "core/sg_keys.h"
#include "store/sg_store.h"

#define SG_VERSION "0.1.0"

int sg_cli_serve(int argc, char **argv);
int sg_cli_apply(int argc, char **argv);
int sg_cli_keys(int argc, char **argv);
int sg_cli_secrets(int argc, char **argv);
int sg_cli_dlp(int argc, char **argv);
int sg_cli_run(int argc, char **argv);
int sg_cli_sandbox(int argc, char **argv);
int sg_cli_version(int argc, char **argv);

/* --data-dir, else $SANDGATE_DATA_DIR, else ./data. */
const char *sg_cli_data_dir(const char *flag);
/* Opens the store or prints why not (to stderr) and returns NULL. */
struct sg_store *sg_cli_open_store(const char *data_dir);
/* Loads DATA_DIR/server.key, creating it on first use; prints on failure. */
int sg_cli_server_secret(const char *data_dir, uint8_t out[SG_SERVER_SECRET_LEN]);
/* Prints "sandgate: <msg>" to stderr; returns 1 for `return sg_cli_fail(...)`. */
int sg_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct sg_new_key {
	const char *tenant;
	const char *user;
	const char *role;
	const char *mode;
	int64_t ttl_s; /* 0 = never expires */
};

/*
 * Creates and stores a key.  Writes the key text (shown once) to `key_out`
 * and the stored record to `rec`.  Prints the reason and returns -1 when a
 * field is invalid.
 */
int sg_cli_create_key(struct sg_store *s, const uint8_t secret[SG_SERVER_SECRET_LEN],
    const struct sg_new_key *nk, char key_out[SG_KEY_MAX_LEN + 1], struct sg_key_record *rec);

/* First-start demo: apply examples, create one key per role, print a quick start. */
int sg_cli_demo_bootstrap(struct sg_store *s, const uint8_t secret[SG_SERVER_SECRET_LEN],
    const char *listen_host, unsigned listen_port, uint64_t sim_seed);

#endif
