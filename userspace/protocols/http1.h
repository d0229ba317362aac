/* HTTP/1.1 messages from one direction of a byte stream (nodejs http-parser does the framing:
 * Content-Length, chunked, keep-alive, pipelining). Bodies are kept up to a cap. */
#ifndef AGT_HTTP1_H
#define AGT_HTTP1_H
#include "protocols/http.h"

struct agt_http_dir;
struct agt_http_dir *agt_http_dir_new(size_t body_cap, agt_http_msg_cb cb, void *ctx);
/* 0, or -1 when the bytes are not HTTP/1.x (the parser then waits for a new message start). */
int agt_http_dir_feed(struct agt_http_dir *d, const uint8_t *data, size_t len, uint64_t ts,
		      uint32_t tid);
/* Times the framing was lost (bytes that are not HTTP/1.x where a message was expected, or a
 * gap it cannot skip); *cut_handed: the message the last loss cut was handed over (incomplete),
 * because its headers were complete. */
unsigned agt_http_dir_breaks(const struct agt_http_dir *d, int *cut_handed);
/* Bytes of the last feed the parser took: all of them, but after a message that switches
 * protocols (101 Switching Protocols) only those up to its end. */
size_t agt_http_dir_used(const struct agt_http_dir *d);
/* The capture missed n bytes here (a TLS call over the cap). */
void agt_http_dir_gap(struct agt_http_dir *d, size_t n, uint64_t ts);
/* End of stream: a message still open (e.g. a response read until close) is finished. */
void agt_http_dir_close(struct agt_http_dir *d, uint64_t ts);
/* The message still open, when its headers are complete (a response cut short), marked
 * incomplete; NULL otherwise. The caller owns it. */
struct agt_http_msg *agt_http_dir_take(struct agt_http_dir *d);
void agt_http_dir_free(struct agt_http_dir *d);

/* HTTP/1.1 as a protocol of the stream layer (requests paired with responses in order). */
struct agt_proto;
extern const struct agt_proto agt_proto_http1;
#endif
