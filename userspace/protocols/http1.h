/* HTTP/1.1 messages from one direction of a byte stream (nodejs http-parser does the framing:
 * Content-Length, chunked, keep-alive, pipelining). Bodies are kept up to a cap. */
#ifndef AGT_HTTP1_H
#define AGT_HTTP1_H
#include <stddef.h>
#include <stdint.h>

struct agt_http_header {
	char *name, *value;
};

struct agt_http_msg {
	int is_request;
	char method[16];
	char *url;
	int status;
	struct agt_http_header *hdrs;
	int nhdrs;
	uint8_t *body; /* de-chunked; decoded by agt_http_decode_body */
	size_t body_len;
	size_t body_seen; /* body bytes on the wire, kept or not */
	int truncated;	  /* body over the cap, or bytes the capture missed */
	uint64_t start_ns, first_body_ns, end_ns;
	uint32_t tid;
	int source;    /* enum agt_source of the connection: TLS or TCP */
	char peer[64]; /* TCP: the other end, address:port */
};

typedef void (*agt_http_msg_cb)(void *ctx, struct agt_http_msg *m); /* takes ownership */

struct agt_http_dir;
struct agt_http_dir *agt_http_dir_new(size_t body_cap, agt_http_msg_cb cb, void *ctx);
/* 0, or -1 when the bytes are not HTTP/1.x (the parser then waits for a new message start). */
int agt_http_dir_feed(struct agt_http_dir *d, const uint8_t *data, size_t len, uint64_t ts,
		      uint32_t tid);
/* The capture missed n bytes here (a TLS call over the cap). */
void agt_http_dir_gap(struct agt_http_dir *d, size_t n, uint64_t ts);
/* End of stream: a message still open (e.g. a response read until close) is finished. */
void agt_http_dir_close(struct agt_http_dir *d, uint64_t ts);
void agt_http_dir_free(struct agt_http_dir *d);

const char *agt_http_header(const struct agt_http_msg *m, const char *name);
/* Undo Content-Encoding gzip/deflate (zlib) or br (brotli) in place, keeping at most cap
 * bytes. 0 or -1 (unknown encoding, or not decodable). */
int agt_http_decode_body(struct agt_http_msg *m, size_t cap);
void agt_http_msg_free(struct agt_http_msg *m);

/* Server-Sent Events of a body: calls fn(event, data) per dispatched event. */
typedef void (*agt_sse_cb)(void *ctx, const char *event, const char *data);
int agt_sse_parse(const char *body, size_t len, agt_sse_cb fn, void *ctx);
#endif
