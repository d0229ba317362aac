/* HTTP messages, whatever carried them (HTTP/1.1 or HTTP/2): the request or response with its
 * headers and body, body decoding (Content-Encoding), and Server-Sent Events in a body. */
#ifndef AGT_HTTP_H
#define AGT_HTTP_H
#include <stddef.h>
#include <stdint.h>

struct agt_http_header {
	char *name, *value;
};

struct agt_http_msg {
	int is_request;
	char method[16];
	char *url; /* request target: path and query (HTTP/2: :path) */
	int status;
	struct agt_http_header *hdrs; /* HTTP/2: :authority becomes Host; other pseudo-headers dropped */
	int nhdrs;
	uint8_t *body; /* de-chunked; decoded by agt_http_decode_body */
	size_t body_len;
	size_t body_seen; /* body bytes on the wire, kept or not */
	int truncated;	  /* body over the cap, or bytes the capture missed */
	uint64_t start_ns, first_body_ns, end_ns; /* end: the last byte (so far, when incomplete) */
	uint64_t last_byte_ns;			  /* HTTP/2: the last DATA frame so far */
	uint32_t pid; /* the process that moved it (a target, or a followed descendant of one) */
	uint32_t tid;
	int incomplete; /* a response cut short (its connection ended mid-body): what arrived */
	int source;    /* enum agt_source of the connection: TLS or TCP */
	char peer[64]; /* TCP: the other end, address:port */
};

typedef void (*agt_http_msg_cb)(void *ctx, struct agt_http_msg *m); /* takes ownership */

const char *agt_http_header(const struct agt_http_msg *m, const char *name);
/* Undo Content-Encoding gzip/deflate (zlib) or br (brotli) in place, keeping at most cap
 * bytes. 0 or -1 (unknown encoding, or not decodable). */
int agt_http_decode_body(struct agt_http_msg *m, size_t cap);
void agt_http_msg_free(struct agt_http_msg *m);

/* Server-Sent Events of a body: calls fn(event, data) per dispatched event. */
typedef void (*agt_sse_cb)(void *ctx, const char *event, const char *data);
int agt_sse_parse(const char *body, size_t len, agt_sse_cb fn, void *ctx);
#endif
