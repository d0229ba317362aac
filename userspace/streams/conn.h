/* The stream layer: captured data calls (TLS plaintext at the library, TCP and IPC at the
 * socket) become ordered bytes per connection and direction, with the places where the capture
 * missed bytes known, never papered over. Each connection's protocol is chosen once, by the
 * registered protocols' detect() on its first bytes (protocols/registry.c); its bytes then go to
 * that protocol, whose results (HTTP exchanges, MCP calls) go to the trace stage. Nothing here
 * knows HTTP or JSON-RPC. */
#ifndef AGT_CONN_H
#define AGT_CONN_H
#include <stdint.h>
#include "agtrace.h"
#include "protocols/http.h"
#include "record/proc.h"
#include "record/stage.h"

struct agt_mcp_call;

/* Where the stream layer's results go (the trace stage). */
struct agt_streams_out {
	/* An HTTP exchange of proc (resp NULL: never answered); takes ownership of both. */
	void (*exchange)(void *ctx, const struct agt_proc_info *proc, struct agt_http_msg *req,
			 struct agt_http_msg *resp);
	void (*mcp_call)(void *ctx, const struct agt_proc_info *proc, const struct agt_mcp_call *c);
	void *ctx;
};

/* The stream layer's own losses; each protocol has its own besides (agt_streams_drops). */
enum agt_sdrop {
	AGT_SDROP_GAP_BYTES = 0,    /* bytes the capture missed (calls over the cap, lost chunks) */
	AGT_SDROP_CONN_EVICTED = 1, /* connections dropped to stay within the table limit */
	AGT_SDROP_UNKNOWN = 2,	    /* calls on connections no registered protocol recognised */
	AGT_SDROP_CLOSED = 3,	    /* a note: connections the library or the socket ended */
	AGT_SDROP_MAX = 4,
};

struct agt_streams;
struct agt_streams *agt_streams_new(size_t msg_cap, unsigned max_conns,
				    const struct agt_streams_out *out);
/* One data record of proc (a TLS call's chunk, a TCP or IPC system call's). */
void agt_streams_feed(struct agt_streams *s, const struct agt_proc_info *proc,
		      const struct agt_data *e);
/* A process (or all: pid 0) is gone: its connections end, what is open is handed over
 * unanswered, and protocol state kept for it across connections is handed over too. */
void agt_streams_close(struct agt_streams *s, uint32_t pid, uint64_t ts);
/* One connection of pid is over (its library freed it, its socket closed): what its protocol
 * still holds is handed over, and the next bytes with the same id start a new connection. */
void agt_streams_close_conn(struct agt_streams *s, uint32_t pid, uint64_t id, uint64_t ts);
/* The same for everything attributed to proc, before proc is freed. */
void agt_streams_close_proc(struct agt_streams *s, const struct agt_proc_info *proc, uint64_t ts);
/* Every drop counter, the stream layer's and each protocol's (capture_gap_bytes counts
 * bytes, not events). */
void agt_streams_drops(const struct agt_streams *s, agt_drop_fn fn, void *ctx);
/* The stream layer as a stage (self: struct agt_streams *). */
extern const struct agt_stage_ops agt_streams_stage;
void agt_streams_free(struct agt_streams *s);
#endif
