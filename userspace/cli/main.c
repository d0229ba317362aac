/* agtrace: zero-instrumentation tracer for AI-agent runtimes. A table of subcommands. */
#include "base/log.h"
#include "cli/cli.h"
#include "capture/preflight.h"
#include "capture/sampling.h"
#include "capture/spec.h"
#include "export/audit.h"
#include <stdio.h>
#include <string.h>


static const struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} cmds[] = {
    {"check", cmd_check, "preflight: can agtrace run on this kernel with these privileges?"},
    {"attach", cmd_attach, "trace running processes by PID and print their spans"},
    {"run", cmd_run, "the same, its settings (exporters, sampling, ...) from a JSON file"},
    {"probes", cmd_probes, "list the shipped probe specs, or check a spec file"},
    {"sample", cmd_sample, "show or change the kernel-side sampling of a running agtrace"},
    {"audit", cmd_audit, "verify a hash-chained audit trail"},
};

static void usage(FILE *f)
{
	fprintf(
	    f, "Usage: agtrace [-v] COMMAND [ARGS]\n\n"
	       "Trace AI agents and other running programs through eBPF, without touching them.\n\n"
	       "Commands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].help);
	fprintf(
	    f,
	    "\n`agtrace COMMAND --help` tells more. Start with `agtrace check`, then for example\n"
	    "  agtrace attach -p $(pidof myapp) --uprobe /usr/local/bin/myapp:handle_request\n");
}

int main(int argc, char **argv)
{
	int i = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
			agt_log_set_level(AGT_LOG_DEBUG);
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			agt_err("unknown option \"%s\"; see `agtrace --help`", argv[i]);
			return AGT_EXIT_USAGE;
		}
	}
	if (i == argc) {
		usage(stderr);
		return AGT_EXIT_USAGE;
	}
	for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++)
		if (!strcmp(argv[i], cmds[c].name))
			return cmds[c].fn(argc - i, argv + i);
	agt_err(
	    "unknown command \"%s\"; the commands are check, attach, run, probes, sample and audit",
	    argv[i]);
	return AGT_EXIT_USAGE;
}
