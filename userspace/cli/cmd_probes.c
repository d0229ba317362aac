/* `agtrace probes list|check`, and where the shipped specs live. */
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

static int is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int agt_probes_dir(char *buf, size_t n)
{
	const char *env = getenv("AGTRACE_PROBES_DIR");
	char exe[PATH_MAX];
	ssize_t len;

	if (env && *env) {
		snprintf(buf, n, "%s", env);
		return is_dir(buf) ? 0 : -ENOENT;
	}
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len > 0) {
		exe[len] = 0;
		snprintf(buf, n, "%s/probes", dirname(exe));
		if (is_dir(buf))
			return 0;
	}
	snprintf(buf, n, "/usr/share/agtrace/probes");
	return is_dir(buf) ? 0 : -ENOENT;
}

/* Calls fn for every *.json in the shipped folder, sorted; stops when fn returns non-zero. */
int agt_spec_for_each_shipped(int (*fn)(const char *path, void *arg), void *arg)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct dirent **ents;
	int n, rc = 0;

	if (agt_probes_dir(dir, sizeof(dir)))
		return -ENOENT;
	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(ents[i]->d_name);

		if (!rc && l > 5 && !strcmp(ents[i]->d_name + l - 5, ".json")) {
			snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
			rc = fn(path, arg);
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

struct find_arg {
	const char *name;
	char *out;
	size_t n;
};

static int match_name(const char *path, void *a)
{
	struct find_arg *fa = a;
	struct agt_spec s;
	const char *base = strrchr(path, '/') + 1;
	size_t l = strlen(fa->name);
	int hit = !strncmp(base, fa->name, l) && !strcmp(base + l, ".json");

	if (!hit && !agt_spec_load(path, &s, NULL, 0)) {
		hit = !strcmp(s.name, fa->name);
		agt_spec_free(&s);
	}
	if (hit)
		snprintf(fa->out, fa->n, "%s", path);
	return hit;
}

int agt_spec_find_shipped(const char *name, char *path, size_t n)
{
	struct find_arg fa = {name, path, n};

	return agt_spec_for_each_shipped(match_name, &fa) == 1 ? 0 : -ENOENT;
}

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
		printf(" -> %s \"%s\"\n", p->trace_type, p->span);
	}
	agt_spec_free(&s);
	return 0;
}

static void probes_usage(FILE *f)
{
	fprintf(f,
		"Usage: agtrace probes list          the probe specs agtrace ships, and what each "
		"attaches to\n"
		"       agtrace probes check FILE...  validate probe specs; errors name the file "
		"and JSON path\n"
		"\nShipped specs are read from $AGTRACE_PROBES_DIR, probes/ beside the binary, or\n"
		"/usr/share/agtrace/probes. `agtrace attach --probes NAME` takes one by name.\n");
}

int cmd_probes(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		probes_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? AGT_EXIT_USAGE : 0;
	}
	if (!strcmp(argv[1], "list")) {
		char dir[PATH_MAX];
		int n = 0;

		if (agt_probes_dir(dir, sizeof(dir))) {
			agt_err("no probe spec folder found (looked at $AGTRACE_PROBES_DIR, "
				"probes/ beside "
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
	if (!strcmp(argv[1], "check")) {
		int bad = 0;

		if (argc < 3) {
			agt_err("probes check needs a FILE; see `agtrace probes --help`");
			return AGT_EXIT_USAGE;
		}
		for (int i = 2; i < argc; i++) {
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
	agt_err("unknown probes command \"%s\"; use list or check", argv[1]);
	return AGT_EXIT_USAGE;
}
