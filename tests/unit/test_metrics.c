/* The metrics registry: exact exposition of counters and histograms from spans, and the cap on
 * label sets per metric (more count under "other"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
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

/* "ADDR:PORT" with a port free now (other test runs may use fixed ones). */
static const char *free_addr(int v6)
{
	static char out[64];
	struct sockaddr_storage sa = {0};
	socklen_t len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);

	sa.ss_family = v6 ? AF_INET6 : AF_INET;
	if (v6)
		((struct sockaddr_in6 *)&sa)->sin6_addr = in6addr_loopback;
	else
		((struct sockaddr_in *)&sa)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(out, sizeof(out), v6 ? "[::1]:%d" : "127.0.0.1:%d",
		 ntohs(v6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
			  : ((struct sockaddr_in *)&sa)->sin_port));
	close(fd);
	return out;
}

static void cardinality_cap_and_exposition(void **state)
{
	(void)state;
	char err[256];
	struct agt_metrics *m = agt_metrics_start(free_addr(0), err, sizeof(err));
	struct agt_sink null = {.span = nop_span, .flush = nop, .destroy = nop};
	struct agt_sink *s;
	struct agt_proc_info proc = {.pid = 1, .comm = "agent",
				     .id = {.pod_namespace = "ai", .owner_name = "bot"}};
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
			       "component=\"agent\",k8s_namespace_name=\"ai\",k8s_workload_name=\"bot\"} 1\n"));
	assert_non_null(strstr(text,
			       "agentic_tool_calls_total{tool_name=\"other\",success=\"other\","
			       "component=\"other\",k8s_namespace_name=\"other\",k8s_workload_name=\"other\"} 50\n"));
	/* the cap is counted when hit: 50 observations of each capped metric */
	assert_non_null(strstr(text, "agtrace_metrics_series_capped_total{metric=\"agentic_tool_calls_total\"} 50\n"));
	assert_non_null(strstr(text, "agtrace_metrics_series_capped_total{metric=\"agentic_tool_call_duration_seconds\"} 50\n"));
	assert_non_null(strstr(text,
			       "agentic_tool_call_duration_seconds_bucket{tool_name=\"tool\\\"7\","
			       "k8s_namespace_name=\"ai\",k8s_workload_name=\"bot\",le=\"0.025\"} 0\n"));
	assert_non_null(strstr(text,
			       "agentic_tool_call_duration_seconds_bucket{tool_name=\"tool\\\"7\","
			       "k8s_namespace_name=\"ai\",k8s_workload_name=\"bot\",le=\"0.05\"} 1\n"));
	assert_non_null(
	    strstr(text, "agentic_tool_call_duration_seconds_count{tool_name=\"other\",k8s_namespace_name=\"other\",k8s_workload_name=\"other\"} 50\n"));
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
	struct agt_metrics *m = agt_metrics_start(free_addr(0), err, sizeof(err));
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
				     "component=\"agent\",k8s_namespace_name=\"\",k8s_workload_name=\"\"} 1\n"));
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

/* Bucket bounds and values as written, never in %g's six digits: le="1048576", not
 * le="1.04858e+06"; error_type on a failed exchange; build_info; a HELP line of its own on
 * every family. */
static void exact_numbers_error_type_build_info_help(void **state)
{
	(void)state;
	char err[256], num[40];
	struct agt_metrics *m = agt_metrics_start(free_addr(1), err, sizeof(err));
	struct agt_sink null = {.span = nop_span, .flush = nop, .destroy = nop};
	struct agt_sink *s;
	struct agt_proc_info proc = {.pid = 1, .comm = "agent"};
	struct agt_span_http h = {.method = "POST", .path = "/v1/chat/completions", .answered = 1,
				  .status = 429};
	struct agt_span_llm x = {.operation = "chat", .provider = "openai", .req_model = "gpt-4o",
				 .resp_model = "", .input_tokens = 1048576, .output_tokens = 3,
				 .error_type = ""};
	struct agt_span sp;
	char *text;

	assert_non_null(m);
	agt_metrics_fmt(1048576, num, sizeof(num));
	assert_string_equal(num, "1048576");
	agt_metrics_fmt(67108864, num, sizeof(num));
	assert_string_equal(num, "67108864");
	agt_metrics_fmt(0.01, num, sizeof(num));
	assert_string_equal(num, "0.01");
	agt_metrics_fmt(0.1 + 0.2, num, sizeof(num));
	assert_string_equal(num, "0.30000000000000004");
	agt_metrics_fmt(1.5e-7, num, sizeof(num));
	assert_string_equal(num, "1.5e-07");
	s = agt_metrics_tee(&null, m);
	memset(&sp, 0, sizeof(sp));
	sp.kind = AGT_SPAN_LLM;
	sp.trace_type = "reasoning_step";
	sp.proc = &proc;
	sp.llm = &x;
	sp.http = &h;
	sp.status = AGT_STATUS_ERROR;
	sp.end_ns = 250000000; /* 0.25 s */
	s->span(s, &sp);
	h.status = 200;
	sp.status = AGT_STATUS_OK;
	s->span(s, &sp);
	agt_metrics_set(m, "agtrace_attached_processes", "", 3);
	agt_metrics_describe(m, "agtrace_runtime_widgets", "widgets the runtime holds");
	agt_metrics_set(m, "agtrace_runtime_widgets", "", 2);
	text = agt_metrics_render(m);
	const char *gl = "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\","
			 "gen_ai_request_model=\"gpt-4o\"";
	const char *wl = "k8s_namespace_name=\"\",k8s_workload_name=\"\"";
	char want[1024];

	snprintf(want, sizeof(want),
		 "\ngen_ai_client_token_usage_bucket{%s,gen_ai_token_type=\"input\",%s,"
		 "le=\"1048576\"} 2\n",
		 gl, wl);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want),
		 "\ngen_ai_client_token_usage_bucket{%s,gen_ai_token_type=\"input\",%s,"
		 "le=\"262144\"} 0\n",
		 gl, wl);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want),
		 "\ngen_ai_client_token_usage_sum{%s,gen_ai_token_type=\"input\",%s} 2097152\n", gl,
		 wl);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want),
		 "\ngen_ai_client_operation_duration_seconds_count{%s,error_type=\"429\",%s} 1\n", gl,
		 wl);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want),
		 "\ngen_ai_client_operation_duration_seconds_bucket{%s,error_type=\"\",%s,"
		 "le=\"0.32\"} 1\n",
		 gl, wl);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want),
		 "\ngen_ai_client_operation_duration_seconds_sum{%s,error_type=\"\",%s} 0.25\n", gl,
		 wl);
	assert_non_null(strstr(text, want));
	assert_null(strstr(text, "e+0"));
	assert_non_null(strstr(text, "\nagtrace_build_info{version=\""));
	assert_non_null(strstr(text, "# HELP agtrace_attached_processes processes traced now\n"
				     "# TYPE agtrace_attached_processes gauge\n"
				     "agtrace_attached_processes 3\n"));
	assert_non_null(strstr(text, "# HELP agtrace_runtime_widgets widgets the runtime holds\n"
				     "# TYPE agtrace_runtime_widgets gauge\nagtrace_runtime_widgets 2\n"));
	assert_null(strstr(text, "not described"));
	free(text);
	s->destroy(s);
	agt_metrics_stop(m);
}

/* An info metric: each set_only replaces the family's series, so it stays one series. */
static void set_only_keeps_one_series(void **state)
{
	char err[256], *text;
	struct agt_metrics *m = agt_metrics_start(free_addr(0), err, sizeof(err));

	(void)state;
	assert_non_null(m);
	for (int i = 1; i <= 300; i++) { /* more than the cap: never "other" */
		char l[64];

		snprintf(l, sizeof(l), "records=\"%d\",head=\"%02x\"", i, i & 0xff);
		agt_metrics_set_only(m, "agtrace_audit_anchor_info", l, 1);
	}
	text = agt_metrics_render(m);
	assert_non_null(strstr(text, "# TYPE agtrace_audit_anchor_info gauge\n"
				     "agtrace_audit_anchor_info{records=\"300\",head=\"2c\"} 1\n"));
	assert_null(strstr(text, "records=\"299\""));
	assert_null(strstr(text, "agtrace_metrics_series_capped_total"));
	assert_null(strstr(text, "not described"));
	free(text);
	agt_metrics_stop(m);
}

static void listen_addresses(void **state)
{
	struct sockaddr_storage sa;
	char err[256];

	(void)state;
	assert_int_equal(agt_metrics_listen_addr("9464", &sa, err, sizeof(err)), 0);
	assert_int_equal(sa.ss_family, AF_INET);
	assert_int_equal(agt_metrics_listen_addr("127.0.0.1:9464", &sa, err, sizeof(err)), 0);
	assert_int_equal(sa.ss_family, AF_INET);
	assert_int_equal(agt_metrics_listen_addr("[::1]:9464", &sa, err, sizeof(err)), 0);
	assert_int_equal(sa.ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&sa)->sin6_port), 9464);
	assert_int_equal(agt_metrics_listen_addr("[::]:1", &sa, err, sizeof(err)), 0);
	for (const char *const *bad = (const char *const[]){"::1:9464", "[::1]9464", "[::1]:0",
							    "[fe80::zz]:80", "localhost:9464",
							    "1.2.3.4:", NULL};
	     *bad; bad++) {
		char want[256];

		assert_int_equal(agt_metrics_listen_addr(*bad, &sa, err, sizeof(err)), -EINVAL);
		snprintf(want, sizeof(want),
			 "--metrics \"%s\" is not [ADDRESS:]PORT, e.g. 9464, 127.0.0.1:9464 or "
			 "[::1]:9464",
			 *bad);
		assert_string_equal(err, want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(cardinality_cap_and_exposition),
					   cmocka_unit_test(only_tool_calls_are_tool_calls),
					   cmocka_unit_test(exact_numbers_error_type_build_info_help),
					   cmocka_unit_test(set_only_keeps_one_series),
					   cmocka_unit_test(listen_addresses)};
	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
