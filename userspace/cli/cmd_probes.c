/* `agtrace probes list|check|locate`: the shipped specs (capture/spec_shipped.c finds them), a
 * check of a spec file, and what the TLS locator finds in a binary (capture/locate.h). */
#include "base/log.h"
#include "capture/locate.h"
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
	if (s.locate)
		printf("%-20s   located: %s (the TLS locator finds its functions)\n", "", s.locate);
	if (s.funnel)
		printf("%-20s   funnel: %s (where the TLS locator finds its internal functions, the "
		       "located probes replace the exported ones they name)\n",
		       "", s.funnel);
	for (int i = 0; i < s.nprobes; i++) {
		const struct agt_probe_spec *p = &s.probes[i];

		printf("%-20s   ", "");
		if (p->role) {
			printf("located %s -> handler %s", agt_tls_role_name(p->role),
			       p->handler->name);
			for (int k = 0; k < p->ninstead_of; k++)
				printf("%s%s", k ? ", " : ", instead of ", p->instead_of[k]);
			printf("\n");
			continue;
		}
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
		"       agtrace probes locate PATH... the TLS functions found in a stripped binary "
		"(BoringSSL,\n"
		"                                     static OpenSSL 3, aws-lc under rustls): "
		"where, and why\n"
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

/* What the TLS locator finds in each PATH (through its cache): the library, each function's
 * file offset and calling convention, and the evidence; or why nothing is probed there (no TLS
 * library, or one found but refused). Exit 2 only for a PATH that is not a readable x86-64
 * ELF file. */
int cmd_probes_locate(int argc, char **argv)
{
	int bad = 0;

	if (argc < 2) {
		agt_err("probes locate needs a PATH (an executable); see `agtrace probes --help`");
		return AGT_EXIT_USAGE;
	}
	for (int i = 1; i < argc; i++) {
		int rc;

		if (access(argv[i], R_OK)) {
			agt_err("cannot read %s: %s; give the path of an executable", argv[i],
				strerror(errno));
			bad = 1;
			continue;
		}
		fflush(stdout);
		rc = agt_locate_report(argv[i], stdout);
		if (rc && rc != -ENOENT && rc != -EINVAL && rc != -ENOTSUP)
			bad = 1;
	}
	return bad ? AGT_EXIT_USAGE : 0;
}
