/* The pipeline of one run, built and torn down here and nowhere else: ring buffer records ->
 * decoder (events/) -> stream layer (streams/, with the protocols it picks) -> trace stage
 * (trace/) -> the sink (export/). Records flow one way. The stages are kept in order, and what
 * concerns them all (a target gone, a target forgotten, the end of the run, drop counters) is
 * one loop over them. */
#ifndef AGT_PIPELINE_H
#define AGT_PIPELINE_H
#include "events/decode.h"
#include "record/span.h"
#include "record/stage.h"
#include "streams/conn.h"
#include "trace/trace.h"

#define AGT_PIPELINE_STAGES 3

struct agt_pipeline_config {
	unsigned max_depth;   /* open function calls kept per thread */
	unsigned max_threads; /* threads with open calls kept */
	size_t msg_cap;	      /* bytes of one HTTP message (or JSON-RPC line) kept */
	unsigned max_conns;   /* connections followed at once */
	agt_redact_fn redact; /* how text fields are redacted before they leave (NULL: not) */
	void *redact_ctx;
	size_t content_cap; /* --capture-content: bytes of each message content kept; 0: off */
	const struct agt_files_cfg *files; /* file lineage settings; NULL: off */
};

struct agt_pipeline {
	struct agt_decoder dec;
	struct agt_streams *streams;
	struct agt_trace trace;
	struct {
		const struct agt_stage_ops *ops;
		void *self;
	} stages[AGT_PIPELINE_STAGES]; /* in record order: decoder, streams, trace */
	int nstages;
};

/* env: what the decoder asks of the run; sink: where spans go. 0, or -ENOMEM. */
int agt_pipeline_init(struct agt_pipeline *p, const struct agt_pipeline_config *c,
		      const struct agt_decoder_env *env, struct agt_sink *sink);
void agt_pipeline_fini(struct agt_pipeline *p);
/* The fan-outs, in stage order (what the streams still hold reaches the trace stage first). */
void agt_pipeline_proc_gone(struct agt_pipeline *p, uint32_t pid, uint64_t ts);
void agt_pipeline_proc_forget(struct agt_pipeline *p, const struct agt_proc_info *proc,
			      uint64_t ts);
void agt_pipeline_flush(struct agt_pipeline *p, uint64_t ts);
void agt_pipeline_drops(const struct agt_pipeline *p, agt_drop_fn fn, void *ctx);
#endif
