/* Thread nesting: function entries and returns become spans; a call that starts while another
 * is open on the same thread is its child. Memory is bounded: at most max_depth open calls per
 * thread (deeper ones are counted and skipped, their returns matched by count) and at most
 * max_threads threads with open calls. */
#ifndef AGT_NEST_H
#define AGT_NEST_H
#include "trace/emit.h"

struct agt_nest_stats {
	uint64_t spans;		       /* spans emitted */
	uint64_t unfinished;	       /* of which closed without a return */
	uint64_t depth_exceeded;       /* entries dropped: thread already max_depth deep */
	uint64_t return_without_entry; /* returns of calls that started before attach */
	uint64_t thread_table_full;    /* entries dropped: max_threads threads busy */
	uint64_t open;		       /* calls open right now */
};

struct agt_nest;
struct agt_nest *agt_nest_new(unsigned max_depth, unsigned max_threads, struct agt_emitter *em);
/* s: the span as known at entry (kind FUNC: probe, proc, pid, tid, start_ns, name, trace_type).
 * instant: entry-only probe, emitted at once with zero duration. */
void agt_nest_enter(struct agt_nest *n, const struct agt_span *s, int instant);
/* frame_sp: the entry stack pointer of the returning call, so a return finds its own frame even
 * when returns of deeper calls went missing (the kernel keeps at most 64 nested uretprobes);
 * 0 matches the innermost open call of the same probe. */
void agt_nest_leave(struct agt_nest *n, uint32_t pid, uint32_t tid, uint32_t probe_id,
		    uint64_t frame_sp, uint64_t ts, const struct agt_value *ret);
/* Close open calls as unfinished: one thread, one process, or everything. */
void agt_nest_thread_exit(struct agt_nest *n, uint32_t pid, uint32_t tid, uint64_t ts);
void agt_nest_process_exit(struct agt_nest *n, uint32_t pid, uint64_t ts);
void agt_nest_flush(struct agt_nest *n, uint64_t ts);
unsigned agt_nest_open_threads(const struct agt_nest *n);
const struct agt_nest_stats *agt_nest_stats(const struct agt_nest *n);
void agt_nest_free(struct agt_nest *n);
#endif
