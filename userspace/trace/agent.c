#include "trace/agent.h"
#include "base/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONVS 1024
#define MAX_CHILDREN 4096
#define MAX_PENDING 64
#define MAX_EVENTS 32
#define TEXT_CAP 4096 /* bytes of a tool's input/output or a final answer kept */

struct pending {
	char id[128], name[128];
	int synthetic; /* id made up by the parser: the API gave the call none */
	char *args;
	uint64_t start_ns;
	uint64_t span_id; /* fixed when the model asks, so what happens meanwhile can point at it */
	uint32_t tid;	  /* the thread that got the request for it */
	struct agt_span_event events[MAX_EVENTS];
	int nevents;
};

struct conv {
	struct conv *next;
	uint32_t pid;
	uint64_t prefix;
	uint8_t trace_id[16];
	uint64_t root_id;
	char workflow_id[17];
	uint64_t start_ns, last_ns;
	int steps, tools;
	int64_t in_tokens, out_tokens;
	char model[128];
	const char *provider;
	char *final_answer;
	char *seq[64]; /* the names of its steps and tool calls, in order (the first 64) */
	int nseq;
	struct pending pending[MAX_PENDING];
	int npending;
	const struct agt_proc_info *proc;
};

/* A followed descendant process of a target: one exec span when it ends. Children form a tree
 * (up: the child that started it, NULL for a child of the target itself); a subtree is always
 * emitted and freed whole, so no record outlives the one above it. */
struct child {
	struct child *hnext;	  /* pid hash chain */
	struct child *up;	  /* the followed process that started it; NULL: the target did */
	struct child *kids, *sib; /* what it started (newest first); next of the same parent */
	uint32_t pid, ppid, root; /* root: the target it descends from */
	uint32_t ptid;		  /* the thread that forked it */
	uint64_t span_id, start_ns, end_ns;
	int ended, has_status;
	uint32_t status;
	char cmd[AGT_ARGV_LEN + 1];
	char exe[128];
	struct agt_proc_info proc; /* what exporters show as process.* */
};

#define CHILD_BUCKETS 1024

struct agt_agent {
	struct agt_emitter *em;
	struct agt_proc_facts facts;
	struct conv *convs;
	unsigned nconvs;
	struct child *tops; /* children of targets (up == NULL), newest first, through sib */
	struct child *by_pid[CHILD_BUCKETS];
	unsigned nchildren;
	struct agt_agent_stats st;
};

struct agt_agent *agt_agent_new(struct agt_emitter *em, struct agt_proc_facts facts)
{
	struct agt_agent *a = calloc(1, sizeof(*a));

	if (a) {
		a->em = em;
		a->facts = facts;
	}
	return a;
}

static void emit(struct agt_agent *a, struct agt_span *s)
{
	agt_emit(a->em, s);
}

static const struct agt_proc_info *target_of(struct agt_agent *a, uint32_t pid)
{
	return a->facts.target(a->facts.ctx, pid);
}

static char *capped(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return strndup(s ? s : "", n > TEXT_CAP ? TEXT_CAP : n);
}

/* Remember a step or tool call of the conversation, in order (at most 64). */
static void seq_add(struct conv *c, const char *name)
{
	if (c->nseq < (int)AGT_ARRAY_SIZE(c->seq) && (c->seq[c->nseq] = strdup(name)))
		c->nseq++;
}

static void conv_free(struct conv *c)
{
	for (int i = 0; i < c->npending; i++)
		free(c->pending[i].args);
	for (int i = 0; i < c->nseq; i++)
		free(c->seq[i]);
	free(c->final_answer);
	free(c);
}

static void in_conv(struct agt_span *s, const struct conv *c, uint64_t parent)
{
	memcpy(s->trace_id, c->trace_id, sizeof(s->trace_id));
	s->parent_id = parent;
	memcpy(s->workflow_id, c->workflow_id, sizeof(s->workflow_id));
}

static struct child **child_slot(struct agt_agent *a, uint32_t pid)
{
	struct child **pp = &a->by_pid[(pid * 2654435761u) % CHILD_BUCKETS];

	while (*pp && (*pp)->pid != pid)
		pp = &(*pp)->hnext;
	return pp;
}

static struct child *child_of_pid(struct agt_agent *a, uint32_t pid)
{
	return *child_slot(a, pid);
}

void agt_agent_failure(struct agt_agent *a, const struct agt_span *parent, const char *name,
		       const char *msg)
{
	struct agt_span e;

	memset(&e, 0, sizeof(e));
	e.kind = AGT_SPAN_ERROR;
	e.trace_type = "error";
	e.status = AGT_STATUS_ERROR;
	e.start_ns = e.end_ns = parent->end_ns;
	e.pid = parent->pid;
	e.tid = parent->tid;
	e.proc = parent->proc;
	memcpy(e.trace_id, parent->trace_id, sizeof(e.trace_id));
	memcpy(e.workflow_id, parent->workflow_id, sizeof(e.workflow_id));
	e.parent_id = parent->span_id;
	e.span_id = agt_emit_id(a->em);
	snprintf(e.name, sizeof(e.name), "%s", name);
	snprintf(e.message, sizeof(e.message), "%s", msg);
	emit(a, &e);
}

/* Emit one ended child (and nothing else): an exec span under parent in trace. */
static void emit_child(struct agt_agent *a, struct child *ch, const uint8_t trace[16],
		       uint64_t parent, const char *workflow, uint64_t ts)
{
	struct agt_span s;
	int code = (ch->status >> 8) & 0xff, sig = ch->status & 0x7f;

	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_EXEC;
	s.trace_type = "state_change";
	s.start_ns = ch->start_ns;
	s.end_ns = ch->ended ? ch->end_ns : ts;
	s.pid = ch->pid;
	s.proc = &ch->proc;
	memcpy(s.trace_id, trace, 16);
	s.parent_id = parent;
	s.span_id = ch->span_id;
	if (workflow)
		snprintf(s.workflow_id, sizeof(s.workflow_id), "%s", workflow);
	char *cmd = agt_emit_redact(a->em, ch->cmd[0] ? ch->cmd : ch->proc.comm);

	snprintf(s.name, sizeof(s.name), "exec %.150s", cmd ? cmd : "");
	free(cmd);
	s.exec.command_line = ch->cmd;
	s.exec.ppid = ch->ppid;
	if (!ch->ended) {
		s.status = AGT_STATUS_UNFINISHED;
	} else if (ch->has_status) {
		s.has_exit = 1;
		s.exit_code = code;
		s.exit_signal = sig;
		if (sig)
			snprintf(s.message, sizeof(s.message), "killed by signal %d", sig);
		else
			snprintf(s.message, sizeof(s.message), "exit %d", code);
		if (code || sig)
			s.status = AGT_STATUS_ERROR;
	}
	a->st.commands++;
	emit(a, &s);
	if (s.status == AGT_STATUS_ERROR)
		agt_agent_failure(a, &s, "error command failed", s.message);
}

/* Could a tool call still open in one of root's conversations claim this command? */
static int claimable(struct agt_agent *a, const struct child *ch)
{
	for (struct conv *c = a->convs; c; c = c->next)
		for (int i = 0; c->pid == ch->root && i < c->npending; i++)
			if (c->pending[i].start_ns <= ch->start_ns)
				return 1;
	return 0;
}

static void free_child(struct agt_agent *a, struct child *ch)
{
	struct child **hp = child_slot(a, ch->pid);

	if (*hp == ch)
		*hp = ch->hnext;
	free(ch);
	a->nchildren--;
}

/* Emit top (already unlinked) and everything below it, each process under the one that started
 * it and top under parent, deepest first (a root span comes after everything under it, as the
 * tree exporter wants); then free them. Iterative, so a deep tree costs no stack: at most the
 * records there are, each visited once. */
static void emit_subtree(struct agt_agent *a, struct child *top, const uint8_t trace[16],
			 uint64_t parent, const char *workflow, uint64_t ts)
{
	struct child *ch = top;

	for (;;) {
		while (ch->kids) /* down to a leaf */
			ch = ch->kids;
		struct child *up = ch == top ? NULL : ch->up;

		emit_child(a, ch, trace, up ? up->span_id : parent, workflow, ts);
		if (up)
			up->kids = ch->sib; /* a leaf is always the first of its siblings here */
		free_child(a, ch);
		if (!up)
			return;
		ch = up->kids ? up->kids : up;
	}
}

/* Emit, under parent, the commands the target `root` started on thread tid (0: any) in [from,
 * to] (0: open), with everything they started in turn nested below them; then forget them.
 * standalone: skip commands an open tool call may still claim. Each pass removes what it
 * emits, so the loop ends. */
static void emit_children(struct agt_agent *a, uint32_t root, uint32_t tid, uint64_t from,
			  uint64_t to, const uint8_t trace[16], uint64_t parent,
			  const char *workflow, int standalone, uint64_t ts)
{
	struct child **pp = &a->tops;

	while (*pp) {
		struct child *ch = *pp;

		if (ch->root == root && (!tid || ch->ptid == tid) &&
		    (!from || ch->start_ns >= from) && (!to || ch->start_ns <= to) &&
		    (!standalone || (ch->ended && !claimable(a, ch)))) {
			*pp = ch->sib;
			ch->sib = NULL;
			emit_subtree(a, ch, trace, parent, workflow, ts);
		} else {
			pp = &ch->sib;
		}
	}
}

static void new_trace(struct agt_agent *a, uint8_t trace[16])
{
	agt_emit_trace_id(a->em, trace);
}

static void emit_tool(struct agt_agent *a, struct conv *c, struct pending *pd, uint64_t end,
		      const struct agt_tool_result *res, uint32_t tid)
{
	struct agt_span s;
	char *out = res ? capped(res->content) : NULL, *in = capped(pd->args);

	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_TOOL;
	s.trace_type = "tool_call";
	s.start_ns = pd->start_ns;
	s.end_ns = end > pd->start_ns ? end : pd->start_ns;
	s.pid = c->pid;
	s.tid = tid;
	s.proc = c->proc;
	in_conv(&s, c, c->root_id);
	s.span_id = pd->span_id;
	snprintf(s.name, sizeof(s.name), "execute_tool %.120s", pd->name);
	s.tool.name = pd->name;
	s.tool.id = pd->id;
	s.tool.input = in;
	s.tool.output = out;
	s.tool.success = res && !res->is_error;
	s.tool.events = pd->events;
	s.tool.nevents = pd->nevents;
	s.status = !res ? AGT_STATUS_UNFINISHED : res->is_error ? AGT_STATUS_ERROR : AGT_STATUS_OK;
	/* What the agent's processes started while the tool ran hangs below it. */
	emit_children(a, c->pid, tid, pd->start_ns, s.end_ns, c->trace_id, s.span_id,
		      c->workflow_id, 0, end);
	c->tools++;
	seq_add(c, s.name);
	a->st.tool_calls++;
	emit(a, &s);
	if (res && res->is_error)
		agt_agent_failure(a, &s, "error tool_result",
				  "the tool's result is marked as an error");
	free(in);
	free(out);
	free(pd->args);
	pd->args = NULL;
}

static void conv_end(struct agt_agent *a, struct conv **pp, uint64_t ts, int finished)
{
	struct conv *c = *pp;
	struct agt_span s;

	for (int i = 0; i < c->npending; i++) /* calls whose results never came */
		emit_tool(a, c, &c->pending[i], ts, NULL, 0);
	c->npending = 0;
	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_COT;
	s.trace_type = "cot_process";
	s.start_ns = c->start_ns;
	s.end_ns = finished ? c->last_ns : ts;
	s.pid = c->pid;
	s.proc = c->proc;
	in_conv(&s, c, 0);
	s.span_id = c->root_id;
	snprintf(s.name, sizeof(s.name), "conversation %.120s", c->model);
	s.status = finished ? AGT_STATUS_OK : AGT_STATUS_UNFINISHED;
	s.cot.steps = c->steps;
	s.cot.tool_calls = c->tools;
	s.cot.input_tokens = c->in_tokens;
	s.cot.output_tokens = c->out_tokens;
	s.cot.final_answer = c->final_answer;
	s.cot.sequence = (const char *const *)c->seq;
	s.cot.nsequence = c->nseq;
	s.cot.model = c->model;
	s.cot.provider = c->provider;
	emit(a, &s);
	*pp = c->next;
	conv_free(c);
	a->nconvs--;
}

static struct conv **find_conv(struct agt_agent *a, uint32_t pid, uint64_t prefix)
{
	struct conv **pp = &a->convs;

	while (*pp && ((*pp)->pid != pid || (*pp)->prefix != prefix))
		pp = &(*pp)->next;
	return pp;
}

/* The pending call a result answers, or -1. A result with an id answers the call of that id;
 * one without an id answers a call of its name (any call when it has no name either). A result
 * the parser tied to a synthetic call id (the API's call had none, gemini.c) answers the call
 * with that id. */
static int answered(const struct conv *c, const struct agt_tool_result *res)
{
	for (int i = 0; i < c->npending; i++) {
		const struct pending *pd = &c->pending[i];

		if (res->id[0] && !strcmp(pd->id, res->id))
			return i;
		if (res->synthetic_id[0] && pd->synthetic && !strcmp(pd->id, res->synthetic_id))
			return i;
		if (!res->id[0] && !res->synthetic_id[0] &&
		    (!res->name[0] || !strcmp(pd->name, res->name)))
			return i;
	}
	return -1;
}

static void close_tool(struct agt_agent *a, struct conv *c, int k,
		       const struct agt_tool_result *res, const struct agt_span *step)
{
	/* The id the agent assigned to a call that came without one is the call's id from now. */
	if (c->pending[k].synthetic && res->id[0])
		snprintf(c->pending[k].id, sizeof(c->pending[k].id), "%s", res->id);
	emit_tool(a, c, &c->pending[k], step->start_ns, res, step->tid);
	c->pending[k] = c->pending[--c->npending];
}

/* Results the request carries for calls still pending: those tool calls are over. A result
 * that matches none is one replayed from earlier turns, or answers a call whose id the parser
 * made up and could not tie the result to (the agent rewrote its history): those, newest first
 * (a request's new results come last), take a pending call of that made-up kind by name. */
static void pair_results(struct agt_agent *a, struct conv *c, const struct agt_llm *l,
			 const struct agt_span *step)
{
	unsigned char left[256];
	int nleft = 0;

	for (int r = 0; r < l->nresults; r++) {
		int k = answered(c, &l->results[r]);

		if (k >= 0)
			close_tool(a, c, k, &l->results[r], step);
		else if (nleft < (int)sizeof(left))
			left[nleft++] = (unsigned char)r;
	}
	while (nleft-- > 0) {
		const struct agt_tool_result *res = &l->results[left[nleft]];

		if (!res->id[0] && !res->synthetic_id[0])
			continue; /* by name already, above */
		for (int i = 0; i < c->npending; i++)
			if (c->pending[i].synthetic &&
			    (!res->name[0] || !strcmp(c->pending[i].name, res->name))) {
				close_tool(a, c, i, res, step);
				break;
			}
	}
}

void agt_agent_step(struct agt_agent *a, const struct agt_proc_info *proc, struct agt_span *step,
		    const struct agt_llm *l)
{
	struct conv **pp = find_conv(a, proc->pid, l->prefix_hash), *c = *pp;

	if (!c) {
		if (a->nconvs >= MAX_CONVS) { /* close the oldest */
			struct conv **oldest = &a->convs;

			for (struct conv **q = &a->convs; *q; q = &(*q)->next)
				if ((*q)->last_ns < (*oldest)->last_ns)
					oldest = q;
			a->st.convs_evicted++;
			conv_end(a, oldest, step->start_ns, 0);
		}
		c = calloc(1, sizeof(*c));
		if (!c)
			return;
		c->pid = proc->pid;
		c->proc = proc;
		c->prefix = l->prefix_hash;
		new_trace(a, c->trace_id);
		c->root_id = agt_emit_id(a->em);
		c->start_ns = step->start_ns;
		snprintf(c->workflow_id, sizeof(c->workflow_id), "%016llx",
			 (unsigned long long)agt_fnv1a(c->trace_id, 16, l->prefix_hash));
		c->next = a->convs;
		a->convs = c;
		a->nconvs++;
		a->st.conversations++;
	}
	pair_results(a, c, l, step);
	{ /* commands that ended before this step, and no open tool call can claim, stand alone */
		uint8_t t[16];

		new_trace(a, t);
		emit_children(a, proc->pid, 0, 0, step->start_ns, t, 0, NULL, 1, step->start_ns);
	}
	in_conv(step, c, c->root_id);
	c->steps++;
	seq_add(c, step->name);
	c->last_ns = step->end_ns;
	if (l->resp_model[0] || l->req_model[0])
		snprintf(c->model, sizeof(c->model), "%s",
			 l->req_model[0] ? l->req_model : l->resp_model);
	c->provider = l->provider;
	if (l->input_tokens > 0)
		c->in_tokens += l->input_tokens;
	if (l->output_tokens > 0)
		c->out_tokens += l->output_tokens;
}

void agt_agent_step_done(struct agt_agent *a, const struct agt_span *step, const struct agt_llm *l)
{
	struct conv **pp = find_conv(a, step->pid, l->prefix_hash), *c = *pp;

	if (!c || step->status != AGT_STATUS_OK)
		return; /* unanswered or failed: the agent may retry within the conversation */
	for (int i = 0; i < l->ncalls && c->npending < MAX_PENDING; i++) {
		struct pending *pd = &c->pending[c->npending++];

		snprintf(pd->id, sizeof(pd->id), "%s", l->calls[i].id);
		snprintf(pd->name, sizeof(pd->name), "%s", l->calls[i].name);
		pd->synthetic = l->calls[i].synthetic_id;
		pd->args = strdup(l->calls[i].arguments ? l->calls[i].arguments : "");
		pd->start_ns = step->end_ns;
		pd->span_id = agt_emit_id(a->em);
		pd->tid = step->tid;
		pd->nevents = 0;
	}
	if (!l->ncalls) { /* a final answer: the chain of thought is complete */
		free(c->final_answer);
		c->final_answer = capped(l->text);
		conv_end(a, pp, step->end_ns, 1);
	}
}

void agt_agent_fork(struct agt_agent *a, uint32_t pid, uint32_t ppid, uint32_t ptid, uint64_t ts)
{
	struct child *ch, *up = child_of_pid(a, ppid);
	uint32_t root = up ? up->root : ppid;

	if (!up && !target_of(a, ppid))
		return;
	if (a->nchildren >= MAX_CHILDREN || !(ch = calloc(1, sizeof(*ch)))) {
		a->st.children_dropped++;
		return;
	}
	ch->pid = pid;
	ch->ppid = ppid;
	ch->ptid = ptid;
	ch->root = root;
	ch->span_id = agt_emit_id(a->em);
	ch->start_ns = ts;
	ch->proc.pid = (int)pid;
	/* Until it execs, a child runs its parent's program. */
	const struct agt_proc_info *pp = up ? &up->proc : target_of(a, ppid);

	if (pp) {
		snprintf(ch->proc.comm, sizeof(ch->proc.comm), "%s", pp->comm);
		snprintf(ch->proc.exe, sizeof(ch->proc.exe), "%s", pp->exe);
		snprintf(ch->proc.session_id, sizeof(ch->proc.session_id), "%s", pp->session_id);
		ch->proc.id = pp->id; /* same container and pod */
	}
	ch->up = up;
	if (up) {
		ch->sib = up->kids;
		up->kids = ch;
	} else {
		ch->sib = a->tops;
		a->tops = ch;
	}
	struct child **hp = child_slot(a, pid);

	if (*hp) { /* a PID reused while its old record waits: the old one is over */
		struct child *old = *hp;

		*hp = old->hnext;
		old->hnext = NULL;
		old->pid = 0; /* still emitted with its tree, no longer found by pid */
	}
	ch->hnext = a->by_pid[(pid * 2654435761u) % CHILD_BUCKETS];
	a->by_pid[(pid * 2654435761u) % CHILD_BUCKETS] = ch;
	a->nchildren++;
}

void agt_agent_exec(struct agt_agent *a, uint32_t pid, const char *filename, const char *argv,
		    uint32_t argv_len, uint64_t ts)
{
	struct child *ch = child_of_pid(a, pid);
	const char *base;
	uint32_t n = argv_len < AGT_ARGV_LEN ? argv_len : AGT_ARGV_LEN;

	(void)ts;
	if (!ch)
		return;
	/* argv: NUL-separated, as in /proc/PID/cmdline; shown space-separated. */
	for (uint32_t i = 0; i < n; i++)
		ch->cmd[i] = argv[i] ? argv[i] : ' ';
	while (n && ch->cmd[n - 1] == ' ')
		n--;
	ch->cmd[n] = 0;
	snprintf(ch->exe, sizeof(ch->exe), "%s", filename);
	snprintf(ch->proc.exe, sizeof(ch->proc.exe), "%s", filename);
	base = strrchr(filename, '/');
	snprintf(ch->proc.comm, sizeof(ch->proc.comm), "%s", base ? base + 1 : filename);
}

int agt_agent_exit(struct agt_agent *a, uint32_t pid, uint32_t wait_status, uint64_t ts)
{
	struct child *ch = child_of_pid(a, pid);

	if (!ch)
		return 0;
	ch->ended = 1;
	ch->end_ns = ts;
	ch->status = wait_status;
	ch->has_status = 1;
	return 1;
}

const struct agt_proc_info *agt_agent_root_proc(struct agt_agent *a, uint32_t pid)
{
	struct child *ch = child_of_pid(a, pid);

	return ch ? target_of(a, ch->root) : NULL;
}

void agt_agent_close_proc(struct agt_agent *a, const struct agt_proc_info *proc, uint64_t ts)
{
	for (struct conv **pp = &a->convs; *pp;) {
		if ((*pp)->proc == proc)
			conv_end(a, pp, ts, 0);
		else
			pp = &(*pp)->next;
	}
}

void agt_agent_close(struct agt_agent *a, uint32_t pid, uint64_t ts)
{
	struct conv **pp = &a->convs;

	while (*pp) {
		if (!pid || (*pp)->pid == pid)
			conv_end(a, pp, ts, 0);
		else
			pp = &(*pp)->next;
	}
	/* Commands left over belong to no tool call: each its own trace. Every pass takes one
	 * command tree off the list, so this ends. */
	for (struct child **pp = &a->tops; *pp;) {
		struct child *ch = *pp;
		uint8_t t[16];

		if (pid && ch->root != pid) {
			pp = &ch->sib;
			continue;
		}
		*pp = ch->sib;
		ch->sib = NULL;
		new_trace(a, t);
		emit_subtree(a, ch, t, 0, NULL, ts);
	}
}

/* The tool call of pid open at ts: asked for on thread tid first, else the latest asked. */
static struct pending *open_tool(struct agt_agent *a, uint32_t pid, uint32_t tid, uint64_t ts,
				 struct conv **conv)
{
	struct pending *best = NULL;

	for (struct conv *c = a->convs; c; c = c->next)
		for (int i = 0; c->pid == pid && i < c->npending; i++) {
			struct pending *pd = &c->pending[i];

			if (pd->start_ns > ts)
				continue;
			if (!best || (pd->tid == tid && best->tid != tid) ||
			    ((pd->tid == tid) == (best->tid == tid) &&
			     pd->start_ns > best->start_ns)) {
				best = pd;
				*conv = c;
			}
		}
	return best;
}

int agt_agent_tool_at(struct agt_agent *a, uint32_t pid, uint32_t tid, uint64_t ts,
		      struct agt_span *s)
{
	struct conv *c = NULL;
	struct pending *pd = open_tool(a, pid, tid, ts, &c);

	if (!pd)
		return 0;
	in_conv(s, c, pd->span_id);
	s->depth = 2;
	return 1;
}

/* What a tool does, as Python's audit hooks see it: processes, network, files. */
static int interesting_audit(const char *ev)
{
	static const char *const prefixes[] = {"subprocess.",	 "os.system",
					       "os.exec",	 "os.posix_spawn",
					       "os.spawn",	 "os.fork",
					       "os.kill",	 "os.remove",
					       "os.rename",	 "os.rmdir",
					       "os.mkdir",	 "shutil.",
					       "socket.connect", "socket.getaddrinfo",
					       "urllib.Request", "http.client.connect",
					       "open",		 "ctypes.dlopen",
					       "webbrowser.open"};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(ev, prefixes[i], strlen(prefixes[i])) &&
		    (strcmp(prefixes[i], "open") || !ev[4]))
			return 1;
	return 0;
}

void agt_agent_audit(struct agt_agent *a, uint32_t pid, uint32_t tid, uint64_t ts, const char *ev)
{
	struct conv *c = NULL;
	struct pending *pd;

	if (!interesting_audit(ev) || !(pd = open_tool(a, pid, tid, ts, &c)))
		return; /* outside tool calls, or interpreter chatter (imports, compile, ...) */
	if (pd->nevents == MAX_EVENTS) {
		a->st.events_over_cap++;
		return;
	}
	snprintf(pd->events[pd->nevents].name, sizeof(pd->events[0].name), "%s", ev);
	pd->events[pd->nevents++].ts_ns = ts;
}

void agt_agent_expire(struct agt_agent *a, uint64_t now, uint64_t idle_ns)
{
	struct conv **pp = &a->convs;

	while (*pp) {
		if (now > (*pp)->last_ns + idle_ns) {
			a->st.convs_idle++;
			conv_end(a, pp, now, 0);
		} else {
			pp = &(*pp)->next;
		}
	}
}

void agt_agent_open(const struct agt_agent *a, unsigned *convs, unsigned *pending)
{
	*convs = a->nconvs;
	*pending = 0;
	for (const struct conv *c = a->convs; c; c = c->next)
		*pending += c->npending;
}

const struct agt_agent_stats *agt_agent_stats(const struct agt_agent *a)
{
	return &a->st;
}

void agt_agent_free(struct agt_agent *a)
{
	if (!a)
		return;
	while (a->convs) {
		struct conv *c = a->convs;

		a->convs = c->next;
		conv_free(c);
	}
	while (a->tops) { /* every record is on the tree: take one, its kids become tops */
		struct child *ch = a->tops, *k = ch->kids;

		a->tops = ch->sib;
		while (k) {
			struct child *next = k->sib;

			k->sib = a->tops;
			a->tops = k;
			k = next;
		}
		free(ch);
	}
	free(a);
}
