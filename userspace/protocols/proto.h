/* A protocol the stream layer carries. The stream layer (streams/) owns connections: it puts a
 * connection's captured bytes in order per direction and knows where the capture missed bytes.
 * It picks a connection's protocol once, by asking each registered protocol (protocols/registry.c)
 * whether the first bytes look like it, then feeds that protocol everything the connection
 * moves. A protocol turns bytes into what the trace stage understands (HTTP exchanges, MCP calls)
 * and hands them to `out`. Adding a protocol is a file implementing this plus one registry row:
 * the connection code does not change. */
#ifndef AGT_PROTO_H
#define AGT_PROTO_H
#include <stddef.h>
#include <stdint.h>
#include "protocols/http.h"

struct agt_mcp_call;

/* Where a protocol's results go. ctx is the stream layer's, per connection. */
struct agt_proto_out {
	/* An HTTP exchange; resp NULL when it was never answered. Takes ownership of both. */
	void (*exchange)(void *ctx, struct agt_http_msg *req, struct agt_http_msg *resp);
	/* An MCP tools/call, answered or not (the callee copies what it keeps). */
	void (*mcp_call)(void *ctx, const struct agt_mcp_call *c);
	void *ctx;
};

enum agt_detect { AGT_DETECT_NO = 0, AGT_DETECT_YES = 1, AGT_DETECT_MORE = 2 };

/* What feed() returns when the bytes it was given switch the connection to another protocol
 * (HTTP/1.1's Upgrade: h2c, answered 101): the stream layer asks switched() to what, opens that
 * protocol with adopt(), and feeds it the rest. */
#define AGT_FEED_SWITCH 1

struct agt_proto_switch {
	const char *to;		  /* the name of the protocol the connection goes on in */
	struct agt_http_msg *req; /* the request the switch answers, owned: its response comes in
				     the new protocol (NULL: none was seen) */
	size_t used;		  /* bytes of the last feed that were still the old protocol's */
};

struct agt_proto {
	const char *name;	       /* "http1", "http2", "jsonrpc" */
	unsigned sources;	       /* bit (1 << enum agt_source) per source it can ride on */
	const char *const *drop_names; /* its own reasons for losing or skipping data */
	int ndrops;
	/* Is a connection whose first captured bytes, in direction dir (enum agt_dir), are these
	 * this protocol? MORE: too few bytes to tell yet (the caller keeps them and asks again). */
	enum agt_detect (*detect)(const uint8_t *data, size_t len, int dir);
	/* State shared by all of one stream layer's connections of this protocol (for example
	 * JSON-RPC pairs requests and responses of one process across two pipes); NULL hooks when
	 * there is none. drops: the protocol's ndrops counters. */
	void *(*init)(size_t cap, uint64_t *drops);
	void (*fini)(void *shared);
	/* A process is gone: hand over what the shared state still holds for it. */
	void (*proc_gone)(void *shared, uint32_t pid, uint64_t ts, const struct agt_proto_out *out);
	/* One connection's state. cap: bytes of one message (body, line) kept at most. */
	void *(*open)(void *shared, uint32_t pid, size_t cap, uint64_t *drops,
		      const struct agt_proto_out *out);
	/* Bytes of direction dir in order. ts: when they moved (for an egress call, its start);
	 * tid: the thread that moved them. 0, or -1 when they break the protocol's framing: the
	 * protocol resynchronises by itself; the caller counts it. */
	int (*feed)(void *conn, int dir, const uint8_t *data, size_t len, uint64_t ts,
		    uint32_t tid);
	/* Optional, after feed() returned AGT_FEED_SWITCH: what the connection switches to. */
	void (*switched)(void *conn, struct agt_proto_switch *sw);
	/* Optional: open a connection that another protocol switched to this one; req (owned, may
	 * be NULL) is the request whose response comes first here. NULL when out of memory. */
	void *(*adopt)(void *shared, uint32_t pid, size_t cap, uint64_t *drops,
		       const struct agt_proto_out *out, struct agt_http_msg *req);
	/* The capture missed n bytes of direction dir at this point. */
	void (*gap)(void *conn, int dir, uint64_t n, uint64_t ts);
	/* The connection is over (closed, its process gone, the run ending): hand over what is
	 * still open, then forget it. */
	void (*close)(void *conn, uint64_t ts);
	void (*free)(void *conn);
};

/* The registered protocols, in the order detection asks them; NULL-terminated. */
extern const struct agt_proto *const agt_protocols[];
#endif
