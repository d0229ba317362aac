/* Decoder for the ring buffer records of func.bpf.c and proc.bpf.c. Every record is checked
 * against the size its kind needs; anything not understood is counted, never guessed at. */
#include "base/log.h"
#include "core/redact.h"
#include "tracer/pipeline.h"
#include "protocols/jsonrpc.h"
#include "trace/agent.h"
#include "trace/nest.h"
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const agt_udrop_names[AGT_UDROP_MAX] = {"malformed_record", "unknown_probe",
						    "unknown_pid"};
const char *const agt_kdrop_names[AGT_KDROP_MAX] = {
    "ringbuf_full",    "no_probe_config",	   "arg_read_failed",	 "tls_truncated_calls",
    "tls_read_failed", "tls_return_without_entry", "tcp_truncated_calls"};

static void on_exchange(void *ctx, const struct agt_proc_info *proc, struct agt_http_msg *req,
			struct agt_http_msg *resp)
{
	struct agt_pipeline *p = ctx;

	agt_trace_exchange(&p->trace, proc, req, resp);
}

static void on_mcp_call(void *ctx, const struct agt_proc_info *proc,
			const struct agt_mcp_call *c)
{
	struct agt_pipeline *p = ctx;

	agt_trace_mcp(&p->trace, proc, c);
}

static const struct agt_proc_info *target_info(void *ctx, uint32_t pid)
{
	struct agt_proc *proc = agt_pipeline_proc(ctx, pid);

	return proc ? &proc->info : NULL;
}

static char *redact_text(void *ctx, const char *text)
{
	(void)ctx;
	return agt_redact(text);
}

int agt_pipeline_init(struct agt_pipeline *p, unsigned max_depth, unsigned max_threads,
		      size_t msg_cap)
{
	struct agt_proc_facts facts = {target_info, p};

	p->msg_cap = msg_cap;
	p->streams = agt_streams_new(msg_cap, 4096, on_exchange, p);
	p->rpc = agt_jsonrpc_new(msg_cap, on_mcp_call, p);
	if (agt_trace_init(&p->trace, p->sink, redact_text, NULL, facts, max_depth, max_threads,
			   msg_cap))
		return -1;
	return p->streams && p->rpc ? 0 : -1;
}

void agt_pipeline_fini(struct agt_pipeline *p)
{
	agt_streams_free(p->streams);
	p->streams = NULL;
	agt_jsonrpc_free(p->rpc);
	p->rpc = NULL;
	agt_trace_fini(&p->trace);
}

struct agt_proc *agt_pipeline_proc(struct agt_pipeline *p, uint32_t pid)
{
	struct agt_proc **slot = &p->pcache[pid & 255];

	if (*slot && (uint32_t)(*slot)->info.pid == pid)
		return *slot;
	/* Newest first: a PID reused by a newly discovered target finds the new one. */
	for (int i = p->nprocs - 1; i >= 0; i--)
		if ((uint32_t)p->procs[i]->info.pid == pid)
			return *slot = p->procs[i];
	return NULL;
}

void agt_pipeline_state(struct agt_pipeline *p, struct agt_proc *proc, uint64_t ts,
			const char *what, const char *message, int has_exit, uint32_t wait_status)
{
	agt_trace_state(&p->trace, &proc->info, ts, what, message, has_exit, wait_status);
}

void agt_pipeline_target_exit(struct agt_pipeline *p, struct agt_proc *proc, uint64_t ts,
			      int has_status, uint32_t wait_status)
{
	char msg[128] = "exit status unknown";

	if (proc->gone)
		return;
	proc->gone = 1;
	proc->gone_ns = ts;
	p->live--;
	agt_streams_close(p->streams, proc->info.pid, ts);
	agt_jsonrpc_close(p->rpc, proc->info.pid, ts);
	agt_trace_proc_gone(&p->trace, proc->info.pid, ts);
	if (has_status && (wait_status & 0x7f))
		snprintf(msg, sizeof(msg), "killed by signal %u", wait_status & 0x7f);
	else if (has_status)
		snprintf(msg, sizeof(msg), "exited with code %u", (wait_status >> 8) & 0xff);
	agt_pipeline_state(p, proc, ts, "exit", msg, has_status, wait_status);
}

static void read_value(struct agt_value *v, enum agt_value_kind kind, uint64_t raw, const char *str)
{
	v->kind = kind;
	v->u = raw;
	v->str[0] = 0;
	if (kind == AGT_VAL_STR) {
		memcpy(v->str, str, AGT_STR_LEN);
		v->str[AGT_STR_LEN - 1] = 0;
	}
}

static const struct agt_probe_info *probe_of(struct agt_pipeline *p, uint32_t id)
{
	if (id >= p->nprobes || !p->probes[id]) {
		p->udrops[AGT_UDROP_UNKNOWN_PROBE]++;
		return NULL;
	}
	return p->probes[id];
}

/* The file an exec record names, NUL-terminated (the kernel's copy may fill the field). */
static void exec_name(char *out, const char *filename)
{
	memcpy(out, filename, AGT_FILENAME_LEN);
	out[AGT_FILENAME_LEN] = 0;
}

int agt_decode_record(void *ctx, void *data, size_t size)
{
	struct agt_pipeline *p = ctx;
	const struct agt_event_hdr *h = data;
	const struct agt_probe_info *probe;
	const struct agt_proc_info *info;
	struct agt_proc *proc;

	p->records++;
	if (size < sizeof(*h)) {
		p->udrops[AGT_UDROP_MALFORMED]++;
		return 0;
	}
	proc = agt_pipeline_proc(p, h->pid);
	if (h->kind == AGT_EV_FUNC_ENTRY || h->kind == AGT_EV_FUNC_RETURN)
		p->by_source[0]++;
	else if (h->kind == AGT_EV_DATA && size >= offsetof(struct agt_data, data))
		p->by_source[1 + (((const struct agt_data *)data)->source % 3)]++;
	else
		p->by_source[4]++;
	switch (h->kind) {
	case AGT_EV_FUNC_ENTRY: {
		const struct agt_func_entry *e = data;
		struct agt_span s;

		if (size < sizeof(*e)) {
			p->udrops[AGT_UDROP_MALFORMED]++;
			return 0;
		}
		if (!(probe = probe_of(p, h->probe_id)))
			return 0;
		if (!proc) {
			p->udrops[AGT_UDROP_UNKNOWN_PID]++;
			return 0;
		}
		if (probe->ps->handler == AGT_HANDLER_PY_AUDIT) {
			char ev[AGT_STR_LEN];

			memcpy(ev, e->str[0], sizeof(ev));
			ev[sizeof(ev) - 1] = 0;
			agt_agent_audit(p->trace.agent, h->pid, h->tid, h->ts_ns, ev);
			return 0;
		}
		memset(&s, 0, sizeof(s));
		s.kind = AGT_SPAN_FUNC;
		s.start_ns = h->ts_ns;
		/* Go moves goroutine stacks as they grow: a frame's sp is no identity there. */
		s.frame_sp = probe->ps->abi == AGT_ABI_GO ? 0 : e->sp;
		s.pid = h->pid;
		s.tid = h->tid;
		s.proc = &proc->info;
		s.trace_type = probe->ps->trace_type;
		memcpy(s.name, probe->span_name, sizeof(s.name));
		s.probe.id = probe->id;
		s.probe.spec = probe->spec->name;
		s.probe.symbol = probe->symbol;
		s.probe.object = probe->object;
		s.probe.nargs = probe->ps->nargs;
		for (int i = 0; i < s.probe.nargs; i++) {
			s.probe.arg_names[i] = probe->ps->args[i].name;
			read_value(&s.probe.args[i], probe->ps->args[i].kind, e->args[i], e->str[i]);
		}
		agt_nest_enter(p->trace.nest, &s, probe->ps->ret_mode == AGT_RET_NONE);
		return 0;
	}
	case AGT_EV_FUNC_RETURN: {
		const struct agt_func_return *e = data;
		struct agt_value v;
		uint64_t frame_sp;

		if (size < sizeof(*e)) {
			p->udrops[AGT_UDROP_MALFORMED]++;
			return 0;
		}
		if (!(probe = probe_of(p, h->probe_id)))
			return 0;
		if (!proc) {
			p->udrops[AGT_UDROP_UNKNOWN_PID]++;
			return 0;
		}
		read_value(&v, probe->ps->ret.kind, e->ret, e->str);
		/* After a uretprobe the return address is popped: the entry sp is 8 bytes lower. */
		frame_sp = e->sp && probe->ps->ret_mode == AGT_RET_URETPROBE ? e->sp - 8 : e->sp;
		if (probe->ps->abi == AGT_ABI_GO)
			frame_sp = 0;
		agt_nest_leave(p->trace.nest, h->pid, h->tid, probe->id, frame_sp, h->ts_ns, &v);
		return 0;
	}
	case AGT_EV_DATA: {
		const struct agt_data *e = data;

		if (size < offsetof(struct agt_data, data) ||
		    size < offsetof(struct agt_data, data) + e->len || e->len > AGT_DATA_CHUNK) {
			p->udrops[AGT_UDROP_MALFORMED]++;
			return 0;
		}
		/* A followed descendant (a tool's curl, say): the target's process. */
		info = proc ? &proc->info : agt_agent_root_proc(p->trace.agent, h->pid);
		if (!info) {
			p->udrops[AGT_UDROP_UNKNOWN_PID]++;
			return 0;
		}
		if (e->flags & AGT_DATA_META_ONLY) {
			char status[4] = {0};

			memcpy(status, e->data + 9, e->len >= 12 ? 3 : 0);
			agt_trace_meta_error(&p->trace, info, h->pid, h->tid, h->ts_ns, status);
		} else if (e->source == AGT_SRC_IPC) {
			agt_jsonrpc_feed(p->rpc, info, e);
		} else {
			agt_streams_feed(p->streams, info, e);
		}
		return 0;
	}
	case AGT_EV_PROC_FORK: {
		const struct agt_proc_fork *e = data;

		if (size < sizeof(*e)) {
			p->udrops[AGT_UDROP_MALFORMED]++;
			return 0;
		}
		agt_agent_fork(p->trace.agent, h->pid, e->ppid, e->ptid, h->ts_ns);
		return 0;
	}
	case AGT_EV_PROC_DISCOVER: {
		const struct agt_proc_discover *e = data;
		char file[AGT_FILENAME_LEN + 1];

		if (size < sizeof(*e)) {
			p->udrops[AGT_UDROP_MALFORMED]++;
			return 0;
		}
		exec_name(file, e->filename);
		p->execs_seen++;
		if (p->on_discover)
			p->on_discover(p->discover_ctx, h->pid, file);
		return 0;
	}
	case AGT_EV_MAP_EXEC:
		if (size < sizeof(struct agt_map_exec)) {
			p->udrops[AGT_UDROP_MALFORMED]++;
			return 0;
		}
		if (proc && !proc->gone) {
			proc->rescan = 1;
			p->rescan_pending = 1;
		}
		return 0;
	case AGT_EV_PROC_EXEC: {
		const struct agt_proc_exec *e = data;
		char file[AGT_FILENAME_LEN + 1];

		if (size < sizeof(*e)) {
			p->udrops[AGT_UDROP_MALFORMED]++;
			return 0;
		}
		exec_name(file, e->filename);
		agt_agent_exec(p->trace.agent, h->pid, file, e->argv,
			       e->argv_len < AGT_ARGV_LEN ? e->argv_len : AGT_ARGV_LEN, h->ts_ns);
		return 0;
	}
	case AGT_EV_PROC_EXIT: {
		const struct agt_proc_exit *e = data;

		if (size < sizeof(*e)) {
			p->udrops[AGT_UDROP_MALFORMED]++;
			return 0;
		}
		if (!proc) {
			/* A followed descendant (the kernel reports no other): its exit ends its
			 * command span; if sampling left its start out, a failure is still an
			 * error. */
			if (e->group_dead &&
			    !agt_agent_exit(p->trace.agent, h->pid, e->exit_code, h->ts_ns) &&
			    e->exit_code)
				agt_trace_exit_error(&p->trace, h->pid, h->tid, h->ts_ns,
						     e->exit_code);
			return 0;
		}
		if (e->group_dead)
			agt_pipeline_target_exit(p, proc, h->ts_ns, 1, e->exit_code);
		else
			agt_nest_thread_exit(p->trace.nest, h->pid, h->tid, h->ts_ns);
		return 0;
	}
	default: p->udrops[AGT_UDROP_MALFORMED]++; return 0;
	}
}
