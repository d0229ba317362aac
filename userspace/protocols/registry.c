/* The protocols the stream layer can carry, in the order it asks them about a new connection's
 * first bytes. A new protocol is its file and a row here. */
#include "protocols/http1.h"
#include "protocols/http2.h"
#include "protocols/jsonrpc.h"
#include "protocols/proto.h"

const struct agt_proto *const agt_protocols[] = {
    &agt_proto_http2, /* before HTTP/1: its preface reads like a request line */
    &agt_proto_http1,
    &agt_proto_jsonrpc,
    NULL,
};
