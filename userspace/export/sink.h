/* The exporters that write what the trace stage emits: JSON lines, the terminal tree, and the
 * tee that lets exporters adding to the main output (audit, metrics, Elasticsearch) see every
 * span after it. */
#ifndef AGT_SINK_H
#define AGT_SINK_H
#include <stdint.h>
#include <stdio.h>
#include "record/span.h"

struct agt_outfile;
struct agt_sink *agt_jsonl_new(FILE *out, const struct agt_export_ctx *c);
/* The same into an output file (export/outfile.h): lines are placed by their span's start, write
 * failures counted there. */
struct agt_sink *agt_jsonl_new_out(struct agt_outfile *of, const struct agt_export_ctx *c);
/* Invalid UTF-8 sequences a JSONL sink wrote as U+FFFD so far (its output stays valid UTF-8). */
uint64_t agt_jsonl_replaced(const struct agt_sink *jsonl);
/* A sink that passes every span on to next, then lets observe(ctx, span) see it. */
typedef void (*agt_observe_fn)(void *ctx, const struct agt_span *sp);
struct agt_sink *agt_tee_new(struct agt_sink *next, agt_observe_fn observe, void *ctx);
/* Holds spans until their root finishes, then prints the tree; at most max_held spans. */
struct agt_sink *agt_tree_new(FILE *out, const struct agt_export_ctx *c, unsigned max_held);
struct agt_sink *agt_tree_new_out(struct agt_outfile *of, const struct agt_export_ctx *c,
				  unsigned max_held);
#endif
