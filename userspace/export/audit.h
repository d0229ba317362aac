/* Audit trail: an append-only JSONL file whose records are chained by SHA-256 (each record's
 * hash covers the previous hash and its own content), so a changed, removed or reordered record
 * is found by `agtrace audit verify`. */
#ifndef AGT_AUDIT_H
#define AGT_AUDIT_H
#include <cjson/cJSON.h>
#include <stddef.h>
#include "export/sink.h"

struct agt_audit;
/* Open (or continue) the trail at path. NULL with one sentence in err. */
struct agt_audit *agt_audit_open(const char *path, const struct agt_export_ctx *c, char *err,
				 size_t errlen);
/* Append one record of type with data (taken over). 0 or -errno. */
int agt_audit_record(struct agt_audit *a, const char *type, cJSON *data);
void agt_audit_close(struct agt_audit *a);
/* A sink that passes every span on to next and records a digest of each decision and tool call. */
struct agt_sink *agt_audit_tee(struct agt_sink *next, struct agt_audit *a);
int cmd_audit(int argc, char **argv);
#endif
