/* `agtrace version` and `agtrace --version`: what build this is. */
#include "base/log.h"
#include "base/version.h"
#include "cli/cli.h"
#include <bpf/libbpf.h>
#include <stdio.h>
#include <string.h>

void agt_print_version(FILE *f)
{
	fprintf(f, "agtrace %s\n", agt_version);
	fprintf(f, "revision %s\n", agt_revision[0] ? agt_revision : "unknown");
	fprintf(f, "libbpf %s\n", libbpf_version_string());
}

int cmd_version(int argc, char **argv)
{
	(void)argv;
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("Usage: agtrace version\n\nPrints the version, the commit agtrace was built "
		       "from and the libbpf it runs on.\n");
		return 0;
	}
	if (argc > 1) {
		agt_err("`agtrace version` takes no arguments, got \"%s\"", argv[1]);
		return AGT_EXIT_USAGE;
	}
	agt_print_version(stdout);
	return 0;
}
