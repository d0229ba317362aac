#include "capture/select.h"
#include "capture/procstat.h"
#include "capture/container.h"
#include "base/log.h"
#include "capture/target.h"
#include "base/util.h"
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const keys[] = {"exe",	"comm",	     "cmdline", "cgroup",
				   "container", "namespace", "pod"};

static char **field(struct agt_selector *s, int i)
{
	char **f[] = {&s->exe, &s->comm, &s->cmdline, &s->cgroup, &s->container, &s->ns, &s->pod};
	return f[i];
}

void agt_selector_free(struct agt_selector *s)
{
	for (size_t i = 0; i < AGT_ARRAY_SIZE(keys); i++)
		free(*field(s, i));
	for (int i = 0; i < s->nlabels; i++) {
		free(s->label_key[i]);
		free(s->label_val[i]);
	}
	free(s->text);
	memset(s, 0, sizeof(*s));
}

int agt_selector_parse(const char *spec, struct agt_selector *s, char *err, size_t errlen)
{
	char *copy = malloc(strlen(spec) + 1), *w;
	const char *r = spec;
	int conds = 0;

	memset(s, 0, sizeof(*s));
	if (!copy || !(s->text = strdup(spec))) {
		free(copy);
		return agt_seterr(err, errlen, -ENOMEM, "out of memory");
	}
	while (*r) {
		char *key, *eq, **dst = NULL;

		/* One condition, up to an unescaped comma; "\," and "\\" unescape. */
		for (w = copy; *r && *r != ','; r++)
			*w++ = (*r == '\\' && (r[1] == ',' || r[1] == '\\')) ? *++r : *r;
		*w = 0;
		if (*r == ',')
			r++;
		key = copy;
		if (!(eq = strchr(key, '=')) || eq == key || !eq[1]) {
			agt_seterr(
			    err, errlen, -EINVAL,
			    "selector \"%s\": \"%s\" is not KEY=PATTERN; keys are exe, comm, "
			    "cmdline, cgroup, container, namespace, pod and label.NAME",
			    spec, key);
			goto bad;
		}
		*eq = 0;
		for (size_t i = 0; i < AGT_ARRAY_SIZE(keys); i++)
			if (!strcmp(key, keys[i]))
				dst = field(s, i);
		if (!dst && !strncmp(key, "label.", 6) && key[6]) {
			if (s->nlabels == AGT_SEL_MAX_LABELS) {
				agt_seterr(err, errlen, -EINVAL,
					   "selector \"%s\": more than %d label conditions", spec,
					   AGT_SEL_MAX_LABELS);
				goto bad;
			}
			s->label_key[s->nlabels] = strdup(key + 6);
			dst = &s->label_val[s->nlabels++];
		}
		if (!dst) {
			agt_seterr(err, errlen, -EINVAL,
				   "selector \"%s\": unknown key \"%s\"; keys are exe, comm, "
				   "cmdline, cgroup, container, namespace, pod and label.NAME",
				   spec, key);
			goto bad;
		}
		if (*dst) {
			agt_seterr(err, errlen, -EINVAL,
				   "selector \"%s\": \"%s\" is given twice", spec, key);
			goto bad;
		}
		*dst = strdup(eq + 1);
		conds++;
	}
	free(copy);
	if (!conds) {
		agt_selector_free(s);
		return agt_seterr(err, errlen, -EINVAL,
				  "an empty selector would trace every process; give at least one "
				  "condition such as comm=python3");
	}
	return 0;
bad:
	free(copy);
	agt_selector_free(s);
	return -EINVAL;
}

int agt_selector_needs_k8s(const struct agt_selector *s)
{
	return s->ns || s->pod || s->nlabels;
}

static int glob(const char *pat, const char *v)
{
	return !pat || (v && fnmatch(pat, v, 0) == 0);
}

int agt_selector_match(const struct agt_selector *s, const struct agt_proc_info *p, const char *cmdline,
		       struct agt_k8s *k8s)
{
	if (!glob(s->exe, p->exe) || !glob(s->comm, p->comm) || !glob(s->cmdline, cmdline) ||
	    !glob(s->cgroup, p->id.cgroup))
		return 0;
	if (s->container && (!p->id.container_id[0] || !glob(s->container, p->id.container_id)))
		return 0;
	if (!agt_selector_needs_k8s(s))
		return 1;
	if (!p->id.pod_name[0] || !glob(s->ns, p->id.pod_namespace) ||
	    !glob(s->pod, p->id.pod_name))
		return 0;
	for (int i = 0; i < s->nlabels; i++)
		if (!glob(s->label_val[i], agt_k8s_label(k8s, p->id.pod_uid, s->label_key[i])))
			return 0;
	return 1;
}

int agt_read_cmdline(int pid, char *out, size_t n)
{
	char path[64];
	ssize_t got;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	got = read(fd, out, n - 1);
	close(fd);
	if (got < 0)
		return -errno;
	while (got > 0 && out[got - 1] == 0)
		got--;
	for (ssize_t i = 0; i < got; i++)
		if (!out[i])
			out[i] = ' ';
	out[got] = 0;
	return 0;
}

/* The parent of pid; 0 when it cannot be read. */
static int parent_of(int pid)
{
	int ppid;
	char state;

	return agt_proc_state(pid, &state, &ppid) ? 0 : ppid;
}

int agt_selector_is_own_lineage(int pid)
{
	if (pid > 0 && parent_of(pid) == getpid()) /* agtrace's own guard (tracer/exestop.c) */
		return 1;
	for (int p = getpid(), hops = 0; p > 0 && hops < 4096; p = parent_of(p), hops++)
		if (p == pid)
			return 1;
	return 0;
}
