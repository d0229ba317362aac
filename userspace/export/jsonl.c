/* JSON lines: one ECS JSON document per span, written through the schema into a buffer reused
 * from span to span. */
#include "base/jsonw.h"
#include "base/util.h"
#include "export/outfile.h"
#include "export/schema.h"
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

struct jsonl {
	struct agt_sink base;
	FILE *out; /* or an output file, each line stamped with its span's start (the day of a
		      dated file): */
	struct agt_outfile *of;
	struct agt_export_ctx ctx;
	struct agt_jw w;
	struct agt_ecs_cache *cache; /* NULL (out of memory): every block written */
};

static void jsonl_span(struct agt_sink *s, const struct agt_span *sp)
{
	struct jsonl *j = (struct jsonl *)s;

	agt_jw_reset(&j->w);
	agt_schema_ecs_cached(sp, &j->ctx, j->cache, &j->w);
	agt_jw_raw(&j->w, "\n", 1);
	if (j->of)
		agt_outfile_put(j->of, j->w.buf, j->w.len,
				(uint64_t)((int64_t)sp->start_ns + j->ctx.mono_to_real));
	else
		fwrite(j->w.buf, 1, j->w.len, j->out);
}

static void jsonl_flush(struct agt_sink *s)
{
	struct jsonl *j = (struct jsonl *)s;

	if (j->of)
		agt_outfile_flush(j->of);
	else
		fflush(j->out);
}

static void jsonl_destroy(struct agt_sink *s)
{
	struct jsonl *j = (struct jsonl *)s;

	agt_jw_free(&j->w);
	agt_ecs_cache_free(j->cache);
	free(j);
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
	agt_jw_init(&j->w);
	j->cache = agt_ecs_cache_new();
	return &j->base;
}

uint64_t agt_jsonl_replaced(const struct agt_sink *s)
{
	return s ? ((const struct jsonl *)s)->w.replaced : 0;
}

struct agt_sink *agt_jsonl_new_out(struct agt_outfile *of, const struct agt_export_ctx *c)
{
	struct agt_sink *s = agt_jsonl_new(NULL, c);

	if (s)
		((struct jsonl *)s)->of = of;
	return s;
}
