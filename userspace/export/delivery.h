/* The delivery core every network exporter runs on. The pipeline's thread encodes a span into a
 * document (the transport's encoder) and appends it to an in-memory batch: it never waits on the
 * disk or the network. A log thread of the exporter's own writes those batches to an
 * append-only, checksummed spool log and fsyncs it; a send thread reads the log and sends
 * batches through the transport. The log is a write-ahead log: a document is delivered only
 * after it is on disk, and its log record is deleted only after it was delivered or
 * dead-lettered, so a SIGKILL, an OOM kill or a crash costs at most what was handed over in the
 * last fsync interval; everything else is delivered at least once (ids make duplicates
 * harmless), by this run or the next. Documents the backend answers with "later" (429, 5xx) are
 * retried with exponential backoff and jitter, in order; rejected ones go to a dead-letter file
 * with the backend's reason. What the bounds force out (--spool-max-bytes and the overflow
 * policy, a full disk) is counted as lost, by reason. The exact guarantee is at the top of
 * delivery.c. The core knows no backend: a transport (es.c, otlp.c, fluentd.c) encodes
 * documents and sends batches. */
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
	size_t request_docs; /* given: documents one request may carry (a transport with inflight
				> 1 splits a larger window into parallel requests of this size) */
	uint8_t *outcome;    /* per document, filled by send */
	char **reason;	     /* per rejected document: its reason as JSON text (malloc'd) or NULL */
	uint64_t wire_bytes;
	uint64_t rejected_uncounted; /* the backend accepted the request but said it dropped this
					many documents without naming them (OTLP partialSuccess) */
	char *rejected_note; /* what it said of them, as JSON text (malloc'd): one dead-letter line */
};

struct agt_transport_ops {
	const char *name; /* elasticsearch, otlp, fluentd: summary line and metrics label */
	int doc_lines;	  /* lines per document (also in spool files of older versions) */
	/* Requests the transport sends at once (0 or 1: one). The core hands send() windows of
	 * up to batch_docs x inflight documents, in log order; the transport sends them as
	 * requests of at most request_docs each, in parallel, and still says each document's
	 * fate: retries, dead letters and the cursor work as with one request. */
	int inflight;
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

/* What the spool does when it is full (--spool-max-bytes, or the disk): refuse the newest
 * documents, or delete the oldest segments to make room. Either way the documents are counted
 * as lost with their reason. */
enum agt_spool_overflow { AGT_OVERFLOW_NEWEST = 0, AGT_OVERFLOW_OLDEST = 1 };

struct agt_delivery_config {
	const char *spool_dir;	 /* this exporter's spool folder */
	uint64_t spool_max;	 /* bytes of log segments; default 256 MiB */
	const char *dead_letter; /* default <spool_dir>/dead-letter.ndjson */
	int batch_docs;		 /* default 500 */
	double drain_seconds;	 /* at stop: how long to keep trying to deliver (default 10) */
	int overflow;		 /* enum agt_spool_overflow; default newest */
	int sync_ms;		 /* at most one fsync per this many ms under load; default 100 */
};

/* Why documents were lost; agt_lost_reason_names[] are the metric label values. */
enum agt_lost_reason {
	AGT_LOST_SPOOL_FULL = 0, /* refused: the spool at --spool-max-bytes (policy newest) */
	AGT_LOST_EVICTED = 1,	 /* deleted undelivered to make room (policy oldest) */
	AGT_LOST_DISK_FULL = 2,	 /* refused: the disk itself is full (ENOSPC, EDQUOT) */
	AGT_LOST_IO_ERROR = 3,	 /* the log could not be written or read back (EIO, ...) */
	AGT_LOST_QUEUE_FULL = 4, /* the in-memory batch was full: the log thread is far behind */
	AGT_LOST_ENCODE = 5,	 /* the document could not be encoded (no memory) */
	AGT_LOST_REASONS = 6,
};
extern const char *const agt_lost_reason_names[AGT_LOST_REASONS];

struct agt_delivery_stats {
	/* queued: documents handed over by the pipeline. retried: documents sent again (per-item
	 * 429/5xx, or a whole request that failed). spooled: documents this run wrote to the log
	 * (every accepted document is). spool_dropped: every document lost, the sum of lost[]. */
	uint64_t queued, delivered, retried, dead_lettered, spooled, spool_dropped, send_failures;
	/* spool_bytes: log bytes not yet delivered; spool_oldest_age_s: age of the oldest
	 * document not yet delivered (current at every call). */
	uint64_t spool_bytes, spool_oldest_age_s, last_latency_ms;
	uint64_t wire_bytes; /* request bodies sent (compressed), for bytes per span */
	uint64_t lost[AGT_LOST_REASONS];
	uint64_t replayed;	   /* documents read back from an earlier run's log */
	uint64_t torn, torn_bytes; /* torn or corrupt log tails found, and their bytes */
	uint64_t tmp_removed;	   /* stale .tmp files removed from the spool at start */
	uint64_t disk_bytes;	   /* log segment files, delivered parts included */
	uint64_t fsyncs;	   /* log fsyncs */
	uint64_t unsynced;	   /* documents handed over and not yet on disk */
	uint64_t sync_lag_max_ms;  /* longest wait from hand-over to fsync seen */
	/* Spool writes that failed: a write or fdatasync of the log, or a segment that could
	 * not be created (a full disk, an I/O error), each counted once, whatever became of the
	 * documents concerned (lost[] says). Any makes the run exit 1. */
	uint64_t write_failures;
	/* Invalid UTF-8 sequences the encoder replaced by U+FFFD in this exporter's documents
	 * (captured bytes are not always text: a document is always valid UTF-8). */
	uint64_t utf8_replaced;
};

struct agt_delivery;
/* Takes the transport t (freed with the delivery, also on failure). NULL with one sentence in
 * err (unusable spool folder, one used by another agtrace, no thread). */
struct agt_delivery *agt_delivery_start(const struct agt_transport_ops *ops, void *t,
					const struct agt_delivery_config *cfg,
					const struct agt_export_ctx *c, char *err, size_t errlen);
/* A sink that passes every span on to next, then queues it for delivery. */
struct agt_sink *agt_delivery_tee(struct agt_sink *next, struct agt_delivery *d);
const char *agt_delivery_name(const struct agt_delivery *d);
/* Write what was handed over to the log, deliver what can be delivered within drain_seconds,
 * keep the rest in the log for the next run, stop the threads. */
void agt_delivery_stop(struct agt_delivery *d);
void agt_delivery_stats(struct agt_delivery *d, struct agt_delivery_stats *out);
void agt_delivery_free(struct agt_delivery *d);
#endif
