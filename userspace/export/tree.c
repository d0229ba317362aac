/* Terminal tree: spans are held until their root finishes, then printed depth first in start
 * order, one line each, indented by nesting. */
#include "core/redact.h"
#include "core/util.h"
#include "protocols/llm/llm.h"
#include "export/sink.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tree {
	struct agt_sink base;
	FILE *out;
	struct agt_export_ctx ctx;
	int color;
	struct agt_span *held;
	unsigned nheld, cap, max_held;
};

static void print_line(struct tree *t, const struct agt_span *s, unsigned indent)
{
	char ts[40], val[96], args[512] = "";
	size_t used = 0;

	agt_format_time(s->start_ns + t->ctx.mono_to_real, ts, sizeof(ts));
	for (int i = 0; s->probe && i < s->nargs; i++) {
		agt_value_format(&s->args[i], val, sizeof(val));
		used += snprintf(args + used, used < sizeof(args) ? sizeof(args) - used : 0,
				 "%s%s=%s", i ? ", " : "", s->probe->ps->args[i].name, val);
	}
	fprintf(t->out, "%s  %*s%s%s", ts + 11, (int)indent * 2, "", indent ? "└─ " : "", s->name);
	if (s->probe)
		fprintf(t->out, "(%s)", args);
	if (s->probe && s->ret.kind != AGT_VAL_NONE && s->status == AGT_STATUS_OK) {
		agt_value_format(&s->ret, val, sizeof(val));
		fprintf(t->out, " = %s", val);
	}
	if (s->end_ns != s->start_ns || s->probe)
		fprintf(t->out, "  %.3f ms", (double)(s->end_ns - s->start_ns) / 1e6);
	if (s->kind == AGT_SPAN_LLM) {
		const struct agt_llm *l = s->llm;

		fprintf(t->out, "  %s", l->provider);
		if (l->input_tokens >= 0 || l->output_tokens >= 0)
			fprintf(t->out, " tokens %lld in / %lld out", (long long)l->input_tokens,
				(long long)l->output_tokens);
		for (int i = 0; i < l->nfinish; i++)
			fprintf(t->out, "%s%s", i ? "," : " finish ", l->finish[i]);
		if (l->stream)
			fprintf(t->out, " streamed");
	} else if (s->kind == AGT_SPAN_DECISION) {
		const struct agt_llm *l = s->llm;

		for (int i = 0; i < l->ncalls; i++) {
			char *args = agt_redact(l->calls[i].arguments);

			fprintf(t->out, "%s%s(%s) id=%s", i ? "; " : "  -> ", l->calls[i].name,
				args ? args : "", l->calls[i].id);
			free(args);
		}
	} else if (s->kind == AGT_SPAN_ERROR && s->llm && s->llm->error_message) {
		char *msg = agt_redact(s->llm->error_message);

		fprintf(t->out, "  %s", msg ? msg : "");
		free(msg);
	} else if (s->kind == AGT_SPAN_HTTP && s->resp) {
		fprintf(t->out, "  %d", s->resp->status);
	}
	if (s->status != AGT_STATUS_OK)
		fprintf(t->out, t->color ? "  \033[31m%s\033[0m" : "  %s",
			agt_status_names[s->status]);
	if (s->message[0])
		fprintf(t->out, "  %s", s->message);
	if (indent == 0 && s->tid)
		fprintf(t->out, "  [%s pid %u tid %u %s]", s->trace_type, s->pid, s->tid,
			s->proc ? s->proc->comm : "");
	else if (indent == 0)
		fprintf(t->out, "  [%s pid %u %s]", s->trace_type, s->pid,
			s->proc ? s->proc->comm : "");
	fputc('\n', t->out);
}

static int by_start(const void *a, const void *b)
{
	const struct agt_span *x = a, *y = b;

	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? -1 : 1;
	return x->depth < y->depth ? -1 : x->depth > y->depth;
}

/* Print sp's subtree from v[0..n) (sorted by start); children are later in start order. */
static void print_sub(struct tree *t, const struct agt_span *v, unsigned n,
		      const struct agt_span *sp, unsigned indent)
{
	print_line(t, sp, indent);
	for (unsigned i = 0; i < n; i++)
		if (v[i].parent_id == sp->span_id && &v[i] != sp)
			print_sub(t, v, n, &v[i], indent + 1);
}

static void print_trace(struct tree *t, const struct agt_span *root)
{
	unsigned n = 0, keep = 0;
	struct agt_span *v = malloc((t->nheld + 1) * sizeof(*v));

	if (!v)
		return;
	v[n++] = *root;
	for (unsigned i = 0; i < t->nheld; i++) {
		if (!memcmp(t->held[i].trace_id, root->trace_id, 16))
			v[n++] = t->held[i];
		else
			t->held[keep++] = t->held[i];
	}
	t->nheld = keep;
	qsort(v, n, sizeof(*v), by_start);
	for (unsigned i = 0; i < n; i++)
		if (v[i].parent_id == 0)
			print_sub(t, v, n, &v[i], 0);
	free(v);
	fflush(t->out);
}

static void tree_span(struct agt_sink *s, const struct agt_span *sp)
{
	struct tree *t = (struct tree *)s;

	if (sp->parent_id == 0) {
		print_trace(t, sp);
		return;
	}
	if (t->nheld == t->max_held) {
		/* Buffer full: print the oldest held span alone rather than lose it. */
		print_line(t, &t->held[0], t->held[0].depth);
		memmove(t->held, t->held + 1, (t->nheld - 1) * sizeof(*t->held));
		t->nheld--;
		s->early_flushes++;
	}
	if (t->nheld == t->cap) {
		unsigned cap = t->cap ? t->cap * 2 : 64;
		struct agt_span *nh;

		if (cap > t->max_held)
			cap = t->max_held;
		nh = realloc(t->held, cap * sizeof(*nh));
		if (!nh) {
			print_line(t, sp, sp->depth);
			s->early_flushes++;
			return;
		}
		t->held = nh;
		t->cap = cap;
	}
	t->held[t->nheld++] = *sp;
}

static void tree_flush(struct agt_sink *s)
{
	struct tree *t = (struct tree *)s;

	/* Whatever is still held lost its root (e.g. the root is still open): print it flat. */
	for (unsigned i = 0; i < t->nheld; i++)
		print_line(t, &t->held[i], t->held[i].depth);
	t->nheld = 0;
	fflush(t->out);
}

static void tree_destroy(struct agt_sink *s)
{
	struct tree *t = (struct tree *)s;

	free(t->held);
	free(t);
}

struct agt_sink *agt_tree_new(FILE *out, const struct agt_export_ctx *c, unsigned max_held)
{
	struct tree *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->base =
	    (struct agt_sink){.span = tree_span, .flush = tree_flush, .destroy = tree_destroy};
	t->out = out;
	t->ctx = *c;
	t->max_held = max_held ? max_held : 1;
	t->color = isatty(fileno(out));
	return &t->base;
}
