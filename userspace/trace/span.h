/* Finished spans and events: the plain record the trace stage hands to exporters. */
#ifndef AGT_SPAN_H
#define AGT_SPAN_H
#include <limits.h>
#include <stdint.h>
#include "agtrace.h"
#include "capture/spec.h"
#include "capture/target.h"

enum agt_status { AGT_STATUS_OK = 0, AGT_STATUS_ERROR = 1, AGT_STATUS_UNFINISHED = 2 };
extern const char *const agt_status_names[3];

struct agt_value {
	enum agt_value_kind kind;
	uint64_t u;
	char str[AGT_STR_LEN];
};

/* One attached probe id: a spec probe resolved to one symbol (or marker) in one object. */
struct agt_probe_info {
	uint32_t id;
	const struct agt_spec *spec;
	const struct agt_probe_spec *ps;
	char symbol[128];      /* function name, or provider:name for USDT */
	char span_name[160];   /* the spec's span template, rendered */
	char object[PATH_MAX]; /* the file as the target maps it */
};

/* A point in time inside a span (OTel span event): e.g. a python:audit event. */
struct agt_span_event {
	char name[64];
	uint64_t ts_ns;
};

enum agt_span_kind {
	AGT_SPAN_FUNC = 0, /* a probed function call (or USDT pair) */
	AGT_SPAN_STATE,	   /* attach, detach, exit */
	AGT_SPAN_LLM,	   /* one LLM API exchange: reasoning_step */
	AGT_SPAN_DECISION, /* the tools a response chose */
	AGT_SPAN_HTTP,	   /* an HTTP exchange that is no LLM API agtrace knows */
	AGT_SPAN_ERROR,	   /* an API error or HTTP status >= 400, a failed tool, a failed command */
	AGT_SPAN_TOOL,	   /* execute_tool: from the call the model made to its result */
	AGT_SPAN_COT,	   /* a whole conversation, ended by a final answer */
	AGT_SPAN_EXEC,	   /* a command the agent (or a tool) ran: fork/exec to exit */
};

struct agt_llm;
struct agt_http_msg;

struct agt_span {
	enum agt_span_kind kind;
	const struct agt_llm *llm;	       /* LLM, DECISION, ERROR of an LLM exchange */
	const struct agt_http_msg *req, *resp; /* LLM, HTTP, ERROR; resp NULL: unanswered */
	uint64_t start_ns, end_ns;	       /* CLOCK_MONOTONIC */
	uint8_t trace_id[16];
	uint64_t span_id, parent_id; /* parent_id 0: a root */
	uint32_t pid, tid;
	uint32_t depth;
	uint64_t frame_sp; /* stack pointer at entry; 0 when unknown (USDT) */
	enum agt_status status;
	const char *trace_type;
	char name[160];
	const struct agt_probe_info *probe; /* NULL for state_change events */
	const struct agt_proc *proc;	    /* may be NULL */
	struct agt_value args[AGT_MAX_ARGS];
	int nargs;
	struct agt_value ret; /* kind NONE: none recorded */
	char workflow_id[17]; /* the conversation, for every span in it */
	struct {
		const char *name, *id, *input, *output; /* input/output: redacted when exported */
		int success;
		int mcp;			     /* an MCP tools/call: id is the JSON-RPC id */
		const struct agt_span_event *events; /* what the runtime reported meanwhile */
		int nevents;
	} tool;
	struct {
		int steps, tool_calls;
		int64_t input_tokens, output_tokens;
		const char *final_answer, *model, *provider;
		const char *sequence; /* step and tool names in order, '|'-separated */
	} cot;
	struct {
		const char *command_line, *executable;
		uint32_t ppid;
	} exec;
	/* state_change / error events */
	char message[256];
	int has_exit;
	int exit_code, exit_signal;
};

/* Render one value as text (for the tree); buf >= 96. */
void agt_value_format(const struct agt_value *v, char *buf, size_t n);
#endif
