/* The trace stage's one way out: every span and event goes through an emitter, which owns the
 * ids (trace and span ids from one generator), counts what was emitted, redacts the text fields
 * that can carry secrets (once, for every exporter), and hands the span to the sink. */
#ifndef AGT_EMIT_H
#define AGT_EMIT_H
#include <stdint.h>
#include "base/util.h"
#include "record/span.h"

/* Returns a redacted copy of text (malloc'd), or NULL when out of memory. */
typedef char *(*agt_redact_fn)(void *ctx, const char *text);

struct agt_emitter {
	struct agt_sink *sink;
	struct agt_rng rng;
	agt_redact_fn redact; /* NULL: text goes out as it is */
	void *redact_ctx;
	uint64_t emitted;    /* spans and events handed to the sink */
	uint64_t unfinished; /* of which with status unfinished */
};

void agt_emitter_init(struct agt_emitter *e, struct agt_sink *sink, agt_redact_fn redact,
		      void *redact_ctx);
/* Redact sp's free-text fields and hand it to the sink. */
void agt_emit(struct agt_emitter *e, const struct agt_span *sp);
/* A redacted copy of text for a field the caller builds itself (e.g. a span name that quotes a
 * command line); the caller frees it. Never NULL for non-NULL text (the text unchanged when out
 * of memory would leak it: "" then). */
char *agt_emit_redact(struct agt_emitter *e, const char *text);
uint64_t agt_emit_id(struct agt_emitter *e);
void agt_emit_trace_id(struct agt_emitter *e, uint8_t trace[16]);
/* sp becomes a root: a new trace id and span id, no parent. */
void agt_emit_root(struct agt_emitter *e, struct agt_span *sp);
/* c becomes a child of parent: same trace and conversation, a new span id, one level deeper. */
void agt_emit_child_of(struct agt_emitter *e, struct agt_span *c, const struct agt_span *parent);
#endif
