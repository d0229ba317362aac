/* libFuzzer target: arbitrary bytes through everything after the ring buffer (record decoding,
 * stream reassembly, HTTP/1.1, SSE, gzip, the LLM parsers, JSON output). Malformed traffic must
 * be counted, never crash or leak.
 * Input: a mode byte, then
 *   mode even: chunks [dir|conn (1 byte)][len (2 bytes LE)][bytes] as captured TLS data
 *   mode odd:  records [len (2 bytes LE)][record] handed to the decoder as they are */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "export/sink.h"
#include "one_target.h"

static struct agt_spec spec = {.name = "fuzz"};
static struct agt_probe_spec ps = {
    .trace_type = "tool_call",
    .nargs = 2,
    .args = {{"n", AGT_VAL_INT}, {"s", AGT_VAL_STR}},
    .ret = {"r", AGT_VAL_STR},
};
static struct agt_probe_info probe = {.id = 0, .spec = &spec, .ps = &ps, .symbol = "f"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	static struct agt_data ev;
	struct agt_proc proc = {.info = {.pid = 10, .comm = "fuzz"}, .pidfd = -1};
	struct agt_export_ctx ectx = {.host = "fuzz"};
	struct agt_pipeline_config pc = {.max_depth = 16, .max_threads = 16, .msg_cap = 4096};
	struct agt_pipeline p;
	struct one_target o;
	struct agt_sink *sink;
	size_t pos = 1;
	uint64_t ts = 1000;

	if (!devnull)
		devnull = fopen("/dev/null", "w");
	if (!size)
		return 0;
	sink = agt_jsonl_new(devnull, &ectx);
	if (!sink || one_target_init(&o, &p, &probe, &proc, &pc, sink)) {
		if (sink)
			sink->destroy(sink);
		return 0;
	}
	while (pos + 3 <= size) {
		unsigned hdr = data[pos];
		size_t len = data[pos + 1] | (size_t)data[pos + 2] << 8;

		pos += 3;
		if (len > size - pos)
			len = size - pos;
		if (data[0] & 1) {
			uint8_t rec[sizeof(struct agt_data)];

			if (len > sizeof(rec))
				len = sizeof(rec);
			memcpy(rec, data + pos - 1,
			       len ? len : 0); /* include the byte before: kind */
			agt_decode_record(&p.dec, rec, len);
		} else {
			memset(&ev, 0, offsetof(struct agt_data, data));
			ev.h = (struct agt_event_hdr){AGT_EV_DATA, 0, 10, 10, ts += 1000};
			ev.conn = (hdr >> 1) & 3;
			ev.dir = hdr & 1;
			ev.source = (hdr & 0x40)   ? AGT_SRC_IPC
				    : (hdr & 0x20) ? AGT_SRC_TCP
						   : AGT_SRC_TLS;
			ev.len = len > AGT_DATA_CHUNK ? AGT_DATA_CHUNK : (uint32_t)len;
			ev.call_len =
			    (hdr & 0x80) ? ev.len + 100 : ev.len; /* sometimes a cut call */
			memcpy(ev.data, data + pos, ev.len);
			agt_decode_record(&p.dec, &ev, offsetof(struct agt_data, data) + ev.len);
		}
		pos += len;
	}
	agt_pipeline_flush(&p, ts);
	agt_pipeline_fini(&p);
	sink->destroy(sink);
	return 0;
}
