/* The agent model: conversations, the tool calls in them, the agents they hand over to, and what
 * the agent's processes did while each tool ran.
 *
 * Which conversation a step belongs to. The strongest link is continuity: a request that carries
 * the result of call X continues the conversation that asked for X (pending, or asked earlier
 * and replayed), and a Responses request naming previous_response_id continues the conversation
 * that got that response. Only a request with no such link is placed by its opening (the
 * prefix hash: the text of the system prompt and the first user message, see llm.h), and only in
 * a conversation that waits for no tool result (one that does would get its results in the next
 * request): so two conversations with the same opening stay apart. Ties go to the conversation
 * whose last step came on the same thread.
 *
 * Sub-agents. A new conversation whose opening is what an open tool call was asked (its
 * arguments' text; a task or agent tool of its own name too) is that tool's sub-agent: an
 * invoke_agent span under the tool call, in its trace, with its own steps. A conversation that
 * continues with another system prompt right after a tool call ended (a handoff) goes on as an
 * invoke_agent span under that tool call: its later steps and tool calls hang below it.
 *
 * What a tool did. Commands (followed descendants of the agent), HTTP and MCP calls made while
 * tool calls are open belong to one of them whichever thread started them; with several open at
 * once, what the tool was asked to run decides first (the command text in its arguments against
 * the exec'd argv; the MCP tool's name and arguments), then the thread that asked for it, then
 * the latest opened. A followed process that makes LLM calls itself (an agent that relaunched
 * itself as a child) is the agent too: what it starts is attributed the same way. A tool fails
 * when its result says so, or when the command it was asked to run exited non-zero; what that
 * command started keeps its own exit codes on its own spans. */
#include "trace/agent.h"
#include "agtrace.h"
#include "base/util.h"
#include "trace/files.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONVS 1024
#define MAX_CHILDREN 4096
#define MAX_PENDING 64
#define MAX_EVENTS 32
#define MAX_HINTS 8
#define MAX_FRAMES 8
#define KNOWN_IDS 64
#define RESP_IDS 16
#define EXEC_EVENTS 8
#define TEXT_CAP 4096 /* bytes of a tool's input/output or a final answer kept */

struct pending {
	char id[128], name[128];
	int synthetic; /* id made up by the parser: the API gave the call none */
	char *args;
	char *hints[MAX_HINTS]; /* the strings of its arguments: what it was asked to run */
	uint32_t hint_len[MAX_HINTS];
	uint16_t hint_gram[MAX_HINTS]; /* gram_hash of its first 8 bytes (8 or more) */
	int nhints;
	int agentish; /* its name says agent or task (a tool that starts sub-agents) */
	uint64_t start_ns;
	uint64_t span_id; /* fixed when the model asks, so what happens meanwhile can point at it */
	uint64_t parent; /* the span it hangs under: the conversation, or an agent handed over to */
	uint32_t tid;	 /* the thread that got the request for it */
	struct agt_span_event *events; /* MAX_EVENTS of them, allocated at the first */
	int nevents;
	struct agt_fileset *files; /* the files the agent's processes changed meanwhile */
};

/* An agent the conversation was handed over to: an invoke_agent span under the tool call. */
struct frame {
	uint64_t span_id, parent_id, start_ns;
	char name[128];
	int steps, tools;
	int64_t in_tokens, out_tokens;
};

struct conv {
	struct conv *next;
	uint32_t pid;
	uint64_t prefix, system_hash;
	uint8_t trace_id[16];
	uint64_t root_id;
	char workflow_id[17];
	uint64_t start_ns, last_ns;
	uint32_t last_tid;
	int steps, tools;
	int64_t in_tokens, out_tokens;
	char model[128];
	const char *provider;
	char *final_answer;
	char *seq[64]; /* the names of its steps and tool calls, in order (the first 64) */
	int nseq;
	/* Its open tool calls, up to MAX_PENDING: grown as calls come (most conversations have
	 * none or a few, and a new one is made for every independent request). */
	struct pending *pending;
	int npending, pcap;
	const struct agt_proc_info *proc;
	uint64_t known[KNOWN_IDS]; /* hashes of the call ids it asked for (a ring) */
	int nknown;
	uint64_t resp_ids[RESP_IDS]; /* hashes of its response ids (a ring) */
	int nresp;
	/* A sub-agent: the conversation and tool call it was started from. */
	struct conv *parent;
	uint64_t parent_span;
	char agent_name[128];
	struct frame frames[MAX_FRAMES]; /* agents handed over to, innermost last */
	int nframes;
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
	int ended, has_status, execd;
	int agent; /* it made LLM calls: an agent process (what it starts is the agent's) */
	int agent_below; /* an agent process is among its descendants */
	uint32_t status;
	char cmd[AGT_ARGV_LEN + 1];  /* the first command line, space-separated */
	char argv[AGT_ARGV_LEN + 1]; /* the same, NUL-separated */
	uint32_t argv_len;
	char exe[128];
	struct agt_span_event events[EXEC_EVENTS]; /* later execs */
	int nevents;
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
	struct agt_files *files; /* file lineage; NULL when not asked for */
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

/* At most TEXT_CAP bytes of s, redacted before it is cut (a secret across the cut would keep
 * its first part, which no rule recognises alone), and not cut inside a UTF-8 sequence. */
static char *capped(struct agt_agent *a, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	char *r;

	if (n <= TEXT_CAP)
		return strdup(s ? s : "");
	if (!(r = agt_emit_redact(a->em, s)))
		return NULL;
	n = strlen(r);
	if (n > TEXT_CAP) {
		n = TEXT_CAP;
		while (n && ((unsigned char)r[n] & 0xC0) == 0x80)
			n--;
		r[n] = 0;
	}
	return r;
}

static uint64_t hash_str(const char *s)
{
	return agt_fnv1a(s, strlen(s), 0);
}

/* Remember a step or tool call of the conversation, in order (at most 64). */
static void seq_add(struct conv *c, const char *name)
{
	if (c->nseq < (int)AGT_ARRAY_SIZE(c->seq) && (c->seq[c->nseq] = strdup(name)))
		c->nseq++;
}

static void pending_free(struct agt_agent *a, struct pending *pd)
{
	agt_files_drop(a->files, &pd->files);
	free(pd->args);
	pd->args = NULL;
	free(pd->events);
	pd->events = NULL;
	pd->nevents = 0;
	for (int i = 0; i < pd->nhints; i++)
		free(pd->hints[i]);
	pd->nhints = 0;
}

static void conv_free(struct agt_agent *a, struct conv *c)
{
	for (int i = 0; i < c->npending; i++)
		pending_free(a, &c->pending[i]);
	free(c->pending);
	for (int i = 0; i < c->nseq; i++)
		free(c->seq[i]);
	free(c->final_answer);
	free(c);
}

/* The span steps and tool calls hang under now: the agent handed over to last, or the root. */
static uint64_t conv_parent(const struct conv *c)
{
	return c->nframes ? c->frames[c->nframes - 1].span_id : c->root_id;
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

/* ---- what a tool was asked to run, against what ran ---- */

/* Collect the strings of a JSON value (arrays of strings also joined by spaces: an argv). */
static void collect_hints(struct pending *pd, const cJSON *v, int depth)
{
	const cJSON *it;

	if (pd->nhints >= MAX_HINTS || depth > 4)
		return;
	if (cJSON_IsString(v)) {
		if (strlen(v->valuestring) >= 2)
			pd->hints[pd->nhints++] = strdup(v->valuestring);
		return;
	}
	if (cJSON_IsArray(v)) {
		char *joined = NULL;
		int all = cJSON_GetArraySize(v) > 0;

		cJSON_ArrayForEach(it, v) all &= cJSON_IsString(it);
		if (all) {
			cJSON_ArrayForEach(it, v)
			{
				agt_llm_append(&joined, joined ? " " : "");
				agt_llm_append(&joined, it->valuestring);
			}
			if (joined && pd->nhints < MAX_HINTS)
				pd->hints[pd->nhints++] = joined;
			else
				free(joined);
			/* the last element: what `sh -c X` or `bash -lc X` was asked to run */
			if (pd->nhints < MAX_HINTS)
				collect_hints(pd, cJSON_GetArrayItem(v, cJSON_GetArraySize(v) - 1),
					      depth + 1);
			return;
		}
	}
	cJSON_ArrayForEach(it, v) collect_hints(pd, it, depth + 1);
}

static uint32_t gram_hash(const char *p);

/* Its hints (and what matching a new conversation against them looks at first), from its
 * arguments and name. */
static void set_hints(struct pending *pd)
{
	cJSON *j = pd->args ? cJSON_Parse(pd->args) : NULL;
	char lname[128];
	size_t i;

	if (j)
		collect_hints(pd, j, 0);
	else if (pd->args && strlen(pd->args) >= 2) /* a custom tool's free text */
		pd->hints[pd->nhints++] = strdup(pd->args);
	cJSON_Delete(j);
	for (int h = 0; h < pd->nhints; h++) {
		if (!pd->hints[h]) { /* out of memory: a hint that matches nothing */
			pd->nhints = h;
			break;
		}
		pd->hint_len[h] = (uint32_t)strlen(pd->hints[h]);
		pd->hint_gram[h] = pd->hint_len[h] >= 8 ? (uint16_t)gram_hash(pd->hints[h]) : 0;
	}
	for (i = 0; pd->name[i] && i + 1 < sizeof(lname); i++)
		lname[i] = (char)tolower((unsigned char)pd->name[i]);
	lname[i] = 0;
	pd->agentish = strstr(lname, "agent") || strstr(lname, "task");
}

/* How well a command line matches what pd was asked to run: 2 when one of its strings is one
 * of the argv elements, 1 when one (4 bytes or more) occurs in the command line, else 0. */
static int argv_match(const struct pending *pd, const char *argv, uint32_t len, const char *cmd)
{
	int best = 0;

	for (int h = 0; h < pd->nhints && best < 2; h++) {
		const char *hint = pd->hints[h];

		for (uint32_t i = 0; i < len; i += (uint32_t)strlen(argv + i) + 1)
			if (!strcmp(argv + i, hint) && strlen(hint) >= 2) {
				best = 2;
				break;
			}
		if (!best && strlen(hint) >= 4 && strstr(cmd, hint))
			best = 1;
	}
	return best;
}

/* The command's own first command line, or that of a process it started (a shell's). */
static int command_match(const struct pending *pd, const struct child *ch)
{
	int m = ch->execd ? argv_match(pd, ch->argv, ch->argv_len, ch->cmd) : 0;

	for (const struct child *k = ch->kids; k && m < 2; k = k->sib)
		if (k->execd) {
			int km = argv_match(pd, k->argv, k->argv_len, k->cmd);

			m = km > m ? km : m;
		}
	return m;
}

/* The open tool call that a command belongs to: of the conversations of its target, a call
 * opened before it started; what the call was asked to run first, then the thread, then the
 * latest opened. *how: the content match. */
static struct pending *command_owner(struct agt_agent *a, const struct child *ch, int *how)
{
	struct pending *best = NULL;
	int best_score = -1;

	for (struct conv *c = a->convs; c; c = c->next)
		for (int i = 0; c->pid == ch->root && i < c->npending; i++) {
			struct pending *pd = &c->pending[i];
			int m, score;

			if (pd->start_ns > ch->start_ns)
				continue;
			m = command_match(pd, ch);
			score = m * 4 + (pd->tid == ch->ptid ? 2 : 0);
			if (score > best_score ||
			    (score == best_score && pd->start_ns > best->start_ns)) {
				best = pd;
				best_score = score;
				*how = m;
			}
		}
	return best;
}

/* ---- commands ---- */

/* Emit one ended child (and nothing else): an exec span under parent in trace. A command in a
 * tool call gets no error span of its own: the tool call's outcome says whether it failed. */
static void emit_child(struct agt_agent *a, struct child *ch, const uint8_t trace[16],
		       uint64_t parent, const char *workflow, uint64_t ts, int in_tool)
{
	struct agt_span s;
	struct agt_span_event ev[EXEC_EVENTS];
	int code = (ch->status >> 8) & 0xff, sig = ch->status & 0x7f;

	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_EXEC;
	s.trace_type = "state_change";
	s.start_ns = ch->start_ns;
	s.end_ns = ch->ended ? ch->end_ns : ts;
	s.pid = ch->pid;
	s.proc = &ch->proc;
	s.owner = a->facts.target ? a->facts.target(a->facts.ctx, ch->root) : NULL;
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
	for (int i = 0; i < ch->nevents; i++) { /* argv in an event: redacted here */
		char *r = agt_emit_redact(a->em, ch->events[i].detail);

		ev[i] = ch->events[i];
		snprintf(ev[i].detail, sizeof(ev[i].detail), "%s", r ? r : "");
		free(r);
	}
	s.exec.events = ev;
	s.exec.nevents = ch->nevents;
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
	if (s.status == AGT_STATUS_ERROR && !in_tool)
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
			 uint64_t parent, const char *workflow, uint64_t ts, int in_tool)
{
	struct child *ch = top;

	for (;;) {
		while (ch->kids) /* down to a leaf */
			ch = ch->kids;
		struct child *up = ch == top ? NULL : ch->up;

		emit_child(a, ch, trace, up ? up->span_id : parent, workflow, ts, in_tool);
		if (up)
			up->kids = ch->sib; /* a leaf is always the first of its siblings here */
		free_child(a, ch);
		if (!up)
			return;
		ch = up->kids ? up->kids : up;
	}
}

/* Which commands a pass takes: those a tool call owns, or those no tool call can claim. */
struct claim {
	uint32_t root;
	uint64_t from, to;	     /* start within [from, to] (0: open) */
	const struct pending *owner; /* NULL: standalone */
	const uint8_t *trace;
	uint64_t parent;
	const char *workflow;
	uint64_t ts;
	int failed; /* a command the owner was asked to run exited non-zero */
	uint32_t failed_status;
	char failed_cmd[AGT_ARGV_LEN + 1];
};

/* One list of commands: what the target started (tops), or what an agent process started
 * (agents: 1); below a plain process only the way down to agent processes is walked, its other
 * children staying with it. Lists below are walked first (depth bounded). */
static void claim_list(struct agt_agent *a, struct child **list, struct claim *k, int depth,
		       int agents)
{
	struct child **pp = list;

	while (*pp) {
		struct child *ch = *pp;
		int take, how = 0;

		if (ch->root != k->root) {
			pp = &ch->sib;
			continue;
		}
		if ((ch->agent || ch->agent_below) && depth < 8)
			claim_list(a, &ch->kids, k, depth + 1, ch->agent);
		if (!agents) {
			pp = &ch->sib;
			continue;
		}
		/* An agent process goes only once it ended (what it started is claimed by then): a
		 * relaunched agent stands alone; one a tool ran (a sub-agent's CLI) is the tool's. */
		if (ch->agent && !ch->ended) {
			take = 0;
		} else if (k->owner) {
			take = (!k->from || ch->start_ns >= k->from) &&
			       (!k->to || ch->start_ns <= k->to) &&
			       command_owner(a, ch, &how) == k->owner;
		} else {
			take = (!k->to || ch->start_ns <= k->to) && ch->ended && !claimable(a, ch);
		}
		if (!take) {
			pp = &ch->sib;
			continue;
		}
		if (how && ch->ended && ch->status && !k->failed) {
			k->failed = 1;
			k->failed_status = ch->status;
			snprintf(k->failed_cmd, sizeof(k->failed_cmd), "%s", ch->cmd);
		}
		*pp = ch->sib;
		ch->sib = NULL;
		if (k->owner) {
			emit_subtree(a, ch, k->trace, k->parent, k->workflow, k->ts, 1);
		} else {
			uint8_t t[16];

			agt_emit_trace_id(a->em, t);
			emit_subtree(a, ch, t, 0, NULL, k->ts, 0);
		}
	}
}

static void new_trace(struct agt_agent *a, uint8_t trace[16])
{
	agt_emit_trace_id(a->em, trace);
}

/* The agent's name for a sub-agent started by call pd: a subagent_type or agent argument,
 * else the tool's name (a handoff's transfer_to_NAME gives NAME). */
static void agent_name_of(const struct pending *pd, char *out, size_t n)
{
	static const char *const keys[] = {"subagent_type", "agent_name", "agent"};
	cJSON *j = pd->args ? cJSON_Parse(pd->args) : NULL;
	const char *name = pd->name;

	for (size_t i = 0; j && i < AGT_ARRAY_SIZE(keys); i++) {
		const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, keys[i]));

		if (v && *v) {
			name = v;
			break;
		}
	}
	if (name == pd->name && !strncmp(name, "transfer_to_", 12) && name[12])
		name += 12;
	snprintf(out, n, "%s", name);
	cJSON_Delete(j);
}

static void emit_tool(struct agt_agent *a, struct conv *c, struct pending *pd, uint64_t end,
		      const struct agt_tool_result *res, uint32_t tid)
{
	struct agt_span s;
	char *out = res ? capped(a, res->content) : NULL, *in = capped(a, pd->args);
	struct claim k;

	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_TOOL;
	s.trace_type = "tool_call";
	s.start_ns = pd->start_ns;
	s.end_ns = end > pd->start_ns ? end : pd->start_ns;
	s.pid = c->pid;
	s.tid = tid;
	s.proc = c->proc;
	in_conv(&s, c, pd->parent);
	s.span_id = pd->span_id;
	snprintf(s.name, sizeof(s.name), "execute_tool %.120s", pd->name);
	s.tool.name = pd->name;
	s.tool.id = pd->id;
	s.tool.input = in;
	s.tool.output = out;
	s.tool.events = pd->events;
	s.tool.nevents = pd->nevents;
	/* What the agent's processes started while the tool ran hangs below it. */
	memset(&k, 0, sizeof(k));
	k.root = c->pid;
	k.from = pd->start_ns;
	k.to = s.end_ns;
	k.owner = pd;
	k.trace = c->trace_id;
	k.parent = s.span_id;
	k.workflow = c->workflow_id;
	k.ts = end;
	claim_list(a, &a->tops, &k, 0, 1);
	agt_files_emit(a->files, &pd->files, &s, c->pid, end);
	s.tool.success = res && !res->is_error && !k.failed;
	s.status = !res			       ? AGT_STATUS_UNFINISHED
		   : res->is_error || k.failed ? AGT_STATUS_ERROR
					       : AGT_STATUS_OK;
	c->tools++;
	if (c->nframes)
		c->frames[c->nframes - 1].tools++;
	seq_add(c, s.name);
	a->st.tool_calls++;
	emit(a, &s);
	if (res && res->is_error) {
		agt_agent_failure(a, &s, "error tool_result",
				  "the tool's result is marked as an error");
	} else if (res && k.failed) {
		char msg[sizeof(s.message)];
		char *cmd = agt_emit_redact(a->em, k.failed_cmd);
		int sig = k.failed_status & 0x7f;

		if (sig)
			snprintf(msg, sizeof(msg), "killed by signal %d: %.200s", sig, cmd);
		else
			snprintf(msg, sizeof(msg), "exit %d: %.200s", (k.failed_status >> 8) & 0xff,
				 cmd);
		free(cmd);
		agt_agent_failure(a, &s, "error command failed", msg);
	}
	free(in);
	free(out);
	pending_free(a, pd);
}

static void conv_end(struct agt_agent *a, struct conv **pp, uint64_t ts, int finished);

/* End the sub-agents started from c's tool calls first (unfinished): nothing points at c after. */
static void end_subs(struct agt_agent *a, const struct conv *c, uint64_t ts)
{
	for (struct conv **pp = &a->convs; *pp;) {
		if ((*pp)->parent == c) {
			conv_end(a, pp, ts, 0);
			pp = &a->convs; /* the list changed: start over (each pass ends one) */
		} else {
			pp = &(*pp)->next;
		}
	}
}

static void emit_frame(struct agt_agent *a, struct conv *c, const struct frame *f, uint64_t end,
		       int finished, const char *answer)
{
	struct agt_span s;

	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_COT;
	s.trace_type = "cot_process";
	s.start_ns = f->start_ns;
	s.end_ns = end > f->start_ns ? end : f->start_ns;
	s.pid = c->pid;
	s.proc = c->proc;
	in_conv(&s, c, f->parent_id);
	s.span_id = f->span_id;
	snprintf(s.name, sizeof(s.name), "invoke_agent %.120s", f->name);
	s.status = finished ? AGT_STATUS_OK : AGT_STATUS_UNFINISHED;
	s.cot.steps = f->steps;
	s.cot.tool_calls = f->tools;
	s.cot.input_tokens = f->in_tokens;
	s.cot.output_tokens = f->out_tokens;
	s.cot.final_answer = answer;
	s.cot.model = c->model;
	s.cot.provider = c->provider;
	s.cot.agent_name = f->name;
	emit(a, &s);
}

static void conv_end(struct agt_agent *a, struct conv **pp, uint64_t ts, int finished)
{
	struct conv *c = *pp;
	struct agt_span s;
	uint64_t end = finished ? c->last_ns : ts;

	end_subs(a, c, ts);
	pp = &a->convs; /* end_subs may have changed the list */
	while (*pp != c)
		pp = &(*pp)->next;
	for (int i = 0; i < c->npending; i++) /* calls whose results never came */
		emit_tool(a, c, &c->pending[i], ts, NULL, 0);
	c->npending = 0;
	for (int i = c->nframes - 1; i >= 0; i--) /* agents handed over to, innermost first */
		emit_frame(a, c, &c->frames[i], end, finished,
			   i == c->nframes - 1 ? c->final_answer : NULL);
	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_COT;
	s.trace_type = "cot_process";
	s.start_ns = c->start_ns;
	s.end_ns = end;
	s.pid = c->pid;
	s.proc = c->proc;
	in_conv(&s, c, c->parent_span);
	s.span_id = c->root_id;
	if (c->agent_name[0])
		snprintf(s.name, sizeof(s.name), "invoke_agent %.120s", c->agent_name);
	else
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
	s.cot.agent_name = c->agent_name[0] ? c->agent_name : NULL;
	emit(a, &s);
	*pp = c->next;
	conv_free(a, c);
	a->nconvs--;
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

/* The tool call a step closed last (a handoff's, when the agent changes). */
struct closed {
	uint64_t span_id;
	char name[128];
	int handoff; /* by its name, a tool that hands the conversation over */
};

/* transfer_to_X, handoff..., or an agent tool: what may hand a conversation to another agent. */
static int handoff_tool(const char *name)
{
	char l[128];
	size_t i;

	for (i = 0; name[i] && i + 1 < sizeof(l); i++)
		l[i] = (char)tolower((unsigned char)name[i]);
	l[i] = 0;
	return !strncmp(l, "transfer_to", 11) || strstr(l, "handoff") || strstr(l, "agent");
}

static void close_tool(struct agt_agent *a, struct conv *c, int k,
		       const struct agt_tool_result *res, const struct agt_span *step,
		       struct closed *last)
{
	struct pending *pd = &c->pending[k];

	/* The id the agent assigned to a call that came without one is the call's id from now. */
	if (pd->synthetic && res->id[0]) {
		snprintf(pd->id, sizeof(pd->id), "%s", res->id);
		c->known[c->nknown++ % KNOWN_IDS] = hash_str(res->id);
	}
	last->span_id = pd->span_id;
	last->handoff = handoff_tool(pd->name);
	agent_name_of(pd, last->name, sizeof(last->name));
	emit_tool(a, c, pd, step->start_ns, res, step->tid);
	c->pending[k] = c->pending[--c->npending];
}

/* Results the request carries for calls still pending: those tool calls are over. A result
 * that matches none is one replayed from earlier turns, or answers a call whose id the parser
 * made up and could not tie the result to (the agent rewrote its history): those, newest first
 * (a request's new results come last), take a pending call of that made-up kind by name. */
static void pair_results(struct agt_agent *a, struct conv *c, const struct agt_llm *l,
			 const struct agt_span *step, struct closed *last)
{
	unsigned char left[256];
	int nleft = 0;

	for (int r = 0; r < l->nresults; r++) {
		int k = answered(c, &l->results[r]);

		if (k >= 0)
			close_tool(a, c, k, &l->results[r], step, last);
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
				close_tool(a, c, i, res, step, last);
				break;
			}
	}
}

static int knows(const uint64_t *ring, int n, int cap, uint64_t h)
{
	for (int i = 0; i < n && i < cap; i++)
		if (ring[i] == h)
			return 1;
	return 0;
}

/* How surely step (request l) continues c: 5 previous_response_id, 4 a result for a call it
 * waits for, 3 a result for a call it asked earlier, 1 the same opening while it waits for no
 * result (or only for results by name); 0 not at all. */
static int continuity(const struct conv *c, const struct agt_llm *l)
{
	int best = 0;

	if (l->prev_resp_id[0] && knows(c->resp_ids, c->nresp, RESP_IDS, hash_str(l->prev_resp_id)))
		return 5;
	for (int r = 0; r < l->nresults; r++) {
		const struct agt_tool_result *res = &l->results[r];
		int k = answered(c, res);

		if (k >= 0 && (res->id[0] || res->synthetic_id[0]))
			return 4;
		if (res->id[0] && knows(c->known, c->nknown, KNOWN_IDS, hash_str(res->id)))
			best = 3;
		if (k >= 0 && !best && c->prefix == l->prefix_hash)
			best = 1; /* results by name (no ids): the opening decides */
		for (int i = 0; k < 0 && !best && c->prefix == l->prefix_hash && i < c->npending;
		     i++)
			if (c->pending[i].synthetic &&
			    (!res->name[0] || !strcmp(c->pending[i].name, res->name)))
				best = 1; /* a made-up id the rewritten history no longer ties */
	}
	if (!best && c->prefix == l->prefix_hash && !c->npending)
		best = 1;
	return best;
}

static struct conv **find_conv(struct agt_agent *a, uint32_t pid, const struct agt_llm *l,
			       uint32_t tid, int *how)
{
	struct conv **best = NULL;
	int best_score = 0;

	for (struct conv **pp = &a->convs; *pp; pp = &(*pp)->next) {
		struct conv *c = *pp;
		int k = c->pid == pid ? continuity(c, l) : 0, score;

		if (!k)
			continue;
		score =
		    k * 4 + (c->prefix == l->prefix_hash ? 2 : 0) + (c->last_tid == tid ? 1 : 0);
		if (score > best_score || (score == best_score && c->last_ns < (*best)->last_ns)) {
			best = pp;
			best_score = score;
			*how = k;
		}
	}
	return best;
}

/* The 8-byte windows of a text, as bits of a small Bloom filter: whether a string of 8 bytes or
 * more can be in the text is then one look per candidate, not a scan of the text (a new
 * conversation is checked against every tool call open in the process, each with its hints). */
#define GRAM_BITS 4096

static uint32_t gram_hash(const char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	v *= 0x9e3779b97f4a7c15ull;
	return (uint32_t)(v >> 52); /* 12 bits: GRAM_BITS */
}

static void grams_of(const char *text, size_t n, uint64_t *bits)
{
	memset(bits, 0, GRAM_BITS / 8);
	for (size_t i = 0; i + 8 <= n; i++) {
		uint32_t h = gram_hash(text + i);

		bits[h / 64] |= 1ull << (h % 64);
	}
}

/* How a tool call asked for a conversation whose first words are text (n bytes, grams: its
 * windows): 2 when the call's arguments name it (one holds the other), 1 when the tool is an
 * agent or a task tool, 0 when not at all. */
static int asked(const struct pending *pd, const char *text, size_t n, const uint64_t *grams)
{
	for (int h = 0; n && h < pd->nhints; h++) {
		size_t hl = pd->hint_len[h];
		uint32_t g = pd->hint_gram[h];

		if ((hl >= 8 && hl <= n && (grams[g / 64] >> (g % 64) & 1) &&
		     strstr(text, pd->hints[h])) ||
		    (hl == n && !strcmp(text, pd->hints[h])) ||
		    (n >= 8 && n <= hl && strstr(pd->hints[h], text)))
			return 2;
	}
	return pd->agentish;
}

/* The open tool call of pid a new conversation (its request l) was started from, or NULL. A
 * task or agent tool known by its name alone only starts conversations that offer tools (an
 * agent's side requests, a title or a summary, offer none). */
static struct pending *started_from(struct agt_agent *a, uint32_t pid, const struct agt_llm *l,
				    uint64_t ts, struct conv **from)
{
	struct pending *best = NULL;
	const char *text = l->opening ? l->opening : "";
	size_t n = strlen(text);
	uint64_t grams[GRAM_BITS / 64];
	int best_m = 0;

	grams_of(text, n, grams);
	for (struct conv *c = a->convs; c; c = c->next)
		for (int i = 0; c->pid == pid && i < c->npending; i++) {
			struct pending *pd = &c->pending[i];
			int m = pd->start_ns <= ts ? asked(pd, text, n, grams) : 0;

			if (m == 1 && !l->noffered)
				m = 0;

			if (m > best_m || (m && m == best_m && pd->start_ns > best->start_ns)) {
				best = pd;
				best_m = m;
				*from = c;
			}
		}
	return best;
}

/* The open tool call that ran process pid (or the process it descends from), as it would own
 * it as a command; NULL for none (a relaunched agent started before any). name: the program. */
static struct pending *run_by_tool(struct agt_agent *a, uint32_t pid, struct conv **from,
				   char *name, size_t n)
{
	int how;

	for (struct child *ch = child_of_pid(a, pid); ch; ch = ch->up) {
		struct pending *pd = command_owner(a, ch, &how);

		if (!pd)
			continue;
		for (struct conv *c = a->convs; c; c = c->next)
			if (pd >= c->pending && pd < c->pending + MAX_PENDING)
				*from = c;
		const char *cmd = ch->cmd[0] ? ch->cmd : ch->proc.comm, *base;
		size_t len = strcspn(cmd, " ");

		for (base = cmd + len; base > cmd && base[-1] != '/'; base--)
			;
		snprintf(name, n, "%.*s", (int)(cmd + len - base), base);
		return pd;
	}
	return NULL;
}

static struct conv *new_conv(struct agt_agent *a, const struct agt_proc_info *proc,
			     const struct agt_span *step, const struct agt_llm *l, uint32_t from_pid)
{
	struct conv *c, *from = NULL;
	struct pending *pd;

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
		return NULL;
	c->pid = proc->pid;
	c->proc = proc;
	c->prefix = l->prefix_hash;
	c->system_hash = l->system_hash;
	c->root_id = agt_emit_id(a->em);
	c->start_ns = step->start_ns;
	pd = started_from(a, proc->pid, l, step->start_ns, &from);
	if (!pd && from_pid != (uint32_t)proc->pid) /* an agent CLI a tool ran */
		pd = run_by_tool(a, from_pid, &from, c->agent_name, sizeof(c->agent_name));
	if (pd) { /* a sub-agent: in the trace of the conversation whose tool call started it */
		memcpy(c->trace_id, from->trace_id, sizeof(c->trace_id));
		memcpy(c->workflow_id, from->workflow_id, sizeof(c->workflow_id));
		c->parent = from;
		c->parent_span = pd->span_id;
		if (!c->agent_name[0])
			agent_name_of(pd, c->agent_name, sizeof(c->agent_name));
		a->st.subagents++;
	} else {
		new_trace(a, c->trace_id);
		snprintf(c->workflow_id, sizeof(c->workflow_id), "%016llx",
			 (unsigned long long)agt_fnv1a(c->trace_id, 16, l->prefix_hash));
	}
	c->next = a->convs;
	a->convs = c;
	a->nconvs++;
	a->st.conversations++;
	return c;
}

/* A followed process that makes LLM calls is an agent process: what it starts is the agent's. */
static void mark_agent(struct agt_agent *a, uint32_t pid)
{
	struct child *ch = pid ? child_of_pid(a, pid) : NULL;

	if (ch && !ch->agent) {
		ch->agent = 1;
		for (struct child *up = ch->up; up; up = up->up)
			up->agent_below = 1;
	}
}

void agt_agent_step(struct agt_agent *a, const struct agt_proc_info *proc, struct agt_span *step,
		    const struct agt_llm *l, uint32_t from_pid)
{
	int how = 0;
	struct conv **pp = find_conv(a, proc->pid, l, step->tid, &how), *c = pp ? *pp : NULL;
	struct closed last = {0, "", 0};

	if (from_pid != (uint32_t)proc->pid)
		mark_agent(a, from_pid);
	if (!c && !(c = new_conv(a, proc, step, l, from_pid)))
		return;
	pair_results(a, c, l, step, &last);
	/* The same conversation in another agent's voice, right after a tool call: a handoff. */
	if (how >= 3 && l->system_hash && c->system_hash && l->system_hash != c->system_hash &&
	    last.span_id && last.handoff && c->nframes < MAX_FRAMES) {
		struct frame *f = &c->frames[c->nframes++];

		memset(f, 0, sizeof(*f));
		f->span_id = agt_emit_id(a->em);
		f->parent_id = last.span_id;
		f->start_ns = step->start_ns;
		snprintf(f->name, sizeof(f->name), "%s", last.name);
		a->st.handoffs++;
	}
	if (l->system_hash)
		c->system_hash = l->system_hash;
	{ /* commands that ended before this step, and no open tool call can claim, stand alone */
		struct claim k;

		memset(&k, 0, sizeof(k));
		k.root = proc->pid;
		k.to = step->start_ns;
		k.ts = step->start_ns;
		claim_list(a, &a->tops, &k, 0, 1);
	}
	in_conv(step, c, conv_parent(c));
	c->steps++;
	c->last_tid = step->tid;
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
	if (c->nframes) {
		struct frame *f = &c->frames[c->nframes - 1];

		f->steps++;
		f->in_tokens += l->input_tokens > 0 ? l->input_tokens : 0;
		f->out_tokens += l->output_tokens > 0 ? l->output_tokens : 0;
	}
}

/* The conversation a step was given (agt_agent_step): the one whose trace and root it has. */
static struct conv **conv_of_step(struct agt_agent *a, const struct agt_span *step)
{
	struct conv **pp = &a->convs;

	while (*pp &&
	       (memcmp((*pp)->trace_id, step->trace_id, 16) || step->parent_id != conv_parent(*pp)))
		pp = &(*pp)->next;
	return pp;
}

void agt_agent_step_done(struct agt_agent *a, const struct agt_span *step, const struct agt_llm *l)
{
	struct conv **pp = conv_of_step(a, step), *c = *pp;

	if (!c || step->status != AGT_STATUS_OK)
		return; /* unanswered or failed: the agent may retry within the conversation */
	if (l->resp_id[0]) {
		c->resp_ids[c->nresp % RESP_IDS] = hash_str(l->resp_id);
		c->nresp++;
	}
	for (int i = 0; i < l->ncalls; i++) {
		struct pending *pd;

		if (c->npending == MAX_PENDING) {
			a->st.calls_dropped += l->ncalls - i;
			break;
		}
		if (c->npending == c->pcap) {
			int cap = c->pcap ? 2 * c->pcap : 4;
			struct pending *np = realloc(c->pending, cap * sizeof(*np));

			if (!np) {
				a->st.calls_dropped += l->ncalls - i;
				break;
			}
			c->pending = np;
			c->pcap = cap;
		}
		pd = &c->pending[c->npending++];

		memset(pd, 0, sizeof(*pd));
		snprintf(pd->id, sizeof(pd->id), "%s", l->calls[i].id);
		snprintf(pd->name, sizeof(pd->name), "%s", l->calls[i].name);
		pd->synthetic = l->calls[i].synthetic_id;
		pd->args = strdup(l->calls[i].arguments ? l->calls[i].arguments : "");
		set_hints(pd);
		pd->start_ns = step->end_ns;
		pd->span_id = agt_emit_id(a->em);
		pd->parent = conv_parent(c);
		pd->tid = step->tid;
		if (pd->id[0]) {
			c->known[c->nknown % KNOWN_IDS] = hash_str(pd->id);
			c->nknown++;
		}
	}
	if (!l->ncalls) { /* a final answer: the chain of thought is complete */
		free(c->final_answer);
		c->final_answer = capped(a, l->text);
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
	char line[AGT_ARGV_LEN + 1];
	uint32_t n = argv_len < AGT_ARGV_LEN ? argv_len : AGT_ARGV_LEN;

	if (!ch)
		return;
	/* argv: NUL-separated, as in /proc/PID/cmdline; shown space-separated. */
	for (uint32_t i = 0; i < n; i++)
		line[i] = argv[i] ? argv[i] : ' ';
	while (n && line[n - 1] == ' ')
		n--;
	line[n] = 0;
	if (argv_len >= AGT_ARGV_LEN - 1 && argv[argv_len - 1]) {
		/* Cut at the capture limit (the kernel side copies AGT_ARGV_LEN - 1 bytes; a whole
		 * command line ends in a NUL): its last argument may be the first part of a secret
		 * that no rule recognises alone. It goes, and the line says it was cut. */
		uint32_t lim = n < AGT_ARGV_LEN - 6 ? n : AGT_ARGV_LEN - 6;

		while (lim && line[lim - 1] != ' ')
			lim--;
		n = lim;
		memcpy(line + n, "[...]", 6);
		n += 5;
	}
	if (ch->execd) {
		/* A process that replaces itself again (bash running the last command of a list
		 * in its own process): the span keeps the first command line; this is an event,
		 * redacted before it is cut to fit. */
		if (ch->nevents < EXEC_EVENTS) {
			char *red = agt_emit_redact(a->em, line[0] ? line : filename);

			snprintf(ch->events[ch->nevents].name, sizeof(ch->events[0].name), "exec");
			snprintf(ch->events[ch->nevents].detail, sizeof(ch->events[0].detail), "%.191s",
				 red ? red : "");
			free(red);
			ch->events[ch->nevents++].ts_ns = ts;
		} else {
			a->st.events_over_cap++;
		}
		return;
	}
	ch->execd = 1;
	memcpy(ch->cmd, line, n + 1);
	n = argv_len < AGT_ARGV_LEN ? argv_len : AGT_ARGV_LEN;
	memcpy(ch->argv, argv, n);
	ch->argv[n] = 0;
	ch->argv_len = n;
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
		if ((*pp)->proc == proc) {
			conv_end(a, pp, ts, 0);
			pp = &a->convs; /* sub-agents may have gone too */
		} else {
			pp = &(*pp)->next;
		}
	}
}

void agt_agent_close(struct agt_agent *a, uint32_t pid, uint64_t ts)
{
	struct conv **pp = &a->convs;

	while (*pp) {
		if (!pid || (*pp)->pid == pid) {
			conv_end(a, pp, ts, 0);
			pp = &a->convs; /* sub-agents may have gone too */
		} else {
			pp = &(*pp)->next;
		}
	}
	agt_files_flush(a->files, pid, ts, 0, 1);
	/* Commands left over belong to no tool call: each its own trace. Every pass takes one
	 * command tree off the list, so this ends. */
	for (struct child **cp = &a->tops; *cp;) {
		struct child *ch = *cp;
		uint8_t t[16];

		if (pid && ch->root != pid) {
			cp = &ch->sib;
			continue;
		}
		*cp = ch->sib;
		ch->sib = NULL;
		new_trace(a, t);
		emit_subtree(a, ch, t, 0, NULL, ts, 0);
	}
}

/* Whether the arguments an MCP call carries are those pd was asked with. */
static int args_match(const struct pending *pd, const char *detail)
{
	cJSON *x, *y;
	int same;

	if (!detail || !pd->args)
		return 0;
	x = cJSON_Parse(detail);
	y = cJSON_Parse(pd->args);
	same = x && y && cJSON_Compare(x, y, 1);
	cJSON_Delete(x);
	cJSON_Delete(y);
	return same;
}

/* How well what a call of the agent's processes did matches what pd was asked, 0 to 3: an MCP
 * tool by name (2) and arguments (1), so that parallel calls of one MCP tool with different
 * arguments each find their own tool call; an HTTP URL found in the arguments (1). */
static int call_match(const struct pending *pd, const char *name, const char *detail)
{
	if (name && *name) {
		size_t pl = strlen(pd->name), nl = strlen(name);
		int named =
		    !strcmp(pd->name, name) || (pl > nl && !strcmp(pd->name + pl - nl, name) &&
						!isalnum((unsigned char)pd->name[pl - nl - 1]));

		return named * 2 + args_match(pd, detail);
	}
	for (int h = 0; detail && h < pd->nhints; h++)
		if ((strlen(pd->hints[h]) >= 4 && strstr(detail, pd->hints[h])) ||
		    (strlen(detail) >= 8 && strstr(pd->hints[h], detail))) /* a URL with scheme */
			return 1;
	return 0;
}

/* The tool call of pid open at ts that a call belongs to: what it was asked first, then the
 * thread that asked for it, then the latest opened. */
static struct pending *open_tool(struct agt_agent *a, uint32_t pid, uint32_t tid, uint64_t ts,
				 const char *name, const char *detail, struct conv **conv)
{
	struct pending *best = NULL;
	int best_score = -1;

	for (struct conv *c = a->convs; c; c = c->next)
		for (int i = 0; c->pid == pid && i < c->npending; i++) {
			struct pending *pd = &c->pending[i];
			int score;

			if (pd->start_ns > ts)
				continue;
			score = call_match(pd, name, detail) * 4 + (pd->tid == tid ? 2 : 0);
			if (score > best_score ||
			    (score == best_score && pd->start_ns > best->start_ns)) {
				best = pd;
				best_score = score;
				*conv = c;
			}
		}
	return best;
}

int agt_agent_tool_at(struct agt_agent *a, uint32_t pid, uint32_t tid, uint64_t ts,
		      struct agt_span *s, const char *name, const char *detail)
{
	struct conv *c = NULL;
	struct pending *pd = open_tool(a, pid, tid, ts, name, detail, &c);

	if (!pd)
		return 0;
	in_conv(s, c, pd->span_id);
	s->depth = 2;
	return 1;
}

/* What a tool does, as Python's audit hooks see it: processes, network, files (the table the
 * kernel's audit program filters with too, bpf/agtrace.h). */
static int interesting_audit(const char *ev)
{
#define AGT_AUDIT_ROW(p, exact) {p, sizeof(p) - 1, exact},
	static const struct {
		const char *p;
		size_t len;
		int exact;
	} events[] = {AGT_AUDIT_EVENTS(AGT_AUDIT_ROW)};
#undef AGT_AUDIT_ROW

	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		if (!strncmp(ev, events[i].p, events[i].len) && (!events[i].exact || !ev[events[i].len]))
			return 1;
	return 0;
}

void agt_agent_audit(struct agt_agent *a, uint32_t pid, uint32_t tid, uint64_t ts, const char *ev)
{
	struct conv *c = NULL;
	struct pending *pd;

	if (!interesting_audit(ev) || !(pd = open_tool(a, pid, tid, ts, NULL, NULL, &c)))
		return; /* outside tool calls, or interpreter chatter (imports, compile, ...) */
	if (pd->nevents == MAX_EVENTS) {
		a->st.events_over_cap++;
		return;
	}
	/* A conversation keeps up to MAX_PENDING calls open: their events are allocated when they
	 * have some, so a conversation costs kilobytes, not half a megabyte of zeroed pages. */
	if (!pd->events && !(pd->events = calloc(MAX_EVENTS, sizeof(*pd->events)))) {
		a->st.events_over_cap++;
		return;
	}
	snprintf(pd->events[pd->nevents].name, sizeof(pd->events[0].name), "%s", ev);
	pd->events[pd->nevents].detail[0] = 0;
	pd->events[pd->nevents++].ts_ns = ts;
}

void agt_agent_expire(struct agt_agent *a, uint64_t now, uint64_t idle_ns)
{
	struct conv **pp = &a->convs;

	/* Files a process changed outside tool calls: once quiet for a second. */
	agt_files_flush(a->files, 0, now, 1000000000ull, 0);

	while (*pp) {
		int busy = 0; /* a sub-agent at work keeps the conversation that called it open */

		for (const struct conv *s = a->convs; s && !busy; s = s->next)
			busy = s->parent == *pp && now <= s->last_ns + idle_ns;
		if (!busy && now > (*pp)->last_ns + idle_ns) {
			a->st.convs_idle++;
			conv_end(a, pp, now, 0);
			pp = &a->convs;
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

int agt_agent_set_files(struct agt_agent *a, const struct agt_files_cfg *cfg)
{
	agt_files_free(a->files);
	a->files = agt_files_new(a->em, cfg);
	return a->files ? 0 : -1;
}

void agt_agent_settle(struct agt_agent *a)
{
	agt_files_settle(a->files);
}

const struct agt_files_stats *agt_agent_file_stats(const struct agt_agent *a)
{
	return agt_files_stats(a->files);
}

/* The tool call owning what a followed process does to files: its command's owner, unless its
 * command line names no tool call's arguments and a process above it does (a shell a tool ran,
 * whose own child writes the file: with tool calls open side by side, that child's command line
 * alone would pick the first). */
static struct pending *file_owner(struct agt_agent *a, const struct child *ch)
{
	int how = 0, up_how = 0;
	struct pending *pd = command_owner(a, ch, &how), *p;

	for (const struct child *up = ch->up; pd && !how && up; up = up->up)
		if ((p = command_owner(a, up, &up_how)) && up_how)
			return p;
	return pd;
}

/* A file operation of pid (a target, or a followed process of one): in the tool call that owns
 * the process (a command a tool ran), or the one of the target open now (what it was asked
 * first: a path among its arguments; then the thread that asked for it; then the latest);
 * outside any, in the process's own window. */
void agt_agent_file(struct agt_agent *a, uint32_t pid, uint32_t tid, uint64_t ts,
		    const struct agt_file_call *fc)
{
	struct child *ch = child_of_pid(a, pid);
	const struct agt_proc_info *who;
	struct pending *pd = NULL;
	struct conv *c = NULL;
	uint32_t root;

	if (!a->files)
		return;
	if (fc->op == AGT_FILE_CLOSE) {
		agt_files_op(a->files, NULL, 0, NULL, pid, tid, ts, fc);
		return;
	}
	if (ch) {
		root = ch->root;
		who = &ch->proc;
		pd = file_owner(a, ch);
		if (!pd) /* a process older than any open tool call: the one open now */
			pd = open_tool(a, root, 0, ts, NULL, fc->path, &c);
	} else {
		root = pid;
		if (!(who = target_of(a, pid)))
			return;
		pd = open_tool(a, pid, tid, ts, NULL, fc->path, &c);
	}
	agt_files_op(a->files, pd ? &pd->files : NULL, root, who, pid, tid, ts, fc);
}

void agt_agent_free(struct agt_agent *a)
{
	if (!a)
		return;
	while (a->convs) {
		struct conv *c = a->convs;

		a->convs = c->next;
		conv_free(a, c);
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
	agt_files_free(a->files);
	free(a);
}
