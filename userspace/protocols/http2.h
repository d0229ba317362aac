/* HTTP/2 (RFC 9113) as a client speaks it, over TLS (ALPN h2) or cleartext TCP (h2c with prior
 * knowledge, or adopted from HTTP/1.1 after Upgrade: h2c): the traced process writes requests
 * (egress) and reads responses (ingress). Streams become HTTP exchanges (struct agt_http_msg
 * pairs, as HTTP/1.1 gives). A connection is only recognised from its start (the client
 * connection preface, or the upgrade); one first seen mid-way is not HTTP/2 to us, since its
 * HPACK state is unknown. */
#ifndef AGT_HTTP2_H
#define AGT_HTTP2_H
#include "protocols/proto.h"

/* Why HTTP/2 data was lost or skipped: the counters open() is given, in this order. A direction
 * whose framing or HPACK state is lost (the first three) is ignored until the connection
 * closes; the other direction goes on. */
enum agt_h2drop {
	AGT_H2DROP_FRAMING = 0,	      /* bytes that are not HTTP/2 framing: a bad preface, a frame
					 over the size bound or malformed for its type, a header
					 block interrupted or over 256 KiB */
	AGT_H2DROP_HPACK = 1,	      /* header blocks the HPACK decoder rejected (or a table size
					 it could not follow): its dynamic table is unknown after */
	AGT_H2DROP_GAP_LOST = 2,      /* capture gaps outside a DATA payload (frame header, header
					 block, SETTINGS): framing and HPACK state lost */
	AGT_H2DROP_GAP_BODY = 3,      /* capture gaps inside a DATA payload: skipped exactly, the
					 message marked truncated */
	AGT_H2DROP_IGNORED_BYTES = 4, /* bytes of a direction ignored after its state was lost */
	AGT_H2DROP_STREAMS_FULL = 5,  /* streams not followed: 256 already open on the connection */
	AGT_H2DROP_GRPC = 6,	      /* gRPC streams: recognised, neither kept nor handed over */
	AGT_H2DROP_PUSH = 7,	      /* server pushes (PUSH_PROMISE): decoded for HPACK, ignored */
	AGT_H2DROP_HEADERS = 8,	      /* header fields not kept: the message had 256 or 64 KiB */
	AGT_H2DROP_UNMATCHED = 9,     /* responses on a stream whose request was never seen */
	AGT_H2DROP_NOMEM = 10,	      /* messages or body bytes lost to a failed allocation */
	AGT_H2DROP_MAX = 11,
};
extern const char *const agt_h2drop_names[AGT_H2DROP_MAX];

extern const struct agt_proto agt_proto_http2;
#endif
