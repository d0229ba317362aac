/* Exporter benchmark: N spans (a realistic reasoning-step-sized document) through the
 * Elasticsearch exporter (or the OTLP one) into a test server; spans per second end to end,
 * bytes per span on the wire (gzip'd request bodies), exporter memory, and where the exporter's
 * CPU goes: the pipeline thread (encoding, queueing) and the delivery thread (batching, gzip,
 * HTTP, reading the answer). Usage: bench_es URL N SPOOL-DIR [elasticsearch|otlp]
 * The last line is the same numbers as JSON ("result {...}") for tests/bench/bench_uprobe.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "bench.h"
#include "export/exporters.h"

static double cpu_process(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double clock_s(clockid_t id)
{
	struct timespec t;

	clock_gettime(id, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

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
	struct agt_delivery_config dcfg = {
	    .spool_dir = argc > 3 ? argv[3] : "/tmp/agtrace-bench-spool",
	    .drain_seconds =
		600}; /* a slow server (the Python ones, a busy machine) still gets all */
	struct agt_sink null_sink = {.span = nop_span, .flush = nop, .destroy = nop};
	struct agt_proc_info proc = {.pid = 42,
				     .comm = "agent",
				     .exe = "/usr/bin/python3",
				     .session_id = "00112233445566ff"};
	long n = argc > 2 ? atol(argv[2]) : 20000, rss0 = bench_rss_kib(), rss_peak;
	const char *which = argc > 4 ? argv[4] : "elasticsearch";
	enum agt_exporter_id id = !strcmp(which, "otlp") ? AGT_EXP_OTLP : AGT_EXP_ELASTICSEARCH;
	char err[256];
	struct agt_delivery_stats st;
	struct agt_delivery *es;
	struct agt_sink *sink;
	struct agt_span s;
	double t0, t1, cpu0, cpu1, main0, main1;

	if (strcmp(which, "otlp") && strcmp(which, "elasticsearch")) {
		fprintf(stderr, "usage: bench_es URL N SPOOL-DIR [elasticsearch|otlp]\n");
		return 2;
	}
	/* OTLP/JSON: bulk_server.c, the fast stand-in, checks OTLP/JSON only (the strict
	 * protobuf receiver is otlp_server.py with otlp_pb). */
	cfg.protocol = getenv("BENCH_OTLP_PROTOCOL") ? getenv("BENCH_OTLP_PROTOCOL") : "http/json";
	es = agt_exporter_start(id, &cfg, &dcfg, &ectx, err, sizeof(err));
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
	t0 = clock_s(CLOCK_MONOTONIC);
	cpu0 = cpu_process();
	main0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
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
	main1 = clock_s(CLOCK_THREAD_CPUTIME_ID); /* from here on this thread waits in the join */
	agt_delivery_stop(es);
	t1 = clock_s(CLOCK_MONOTONIC);
	cpu1 = cpu_process();
	agt_delivery_stats(es, &st);
	double secs = t1 - t0, pipe_us = (main1 - main0) / n * 1e6,
	       deliv_us = ((cpu1 - cpu0) - (main1 - main0)) / n * 1e6;
	printf("%s, %ld spans: %.0f spans/s delivered end to end, %.0f bytes/span on the wire "
	       "(gzip), exporter memory %ld KiB at the peak of the queue; CPU per span: pipeline "
	       "thread %.2f us, delivery thread %.2f us; delivered %llu, lost %llu\n",
	       which, n, st.delivered / secs,
	       (double)st.wire_bytes / (st.delivered ? st.delivered : 1), rss_peak - rss0, pipe_us,
	       deliv_us, (unsigned long long)st.delivered, (unsigned long long)st.spool_dropped);
	printf("result {\"exporter\":\"%s\",\"spans\":%ld,\"seconds\":%.6f,\"spans_per_s\":%.1f,"
	       "\"bytes_per_span\":%.2f,\"memory_kib\":%ld,\"pipeline_us\":%.3f,"
	       "\"delivery_us\":%.3f,\"delivered\":%llu,\"retried\":%llu,\"lost\":%llu}\n",
	       which, n, secs, st.delivered / secs,
	       (double)st.wire_bytes / (st.delivered ? st.delivered : 1), rss_peak - rss0, pipe_us,
	       deliv_us, (unsigned long long)st.delivered, (unsigned long long)st.retried,
	       (unsigned long long)st.spool_dropped);
	sink->destroy(sink);
	agt_delivery_free(es);
	return st.delivered == (unsigned long long)n ? 0 : 1;
}
