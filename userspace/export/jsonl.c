#include "core/util.h"
#include "export/sink.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void agt_export_ctx_init(struct agt_export_ctx *c)
{
	c->mono_to_real = agt_mono_to_real_offset();
	if (gethostname(c->host, sizeof(c->host)))
		snprintf(c->host, sizeof(c->host), "unknown");
	c->host[sizeof(c->host) - 1] = 0;
}

static void add_value(cJSON *obj, const char *key, const struct agt_value *v)
{
	char hex[24];

	switch (v->kind) {
	case AGT_VAL_INT: cJSON_AddNumberToObject(obj, key, (double)(int64_t)v->u); break;
	case AGT_VAL_UINT: cJSON_AddNumberToObject(obj, key, (double)v->u); break;
	case AGT_VAL_PTR:
		snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)v->u);
		cJSON_AddStringToObject(obj, key, hex);
		break;
	case AGT_VAL_STR: cJSON_AddStringToObject(obj, key, v->str); break;
	default: break;
	}
}

static void add_id(cJSON *o, const char *key, uint64_t id)
{
	char hex[17];
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(id >> (56 - 8 * i));
	agt_hex(b, 8, hex);
	cJSON_AddStringToObject(o, key, hex);
}

cJSON *agt_span_to_json(const struct agt_span *sp, const struct agt_export_ctx *c)
{
	cJSON *o = cJSON_CreateObject(), *proc, *th, *host;
	char ts[40], hex[33];

	agt_format_time(sp->start_ns + c->mono_to_real, ts, sizeof(ts));
	cJSON_AddStringToObject(o, "@timestamp", ts);
	agt_format_time(sp->end_ns + c->mono_to_real, ts, sizeof(ts));
	cJSON_AddStringToObject(o, "end_time", ts);
	agt_hex(sp->trace_id, 16, hex);
	cJSON_AddStringToObject(o, "trace_id", hex);
	add_id(o, "span_id", sp->span_id);
	if (sp->parent_id)
		add_id(o, "parent_span_id", sp->parent_id);
	cJSON_AddStringToObject(o, "trace_type", sp->trace_type);
	cJSON_AddStringToObject(o, "name", sp->name);
	cJSON_AddNumberToObject(o, "duration_ms",
				(double)((sp->end_ns - sp->start_ns) / 1000) / 1000.0);
	cJSON_AddStringToObject(o, "status", agt_status_names[sp->status]);
	if (sp->proc)
		cJSON_AddStringToObject(o, "session_id", sp->proc->session_id);
	proc = cJSON_AddObjectToObject(o, "process");
	cJSON_AddNumberToObject(proc, "pid", sp->pid);
	if (sp->proc) {
		cJSON_AddStringToObject(proc, "name", sp->proc->comm);
		cJSON_AddStringToObject(proc, "executable", sp->proc->exe);
	}
	if (sp->tid) {
		th = cJSON_AddObjectToObject(proc, "thread");
		cJSON_AddNumberToObject(th, "id", sp->tid);
	}
	if (sp->has_exit) {
		cJSON_AddNumberToObject(proc, "exit_code", sp->exit_code);
		if (sp->exit_signal)
			cJSON_AddNumberToObject(proc, "exit_signal", sp->exit_signal);
	}
	host = cJSON_AddObjectToObject(o, "host");
	cJSON_AddStringToObject(host, "name", c->host);
	if (sp->message[0])
		cJSON_AddStringToObject(o, "message", sp->message);
	if (sp->probe) {
		const struct agt_probe_spec *ps = sp->probe->ps;
		cJSON *pr = cJSON_AddObjectToObject(o, "probe"), *args;

		cJSON_AddStringToObject(pr, "spec", sp->probe->spec->name);
		cJSON_AddStringToObject(pr, "symbol", sp->probe->symbol);
		cJSON_AddStringToObject(pr, "object", sp->probe->object);
		cJSON_AddNumberToObject(pr, "depth", sp->depth);
		if (sp->nargs) {
			args = cJSON_AddObjectToObject(pr, "args");
			for (int i = 0; i < sp->nargs; i++)
				add_value(args, ps->args[i].name, &sp->args[i]);
		}
		if (sp->ret.kind != AGT_VAL_NONE && sp->status == AGT_STATUS_OK)
			add_value(pr, "return_value", &sp->ret);
	}
	return o;
}

struct jsonl {
	struct agt_sink base;
	FILE *out;
	struct agt_export_ctx ctx;
};

static void jsonl_span(struct agt_sink *s, const struct agt_span *sp)
{
	struct jsonl *j = (struct jsonl *)s;
	cJSON *o = agt_span_to_json(sp, &j->ctx);
	char *text = cJSON_PrintUnformatted(o);

	if (text) {
		fputs(text, j->out);
		fputc('\n', j->out);
	}
	free(text);
	cJSON_Delete(o);
}

static void jsonl_flush(struct agt_sink *s)
{
	fflush(((struct jsonl *)s)->out);
}
static void jsonl_destroy(struct agt_sink *s)
{
	free(s);
}

struct agt_sink *agt_jsonl_new(FILE *out, const struct agt_export_ctx *c)
{
	struct jsonl *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->base =
	    (struct agt_sink){.span = jsonl_span, .flush = jsonl_flush, .destroy = jsonl_destroy};
	j->out = out;
	j->ctx = *c;
	return &j->base;
}
