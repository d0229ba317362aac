/* Exporters read finished spans and events; they never change them. */
#ifndef AGT_SINK_H
#define AGT_SINK_H
#include <cjson/cJSON.h>
#include <stdio.h>
#include "trace/span.h"

struct agt_sink {
	void (*span)(struct agt_sink *s, const struct agt_span *sp);
	void (*flush)(struct agt_sink *s); /* end of run: write out what is held */
	void (*destroy)(struct agt_sink *s);
	uint64_t early_flushes; /* tree: spans printed before their root finished (buffer full) */
};

/* Context every exporter needs to place a span in the world. */
struct agt_export_ctx {
	int64_t mono_to_real; /* add to CLOCK_MONOTONIC ns to get realtime ns */
	char host[256];
};
void agt_export_ctx_init(struct agt_export_ctx *c);

/* The trace-model JSON object for one span or event (fields of DESIGN.md). */
cJSON *agt_span_to_json(const struct agt_span *sp, const struct agt_export_ctx *c);

struct agt_sink *agt_jsonl_new(FILE *out, const struct agt_export_ctx *c);
/* A sink that passes every span on to next, then lets observe(ctx, span) see it. */
typedef void (*agt_observe_fn)(void *ctx, const struct agt_span *sp);
struct agt_sink *agt_tee_new(struct agt_sink *next, agt_observe_fn observe, void *ctx);
/* Holds spans until their root finishes, then prints the tree; at most max_held spans. */
struct agt_sink *agt_tree_new(FILE *out, const struct agt_export_ctx *c, unsigned max_held);
#endif
