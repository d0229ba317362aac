#include "trace/emit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void agt_emitter_init(struct agt_emitter *e, struct agt_sink *sink, agt_redact_fn redact,
		      void *redact_ctx)
{
	memset(e, 0, sizeof(*e));
	e->sink = sink;
	e->redact = redact;
	e->redact_ctx = redact_ctx;
	agt_rng_init(&e->rng);
}

uint64_t agt_emit_id(struct agt_emitter *e)
{
	return agt_rng_next(&e->rng);
}

void agt_emit_trace_id(struct agt_emitter *e, uint8_t trace[16])
{
	uint64_t a = agt_rng_next(&e->rng), b = agt_rng_next(&e->rng);

	memcpy(trace, &a, 8);
	memcpy(trace + 8, &b, 8);
}

void agt_emit_root(struct agt_emitter *e, struct agt_span *sp)
{
	agt_emit_trace_id(e, sp->trace_id);
	sp->span_id = agt_rng_next(&e->rng);
	sp->parent_id = 0;
}

void agt_emit_child_of(struct agt_emitter *e, struct agt_span *c, const struct agt_span *parent)
{
	memcpy(c->trace_id, parent->trace_id, sizeof(c->trace_id));
	c->parent_id = parent->span_id;
	c->span_id = agt_rng_next(&e->rng);
	c->depth = parent->depth + 1;
	memcpy(c->workflow_id, parent->workflow_id, sizeof(c->workflow_id));
}

char *agt_emit_redact(struct agt_emitter *e, const char *text)
{
	char *r;

	if (!text)
		return NULL;
	r = e->redact ? e->redact(e->redact_ctx, text) : strdup(text);
	return r ? r : strdup("");
}

/* Redacted copies made for one span, freed once the sink has it. */
struct scratch {
	char *s[AGT_MAX_ARGS + 16];
	int n;
};

static const char *red(struct agt_emitter *e, struct scratch *k, const char *text)
{
	char *r;

	if (!text || !text[0])
		return text;
	if (k->n == (int)(sizeof(k->s) / sizeof(k->s[0])))
		return ""; /* no room to keep a redacted copy: dropped, never leaked */
	r = agt_emit_redact(e, text);
	k->s[k->n++] = r;
	return r;
}

/* Whether sp has a text field that redaction looks at. Function spans usually do not: their
 * names come from the spec, and only string arguments can carry data. */
static int has_text(const struct agt_span *sp)
{
	if (sp->http || sp->llm || sp->kind == AGT_SPAN_TOOL || sp->kind == AGT_SPAN_COT ||
	    sp->kind == AGT_SPAN_EXEC)
		return 1;
	if (sp->kind != AGT_SPAN_FUNC)
		return 0;
	for (int i = 0; i < sp->probe.nargs; i++)
		if (sp->probe.args[i].kind == AGT_VAL_STR)
			return 1;
	return sp->probe.ret.kind == AGT_VAL_STR;
}

/* The slow path: a copy of sp whose text fields are redacted, handed to the sink. */
static void emit_redacted(struct agt_emitter *e, const struct agt_span *sp)
{
	struct agt_span r;
	struct agt_span_http h;
	struct agt_span_llm l;
	struct agt_tool_choice calls[16], *many = NULL;
	struct scratch k;

	k.n = 0;
	r = *sp;
	if (sp->http) {
		h = *sp->http;
		r.http = &h;
		if (!h.query) {
			h.path = red(e, &k, h.path);
		} else if (k.n < (int)(sizeof(k.s) / sizeof(k.s[0]))) {
			/* Path and query as the one URL they are: query parameters are only
			 * credentials in a URL (?key=...). */
			size_t pl = strlen(h.path), ql = strlen(h.query);
			char *url = malloc(pl + ql + 2), *q;

			if (url) {
				memcpy(url, h.path, pl);
				url[pl] = '?';
				memcpy(url + pl + 1, h.query, ql + 1);
			}
			k.s[k.n++] = q = url ? agt_emit_redact(e, url) : strdup("");
			free(url);
			h.path = q;
			h.query = "";
			if (q && (url = strchr(q, '?'))) {
				*url = 0;
				h.query = url + 1;
			}
		} else {
			h.path = h.query = ""; /* no room for a redacted copy: dropped, never leaked */
		}
	}
	if (sp->llm) {
		l = *sp->llm;
		l.text = red(e, &k, l.text);
		l.error_message = red(e, &k, l.error_message);
		l.input_messages = red(e, &k, l.input_messages);
		l.system_instructions = red(e, &k, l.system_instructions);
		/* a decision shows the calls' arguments; with --capture-content, a step too */
		if ((sp->kind == AGT_SPAN_DECISION || (l.content && sp->kind == AGT_SPAN_LLM)) &&
		    l.ncalls) {
			struct agt_tool_choice *c = l.ncalls <= 16 ? calls : NULL;

			if (!c)
				c = many = malloc(l.ncalls * sizeof(*c));
			for (int i = 0; c && i < l.ncalls; i++) {
				c[i] = l.calls[i];
				c[i].arguments = agt_emit_redact(e, l.calls[i].arguments);
			}
			l.calls = c;
			l.ncalls = c ? l.ncalls : 0;
		}
		r.llm = &l;
	}
	if (sp->kind == AGT_SPAN_TOOL) {
		r.tool.input = red(e, &k, sp->tool.input);
		r.tool.output = red(e, &k, sp->tool.output);
	} else if (sp->kind == AGT_SPAN_COT) {
		r.cot.final_answer = red(e, &k, sp->cot.final_answer);
	} else if (sp->kind == AGT_SPAN_EXEC) {
		r.exec.command_line = red(e, &k, sp->exec.command_line);
	} else if (sp->kind == AGT_SPAN_FUNC) {
		for (int i = 0; i < sp->probe.nargs; i++)
			if (sp->probe.args[i].kind == AGT_VAL_STR) {
				char *x = agt_emit_redact(e, sp->probe.args[i].str);

				snprintf(r.probe.args[i].str, sizeof(r.probe.args[i].str), "%s", x);
				free(x);
			}
		if (sp->probe.ret.kind == AGT_VAL_STR) {
			char *x = agt_emit_redact(e, sp->probe.ret.str);

			snprintf(r.probe.ret.str, sizeof(r.probe.ret.str), "%s", x);
			free(x);
		}
	}
	e->sink->span(e->sink, &r);
	for (int i = 0; i < k.n; i++)
		free(k.s[i]);
	if (sp->llm && (sp->kind == AGT_SPAN_DECISION || (l.content && sp->kind == AGT_SPAN_LLM)))
		for (int i = 0; i < l.ncalls; i++)
			free((char *)l.calls[i].arguments);
	free(many);
}

void agt_emit(struct agt_emitter *e, const struct agt_span *sp)
{
	e->emitted++;
	if (sp->status == AGT_STATUS_UNFINISHED)
		e->unfinished++;
	if (!e->redact || !has_text(sp))
		e->sink->span(e->sink, sp);
	else
		emit_redacted(e, sp);
}
