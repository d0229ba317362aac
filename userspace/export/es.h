/* Elasticsearch exporter: the _bulk API (NDJSON, gzip) through libcurl, from its own thread so
 * the pipeline never waits on the network. Nothing lost in silence, nothing duplicated:
 * documents are indexed with _id = span id (a retry overwrites, never duplicates); 429 and 5xx
 * items are retried with exponential backoff and jitter; other rejections go to a dead-letter
 * file with the reason; while Elasticsearch is unreachable documents wait in a bounded on-disk
 * spool and are replayed in order (also by the next agtrace run); a stop persists whatever is
 * still undelivered to the spool. */
#ifndef AGT_ES_H
#define AGT_ES_H
#include <stddef.h>
#include <stdint.h>
#include "export/sink.h"

/* The exporter core (thread, retries, spool, drain) serves two protocols: Elasticsearch _bulk,
 * and OTLP/HTTP JSON traces. */
struct agt_es_config {
	int otlp;	 /* 1: OTLP/HTTP JSON traces to url/v1/traces */
	int forward;	 /* 1: Fluentd forward protocol over TCP to url (host:port), acked */
	const char *tag; /* forward: the Fluentd tag (default agentic.traces) */
	const char *url; /* http(s)://host:9200, or the OTLP collector (:4318) */
	const char *index_pattern; /* strftime pattern, UTC: agentic-traces-%Y.%m.%d */
	const char *api_key_file;  /* else $AGTRACE_ES_API_KEY */
	const char *user; /* basic auth; password from password_file or $AGTRACE_ES_PASSWORD */
	const char *password_file;
	const char *ca_file; /* TLS: CA bundle; verification is on unless insecure */
	int insecure;
	const char *spool_dir;	 /* default /var/lib/agtrace/spool */
	uint64_t spool_max;	 /* bytes; default 256 MiB */
	const char *dead_letter; /* default <spool_dir>/dead-letter.ndjson */
	int batch_docs;		 /* default 500 */
	int install_template;	 /* PUT the index template and ILM policy at start */
	double drain_seconds;	 /* at stop: how long to keep trying before spooling (default 10) */
};

struct agt_es_stats {
	/* retried: documents sent again (per-item 429/5xx, or a whole request that failed) */
	uint64_t queued, delivered, retried, dead_lettered, spooled, spool_dropped, send_failures;
	uint64_t spool_bytes, spool_oldest_age_s, last_latency_ms;
	uint64_t wire_bytes; /* request bodies sent (gzip), for bytes per span */
};

struct agt_es;
/* NULL with one sentence in err (bad URL, unreadable credential, unusable spool folder). */
struct agt_es *agt_es_start(const struct agt_es_config *cfg, const struct agt_export_ctx *c,
			    char *err, size_t errlen);
struct agt_sink *agt_es_tee(struct agt_sink *next, struct agt_es *es);
/* Deliver what can be delivered within drain_seconds, spool the rest, stop the thread. */
void agt_es_stop(struct agt_es *es);
void agt_es_stats(struct agt_es *es, struct agt_es_stats *out);
void agt_es_free(struct agt_es *es);
#endif
