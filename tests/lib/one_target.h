/* For tests, fuzzing and benchmarks that drive a pipeline without a kernel: a run that knows
 * one probe and one target, as the decoder's environment. The target's exit marks it gone once
 * and fans out to the stages, as the tracer does. */
#ifndef AGT_TEST_ONE_TARGET_H
#define AGT_TEST_ONE_TARGET_H
#include "capture/target.h"
#include "pipeline/pipeline.h"

struct one_target {
	struct agt_probe_info *probe;
	struct agt_proc *proc;
	struct agt_pipeline *pl;
	int live, exits;
};

static const struct agt_probe_info *one_probe(void *ctx, uint32_t id)
{
	struct one_target *o = ctx;

	return o->probe && id == o->probe->id ? o->probe : NULL;
}

static const struct agt_proc_info *one_proc(void *ctx, uint32_t pid)
{
	struct one_target *o = ctx;

	return o->proc && (uint32_t)o->proc->info.pid == pid ? &o->proc->info : NULL;
}

static void one_exit(void *ctx, uint32_t pid, uint64_t ts, uint32_t status)
{
	struct one_target *o = ctx;
	char msg[64];

	if (!o->proc || o->proc->gone)
		return;
	o->proc->gone = 1;
	o->live--;
	o->exits++;
	agt_pipeline_proc_gone(o->pl, pid, ts);
	snprintf(msg, sizeof(msg), "exited with code %u", (status >> 8) & 0xff);
	agt_trace_state(&o->pl->trace, &o->proc->info, ts, "exit", msg, 1, status);
}

/* Build pl for one probe and one target; 0 or -ENOMEM. */
static inline int one_target_init(struct one_target *o, struct agt_pipeline *pl,
				  struct agt_probe_info *probe, struct agt_proc *proc,
				  const struct agt_pipeline_config *c, struct agt_sink *sink)
{
	struct agt_decoder_env env = {one_probe, one_proc, one_exit, NULL, NULL, o};

	o->probe = probe;
	o->proc = proc;
	o->pl = pl;
	o->live = 1;
	o->exits = 0;
	return agt_pipeline_init(pl, c, &env, sink);
}
#endif
