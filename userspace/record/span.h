/* The plain record the trace stage hands to exporters: a finished span or event, and the sink
 * interface exporters implement. Everything an exporter shows is here, as plain data (numbers,
 * strings, fixed arrays): no protocol struct, no capture struct. The contract on lifetimes is
 * short: a span and every string it points to are valid for the duration of the sink's span()
 * call; an exporter copies what it keeps. Text that could carry a secret (names, messages,
 * URLs, tool input and output, arguments, command lines) is already redacted when a span
 * reaches a sink (trace/emit.c does it once for every exporter). */
#ifndef AGT_SPAN_H
#define AGT_SPAN_H
#include <stdint.h>
#include "agtrace.h"
#include "record/proc.h"

enum agt_status { AGT_STATUS_OK = 0, AGT_STATUS_ERROR = 1, AGT_STATUS_UNFINISHED = 2 };
extern const char *const agt_status_names[3];

enum agt_span_kind {
	AGT_SPAN_FUNC = 0, /* a probed function call (or USDT pair) */
	AGT_SPAN_STATE,	   /* attach, detach, exit, sampling changes */
	AGT_SPAN_LLM,	   /* one LLM API exchange: reasoning_step */
	AGT_SPAN_DECISION, /* the tools a response chose */
	AGT_SPAN_HTTP,	   /* an HTTP exchange that is no LLM API agtrace knows */
	AGT_SPAN_ERROR,	   /* an API error or HTTP status >= 400, a failed tool, a failed command */
	AGT_SPAN_TOOL,	   /* execute_tool: from the call the model made to its result */
	AGT_SPAN_COT,	   /* a whole conversation, ended by a final answer */
	AGT_SPAN_EXEC,	   /* a command the agent (or a tool) ran: fork/exec to exit */
	AGT_SPAN_FILE,	   /* what a process (in a tool call, or on its own) did to a file */
};

/* An argument or return value of a probed function. */
struct agt_value {
	enum agt_value_kind kind;
	uint64_t u;
	char str[AGT_STR_LEN];
};

/* A point in time inside a span (an OTel span event): e.g. a python:audit event, or a later exec
 * of a command's process (name "exec", the command line in detail). */
struct agt_span_event {
	char name[64];
	uint64_t ts_ns;
	char detail[192]; /* exec: the command line (redacted when emitted); "" otherwise */
};

/* The HTTP exchange a span is about (LLM, HTTP, and their decision and error children). */
struct agt_span_http {
	const char *method;
	const char *path;  /* the request target up to '?' */
	const char *query; /* after '?'; NULL when there is none */
	const char *host;  /* the Host header (HTTP/2 :authority); NULL when absent */
	const char *peer;  /* TCP capture: address:port of the other end; "" otherwise */
	int over_tcp;	   /* captured at the socket (plaintext HTTP), not at the TLS library */
	uint64_t req_body_size;
	int req_truncated;
	int answered; /* a response came: the fields below are set */
	int status;
	uint64_t resp_body_size;
	int resp_truncated;
	int64_t ttfc_us; /* request sent -> first response body byte; -1 when unknown */
};

/* A tool call the model asked for. */
struct agt_tool_choice {
	const char *name, *id, *arguments;
};

/* What an LLM exchange says (LLM spans, their decision and error children). */
struct agt_span_llm {
	const char *operation; /* chat */
	const char *provider;  /* openai, anthropic, ollama */
	const char *api;       /* chat.completions, responses, messages, ollama.chat */
	const char *req_model, *resp_model, *resp_id; /* "" when absent */
	int64_t input_tokens, output_tokens, cached_tokens; /* -1: not reported */
	const char *finish[4];
	int nfinish;
	int stream, parse_failed;
	const char *const *offered; /* tool names the request offered */
	int noffered;
	const struct agt_tool_choice *calls; /* tool calls the response made */
	int ncalls;
	const char *text; /* the assistant text of the response; NULL when none */
	int has_confidence;
	double confidence;
	const char *error_type;	   /* "" when the API reported no error */
	const char *error_message; /* NULL when none */
	int incomplete; /* the response was cut short: text, calls and tokens are what arrived */
	/* Request parameters (OTel gen_ai.request.*): -1 / NaN when the request did not say. */
	int64_t max_tokens, seed, choice_count;
	double temperature, top_p, top_k, frequency_penalty, presence_penalty;
	const char *const *stop; /* stop sequences */
	int nstop;
	/* --capture-content only (else NULL, and content 0): the request's chat history and
	 * system instructions as OTel GenAI JSON (gen_ai.input.messages, gen_ai.system_instructions),
	 * size-capped; redacted once emitted. content: the response becomes gen_ai.output.messages
	 * (text and calls, each capped at content_cap bytes). */
	const char *input_messages, *system_instructions;
	int content;
	size_t content_cap;
};

struct agt_span_tool {
	const char *name, *id;
	const char *input, *output; /* output NULL: no result (unfinished) */
	int success;
	int mcp; /* an MCP tools/call: id is the JSON-RPC id */
	const char *mcp_session; /* MCP over streamable HTTP: the Mcp-Session-Id; NULL otherwise */
	const struct agt_span_event *events; /* what the runtime reported meanwhile */
	int nevents;
};

struct agt_span_cot {
	int steps, tool_calls;
	int64_t input_tokens, output_tokens;
	const char *final_answer, *model, *provider; /* NULL when absent */
	const char *const *sequence; /* step and tool span names in order */
	int nsequence;
	/* An agent invoked from a tool call (a sub-agent, an agent as a tool, a handoff): its name
	 * (gen_ai.agent.name; gen_ai.operation.name is then invoke_agent). NULL: a conversation. */
	const char *agent_name;
};

struct agt_span_exec {
	const char *command_line; /* the first the process ran */
	uint32_t ppid;
	const struct agt_span_event *events; /* later execs of the same process ("exec ARGV") */
	int nevents;
};

/* A probed function (kind FUNC): where it was probed, its arguments and return value. */
struct agt_span_probe {
	uint32_t id; /* the probe id: what a return is matched to its entry by */
	const char *spec, *symbol, *object;
	const char *arg_names[AGT_MAX_ARGS];
	struct agt_value args[AGT_MAX_ARGS];
	int nargs;
	struct agt_value ret; /* kind NONE: none recorded */
};

/* A file a process changed (or read), below the tool call that did it (kind FILE). */
struct agt_span_file {
	const char *path;	    /* absolute, as the process saw it (its cwd and root) */
	const char *operation;	    /* create, write, truncate, rename, delete or read */
	const char *const *operations; /* every operation on it in the window, in order */
	int noperations;
	const char *previous_path; /* rename: where it came from; NULL otherwise */
	int64_t bytes;		   /* written (read) through it; -1 unknown */
	int64_t size;		   /* its size after; -1 when it is gone */
	const char *sha256;	   /* of the content after the last close; NULL when not hashed */
	const char *sha256_before; /* of the content it replaced, as agtrace last knew it */
	const char *hash_note;	   /* why there is no hash ("over N bytes", "gone", ...) */
	const char *diff;	   /* --capture-diffs: unified diff, redacted; NULL when none */
	int diff_truncated;
	const char *tool_call_id, *tool_name; /* the tool call that did it; NULL outside one */
};

struct agt_span {
	enum agt_span_kind kind;
	uint64_t start_ns, end_ns; /* CLOCK_MONOTONIC */
	uint8_t trace_id[16];
	uint64_t span_id, parent_id; /* parent_id 0: a root */
	uint32_t pid, tid;
	uint32_t depth;
	uint64_t frame_sp; /* FUNC: stack pointer at entry; 0 when unknown (USDT, Go) */
	enum agt_status status;
	const char *trace_type;
	char name[160];
	const struct agt_proc_info *proc; /* who did it; NULL when unknown */
	/* The target (the workload's process) proc descends from, when proc is a command it
	 * started; NULL: proc is the target itself. OTel resources are the target's. */
	const struct agt_proc_info *owner;
	char workflow_id[17];		  /* the conversation, for every span in it */
	const struct agt_span_http *http; /* NULL: not about an HTTP exchange */
	const struct agt_span_llm *llm;	  /* NULL: not about an LLM exchange */
	struct agt_span_tool tool;	  /* TOOL */
	struct agt_span_cot cot;	  /* COT */
	struct agt_span_exec exec;	  /* EXEC */
	struct agt_span_probe probe;	  /* FUNC */
	/* state_change and error events */
	char message[256];
	int has_exit;
	int exit_code, exit_signal;
	struct agt_span_file file; /* FILE */
};

/* An exporter. Exporters read finished spans; they never change them. */
struct agt_sink {
	void (*span)(struct agt_sink *s, const struct agt_span *sp);
	void (*flush)(struct agt_sink *s); /* end of run: write out what is held */
	void (*destroy)(struct agt_sink *s);
	uint64_t early_flushes; /* tree: spans printed before their root finished (buffer full) */
};

/* What every exporter needs to place a span in the world. */
struct agt_export_ctx {
	int64_t mono_to_real; /* add to CLOCK_MONOTONIC ns to get realtime ns */
	char host[256];
	/* service.name of every span (--service-name, else $OTEL_SERVICE_NAME); "": each span's
	 * from its workload (see export/schema.c) */
	char service_name[256];
};
void agt_export_ctx_init(struct agt_export_ctx *c);
#endif
