#include "events/tls_join.h"
#include <stdlib.h>
#include <string.h>

static size_t rec_size(const struct agt_data *e)
{
	return offsetof(struct agt_data, data) + e->len;
}

static void drop_at(struct agt_join_queue *q, int i)
{
	q->bytes -= rec_size(q->v[i]);
	free(q->v[i]);
	memmove(&q->v[i], &q->v[i + 1], (q->n - i - 1) * sizeof(q->v[0]));
	q->n--;
}

void agt_join_hold(struct agt_join_queue *q, const struct agt_data *e)
{
	size_t size = rec_size(e);
	struct agt_data *c;

	while (q->n && q->bytes + size > AGT_JOIN_MAX_BYTES) {
		drop_at(q, 0);
		q->dropped++;
	}
	if (q->n == q->cap) {
		int cap = q->cap ? 2 * q->cap : 16;
		struct agt_data **nv = realloc(q->v, cap * sizeof(*nv));

		if (!nv) {
			q->dropped++;
			return;
		}
		q->v = nv;
		q->cap = cap;
	}
	if (!(c = malloc(size))) {
		q->dropped++;
		return;
	}
	memcpy(c, e, size);
	q->v[q->n++] = c;
	q->bytes += size;
}

int agt_join_release(struct agt_join_queue *q, uint32_t pid, uint32_t tid, uint64_t conn,
		     void (*fn)(void *ctx, const struct agt_data *e), void *ctx)
{
	int w = 0, n = 0;

	for (int i = 0; i < q->n; i++) {
		struct agt_data *e = q->v[i];

		if (e->h.pid != pid || e->h.tid != tid) {
			q->v[w++] = e;
			continue;
		}
		e->conn = conn;
		e->flags &= ~AGT_DATA_UNJOINED;
		fn(ctx, e);
		q->bytes -= rec_size(e);
		free(e);
		n++;
	}
	q->n = w;
	return n;
}

void agt_join_drop(struct agt_join_queue *q, uint32_t pid)
{
	for (int i = q->n - 1; i >= 0; i--)
		if (!pid || q->v[i]->h.pid == pid) {
			drop_at(q, i);
			q->dropped++;
		}
}

void agt_join_free(struct agt_join_queue *q)
{
	for (int i = 0; i < q->n; i++)
		free(q->v[i]);
	free(q->v);
	memset(q, 0, sizeof(*q));
}
