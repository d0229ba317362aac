/* `agtrace check`: the preflight's findings, one line each, and a verdict. */
#include "base/log.h"
#include "capture/preflight.h"
#include "cli/cli.h"
#include <stdio.h>
#include <string.h>

int cmd_check(int argc, char **argv)
{
	static const char *const tag[] = {"ok     ", "note   ", "BLOCKER"};
	struct agt_preflight pf;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("Usage: agtrace check\n\nPreflight: one line per requirement (kernel, BTF, "
		       "privileges, uprobe PMU, ring buffer, attach cookies, tracefs, bpffs, "
		       "lockdown).\n"
		       "Exits 0 when agtrace can run here, 2 with a sentence naming the blocker.\n");
		return 0;
	}
	if (argc > 1) {
		agt_err("check takes no arguments, got \"%s\"; see `agtrace check --help`",
			argv[1]);
		return AGT_EXIT_USAGE;
	}
	agt_preflight_run(&pf);
	for (unsigned i = 0; i < pf.n; i++)
		printf("%s  %-16s %s\n", tag[pf.v[i].level], pf.v[i].what, pf.v[i].detail);
	if (pf.first_fix) {
		agt_err("%s", pf.first_fix);
		return AGT_EXIT_USAGE;
	}
	printf("agtrace can run here.\n");
	return 0;
}
