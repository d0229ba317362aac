/* What the kernel and our privileges allow: `agtrace check`, and the gate before loading BPF. */
#ifndef AGT_PREFLIGHT_H
#define AGT_PREFLIGHT_H

/* 0, or AGT_EXIT_USAGE after one sentence: not root / missing capabilities, or no BTF. */
int agt_require_bpf_privileges(void);
#endif
