/* The metrics registry: exact exposition of counters and histograms from spans, and the cap on
 * label sets per metric (more count under "other"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "export/metrics.h"

static void nop_span(struct agt_sink *s, const struct agt_span *sp)
{
	(void)s;
	(void)sp;
}
static void nop(struct agt_sink *s)
{
	(void)s;
}

static void cardinality_cap_and_exposition(void **state)
{
	(void)state;
	char err[256];
	struct agt_metrics *m = agt_metrics_start("127.0.0.1:39467", err, sizeof(err));
	struct agt_sink null = {.span = nop_span, .flush = nop, .destroy = nop};
	struct agt_sink *s;
	struct agt_proc_info proc = {.pid = 1, .comm = "agent"};
	struct agt_span sp;
	char *text, name[32];

	assert_non_null(m);
	s = agt_metrics_tee(&null, m);
	memset(&sp, 0, sizeof(sp));
	sp.kind = AGT_SPAN_TOOL;
	sp.trace_type = "tool_call";
	sp.proc = &proc;
	sp.status = AGT_STATUS_OK;
	sp.tool.success = 1;
	sp.start_ns = 0;
	sp.end_ns = 30000000;		/* 30 ms */
	for (int i = 0; i < 250; i++) { /* 250 tool names: 200 kept, 50 under "other" */
		snprintf(name, sizeof(name), "tool\"%d", i);
		sp.tool.name = name;
		s->span(s, &sp);
	}
	text = agt_metrics_render(m);
	assert_non_null(strstr(text, "# TYPE agentic_tool_calls_total counter\n"));
	assert_non_null(strstr(text,
			       "agentic_tool_calls_total{tool_name=\"tool\\\"7\",success=\"true\","
			       "component=\"agent\"} 1\n"));
	assert_non_null(strstr(text,
			       "agentic_tool_calls_total{tool_name=\"other\",success=\"other\","
			       "component=\"other\"} 50\n"));
	assert_non_null(strstr(text,
			       "agentic_tool_call_duration_seconds_bucket{tool_name=\"tool\\\"7\","
			       "le=\"0.025\"} 0\n"));
	assert_non_null(strstr(text,
			       "agentic_tool_call_duration_seconds_bucket{tool_name=\"tool\\\"7\","
			       "le=\"0.05\"} 1\n"));
	assert_non_null(
	    strstr(text, "agentic_tool_call_duration_seconds_count{tool_name=\"other\"} 50\n"));
	/* exactly 201 series of the counter: 200 names and "other" */
	int n = 0;
	for (char *p = text; (p = strstr(p, "\nagentic_tool_calls_total{")); p++)
		n++;
	assert_int_equal(n, 201);
	free(text);
	s->destroy(s);
	agt_metrics_stop(m);
}

/* Only real tool calls count as tool calls: not HTTP of its own (http_call), not HTTP a tool
 * made (a tool_call span of an HTTP exchange), not an invoked agent. */
static void only_tool_calls_are_tool_calls(void **state)
{
	(void)state;
	char err[256];
	struct agt_metrics *m = agt_metrics_start("127.0.0.1:39468", err, sizeof(err));
	struct agt_sink null = {.span = nop_span, .flush = nop, .destroy = nop};
	struct agt_sink *s;
	struct agt_proc_info proc = {.pid = 1, .comm = "agent"};
	struct agt_span_http h = {.method = "HEAD", .path = "/", .answered = 1, .status = 200};
	struct agt_span sp;
	char *text;

	assert_non_null(m);
	s = agt_metrics_tee(&null, m);
	memset(&sp, 0, sizeof(sp));
	sp.proc = &proc;
	sp.kind = AGT_SPAN_HTTP;
	sp.http = &h;
	sp.trace_type = "http_call";
	s->span(s, &sp);
	sp.trace_type = "tool_call"; /* HTTP made inside a tool's window */
	s->span(s, &sp);
	memset(&sp, 0, sizeof(sp));
	sp.proc = &proc;
	sp.kind = AGT_SPAN_COT;
	sp.trace_type = "cot_process";
	sp.cot.agent_name = "researcher";
	sp.status = AGT_STATUS_UNFINISHED;
	s->span(s, &sp);
	sp.kind = AGT_SPAN_TOOL;
	sp.trace_type = "tool_call";
	sp.status = AGT_STATUS_OK;
	sp.tool.name = "Task";
	sp.tool.success = 1;
	s->span(s, &sp);
	text = agt_metrics_render(m);
	assert_non_null(strstr(text, "agentic_tool_calls_total{tool_name=\"Task\",success=\"true\","
				     "component=\"agent\"} 1\n"));
	int n = 0;
	for (char *p = text; (p = strstr(p, "\nagentic_tool_calls_total{")); p++)
		n++;
	assert_int_equal(n, 1);
	assert_non_null(strstr(text, "agtrace_spans_emitted_total{trace_type=\"http_call\"} 1\n"));
	assert_non_null(strstr(text, "agtrace_spans_emitted_total{trace_type=\"tool_call\"} 2\n"));
	free(text);
	s->destroy(s);
	agt_metrics_stop(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(cardinality_cap_and_exposition),
					   cmocka_unit_test(only_tool_calls_are_tool_calls)};
	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
