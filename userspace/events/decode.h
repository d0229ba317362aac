/* The decoder: ring buffer records (bpf/agtrace.h) to the stages after it. One table keyed by
 * event kind says how long a record of each kind is at least and which handler takes it; a record
 * that is shorter, or of a kind not in the table, is counted as malformed, never guessed at.
 * What the decoder needs to know about the run (probe ids, targets) and what it reports back
 * (a target gone, a library loaded, an exec to match) goes through the environment it is given. */
#ifndef AGT_DECODE_H
#define AGT_DECODE_H
#include <stddef.h>
#include <stdint.h>
#include "capture/spec.h"
#include "record/stage.h"
#include "streams/conn.h"
#include "events/tls_join.h"
#include "trace/trace.h"

/* Reasons the decoder drops a record; every one is counted and shown in the summary. */
enum agt_udrop {
	AGT_UDROP_MALFORMED = 0,     /* record shorter than its kind needs, or unknown kind */
	AGT_UDROP_UNKNOWN_PROBE = 1, /* probe id not in the probe table */
	AGT_UDROP_UNKNOWN_PID = 2,   /* event from a process that is not a target */
	AGT_UDROP_NOT_SELECTED = 3,  /* a note, not a loss: an event of a process discovery looked
				      * at (caught at exec) and no selector took */
	AGT_UDROP_MAX = 4,
};

/* Counted by source: function probes, TLS, TCP, IPC data, process events. */
enum { AGT_SRC_COUNT_FUNC, AGT_SRC_COUNT_TLS, AGT_SRC_COUNT_TCP, AGT_SRC_COUNT_IPC,
       AGT_SRC_COUNT_PROC, AGT_SRC_COUNT_FILE, AGT_SRC_COUNTS };
extern const char *const agt_source_count_names[AGT_SRC_COUNTS];

struct agt_decoder_env {
	/* The probe with this id (NULL: unknown). */
	const struct agt_probe_info *(*probe)(void *ctx, uint32_t id);
	/* The target with this PID, running or gone (NULL: not a target). */
	const struct agt_proc_info *(*target)(void *ctx, uint32_t pid);
	/* A target's last thread exited with this wait status. */
	void (*target_exit)(void *ctx, uint32_t pid, uint64_t ts, uint32_t wait_status);
	/* A traced process (a target, or a followed descendant) loaded libraries, or a followed
	 * descendant ran exec: look for probe objects again. */
	void (*mapped)(void *ctx, uint32_t pid);
	/* A process that is not a target ran execve (discovery on); NULL when not wanted. */
	void (*discover)(void *ctx, uint32_t pid, const char *filename);
	void *ctx;
	/* A followed descendant ran the program of the target it descends from (an agent CLI that
	 * relaunches itself): probe it as well; what it does stays its target's. NULL: not wanted.
	 */
	void (*relaunch)(void *ctx, uint32_t pid);
	/* A process that was pending (caught at exec, discovery deciding on it) forked: the child
	 * is followed (1) when the parent was taken, else forgotten (0). NULL: follow. */
	int (*pending_fork)(void *ctx, uint32_t child, uint32_t parent);
	/* The kernel stopped pid at exec (its executable, exe, was new to it): look at the file,
	 * then resume the process, always. Called after the exec's other handlers. */
	void (*stopped)(void *ctx, uint32_t pid, const struct agt_exe_key *exe);
	/* A traced process forked a child (followed): probes the parent holds per process (TLS
	 * located in its executable) go to the child too. NULL: not wanted. */
	void (*forked)(void *ctx, uint32_t child, uint32_t parent);
};

struct agt_decoder {
	struct agt_decoder_env env;
	struct agt_streams *streams;
	struct agt_trace *trace;
	uint64_t records;		  /* ring buffer records seen */
	uint64_t by_source[AGT_SRC_COUNTS];
	uint64_t udrops[AGT_UDROP_MAX];
	uint64_t execs_seen; /* execs of processes that are not targets */
	struct agt_join_queue join; /* AEAD-sealed TLS records waiting for their socket */
	/* The span of a function entry is built here, for the trace stage to copy: zeroed with
	 * the decoder, then only what an entry says is written again (a span is a large record:
	 * no clearing per call). */
	struct agt_span entry;
};
/* Free what the decoder holds. */
void agt_decoder_fini(struct agt_decoder *d);

/* Decode one ring buffer record (libbpf's ring_buffer callback; ctx: struct agt_decoder *). */
int agt_decode_record(void *ctx, void *data, size_t size);
/* The decoder as a stage: its drop counters. */
extern const struct agt_stage_ops agt_decoder_stage;
#endif
