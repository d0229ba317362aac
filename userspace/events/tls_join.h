/* TLS records sealed at the AEAD layer (bpf/aead.bpf.c) arrive before the kernel knows their
 * connection: they are held here per thread (in order) until the AGT_EV_TLS_JOIN record of that
 * thread's next socket write names it, then handed on as that connection's bytes. Bounded:
 * past AGT_JOIN_MAX_BYTES held, the oldest are dropped and counted. */
#ifndef AGT_TLS_JOIN_H
#define AGT_TLS_JOIN_H
#include <stddef.h>
#include <stdint.h>
#include "agtrace.h"

#define AGT_JOIN_MAX_BYTES (4u << 20)

struct agt_join_queue {
	struct agt_data **v; /* held records (copies), oldest first */
	int n, cap;
	uint64_t bytes;
	uint64_t dropped; /* records never joined: over the bound, or their process ended */
};

/* Hold a copy of e (its header and e->len bytes). */
void agt_join_hold(struct agt_join_queue *q, const struct agt_data *e);
/* Hand every record held for (pid, tid) to fn in order, with conn set and the unjoined flag
 * cleared; returns how many. */
int agt_join_release(struct agt_join_queue *q, uint32_t pid, uint32_t tid, uint64_t conn,
		     void (*fn)(void *ctx, const struct agt_data *e), void *ctx);
/* Drop what is held for pid (pid 0: everything), counting it. */
void agt_join_drop(struct agt_join_queue *q, uint32_t pid);
void agt_join_free(struct agt_join_queue *q);
#endif
