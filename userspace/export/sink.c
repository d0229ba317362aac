/* The tee: exporters that add to the main output (audit, metrics, Elasticsearch) see every span
 * after the sink in front of them has it. */
#include "export/sink.h"
#include <stdlib.h>

struct tee {
	struct agt_sink base;
	struct agt_sink *next;
	agt_observe_fn observe;
	void *ctx;
};

static void tee_span(struct agt_sink *s, const struct agt_span *sp)
{
	struct tee *t = (struct tee *)s;

	t->next->span(t->next, sp);
	t->base.early_flushes = t->next->early_flushes;
	t->observe(t->ctx, sp);
}

static void tee_flush(struct agt_sink *s)
{
	struct tee *t = (struct tee *)s;

	t->next->flush(t->next);
	t->base.early_flushes = t->next->early_flushes;
}

static void tee_destroy(struct agt_sink *s)
{
	struct tee *t = (struct tee *)s;

	t->next->destroy(t->next);
	free(t);
}

struct agt_sink *agt_tee_new(struct agt_sink *next, agt_observe_fn observe, void *ctx)
{
	struct tee *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->base = (struct agt_sink){.span = tee_span, .flush = tee_flush, .destroy = tee_destroy};
	t->next = next;
	t->observe = observe;
	t->ctx = ctx;
	return &t->base;
}
