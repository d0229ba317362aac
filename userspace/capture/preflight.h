/* What the kernel and our privileges allow: the findings `agtrace check` prints, and the gate
 * before loading BPF. */
#ifndef AGT_PREFLIGHT_H
#define AGT_PREFLIGHT_H

/* 0, or -EPERM (not root / missing capabilities) or -ENOTSUP (no BTF) after one sentence. */
int agt_require_bpf_privileges(void);

enum agt_check_level { AGT_CHECK_OK, AGT_CHECK_NOTE, AGT_CHECK_BLOCKER };

struct agt_check {
	enum agt_check_level level;
	const char *what;  /* "kernel", "btf", "privileges", ... */
	char detail[256];  /* what was found */
	const char *fix;   /* a blocker's sentence: what to do about it */
};

struct agt_preflight {
	struct agt_check v[16];
	unsigned n;
	const char *first_fix; /* the first blocker's sentence; NULL: agtrace can run here */
};

/* Look at the kernel, the privileges and the mounts; one finding per requirement. */
void agt_preflight_run(struct agt_preflight *pf);
#endif
