/* Per-connection byte streams: TLS plaintext chunks become ordered bytes per direction, fed to
 * HTTP/1.1; requests are paired with their responses (FIFO, so pipelining works). Gaps in the
 * capture (a call over the cap, a lost record) are known, never papered over. */
#ifndef AGT_CONN_H
#define AGT_CONN_H
#include <stdint.h>
#include "agtrace.h"
#include "record/proc.h"
#include "protocols/http1.h"


enum agt_sdrop {
	AGT_SDROP_GAP_BYTES = 0,    /* bytes the capture missed (calls over the cap, lost chunks) */
	AGT_SDROP_NOT_HTTP = 1,	    /* TLS calls that were not HTTP/1.x (resynchronised after) */
	AGT_SDROP_HTTP2 = 2,	    /* TLS calls on HTTP/2 connections (unsupported) */
	AGT_SDROP_ORPHAN_RESP = 3,  /* responses whose request was not seen (attached mid-way) */
	AGT_SDROP_CONN_EVICTED = 4, /* connections dropped to stay within the table limit */
	AGT_SDROP_PENDING_FULL = 5, /* requests dropped: 64 already waiting on the connection */
	AGT_SDROP_MAX = 6,
};
extern const char *const agt_sdrop_names[AGT_SDROP_MAX];

/* An exchange: resp is NULL when the request never got its response (exit, end of run). */
typedef void (*agt_exchange_cb)(void *ctx, const struct agt_proc_info *proc, struct agt_http_msg *req,
				struct agt_http_msg *resp);

struct agt_streams;
struct agt_streams *agt_streams_new(size_t msg_cap, unsigned max_conns, agt_exchange_cb cb,
				    void *ctx);
void agt_streams_feed(struct agt_streams *s, const struct agt_proc_info *proc, const struct agt_data *e);
/* Close a process's connections (or all: pid 0): open exchanges are handed over unanswered. */
void agt_streams_close(struct agt_streams *s, uint32_t pid, uint64_t ts);
/* Close every connection attributed to proc (before proc is freed). */
void agt_streams_close_proc(struct agt_streams *s, const struct agt_proc_info *proc, uint64_t ts);
const uint64_t *agt_streams_drops(const struct agt_streams *s);
void agt_streams_free(struct agt_streams *s);
#endif
