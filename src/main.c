/* sandgate: command dispatch only; each subcommand lives in src/cli/. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/sg_json_alloc.h"

static const struct {
	const char *name;
	int (*run)(int, char **);
	const char *help;
} commands[] = {
	{"serve", sg_cli_serve, "run the gateway"},
	{"apply", sg_cli_apply, "validate and store connector and policy definitions"},
	{"keys", sg_cli_keys, "create, list and revoke API keys"},
	{"secrets", sg_cli_secrets, "store, list and rotate connector credentials"},
	{"dlp", sg_cli_dlp, "reverse a DLP token (audited)"},
	{"run", sg_cli_run, "run a template on a running gateway and show its trace"},
	{"sandbox", sg_cli_sandbox, "show what a running gateway's template sandbox enforces"},
	{"version", sg_cli_version, "print the version"},
};

static int
usage(FILE *out)
{
	fprintf(out, "usage: sandgate COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].help);
	fprintf(out, "\nRun 'sandgate COMMAND --help' for a command's options.\n");
	return out == stdout ? 0 : 2;
}

int
main(int argc, char **argv)
{
	sg_json_alloc_install();
	if (argc < 2)
		return usage(stderr);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0)
		return usage(stdout);
	if (strcmp(argv[1], "--version") == 0)
		return sg_cli_version(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "sandgate: unknown command \"%s\"\n", argv[1]);
	return usage(stderr);
}
