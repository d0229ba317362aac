/* LLM API exchanges: what a request and its response say, whatever the provider. */
#ifndef AGT_LLM_H
#define AGT_LLM_H
#include <cjson/cJSON.h>
#include <stdint.h>
#include "protocols/http1.h"

struct agt_tool_call {
	char id[128];
	char name[128];
	char *arguments; /* JSON text as the model wrote it */
	int index;
	int synthetic_id; /* the API gave the call no id: the parser made id up (see gemini.c) */
};

struct agt_tool_result {
	char id[128];	/* the call id it answers ("" when the API has none, as Ollama) */
	char name[128]; /* when the API says (Ollama tool_name) */
	char *content;	/* the result as text */
	int is_error;
	/* The synthetic id the parser gives (or would give) the call this result answers, when it
	 * finds that call in the request's history ("" otherwise, and for APIs whose calls always
	 * have ids): see gemini.c. */
	char synthetic_id[128];
};

struct agt_llm {
	const char *provider; /* openai, anthropic, ollama, gcp.gemini, gcp.vertex_ai */
	const char *api; /* chat.completions, responses, messages, ollama.chat, generate_content */
	const char *operation; /* chat, generate_content (OTel gen_ai.operation.name) */
	char req_model[128], resp_model[128], resp_id[128];
	int64_t input_tokens, output_tokens, cached_tokens; /* -1: not reported */
	char finish[4][32];
	int nfinish;
	int stream;
	char **offered; /* tool names the request offered */
	int noffered;
	struct agt_tool_call *calls; /* tool calls the response made */
	int ncalls;
	char *text;	   /* assistant text of the response */
	double confidence; /* exp(mean logprob); only when the response carried logprobs */
	int has_confidence;
	char error_type[64];
	char *error_message;
	int parse_failed; /* the body was not the JSON the API promises (e.g. truncated) */
	/* What the request says about its conversation. */
	uint64_t prefix_hash; /* system prompt + first user message: the conversation's identity */
	uint64_t system_hash; /* the system prompt (instructions) alone: which agent is speaking */
	char *opening;	      /* the text of the first user message (what a sub-agent was asked) */
	char prev_resp_id[128]; /* Responses previous_response_id: the response this continues */
	int incomplete;		/* the response was cut (its sender died): what arrived of it */
	struct agt_tool_result *results; /* tool results the request carries (new or replayed) */
	int nresults;
	/* Request parameters: -1 / NaN when the request does not say (see content.c). */
	int64_t max_tokens, seed, choice_count;
	double temperature, top_p, top_k, frequency_penalty, presence_penalty;
	char **stop;
	int nstop;
	/* Only when asked for (agt_llm_parse_content): the chat history and the system
	 * instructions as OTel GenAI JSON (gen_ai.input.messages, gen_ai.system_instructions);
	 * NULL when the request has none. */
	char *input_messages, *system_instructions;
};

/* 0 and out filled when req/resp is an LLM API exchange this knows; -1 otherwise. The
 * response body must already be decoded (agt_http_decode_body). */
int agt_llm_parse(const struct agt_http_msg *req, const struct agt_http_msg *resp,
		  struct agt_llm *out);
void agt_llm_free(struct agt_llm *l);
/* What of a request's content is kept: each text cut at cap / 2 bytes, the messages and the
 * instructions at cap bytes each (the oldest messages left out first). A text is redacted
 * (redact: a malloc'd copy, NULL when it cannot be) before it is cut, so a cut never leaves the
 * beginning of a secret that redaction would have recognised whole. */
struct agt_llm_content_cfg {
	size_t cap;
	char *(*redact)(void *ctx, const char *text); /* NULL: none */
	void *redact_ctx;
};

/* The same, also keeping what the request says (its messages and instructions) as cc says;
 * cc NULL: nothing of it. */
int agt_llm_parse_content(const struct agt_http_msg *req, const struct agt_http_msg *resp,
			  struct agt_llm *out, const struct agt_llm_content_cfg *cc);
/* content.c: the request's parameters (max_tokens, temperature, ...) into l, by its API; the
 * request's messages and instructions as OTel GenAI JSON. */
void agt_llm_params(const cJSON *req, struct agt_llm *l);
void agt_llm_content(const cJSON *req, struct agt_llm *l, const struct agt_llm_content_cfg *cc);

/* Shared by the provider parsers. */
void agt_llm_init(struct agt_llm *l, const char *provider, const char *api);
void agt_llm_copy(char *dst, size_t n, const cJSON *v); /* string item or "" */
int64_t agt_llm_int(const cJSON *v);			/* number item or -1 */
void agt_llm_add_finish(struct agt_llm *l, const char *reason);
struct agt_tool_call *agt_llm_call_at(struct agt_llm *l, int index); /* by stream index */
void agt_llm_append(char **dst, const char *s);
void agt_llm_offered(struct agt_llm *l, const char *name);
void agt_llm_logprob(struct agt_llm *l, double lp); /* accumulate; finish with agt_llm_done */
void agt_llm_done(struct agt_llm *l);
/* The JSON of one SSE event (NULL and parse_failed set when it is not JSON); *type is its
 * "type" member, or the SSE event name when it has none. Caller deletes. */
cJSON *agt_llm_sse_json(struct agt_llm *l, const char *event, const char *data, const char **type);
/* Conversation identity: fold a JSON value (system prompt, first user message) into the hash. */
void agt_llm_prefix(struct agt_llm *l, const cJSON *v);
/* Conversation identity from text alone, so that what agents change in their history from one
 * turn to the next leaves it alone: cache markers (cache_control), signatures, ids added after
 * the fact, block types. A content (a string, an array of blocks, one block) contributes the text
 * of its blocks; blocks that are per-turn context an agent injects (a text that is one XML-like
 * element, <system-reminder>...</system-reminder>, <environment_context>...) are left out unless
 * the content has nothing else. */
void agt_llm_prefix_text(struct agt_llm *l, const cJSON *content);
/* The system prompt (instructions): into the prefix and into system_hash. */
void agt_llm_system(struct agt_llm *l, const cJSON *content);
/* A system or developer message of the history before the opening: the same, unless it is
 * context alone (then it is left out: agents add such messages turn by turn). */
void agt_llm_system_message(struct agt_llm *l, const cJSON *content);
/* A user message of the request's history, in order: the first one with text that is not
 * context alone is the opening (into the prefix, and kept as l->opening). 1 when it was. */
int agt_llm_user(struct agt_llm *l, const cJSON *content);
/* Whether text is one XML-like element (<tag ...>...</tag>): context an agent injects. */
int agt_llm_is_context(const char *text);
/* Add a tool result carried by the request; content is a string or an array of text blocks. */
void agt_llm_result(struct agt_llm *l, const char *id, const char *name, const cJSON *content,
		    int is_error);
/* OpenAI-style messages[] (also Ollama): prefix from system/developer and the first user
 * message, results from role "tool". */
void agt_llm_chat_messages(const cJSON *msgs, struct agt_llm *l);
void agt_llm_api_error(struct agt_llm *l, const cJSON *err); /* {"type","message"} or code */

int agt_openai_chat(const cJSON *req, const struct agt_http_msg *resp, struct agt_llm *l);
int agt_openai_responses(const cJSON *req, const struct agt_http_msg *resp, struct agt_llm *l);
int agt_anthropic_messages(const cJSON *req, const struct agt_http_msg *resp, struct agt_llm *l);
int agt_ollama_chat(const cJSON *req, const struct agt_http_msg *resp, struct agt_llm *l);
/* Google Gemini: 1 when the URL is a generateContent or streamGenerateContent call (AI Studio or
 * Vertex AI paths); agt_gemini_generate then parses it (the model and provider come from it). */
int agt_gemini_path(const char *url);
int agt_gemini_generate(const char *url, const cJSON *req, const struct agt_http_msg *resp,
			struct agt_llm *l);
#endif
