/* Where the shipped probe specs live, and finding one by name (capture/spec.h). */
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
		const char *dir;

		exe[len] = 0;
		dir = dirname(exe); /* in place: once */
		snprintf(buf, n, "%s/probes", dir); /* a build tree */
		if (is_dir(buf))
			return 0;
		/* installed under a prefix: PREFIX/bin/agtrace, PREFIX/share/agtrace/probes */
		snprintf(buf, n, "%s/../share/agtrace/probes", dir);
		if (is_dir(buf)) {
			char real[PATH_MAX];

			if (realpath(buf, real))
				snprintf(buf, n, "%s", real);
			return 0;
		}
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
