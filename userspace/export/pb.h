/* A protobuf wire-format writer: fields appended straight into one growing buffer that is reused
 * from record to record, as the JSON writer does (no message tree, no generated code). Nested
 * messages are opened and closed: a one-byte length is reserved at open and the content is moved
 * along at close only when it needs a longer varint, so what comes out is the canonical encoding
 * (minimal varints) any protobuf parser reads. Strings are written as valid UTF-8 (proto3
 * `string` fields must be): an invalid sequence becomes U+FFFD and is counted, as in jsonw.h. */
#ifndef AGT_PB_H
#define AGT_PB_H
#include <stddef.h>
#include <stdint.h>

#define AGT_PB_MAX_DEPTH 32

struct agt_pb {
	uint8_t *buf;
	size_t len, cap;
	size_t open[AGT_PB_MAX_DEPTH]; /* where each open message's content starts */
	int depth;
	uint64_t replaced; /* invalid UTF-8 sequences replaced, over the writer's life */
	int failed;	   /* out of memory, or nesting too deep: the message is cut */
};

void agt_pb_init(struct agt_pb *p);
void agt_pb_free(struct agt_pb *p);
void agt_pb_reset(struct agt_pb *p);

/* Wire type 0 (int32, int64, uint32, uint64, bool, enum): v as a varint. Negative int64
 * values are written as their two's complement (ten bytes), as protobuf does. */
void agt_pb_varint(struct agt_pb *p, uint32_t field, uint64_t v);
void agt_pb_fixed64(struct agt_pb *p, uint32_t field, uint64_t v);
void agt_pb_fixed32(struct agt_pb *p, uint32_t field, uint32_t v);
void agt_pb_double(struct agt_pb *p, uint32_t field, double v);
/* Wire type 2: bytes as they are; a string (NULL is ""), repaired to valid UTF-8. */
void agt_pb_bytes(struct agt_pb *p, uint32_t field, const void *b, size_t n);
void agt_pb_str(struct agt_pb *p, uint32_t field, const char *s);
void agt_pb_strn(struct agt_pb *p, uint32_t field, const char *s, size_t n);
/* An embedded message: fields written between begin and end are its content. */
void agt_pb_begin(struct agt_pb *p, uint32_t field);
void agt_pb_end(struct agt_pb *p);
/* Bytes that are an encoded field (or fields) already. */
void agt_pb_raw(struct agt_pb *p, const void *b, size_t n);

/* Reading, for answers (ExportTraceServiceResponse): the next field of buf[*off..n). 1 with
 * its number, wire type and value (varint/fixed in *v, length-delimited as *data and *len);
 * 0 at the end; -1 when the bytes are not protobuf. */
int agt_pb_next(const uint8_t *buf, size_t n, size_t *off, uint32_t *field, int *wire,
		uint64_t *v, const uint8_t **data, size_t *len);
#endif
