#define _GNU_SOURCE
/* Terminal tree: spans are held until their root finishes, then printed depth first in start
 * order, one line each, indented by nesting. */
#include "base/util.h"
#include "export/outfile.h"
#include "export/sink.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A span as the tree will print it: its line is rendered when the span arrives (what it points
 * at may be gone by the time its root finishes); only the indentation waits. */
struct line {
	uint8_t trace_id[16];
	uint64_t span_id, parent_id, start_ns;
	uint32_t depth;
	char *text;   /* everything after the indentation */
	char *suffix; /* "[trace_type pid ...]", shown on lines printed as roots */
};

struct tree {
	struct agt_sink base;
	FILE *out;
	struct agt_export_ctx ctx;
	int color;
	struct line *held;
	unsigned nheld, cap, max_held;
};

static void value_format(const struct agt_value *v, char *buf, size_t n)
{
	switch (v->kind) {
	case AGT_VAL_INT: snprintf(buf, n, "%" PRId64, (int64_t)v->u); break;
	case AGT_VAL_UINT: snprintf(buf, n, "%" PRIu64, v->u); break;
	case AGT_VAL_PTR: snprintf(buf, n, "0x%" PRIx64, v->u); break;
	case AGT_VAL_STR: snprintf(buf, n, "\"%s\"", v->str); break;
	default: snprintf(buf, n, "?");
	}
}

static void render(struct tree *t, const struct agt_span *s, struct line *ln)
{
	char ts[40], val[96], args[512] = "", *buf = NULL;
	size_t used = 0, blen = 0;
	FILE *f = open_memstream(&buf, &blen);
	int func = s->kind == AGT_SPAN_FUNC;

	memcpy(ln->trace_id, s->trace_id, sizeof(ln->trace_id));
	ln->span_id = s->span_id;
	ln->parent_id = s->parent_id;
	ln->start_ns = s->start_ns;
	ln->depth = s->depth;
	ln->text = ln->suffix = NULL;
	if (!f)
		return;
	agt_format_time(s->start_ns + t->ctx.mono_to_real, ts, sizeof(ts));
	for (int i = 0; func && i < s->probe.nargs; i++) {
		value_format(&s->probe.args[i], val, sizeof(val));
		used += snprintf(args + used, used < sizeof(args) ? sizeof(args) - used : 0,
				 "%s%s=%s", i ? ", " : "", s->probe.arg_names[i], val);
	}
	fprintf(f, "%s", s->name);
	if (func)
		fprintf(f, "(%s)", args);
	if (func && s->probe.ret.kind != AGT_VAL_NONE && s->status == AGT_STATUS_OK) {
		value_format(&s->probe.ret, val, sizeof(val));
		fprintf(f, " = %s", val);
	}
	if (s->end_ns != s->start_ns || func)
		fprintf(f, "  %.3f ms", (double)(s->end_ns - s->start_ns) / 1e6);
	if (s->kind == AGT_SPAN_LLM && s->llm) {
		const struct agt_span_llm *l = s->llm;

		fprintf(f, "  %s", l->provider);
		if (l->input_tokens >= 0 || l->output_tokens >= 0)
			fprintf(f, " tokens %lld in / %lld out", (long long)l->input_tokens,
				(long long)l->output_tokens);
		for (int i = 0; i < l->nfinish; i++)
			fprintf(f, "%s%s", i ? "," : " finish ", l->finish[i]);
		if (l->stream)
			fprintf(f, " streamed");
	} else if (s->kind == AGT_SPAN_DECISION && s->llm) {
		const struct agt_span_llm *l = s->llm;

		for (int i = 0; i < l->ncalls; i++)
			fprintf(f, "%s%s(%s) id=%s", i ? "; " : "  -> ", l->calls[i].name,
				l->calls[i].arguments ? l->calls[i].arguments : "", l->calls[i].id);
	} else if (s->kind == AGT_SPAN_ERROR && s->llm && s->llm->error_message) {
		fprintf(f, "  %s", s->llm->error_message);
	} else if (s->kind == AGT_SPAN_HTTP && s->http && s->http->answered) {
		fprintf(f, "  %d", s->http->status);
	} else if (s->kind == AGT_SPAN_TOOL) {
		fprintf(f, "  id=%s in=%.80s", s->tool.id, s->tool.input ? s->tool.input : "");
		if (s->tool.output)
			fprintf(f, " out=%.80s", s->tool.output);
	} else if (s->kind == AGT_SPAN_FILE) {
		if (s->file.bytes > 0)
			fprintf(f, "  %lld bytes", (long long)s->file.bytes);
		if (s->file.sha256)
			fprintf(f, "  sha256 %.12s", s->file.sha256);
		if (s->file.sha256_before)
			fprintf(f, " (was %.12s)", s->file.sha256_before);
		if (s->file.hash_note)
			fprintf(f, "  %s", s->file.hash_note);
	} else if (s->kind == AGT_SPAN_COT) {
		fprintf(f, "  %d steps, %d tool calls, tokens %lld in / %lld out", s->cot.steps,
			s->cot.tool_calls, (long long)s->cot.input_tokens,
			(long long)s->cot.output_tokens);
	}
	if (s->status != AGT_STATUS_OK)
		fprintf(f, t->color ? "  \033[31m%s\033[0m" : "  %s", agt_status_names[s->status]);
	if (s->message[0])
		fprintf(f, "  %s", s->message);
	fclose(f);
	ln->text = buf;
	if (s->tid && asprintf(&ln->suffix, "  [%s pid %u tid %u %s]", s->trace_type, s->pid,
			       s->tid, s->proc ? s->proc->comm : "") < 0)
		ln->suffix = NULL;
	else if (!s->tid && asprintf(&ln->suffix, "  [%s pid %u %s]", s->trace_type, s->pid,
				     s->proc ? s->proc->comm : "") < 0)
		ln->suffix = NULL;
	/* The time goes first on the line: keep it with the text. */
	if (asprintf(&buf, "%s\t%s", ts + 11, ln->text ? ln->text : "") >= 0) {
		free(ln->text);
		ln->text = buf;
	}
}

static void print_line(struct tree *t, const struct line *ln, unsigned indent)
{
	const char *tab = ln->text ? strchr(ln->text, '\t') : NULL;

	if (!tab)
		return;
	fprintf(t->out, "%.*s  %*s%s%s%s\n", (int)(tab - ln->text), ln->text, (int)indent * 2, "",
		indent ? "└─ " : "", tab + 1, indent == 0 && ln->suffix ? ln->suffix : "");
}

static void line_free(struct line *ln)
{
	free(ln->text);
	free(ln->suffix);
}

/* Siblings together, each group in start order: (parent, start, depth). */
static int by_parent(const void *a, const void *b)
{
	const struct line *x = a, *y = b;

	if (x->parent_id != y->parent_id)
		return x->parent_id < y->parent_id ? -1 : 1;
	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? -1 : 1;
	return x->depth < y->depth ? -1 : x->depth > y->depth;
}

/* The first of v[0..n) (sorted by_parent) whose parent is id; n when there is none. */
static unsigned first_child(const struct line *v, unsigned n, uint64_t id)
{
	unsigned lo = 0, hi = n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (v[mid].parent_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Print ln's subtree from v[0..n) (sorted by_parent): its children are one run of v. */
static void print_sub(struct tree *t, const struct line *v, unsigned n, const struct line *ln,
		      unsigned indent)
{
	print_line(t, ln, indent);
	for (unsigned i = first_child(v, n, ln->span_id); i < n && v[i].parent_id == ln->span_id;
	     i++)
		if (&v[i] != ln)
			print_sub(t, v, n, &v[i], indent + 1);
}

static void print_trace(struct tree *t, struct line *root)
{
	unsigned n = 0, keep = 0;
	struct line *v = malloc((t->nheld + 1) * sizeof(*v));

	if (!v) {
		line_free(root);
		return;
	}
	v[n++] = *root;
	for (unsigned i = 0; i < t->nheld; i++) {
		if (!memcmp(t->held[i].trace_id, root->trace_id, 16))
			v[n++] = t->held[i];
		else
			t->held[keep++] = t->held[i];
	}
	t->nheld = keep;
	qsort(v, n, sizeof(*v), by_parent);
	for (unsigned i = 0; i < n && v[i].parent_id == 0; i++)
		print_sub(t, v, n, &v[i], 0);
	for (unsigned i = 0; i < n; i++)
		line_free(&v[i]);
	free(v);
	fflush(t->out);
}

static void tree_span(struct agt_sink *s, const struct agt_span *sp)
{
	struct tree *t = (struct tree *)s;
	struct line ln;

	render(t, sp, &ln);
	if (sp->parent_id == 0) {
		print_trace(t, &ln);
		return;
	}
	if (t->nheld == t->max_held) {
		/* Buffer full: print the oldest held span alone rather than lose it. */
		print_line(t, &t->held[0], t->held[0].depth);
		line_free(&t->held[0]);
		memmove(t->held, t->held + 1, (t->nheld - 1) * sizeof(*t->held));
		t->nheld--;
		s->early_flushes++;
	}
	if (t->nheld == t->cap) {
		unsigned cap = t->cap ? t->cap * 2 : 64;
		struct line *nh;

		if (cap > t->max_held)
			cap = t->max_held;
		nh = realloc(t->held, cap * sizeof(*nh));
		if (!nh) {
			print_line(t, &ln, ln.depth);
			line_free(&ln);
			s->early_flushes++;
			return;
		}
		t->held = nh;
		t->cap = cap;
	}
	t->held[t->nheld++] = ln;
}

static void tree_flush(struct agt_sink *s)
{
	struct tree *t = (struct tree *)s;

	/* Whatever is still held lost its root (e.g. the root is still open): print it flat. */
	for (unsigned i = 0; i < t->nheld; i++) {
		print_line(t, &t->held[i], t->held[i].depth);
		line_free(&t->held[i]);
	}
	t->nheld = 0;
	fflush(t->out);
}

static void tree_destroy(struct agt_sink *s)
{
	struct tree *t = (struct tree *)s;

	for (unsigned i = 0; i < t->nheld; i++)
		line_free(&t->held[i]);
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

struct agt_sink *agt_tree_new_out(struct agt_outfile *of, const struct agt_export_ctx *c,
				  unsigned max_held)
{
	FILE *f = agt_outfile_stream(of);
	struct agt_sink *s = f ? agt_tree_new(f, c, max_held) : NULL;

	if (s)
		((struct tree *)s)->color = agt_outfile_isatty(of);
	return s;
}
