/* The schema: the one place that knows the names of a span's fields (DESIGN.md's trace model,
 * ECS and OTel GenAI names). One walk over a span's fields feeds every encoding: ECS JSON (JSONL
 * files, Elasticsearch documents, the audit trail's digests), OTLP JSON (attributes with dotted
 * names) and msgpack (Fluentd's forward protocol). An encoding implements struct agt_fields. */
#ifndef AGT_SCHEMA_H
#define AGT_SCHEMA_H
#include <msgpack.h>
#include "base/jsonw.h"
#include "record/span.h"

/* What a walk writes into: nested objects and arrays of typed values. key is NULL for array
 * elements and for the top-level object. */
struct agt_fields {
	void (*open)(struct agt_fields *f, const char *key, int array);
	void (*close)(struct agt_fields *f);
	void (*str)(struct agt_fields *f, const char *key, const char *v);
	void (*i64)(struct agt_fields *f, const char *key, int64_t v);
	void (*f64)(struct agt_fields *f, const char *key, double v);
	void (*boolean)(struct agt_fields *f, const char *key, int v);
};

/* Every field of sp, as one top-level object. */
void agt_schema_walk(const struct agt_span *sp, const struct agt_export_ctx *c,
		     struct agt_fields *f);

/* The span as an ECS JSON document (one line, no newline), appended to w. */
void agt_schema_ecs(const struct agt_span *sp, const struct agt_export_ctx *c, struct agt_jw *w);
/* The span as an OTLP JSON Span object, appended to w: identity, times, kind and status as span
 * fields, everything else as attributes with dotted names. */
void agt_schema_otlp(const struct agt_span *sp, const struct agt_export_ctx *c, struct agt_jw *w);
/* The span's ECS fields as one msgpack map. */
void agt_schema_msgpack(const struct agt_span *sp, const struct agt_export_ctx *c,
			msgpack_packer *pk);
/* 16 hex digits of a span id (out: 17 bytes). */
void agt_schema_span_id(uint64_t id, char out[17]);
#endif
