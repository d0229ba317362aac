#include "events/decode.h"
#include "trace/agent.h"
#include "trace/files.h"
#include "base/util.h"
#include "trace/nest.h"
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const char *const udrop_names[AGT_UDROP_MAX] = {"malformed_record", "unknown_probe",
						       "unknown_pid", "not_selected"};
const char *const agt_source_count_names[AGT_SRC_COUNTS] = {"func", "tls", "tcp",
							     "ipc",  "proc", "file"};

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

static const struct agt_probe_info *probe_of(struct agt_decoder *d, uint32_t id)
{
	const struct agt_probe_info *p = d->env.probe(d->env.ctx, id);

	if (!p)
		d->udrops[AGT_UDROP_UNKNOWN_PROBE]++;
	return p;
}

/* An event of a process that is not traced: with discovery on, one it turned away after
 * catching it at exec (a note); otherwise a loss. */
static void unknown_pid(struct agt_decoder *d)
{
	d->udrops[d->env.discover ? AGT_UDROP_NOT_SELECTED : AGT_UDROP_UNKNOWN_PID]++;
}

static const struct agt_proc_info *target_of(struct agt_decoder *d, uint32_t pid)
{
	const struct agt_proc_info *p = d->env.target(d->env.ctx, pid);

	if (!p)
		unknown_pid(d);
	return p;
}

/* The file an exec record names, NUL-terminated (the kernel's copy may fill the field). */
static void exec_name(char *out, const char *filename)
{
	memcpy(out, filename, AGT_FILENAME_LEN);
	out[AGT_FILENAME_LEN] = 0;
}

/* Whom what pid did is attributed to: a followed descendant's (a relaunched agent probed as a
 * target of its own too) belongs to the target it descends from. */
static const struct agt_proc_info *attributed(struct agt_decoder *d, uint32_t pid)
{
	const struct agt_proc_info *proc = agt_agent_root_proc(d->trace->agent, pid);

	return proc ? proc : d->env.target(d->env.ctx, pid);
}

static void func_entry(struct agt_decoder *d, const void *rec, size_t size)
{
	const struct agt_func_entry *e = rec;
	const struct agt_probe_info *probe;
	const struct agt_proc_info *proc;
	struct agt_func_entry whole;
	struct agt_span *s = &d->entry;
	int nargs;

	if (size < sizeof(*e)) { /* a probe with no string argument sends none */
		memset(&whole, 0, sizeof(whole));
		memcpy(&whole, rec, size);
		e = &whole;
	}
	if (!(probe = probe_of(d, e->h.probe_id)) || !(proc = target_of(d, e->h.pid)))
		return;
	if (probe->ps->handler && probe->ps->handler->kind == AGT_HK_PY_AUDIT) {
		char ev[AGT_STR_LEN];

		memcpy(ev, e->str[0], sizeof(ev));
		ev[sizeof(ev) - 1] = 0;
		agt_agent_audit(d->trace->agent, (uint32_t)attributed(d, e->h.pid)->pid, e->h.tid,
				e->h.ts_ns, ev);
		return;
	}
	s->kind = AGT_SPAN_FUNC;
	s->start_ns = e->h.ts_ns;
	/* Go moves goroutine stacks as they grow: a frame's sp is no identity there. */
	s->frame_sp = probe->ps->abi == AGT_ABI_GO ? 0 : e->sp;
	s->pid = e->h.pid;
	s->tid = e->h.tid;
	s->proc = proc;
	s->trace_type = probe->ps->trace_type;
	memcpy(s->name, probe->span_name, sizeof(s->name));
	s->probe.id = probe->id;
	s->probe.spec = probe->spec->name;
	s->probe.symbol = probe->symbol;
	s->probe.object = probe->object;
	nargs = probe->ps->nargs;
	for (int i = nargs; i < s->probe.nargs; i++) { /* the last entry's: cleared again */
		s->probe.arg_names[i] = NULL;
		memset(&s->probe.args[i], 0, sizeof(s->probe.args[i]));
	}
	s->probe.nargs = nargs;
	for (int i = 0; i < nargs; i++) {
		s->probe.arg_names[i] = probe->ps->args[i].name;
		read_value(&s->probe.args[i], probe->ps->args[i].kind, e->args[i], e->str[i]);
	}
	agt_nest_enter(d->trace->nest, s, probe->ps->ret_mode == AGT_RET_NONE);
}

static void func_return(struct agt_decoder *d, const void *rec, size_t size)
{
	const struct agt_func_return *e = rec;
	const struct agt_probe_info *probe;
	struct agt_func_return whole;
	struct agt_value v;
	uint64_t frame_sp;

	if (size < sizeof(*e)) { /* a probe whose result is no string sends none */
		memset(&whole, 0, sizeof(whole));
		memcpy(&whole, rec, size);
		e = &whole;
	}
	if (!(probe = probe_of(d, e->h.probe_id)) || !target_of(d, e->h.pid))
		return;
	read_value(&v, probe->ps->ret.kind, e->ret, e->str);
	/* After a uretprobe the return address is popped: the entry sp is 8 bytes lower. */
	frame_sp = e->sp && probe->ps->ret_mode == AGT_RET_URETPROBE ? e->sp - 8 : e->sp;
	if (probe->ps->abi == AGT_ABI_GO)
		frame_sp = 0;
	agt_nest_leave(d->trace->nest, e->h.pid, e->h.tid, probe->id, frame_sp, e->h.ts_ns, &v);
}

static void data(struct agt_decoder *d, const void *rec, size_t size)
{
	const struct agt_data *e = rec;
	const struct agt_proc_info *proc;

	if (size < offsetof(struct agt_data, data) + e->len || e->len > AGT_DATA_CHUNK) {
		d->udrops[AGT_UDROP_MALFORMED]++;
		return;
	}
	d->by_source[AGT_SRC_COUNT_TLS + e->source % 3]++;
	if (e->flags & AGT_DATA_CLOSE) { /* the connection is over: its end, no bytes */
		agt_streams_close_conn(d->streams, e->h.pid, e->conn, e->h.ts_ns);
		return;
	}
	/* A followed descendant (a tool's curl, say): the target's process. */
	proc = attributed(d, e->h.pid);
	if (!proc) {
		unknown_pid(d);
		return;
	}
	if (e->flags & AGT_DATA_META_ONLY) {
		char status[4] = {0};

		memcpy(status, e->data + 9, e->len >= 12 ? 3 : 0);
		agt_trace_meta_error(d->trace, proc, e->h.pid, e->h.tid, e->h.ts_ns, status);
		return;
	}
	if (e->flags & AGT_DATA_UNJOINED) { /* sealed at the AEAD layer: its socket comes next */
		agt_join_hold(&d->join, e);
		return;
	}
	agt_streams_feed(d->streams, proc, e);
}

static void feed_joined(void *ctx, const struct agt_data *e)
{
	struct agt_decoder *d = ctx;
	const struct agt_proc_info *proc = attributed(d, e->h.pid);

	if (proc)
		agt_streams_feed(d->streams, proc, e);
}

static void tls_join(struct agt_decoder *d, const void *rec, size_t size)
{
	const struct agt_tls_join *j = rec;

	(void)size;
	agt_join_release(&d->join, j->h.pid, j->h.tid, j->conn, feed_joined, d);
}

static void proc_fork(struct agt_decoder *d, const void *rec, size_t size)
{
	const struct agt_proc_fork *e = rec;

	(void)size;
	if ((e->flags & AGT_FORK_PENDING) && d->env.pending_fork &&
	    !d->env.pending_fork(d->env.ctx, e->h.pid, e->ppid))
		return; /* a child of a process discovery turned away */
	agt_agent_fork(d->trace->agent, e->h.pid, e->ppid, e->ptid, e->h.ts_ns);
	if (d->env.forked)
		d->env.forked(d->env.ctx, e->h.pid, e->ppid);
}

static void proc_exec(struct agt_decoder *d, const void *rec, size_t size)
{
	const struct agt_proc_exec *e = rec;
	char file[AGT_FILENAME_LEN + 1];

	(void)size;
	const struct agt_proc_info *root;
	const char *base;

	if (e->flags & AGT_EXEC_UNSAMPLED) { /* reported only to be resumed */
		if ((e->flags & AGT_EXEC_STOPPED) && d->env.stopped)
			d->env.stopped(d->env.ctx, e->h.pid, &e->exe);
		return;
	}
	exec_name(file, e->filename);
	agt_agent_exec(d->trace->agent, e->h.pid, file, e->argv,
		       e->argv_len < AGT_ARGV_LEN ? e->argv_len : AGT_ARGV_LEN, e->h.ts_ns);
	/* The program of its target again (the same command name): an agent that relaunched
	 * itself, whose TLS calls only probes of its own can see. */
	root = agt_agent_root_proc(d->trace->agent, e->h.pid);
	base = strrchr(file, '/');
	base = base ? base + 1 : file;
	if (d->env.relaunch && root && !d->env.target(d->env.ctx, e->h.pid) &&
	    !strncmp(base, root->comm, 15) && root->comm[0])
		d->env.relaunch(d->env.ctx, e->h.pid);
	else if (d->env.mapped)
		d->env.mapped(d->env.ctx, e->h.pid); /* a new program: its objects */
	if ((e->flags & AGT_EXEC_STOPPED) && d->env.stopped)
		d->env.stopped(d->env.ctx, e->h.pid, &e->exe);
}

static void proc_discover(struct agt_decoder *d, const void *rec, size_t size)
{
	const struct agt_proc_discover *e = rec;
	char file[AGT_FILENAME_LEN + 1];

	(void)size;
	exec_name(file, e->filename);
	d->execs_seen++;
	if (d->env.discover)
		d->env.discover(d->env.ctx, e->h.pid, file);
	if ((e->flags & AGT_EXEC_STOPPED) && d->env.stopped)
		d->env.stopped(d->env.ctx, e->h.pid, &e->exe);
}

static void map_exec(struct agt_decoder *d, const void *rec, size_t size)
{
	const struct agt_map_exec *e = rec;

	(void)size;
	if (d->env.mapped)
		d->env.mapped(d->env.ctx, e->h.pid);
}

static void proc_exit(struct agt_decoder *d, const void *rec, size_t size)
{
	const struct agt_proc_exit *e = rec;

	(void)size;
	if (e->group_dead && d->env.target(d->env.ctx, e->h.pid))
		agt_agent_exit(d->trace->agent, e->h.pid, e->exit_code,
			       e->h.ts_ns); /* relaunched */
	if (!d->env.target(d->env.ctx, e->h.pid)) {
		/* A followed descendant (the kernel reports no other): its exit ends its command
		 * span; if sampling left its start out, a failure is still an error. */
		if (e->group_dead && !agt_agent_exit(d->trace->agent, e->h.pid, e->exit_code,
						     e->h.ts_ns) &&
		    e->exit_code)
			agt_trace_exit_error(d->trace, e->h.pid, e->h.tid, e->h.ts_ns, e->exit_code);
		return;
	}
	if (e->group_dead)
		d->env.target_exit(d->env.ctx, e->h.pid, e->h.ts_ns, e->exit_code);
	else
		agt_nest_thread_exit(d->trace->nest, e->h.pid, e->h.tid, e->h.ts_ns);
}

/* One path of a file record ("DIR\0NAME\0" in len bytes) as an absolute path; 0, or -1 when the
 * record is malformed. */
static int file_path(const char *blob, unsigned len, char *out, size_t n)
{
	const char *dir = blob, *name;
	size_t dl;

	if (len < 2 || len > AGT_FILE_BLOB || blob[len - 1])
		return -1;
	dl = strnlen(dir, len);
	if (dl + 1 >= len)
		return -1;
	name = blob + dl + 1;
	agt_path_join(dir, name, out, n);
	return 0;
}

static void file_event(struct agt_decoder *d, const void *rec, size_t size)
{
	const struct agt_file_event *e = rec;
	size_t base = offsetof(struct agt_file_event, data);
	static char p1[4200], p2[4200];
	struct agt_file_call fc = {.op = e->op, .flags = e->flags, .file = e->file,
				   .bytes = e->bytes};
	int two = e->op == AGT_FILE_RENAME, path = e->op != AGT_FILE_CLOSE;

	if ((path && (size < base + e->len[0] || file_path(e->data, e->len[0], p1, sizeof(p1)))) ||
	    (two && (size < base + AGT_FILE_BLOB + e->len[1] ||
		     file_path(e->data + AGT_FILE_BLOB, e->len[1], p2, sizeof(p2))))) {
		d->udrops[AGT_UDROP_MALFORMED]++;
		return;
	}
	fc.path = path ? p1 : NULL;
	fc.path2 = two ? p2 : NULL;
	agt_trace_file(d->trace, e->h.pid, e->h.tid, e->h.ts_ns, &fc);
}

/* Each kind's handler and the bytes its record has at least (data records are checked against
 * their own length too). */
static const struct {
	size_t min;
	int source;
	void (*fn)(struct agt_decoder *d, const void *rec, size_t size);
} kinds[] = {
    [AGT_EV_FUNC_ENTRY] = {offsetof(struct agt_func_entry, str), AGT_SRC_COUNT_FUNC, func_entry},
    [AGT_EV_FUNC_RETURN] = {offsetof(struct agt_func_return, str), AGT_SRC_COUNT_FUNC,
			    func_return},
    [AGT_EV_PROC_EXIT] = {sizeof(struct agt_proc_exit), AGT_SRC_COUNT_PROC, proc_exit},
    [AGT_EV_DATA] = {offsetof(struct agt_data, data), -1, data},
    [AGT_EV_PROC_FORK] = {sizeof(struct agt_proc_fork), AGT_SRC_COUNT_PROC, proc_fork},
    [AGT_EV_PROC_EXEC] = {sizeof(struct agt_proc_exec), AGT_SRC_COUNT_PROC, proc_exec},
    [AGT_EV_PROC_DISCOVER] = {sizeof(struct agt_proc_discover), AGT_SRC_COUNT_PROC,
			      proc_discover},
    [AGT_EV_MAP_EXEC] = {sizeof(struct agt_map_exec), AGT_SRC_COUNT_PROC, map_exec},
    [AGT_EV_FILE] = {offsetof(struct agt_file_event, data), AGT_SRC_COUNT_FILE, file_event},
    [AGT_EV_TLS_JOIN] = {sizeof(struct agt_tls_join), -1, tls_join},
};

int agt_decode_record(void *ctx, void *rec, size_t size)
{
	struct agt_decoder *d = ctx;
	const struct agt_event_hdr *h = rec;

	d->records++;
	if (size < sizeof(*h) || h->kind >= sizeof(kinds) / sizeof(kinds[0]) ||
	    !kinds[h->kind].fn || size < kinds[h->kind].min) {
		d->udrops[AGT_UDROP_MALFORMED]++;
		return 0;
	}
	if (kinds[h->kind].source >= 0)
		d->by_source[kinds[h->kind].source]++;
	kinds[h->kind].fn(d, rec, size);
	return 0;
}

static void decoder_drops(const void *self, agt_drop_fn fn, void *ctx)
{
	const struct agt_decoder *d = self;

	for (int i = 0; i < AGT_UDROP_MAX; i++)
		fn(ctx, udrop_names[i], d->udrops[i], i != AGT_UDROP_NOT_SELECTED);
	fn(ctx, "tls_record_unjoined", d->join.dropped, 1);
}

/* Sealed records whose process ended before a socket write joined them: dropped, counted. */
static void decoder_proc_gone(void *self, uint32_t pid, uint64_t ts)
{
	(void)ts;
	agt_join_drop(&((struct agt_decoder *)self)->join, pid);
}

static void decoder_flush(void *self, uint64_t ts)
{
	(void)ts;
	agt_join_drop(&((struct agt_decoder *)self)->join, 0);
}

void agt_decoder_fini(struct agt_decoder *d)
{
	agt_join_free(&d->join);
}

const struct agt_stage_ops agt_decoder_stage = {"decoder", decoder_proc_gone, NULL,
						decoder_flush, decoder_drops};
