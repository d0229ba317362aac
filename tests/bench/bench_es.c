/* Elasticsearch exporter benchmark: N spans (a realistic reasoning-step-sized document) through
 * the exporter into the bulk test server; spans per second end to end, bytes per span on the
 * wire (gzip'd bulk bodies), exporter memory. Usage: bench_es URL N SPOOL-DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench.h"
#include "export/exporters.h"

static void nop_span(struct agt_sink *s, const struct agt_span *sp)
{
	(void)s;
	(void)sp;
}
static void nop(struct agt_sink *s)
{
	(void)s;
}

int main(int argc, char **argv)
{
	struct agt_export_ctx ectx = {.host = "bench"};
	struct agt_exporter_config cfg = {.url = argc > 1 ? argv[1] : "http://127.0.0.1:9200"};
	struct agt_delivery_config dcfg = {.spool_dir = argc > 3 ? argv[3]
							    : "/tmp/agtrace-bench-spool"};
	struct agt_sink null_sink = {.span = nop_span, .flush = nop, .destroy = nop};
	struct agt_proc_info proc = {.pid = 42,
				     .comm = "agent",
				     .exe = "/usr/bin/python3",
				     .session_id = "00112233445566ff"};
	long n = argc > 2 ? atol(argv[2]) : 20000, rss0 = bench_rss_kib(), rss_peak;
	char err[256];
	struct agt_delivery_stats st;
	struct agt_delivery *es =
	    agt_exporter_start(AGT_EXP_ELASTICSEARCH, &cfg, &dcfg, &ectx, err, sizeof(err));
	struct agt_sink *sink;
	struct agt_span s;
	struct timespec a, b;

	if (!es) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	sink = agt_delivery_tee(&null_sink, es);
	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_STATE;
	s.trace_type = "reasoning_step";
	s.proc = &proc;
	s.pid = 42;
	s.tid = 42;
	snprintf(s.name, sizeof(s.name), "chat gpt-4o");
	snprintf(s.message, sizeof(s.message),
		 "a representative payload of about two hundred bytes: the model asked for the "
		 "weather in Paris and the tool answered with eighteen degrees and sunshine, "
		 "all of it kept");
	clock_gettime(CLOCK_MONOTONIC, &a);
	uint64_t x = 88172645463325252ull;

	for (long i = 0; i < n; i++) {
		char hex[65];

		/* 32 random bytes per span (ids, text that varies), as real spans differ */
		for (int k = 0; k < 4; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			snprintf(hex + 16 * k, 17, "%016llx", (unsigned long long)x);
		}
		snprintf(s.message, sizeof(s.message),
			 "the model asked for the weather in Paris (request %s); the tool answered "
			 "eighteen degrees",
			 hex);
		s.span_id = 0x1000000 + (uint64_t)i;
		memcpy(s.trace_id, &i, sizeof(i));
		s.start_ns = s.end_ns = 1000 + (uint64_t)i;
		sink->span(sink, &s);
	}
	rss_peak = bench_rss_kib();
	agt_delivery_stop(es);
	clock_gettime(CLOCK_MONOTONIC, &b);
	agt_delivery_stats(es, &st);
	double secs = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("%ld spans: %.0f spans/s delivered end to end, %.0f bytes/span on the wire (gzip), "
	       "exporter memory %ld KiB at the peak of the queue; delivered %llu, lost %llu\n",
	       n, st.delivered / secs, (double)st.wire_bytes / (st.delivered ? st.delivered : 1),
	       rss_peak - rss0, (unsigned long long)st.delivered,
	       (unsigned long long)st.spool_dropped);
	sink->destroy(sink);
	agt_delivery_free(es);
	return st.delivered == (unsigned long long)n ? 0 : 1;
}
