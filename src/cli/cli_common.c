#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

const char *
sg_cli_data_dir(const char *flag)
{
	if (flag && *flag)
		return flag;
	const char *env = getenv("SANDGATE_DATA_DIR");
	return (env && *env) ? env : "./data";
}

int
sg_cli_fail(const char *fmt, ...)
{
	va_list ap;
	fputs("sandgate: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

struct sg_store *
sg_cli_open_store(const char *data_dir)
{
	char err[512];
	struct sg_store *s = sg_store_open(data_dir, err, sizeof(err));
	if (s == NULL)
		sg_cli_fail("%s", err);
	return s;
}

int
sg_cli_server_secret(const char *data_dir, uint8_t out[SG_SERVER_SECRET_LEN])
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/server.key", data_dir);
	if (sg_server_secret_load(path, out) != 0) {
		sg_cli_fail("cannot use the server secret %s: it must be 32 bytes and readable only "
			    "by its owner (chmod 600)",
		    path);
		return -1;
	}
	return 0;
}

int
sg_cli_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("sandgate %s\n", SG_VERSION);
	return 0;
}
