/* The pipeline of one attach run: probes and targets known, the trace stage and the exporter.
 * Records flow one way: ring buffer -> decode -> nest -> sink. */
#ifndef AGT_PIPELINE_H
#define AGT_PIPELINE_H
#include "capture/spec.h"
#include "capture/target.h"
#include "export/sink.h"
#include "streams/conn.h"
#include "trace/trace.h"
struct agt_jsonrpc;

/* Reasons userspace drops a record; every one is counted and shown in the summary. */
enum agt_udrop {
	AGT_UDROP_MALFORMED = 0,     /* record shorter than its kind needs, or unknown kind */
	AGT_UDROP_UNKNOWN_PROBE = 1, /* probe id not in the probe table */
	AGT_UDROP_UNKNOWN_PID = 2,   /* event from a process that is not a target */
	AGT_UDROP_MAX = 3,
};
extern const char *const agt_udrop_names[AGT_UDROP_MAX];
extern const char *const agt_kdrop_names[AGT_KDROP_MAX];

struct agt_pipeline {
	struct agt_probe_info **probes; /* indexed by probe id */
	uint32_t nprobes;
	struct agt_proc **procs; /* each allocated apart: spans keep pointers to them */
	int nprocs, procs_cap;
	struct agt_proc *pcache[256]; /* pid & 255 -> the target last found for it */
	int live;		      /* targets still running */
	struct agt_trace trace;	      /* spans: function calls, exchanges, conversations */
	struct agt_streams *streams; /* TLS plaintext -> HTTP exchanges */
	struct agt_jsonrpc *rpc;     /* JSON-RPC over local IPC -> MCP tool calls */
	size_t msg_cap;		     /* bytes of one HTTP message kept */
	struct agt_sink *sink;
	struct agt_export_ctx ectx;
	uint64_t records;      /* ring buffer records seen */
	uint64_t by_source[5]; /* func, tls, tcp, ipc, proc */
	uint64_t udrops[AGT_UDROP_MAX];
	/* Discovery: execs of processes that are not targets, handed to the selectors. */
	void (*on_discover)(void *ctx, uint32_t pid, const char *filename);
	void *discover_ctx;
	uint64_t execs_seen;
	int rescan_pending; /* some target mapped a new executable file: look for spec objects */
};

/* Set up nest and counters; sink and probes are the caller's. */
int agt_pipeline_init(struct agt_pipeline *p, unsigned max_depth, unsigned max_threads,
		      size_t msg_cap);
void agt_pipeline_fini(struct agt_pipeline *p);
/* Decode one ring buffer record (libbpf ring_buffer callback signature). */
int agt_decode_record(void *ctx, void *data, size_t size);
struct agt_proc *agt_pipeline_proc(struct agt_pipeline *p, uint32_t pid);
/* Emit a state_change event for a target (attach, detach, exit). */
void agt_pipeline_state(struct agt_pipeline *p, struct agt_proc *proc, uint64_t ts,
			const char *what, const char *message, int has_exit, uint32_t wait_status);
/* Mark a target gone (once): close its open calls and emit its exit event. */
void agt_pipeline_target_exit(struct agt_pipeline *p, struct agt_proc *proc, uint64_t ts,
			      int has_status, uint32_t wait_status);
#endif
