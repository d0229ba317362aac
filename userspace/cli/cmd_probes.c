/* `agtrace probes list|check`: the shipped specs (capture/spec_shipped.c finds them), and a
 * check of a spec file. */
#include "base/log.h"
#include "capture/spec.h"
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int list_one(const char *path, void *a)
{
	struct agt_spec s;
	char err[512];

	(*(int *)a)++;
	if (agt_spec_load(path, &s, err, sizeof(err))) {
		printf("%-20s INVALID: %s\n", "?", err);
		return 0;
	}
	printf("%-20s %s\n", s.name, s.description ? s.description : "");
	printf("%-20s   target: ", "");
	for (int i = 0; i < s.ntargets; i++)
		printf("%s%s", i ? " or " : "", s.targets[i]);
	printf("\n");
	for (int i = 0; i < s.nprobes; i++) {
		const struct agt_probe_spec *p = &s.probes[i];

		printf("%-20s   ", "");
		if (p->usdt_name) {
			printf("usdt %s:%s", p->usdt_provider, p->usdt_name);
			if (p->ret_usdt_name)
				printf(" .. %s:%s", p->ret_usdt_provider, p->ret_usdt_name);
		} else {
			printf("uprobe");
			for (int k = 0; k < p->nsymbols; k++)
				printf(" %s", p->symbols[k]);
			printf(p->ret_mode == AGT_RET_INSN   ? " (returns: every ret instruction)"
			       : p->ret_mode == AGT_RET_NONE ? " (entry only)"
							     : "");
		}
		if (p->handler && p->handler->kind == AGT_HK_RUNTIME)
			printf(" -> runtime metrics (%s)\n", p->handler->name);
		else
			printf(" -> %s \"%s\"\n", p->trace_type, p->span);
	}
	agt_spec_free(&s);
	return 0;
}

void cmd_probes_usage(FILE *f)
{
	fprintf(f,
		"Usage: agtrace probes list          the probe specs agtrace ships, and what each "
		"attaches to\n"
		"       agtrace probes check FILE...  validate probe specs; errors name the file "
		"and JSON path\n"
		"\nShipped specs are read from $AGTRACE_PROBES_DIR, probes/ beside the binary, or\n"
		"/usr/share/agtrace/probes. `agtrace attach --probes NAME` takes one by name.\n");
}

int cmd_probes_list(int argc, char **argv)
{
	char dir[PATH_MAX];
	int n = 0;

	if (argc > 1) {
		agt_err("probes list takes no arguments, got \"%s\"; see `agtrace probes --help`",
			argv[1]);
		return AGT_EXIT_USAGE;
	}
	if (agt_probes_dir(dir, sizeof(dir))) {
		agt_err("no probe spec folder found (looked at $AGTRACE_PROBES_DIR, probes/ beside "
			"the binary, %s); set AGTRACE_PROBES_DIR",
			dir);
		return AGT_EXIT_USAGE;
	}
	printf("probe specs in %s:\n", dir);
	agt_spec_for_each_shipped(list_one, &n);
	if (!n)
		printf("(none)\n");
	return 0;
}

int cmd_probes_check(int argc, char **argv)
{
	int bad = 0;

	if (argc < 2) {
		agt_err("probes check needs a FILE; see `agtrace probes --help`");
		return AGT_EXIT_USAGE;
	}
	for (int i = 1; i < argc; i++) {
		struct agt_spec s;
		char err[512];

		if (agt_spec_load(argv[i], &s, err, sizeof(err))) {
			agt_err("%s", err);
			bad = 1;
			continue;
		}
		printf("%s: ok: spec \"%s\", %d probe%s\n", argv[i], s.name, s.nprobes,
		       s.nprobes == 1 ? "" : "s");
		agt_spec_free(&s);
	}
	return bad ? AGT_EXIT_USAGE : 0;
}
