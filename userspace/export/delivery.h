/* The delivery core every network exporter runs on: spans become documents on the pipeline's
 * thread (the transport encodes them), then a thread of the exporter's own sends them in
 * batches, so the pipeline never waits on the network. Nothing lost in silence: documents the
 * backend answers with "later" (429, 5xx) are retried with exponential backoff and jitter, in
 * order; rejected ones go to a dead-letter file with the backend's reason; while the backend is
 * unreachable documents wait in a bounded on-disk spool and are replayed in order (also by the
 * next run); a stop delivers what it can within drain_seconds and spools the rest. What the
 * bounds force out is counted as lost. The core knows no backend: a transport (es.c, otlp.c,
 * fluentd.c) encodes documents and sends batches. */
#ifndef AGT_DELIVERY_H
#define AGT_DELIVERY_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "base/jsonw.h"
#include "export/sink.h"

/* One document: bytes ready to send, newline-terminated (a document may span several lines:
 * the transport says how many). */
struct agt_doc {
	char *bytes;
	size_t len;
};

/* What a backend said of each document of a batch. */
enum agt_outcome { AGT_DELIVERED = 0, AGT_RETRY = 1, AGT_REJECTED = 2 };

struct agt_send_result {
	uint8_t *outcome; /* per document, filled by send */
	char **reason;	  /* per rejected document: its reason as JSON text (malloc'd) or NULL */
	uint64_t wire_bytes;
	uint64_t rejected_uncounted; /* the backend accepted the request but said it dropped this
					many documents without naming them (OTLP partialSuccess) */
};

struct agt_transport_ops {
	const char *name; /* elasticsearch, otlp, fluentd: summary line and metrics label */
	int doc_lines;	  /* lines per document in the spool */
	/* One span as a document (newline-terminated), appended to w. */
	void (*encode)(void *t, const struct agt_span *sp, const struct agt_export_ctx *c,
		       struct agt_jw *w);
	/* Deliver docs[0..n): set r->outcome[i] for each (and r->reason[i] for a rejection).
	 * Returns 0 when the backend answered at all, -1 when it could not be reached (every
	 * document is then retried). */
	int (*send)(void *t, const struct agt_doc *docs, size_t n, struct agt_send_result *r);
	/* A rejected document as one dead-letter line (no newline); NULL: the core writes
	 * {"reason": ..., "document": ...}. */
	void (*dead_letter)(FILE *f, const struct agt_doc *d, const char *reason);
	void (*free)(void *t);
};

struct agt_delivery_config {
	const char *spool_dir;	 /* this exporter's spool folder */
	uint64_t spool_max;	 /* bytes; default 256 MiB */
	const char *dead_letter; /* default <spool_dir>/dead-letter.ndjson */
	int batch_docs;		 /* default 500 */
	double drain_seconds;	 /* at stop: how long to keep trying before spooling (default 10) */
};

struct agt_delivery_stats {
	/* retried: documents sent again (per-item 429/5xx, or a whole request that failed) */
	uint64_t queued, delivered, retried, dead_lettered, spooled, spool_dropped, send_failures;
	uint64_t spool_bytes, spool_oldest_age_s, last_latency_ms;
	uint64_t wire_bytes; /* request bodies sent (compressed), for bytes per span */
};

struct agt_delivery;
/* Takes the transport t (freed with the delivery, also on failure). NULL with one sentence in
 * err (unusable spool folder, no thread). */
struct agt_delivery *agt_delivery_start(const struct agt_transport_ops *ops, void *t,
					const struct agt_delivery_config *cfg,
					const struct agt_export_ctx *c, char *err, size_t errlen);
/* A sink that passes every span on to next, then queues it for delivery. */
struct agt_sink *agt_delivery_tee(struct agt_sink *next, struct agt_delivery *d);
const char *agt_delivery_name(const struct agt_delivery *d);
/* Deliver what can be delivered within drain_seconds, spool the rest, stop the thread. */
void agt_delivery_stop(struct agt_delivery *d);
void agt_delivery_stats(struct agt_delivery *d, struct agt_delivery_stats *out);
void agt_delivery_free(struct agt_delivery *d);
#endif
