/* OTLP/HTTP (JSON) encoding of spans: the trace model's fields become OTel span fields and
 * attributes with their semantic-convention names (gen_ai.*, process.*, ...). */
#ifndef AGT_OTLP_H
#define AGT_OTLP_H
#include "export/sink.h"

/* An ExportTraceServiceRequest around spans (comma-separated span objects); caller frees. */
char *agt_otlp_request(const char *spans, size_t len, const struct agt_export_ctx *c);
#endif
