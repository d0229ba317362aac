/* What every stage of the pipeline (stream layer, trace stage, decoder) offers the code that
 * builds it: the life-cycle events that concern all stages at once, and its drop counters. The
 * pipeline keeps its stages in order and fans each event out with one loop (pipeline/). */
#ifndef AGT_STAGE_H
#define AGT_STAGE_H
#include <stdint.h>
#include "record/proc.h"

/* One drop counter: reason, value, and whether it counts lost events (not bytes, degraded
 * values or notes). */
typedef void (*agt_drop_fn)(void *ctx, const char *reason, uint64_t v, int is_events);

struct agt_stage_ops {
	const char *name;
	/* A target is gone (its last thread exited): what is open for it ends. */
	void (*proc_gone)(void *self, uint32_t pid, uint64_t ts);
	/* A target's record is about to be freed: nothing may point at it afterwards. */
	void (*proc_forget)(void *self, const struct agt_proc_info *proc, uint64_t ts);
	/* The run ends: everything still open ends. */
	void (*flush)(void *self, uint64_t ts);
	void (*drops)(const void *self, agt_drop_fn fn, void *ctx);
};
#endif
