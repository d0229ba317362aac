// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Generic function probes: uprobes, return probes (uretprobe or return instruction) and USDT
 * markers described by probe specs. The attach cookie is the probe id; what to record for it
 * lives in probe_cfg, filled by the loader before attaching. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>
#include "agtrace.h"
#include "common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AGT_MAX_PROBES);
	__type(key, __u32);
	__type(value, struct agt_probe_cfg);
} probe_cfg SEC(".maps");

/* The arguments 1-6 of a probed function, by calling convention (bpf/arch.h), into a: loads
 * from the context (AGT_REG), not a helper call each: a probe runs on every call it probes. */
static __always_inline void reg_args(struct pt_regs *ctx, __u8 abi, __u64 *a)
{
#define AGT_READ_REG(r) AGT_REG(ctx, r)
	__u64 sysv[AGT_MAX_ARGS] = {AGT_SYSV_ARGS(AGT_READ_REG)};
	__u64 go[AGT_MAX_ARGS] = {AGT_GO_ARGS(AGT_READ_REG)};
#undef AGT_READ_REG

#pragma unroll
	for (int i = 0; i < AGT_MAX_ARGS; i++)
		a[i] = abi == AGT_ABI_GO ? go[i] : sysv[i];
}

/* The probe's configuration, if this event is to be kept: the process is a target (uprobes are
 * attached once per file, so other processes mapping it pass here too; a target's followed
 * descendants are not traced function by function); entries pass the whole sampling decision,
 * returns only the session's (a return follows its entry, whose token it had). */
static __always_inline struct agt_probe_cfg *cfg_for(__u64 cookie, int entry)
{
	__u32 id = (__u32)cookie, tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 kind = agt_target_kind(tgid);
	struct agt_probe_cfg *cfg;

	if (kind != AGT_TK_TARGET && kind != AGT_TK_PENDING)
		return 0;
	cfg = bpf_map_lookup_elem(&probe_cfg, &id);
	if (!cfg || !cfg->valid) {
		agt_count_drop(AGT_KDROP_NO_CONFIG);
		return 0;
	}
	if (entry ? !agt_sample(cfg->source, tgid) : !agt_session_sampled(cfg->source, tgid))
		return 0;
	return cfg;
}

/* A record of this program's kind for the current thread. */
static __always_inline void *func_reserve(__u64 size, __u32 kind, __u64 cookie)
{
	__u64 id = bpf_get_current_pid_tgid();

	return agt_reserve(size, kind, (__u32)cookie, id >> 32, (__u32)id);
}

static __always_inline void read_str(char *dst, __u64 addr)
{
	if (bpf_probe_read_user_str(dst, AGT_STR_LEN, (const void *)addr) < 0) {
		dst[0] = 0;
		agt_count_drop(AGT_KDROP_ARG_READ);
	}
}

/* Does the probe copy a string argument? Records without strings leave the strings out: a
 * record's size is most of what it costs (every cache line of the ring the program writes is a
 * miss), and most probes take integers and pointers only. */
static __always_inline int has_strs(const struct agt_probe_cfg *cfg)
{
	int strs = 0;

#pragma unroll
	for (int i = 0; i < AGT_MAX_ARGS; i++)
		if (i < cfg->nargs && cfg->arg_kind[i] == AGT_VAL_STR)
			strs = 1;
	return strs;
}

/* An entry record's arguments (strs: a constant, whether the record has its strings). */
static __always_inline void fill_entry(struct agt_func_entry *e, struct pt_regs *ctx,
				       const struct agt_probe_cfg *cfg, int strs)
{
	__u64 a[AGT_MAX_ARGS];

	e->sp = PT_REGS_SP(ctx);
	reg_args(ctx, cfg->abi, a);
#pragma unroll
	for (int i = 0; i < AGT_MAX_ARGS; i++) {
		e->args[i] = i < cfg->nargs ? a[i] : 0;
		if (!strs)
			continue;
		e->str[i][0] = 0;
		if (i < cfg->nargs && cfg->arg_kind[i] == AGT_VAL_STR)
			read_str(e->str[i], e->args[i]);
	}
	agt_submit(e);
}

/* Entry of a uprobe: arguments from registers by ABI. */
SEC("uprobe")
int BPF_KPROBE(func_entry)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct agt_probe_cfg *cfg = cfg_for(cookie, 1);
	struct agt_func_entry *e;

	if (!cfg)
		return 0;
	if (has_strs(cfg)) {
		if ((e = func_reserve(sizeof(*e), AGT_EV_FUNC_ENTRY, cookie)))
			fill_entry(e, ctx, cfg, 1);
	} else if ((e = func_reserve(offsetof(struct agt_func_entry, str), AGT_EV_FUNC_ENTRY,
				     cookie))) {
		fill_entry(e, ctx, cfg, 0);
	}
	return 0;
}

static __always_inline int emit_return(__u64 cookie, __u64 ret, __u64 sp)
{
	struct agt_probe_cfg *cfg = cfg_for(cookie, 0);
	struct agt_func_return *e;

	if (!cfg)
		return 0;
	if (cfg->ret_kind == AGT_VAL_STR) {
		if (!(e = func_reserve(sizeof(*e), AGT_EV_FUNC_RETURN, cookie)))
			return 0;
		read_str(e->str, ret);
	} else if (!(e = func_reserve(offsetof(struct agt_func_return, str), AGT_EV_FUNC_RETURN,
				      cookie))) {
		return 0;
	}
	e->ret = ret;
	e->sp = sp;
	agt_submit(e);
	return 0;
}

/* Return of a function: attached either as a uretprobe or as a plain uprobe on each return
 * instruction (safe for Go, whose stacks uretprobes corrupt). Both see the result in rax. */
SEC("uprobe")
int BPF_KPROBE(func_return)
{
	return emit_return(bpf_get_attach_cookie(ctx), PT_REGS_RC(ctx), PT_REGS_SP(ctx));
}

struct audit_event {
	__u8 len, exact;
	char p[AGT_AUDIT_NAME_MAX];
};

#define AUDIT_ROW(s, x) {sizeof(s) - 1, x, s},
static const struct audit_event audit_events[] = {AGT_AUDIT_EVENTS(AUDIT_ROW)};
#undef AUDIT_ROW

/* Is python:audit's event (its name at addr) one a tool call's record keeps? */
static __always_inline int audit_kept(long addr)
{
	char ev[AGT_AUDIT_NAME_MAX];

	__builtin_memset(ev, 0, sizeof(ev));
	if (bpf_probe_read_user_str(ev, sizeof(ev), (const void *)addr) <= 0)
		return 1; /* unreadable: kept, and read_str counts the failed read */
	for (int i = 0; i < (int)(sizeof(audit_events) / sizeof(audit_events[0])); i++) {
		const struct audit_event *a = &audit_events[i];
		int same = 1;

		for (int k = 0; k < AGT_AUDIT_NAME_MAX - 1; k++)
			if (k < a->len && ev[k] != a->p[k])
				same = 0;
		if (same && (!a->exact || ev[a->len & (AGT_AUDIT_NAME_MAX - 1)] == 0))
			return 1;
	}
	return 0;
}

/* USDT marker that opens a span: its arguments as the span's arguments. python:audit (source
 * PYTHON) keeps only the events a tool call's record names (AGT_AUDIT_EVENTS) and only its
 * name: the rest return before the ring buffer. */
SEC("usdt")
int BPF_USDT(usdt_entry)
{
	__u64 cookie = bpf_usdt_cookie(ctx);
	struct agt_probe_cfg *cfg = cfg_for(cookie, 1);
	struct agt_func_entry *e;
	int cnt = bpf_usdt_arg_cnt(ctx);
	long v;

	if (!cfg)
		return 0;
	if (cfg->source == AGT_SS_PYTHON) {
		if (cnt < 1 || bpf_usdt_arg(ctx, 0, &v) < 0 || !audit_kept(v))
			return 0;
		e = func_reserve(offsetof(struct agt_func_entry, str) + AGT_STR_LEN,
				 AGT_EV_FUNC_ENTRY, cookie);
		if (!e)
			return 0;
		__builtin_memset(e->args, 0, sizeof(e->args));
		e->sp = 0;
		e->args[0] = v;
		read_str(e->str[0], v);
		agt_submit(e);
		return 0;
	}
	e = func_reserve(sizeof(*e), AGT_EV_FUNC_ENTRY, cookie);
	if (!e)
		return 0;
	e->sp = 0;
#pragma unroll
	for (int i = 0; i < AGT_MAX_ARGS; i++) {
		e->str[i][0] = 0;
		e->args[i] = 0;
		if (i >= cfg->nargs || i >= cnt)
			continue;
		if (bpf_usdt_arg(ctx, i, &v) < 0) {
			agt_count_drop(AGT_KDROP_ARG_READ);
			continue;
		}
		e->args[i] = v;
		if (cfg->arg_kind[i] == AGT_VAL_STR)
			read_str(e->str[i], v);
	}
	agt_submit(e);
	return 0;
}

/* USDT marker that closes a span: its first argument is the span's return value. */
SEC("usdt")
int BPF_USDT(usdt_return)
{
	long v = 0;

	if (bpf_usdt_arg_cnt(ctx) > 0 && bpf_usdt_arg(ctx, 0, &v) < 0)
		agt_count_drop(AGT_KDROP_ARG_READ);
	return emit_return(bpf_usdt_cookie(ctx), v, 0);
}
