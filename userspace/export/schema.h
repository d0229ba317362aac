/* The schema: the one place that knows the names of a span's fields (DESIGN.md's trace model,
 * ECS and OTel GenAI names). One walk over a span's fields feeds every encoding: ECS JSON (JSONL
 * files, Elasticsearch documents, the audit trail's digests), OTLP (JSON and protobuf: resource
 * attributes, span attributes with dotted names, span events with their attributes) and msgpack
 * (Fluentd's forward protocol). An encoding implements struct agt_fields and says which names
 * it wants (its dialect): ECS documents carry everything in one object, with the Kibana fields
 * (trace_type, session_id, duration_ms, confidence_score) and ECS's own names (trace.id,
 * event.duration, service.name, ...); OTel spans carry who did it as their resource, and the
 * span's own fields under the OpenTelemetry semantic conventions' names. */
#ifndef AGT_SCHEMA_H
#define AGT_SCHEMA_H
#include <msgpack.h>
#include "base/jsonw.h"
#include "export/pb.h"
#include "record/span.h"

enum agt_dialect { AGT_DIALECT_ECS = 0, AGT_DIALECT_OTEL = 1 };

/* What a walk writes into: nested objects and arrays of typed values. key is NULL for array
 * elements and for the top-level object. */
struct agt_fields {
	void (*open)(struct agt_fields *f, const char *key, int array);
	void (*close)(struct agt_fields *f);
	void (*str)(struct agt_fields *f, const char *key, const char *v);
	void (*i64)(struct agt_fields *f, const char *key, int64_t v);
	void (*f64)(struct agt_fields *f, const char *key, double v);
	void (*boolean)(struct agt_fields *f, const char *key, int v);
	int dialect; /* enum agt_dialect */
	/* Invalid UTF-8 sequences the walk itself replaced in values it built (JSON text such as
	 * gen_ai.output.messages); the caller adds them to its writer's count. */
	uint64_t replaced;
	/* Optional: a string the walk made itself (the ids and times), so plain ASCII that JSON
	 * takes as it is (no '"', '\\', control or non-ASCII byte), and its length (v[n] is its
	 * NUL); NULL: str is called. */
	void (*strn)(struct agt_fields *f, const char *key, const char *v, size_t n);
	/* Optional: write the block `which` of the walk (the same for every span of one process,
	 * or of one probe: see agt_schema_ecs_cached) from what it keeps; 0: it did not, the walk
	 * writes the block itself. */
	int (*block)(struct agt_fields *f, int which, const struct agt_span *sp,
		     const struct agt_export_ctx *c);
};

/* ECS: every field of sp, as one top-level object. OTel: the span's attributes (what is not the
 * span itself, its resource or its events), as one object. */
void agt_schema_walk(const struct agt_span *sp, const struct agt_export_ctx *c,
		     struct agt_fields *f);
/* OTel: the resource of sp (who did it: service, process, container, pod and its workload,
 * host), as one object. */
void agt_schema_resource(const struct agt_span *sp, const struct agt_export_ctx *c,
			 struct agt_fields *f);
/* The service a span belongs to: c->service_name when set, else the pod's
 * resource.opentelemetry.io/service.name annotation, else the workload that owns the pod
 * (Deployment, StatefulSet, DaemonSet, Job, CronJob), else the executable's name. */
const char *agt_schema_service_name(const struct agt_span *sp, const struct agt_export_ctx *c);

/* The span as an ECS JSON document (one line, no newline), appended to w. */
void agt_schema_ecs(const struct agt_span *sp, const struct agt_export_ctx *c, struct agt_jw *w);

/* The blocks of an ECS document that are the same for every span of one process (session_id,
 * process.name and .executable, container.*, k8s.*, host.*, service.*, ecs.*, agent.*) and of
 * one probe (probe.spec, .symbol, .object), kept as the JSON text the walk wrote for them, so
 * that a document copies them instead of writing them again. A block is written again when
 * anything it is made of is no longer the same (the strings themselves are compared, not only
 * where they are: a process's exe, comm or pod changes in place). One per encoder (it is not
 * locked). */
struct agt_ecs_cache;
struct agt_ecs_cache *agt_ecs_cache_new(void);
void agt_ecs_cache_free(struct agt_ecs_cache *k);
/* agt_schema_ecs through k: byte for byte the same document (and the same count of invalid
 * UTF-8 sequences replaced); k NULL: agt_schema_ecs. */
void agt_schema_ecs_cached(const struct agt_span *sp, const struct agt_export_ctx *c,
			   struct agt_ecs_cache *k, struct agt_jw *w);

/* OTLP. Attributes of every resource besides what the workload says (OTEL_RESOURCE_ATTRIBUTES);
 * what the workload says wins, except service.name, which they set when c->service_name is "". */
struct agt_otlp_attrs {
	const char *const *keys, *const *values;
	int n;
};
/* The span as an OTLP/JSON Span object, appended to w. */
void agt_schema_otlp(const struct agt_span *sp, const struct agt_export_ctx *c, struct agt_jw *w);
/* Its resource as an OTLP/JSON Resource object. */
void agt_schema_otlp_resource(const struct agt_span *sp, const struct agt_export_ctx *c,
			      const struct agt_otlp_attrs *extra, struct agt_jw *w);
/* The same as protobuf: the content of a Span message (opentelemetry.proto.trace.v1.Span), and
 * of a Resource message, appended to p. */
void agt_schema_otlp_pb(const struct agt_span *sp, const struct agt_export_ctx *c,
			struct agt_pb *p);
void agt_schema_otlp_resource_pb(const struct agt_span *sp, const struct agt_export_ctx *c,
				 const struct agt_otlp_attrs *extra, struct agt_pb *p);

/* The span's ECS fields as one msgpack map. Returns the invalid UTF-8 sequences it replaced
 * (by U+FFFD) in strings. */
uint64_t agt_schema_msgpack(const struct agt_span *sp, const struct agt_export_ctx *c,
			    msgpack_packer *pk);
/* 16 hex digits of a span id (out: 17 bytes). */
void agt_schema_span_id(uint64_t id, char out[17]);
#endif
