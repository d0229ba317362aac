/* Target selectors: which processes `run`/`attach --select` trace without a PID. A selector is
 * a list of key=glob conditions, all of which must hold; any one selector matching is enough. */
#ifndef AGT_SELECT_H
#define AGT_SELECT_H
#include <stddef.h>

struct agt_proc_info;
struct agt_k8s;

#define AGT_SEL_MAX_LABELS 8

struct agt_selector {
	char *exe, *comm, *cmdline, *cgroup, *container, *ns, *pod;
	char *label_key[AGT_SEL_MAX_LABELS], *label_val[AGT_SEL_MAX_LABELS];
	int nlabels;
	char *text; /* as given, for messages */
};

/* "exe=*python3*,cmdline=*agent*,label.app=agent"; a comma inside a value is written "\,".
 * 0, or -EINVAL (-ENOMEM) with one sentence in err. */
int agt_selector_parse(const char *spec, struct agt_selector *s, char *err, size_t errlen);
void agt_selector_free(struct agt_selector *s);
/* Does the process match? cmdline: its arguments joined by spaces. k8s may be NULL: then the
 * namespace, pod and label conditions cannot hold. */
int agt_selector_match(const struct agt_selector *s, const struct agt_proc_info *p, const char *cmdline,
		       struct agt_k8s *k8s);
/* Whether pid is agtrace itself, one of its ancestors (the shell, sudo or runtime that started
 * it, whose command line holds the selector's words) or a child of agtrace's own (its guard):
 * no selector ever traces them. */
int agt_selector_is_own_lineage(int pid);
/* Whether any condition needs pod metadata. */
int agt_selector_needs_k8s(const struct agt_selector *s);
/* /proc/PID/cmdline with NULs as spaces (at most n-1 bytes); 0 or -errno. */
int agt_read_cmdline(int pid, char *out, size_t n);
#endif
