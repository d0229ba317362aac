/* Probe spec parsing and validation: good specs parse to exact values, every kind of bad spec
 * fails with a sentence naming the file and the JSON path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include "capture/spec.h"
#include "capture/locate.h"

static void parses_full_spec(void **state)
{
	(void)state;
	const char *json =
	    "{\"name\":\"demo\",\"description\":\"d\",\"target\":[\"libfoo.so*\",\"$exe\"],"
	    "\"probes\":[{\"symbols\":[\"handle_*\",\"run\"],\"span\":\"call {symbol}\","
	    "\"trace_type\":\"decision\",\"return\":\"insn\",\"abi\":\"go\","
	    "\"args\":[{\"name\":\"n\",\"type\":\"int\"},{\"type\":\"str\"}],"
	    "\"return_value\":{\"name\":\"rc\",\"type\":\"uint\"}},"
	    "{\"usdt\":\"python:gc__start\",\"return_usdt\":\"python:gc__done\"}]}";
	struct agt_spec s;
	char err[512] = "";

	assert_int_equal(agt_spec_parse(json, "demo.json", &s, err, sizeof(err)), 0);
	assert_string_equal(s.name, "demo");
	assert_int_equal(s.ntargets, 2);
	assert_string_equal(s.targets[0], "libfoo.so*");
	assert_string_equal(s.targets[1], "$exe");
	assert_int_equal(s.nprobes, 2);
	assert_int_equal(s.probes[0].nsymbols, 2);
	assert_string_equal(s.probes[0].symbols[0], "handle_*");
	assert_string_equal(s.probes[0].span, "call {symbol}");
	assert_string_equal(s.probes[0].trace_type, "decision");
	assert_int_equal(s.probes[0].ret_mode, AGT_RET_INSN);
	assert_int_equal(s.probes[0].abi, AGT_ABI_GO);
	assert_int_equal(s.probes[0].nargs, 2);
	assert_string_equal(s.probes[0].args[0].name, "n");
	assert_int_equal(s.probes[0].args[0].kind, AGT_VAL_INT);
	assert_string_equal(s.probes[0].args[1].name, "arg1");
	assert_int_equal(s.probes[0].args[1].kind, AGT_VAL_STR);
	assert_string_equal(s.probes[0].ret.name, "rc");
	assert_int_equal(s.probes[0].ret.kind, AGT_VAL_UINT);
	assert_string_equal(s.probes[1].usdt_provider, "python");
	assert_string_equal(s.probes[1].usdt_name, "gc__start");
	assert_string_equal(s.probes[1].ret_usdt_name, "gc__done");
	assert_string_equal(s.probes[1].span, "python:gc__start");
	assert_string_equal(s.probes[1].trace_type, "tool_call");
	assert_int_equal(s.probes[1].ret_mode, AGT_RET_URETPROBE);
	agt_spec_free(&s);
}

struct bad_case {
	const char *json;
	const char *expect; /* exact error sentence */
};

static const struct bad_case bad[] = {
    {"{\"name\":\"x\",", "f.json: line 1, column 13: not valid JSON; fix the syntax there"},
    {"{\n\"name\": \"x\"\n\"target\": 1}",
     "f.json: line 3, column 1: not valid JSON; fix the syntax there"},
    {"[1]", "f.json: $: a probe spec must be a JSON object"},
    {"{\"target\":\"$exe\",\"probes\":[{\"symbols\":\"f\"}]}",
     "f.json: $: missing required key \"name\""},
    {"{\"name\":\"x\",\"probes\":[{\"symbols\":\"f\"}]}",
     "f.json: $: missing required key \"target\" (a library name like \"libssl.so*\", an absolute "
     "path, or \"$exe\")"},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"probes\":[]}",
     "f.json: $.probes: must be a non-empty array of probe objects"},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"probes\":[{}]}",
     "f.json: $.probes[0]: needs exactly one of \"symbols\" (functions) or \"usdt\" (a marker)"},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"probes\":[{\"symbols\":[\"a\",\"\"]}]}",
     "f.json: $.probes[0].symbols: element 1 must be a non-empty string"},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"probes\":[{\"symbols\":\"f\",\"args\":[{\"type\":"
     "\"float\"}]}]}",
     "f.json: $.probes[0].args[0]: unknown type \"float\" (expected int, uint, ptr or str)"},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"probes\":[{\"symbols\":\"f\",\"args\":[{\"type\":"
     "\"int\"},"
     "{\"type\":\"int\"},{\"type\":\"int\"},{\"type\":\"int\"},{\"type\":\"int\"},{\"type\":"
     "\"int\"},"
     "{\"type\":\"int\"}]}]}",
     "f.json: $.probes[0].args: has 7 entries; at most 6 arguments can be recorded"},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"probes\":[{\"symbols\":\"f\",\"trace_type\":\"span\"}]"
     "}",
     "f.json: $.probes[0].trace_type: must be one of reasoning_step, tool_call, cot_process, "
     "decision, state_change, error, metric"},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"probes\":[{\"symbols\":\"f\",\"retrun\":\"insn\"}]}",
     "f.json: $.probes[0]: unknown key \"retrun\" (allowed: symbols, usdt, return_usdt, span, "
     "trace_type, args, return_value, return, abi, handler)"},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"probes\":[{\"symbols\":\"f\",\"return\":\"maybe\"}]}",
     "f.json: $.probes[0].return: must be \"uretprobe\", \"insn\" (every return instruction; use "
     "for Go) or \"none\" (entry only)"},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"probes\":[{\"usdt\":\"gc_start\"}]}",
     "f.json: $.probes[0].usdt: \"gc_start\" is not of the form provider:name (e.g. "
     "python:gc__start)"},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"probes\":[{\"usdt\":\"p:n\",\"return_value\":{\"type\":"
     "\"int\"}}]}",
     "f.json: $.probes[0]: \"return_value\" needs a return probe (\"return\" or \"return_usdt\")"},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"probes\":[{\"symbols\":\"f\",\"abi\":\"rust\"}]}",
     "f.json: $.probes[0].abi: must be \"c\" or \"go\""},
    {"{\"name\":\"x\",\"target\":[],\"probes\":[{\"symbols\":\"f\"}]}",
     "f.json: $.target: must be a string or a non-empty array of strings"},
    /* located specs */
    {"{\"name\":\"x\",\"target\":\"$exe\",\"locate\":\"wolfssl\",\"probes\":[{\"role\":"
     "\"write\",\"handler\":\"ssl_write\"}]}",
     "f.json: $.locate: must be \"boringssl\", \"openssl3\" or \"aws-lc\" (the library the TLS "
     "locator finds)"},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"probes\":[{\"role\":\"write\",\"handler\":"
     "\"ssl_write\"}]}",
     "f.json: $.probes[0]: \"role\" probes belong to a spec with \"locate\" or \"funnel\" (the "
     "library the TLS locator finds)"},
    /* funnel specs: role probes beside symbol probes, each naming the symbols it replaces */
    {"{\"name\":\"x\",\"target\":\"libssl.so*\",\"funnel\":\"aws-lc\",\"probes\":[{\"symbols\":"
     "\"SSL_read\",\"handler\":\"ssl_read\"}]}",
     "f.json: $.funnel: must be \"boringssl\" or \"openssl3\" (the library whose internal "
     "functions the role probes take), in a spec of symbol probes without \"locate\""},
    {"{\"name\":\"x\",\"target\":\"libssl.so*\",\"funnel\":\"openssl3\",\"probes\":[{\"symbols\":"
     "\"SSL_read\",\"handler\":\"ssl_read\"},{\"role\":\"read\",\"handler\":"
     "\"ssl_read_internal\"}]}",
     "f.json: $.probes[1].instead_of: a funnel's role probe needs \"instead_of\": the exported "
     "functions (symbols of this spec's probes) it replaces where it is found"},
    {"{\"name\":\"x\",\"target\":\"libssl.so*\",\"funnel\":\"openssl3\",\"probes\":[{\"symbols\":"
     "\"SSL_read\",\"handler\":\"ssl_read\"},{\"role\":\"read\",\"handler\":"
     "\"ssl_read_internal\",\"instead_of\":[\"SSL_read\",\"SSL_peek\"]}]}",
     "f.json: $.probes[1].instead_of[1]: \"SSL_peek\" is no symbol of this spec's probes"},
    {"{\"name\":\"x\",\"target\":\"libssl.so*\",\"funnel\":\"openssl3\",\"probes\":[{\"symbols\":"
     "\"SSL_read\",\"handler\":\"ssl_read\"}]}",
     "f.json: $.funnel: needs probes with a \"role\" and \"instead_of\""},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"locate\":\"boringssl\",\"probes\":[{\"symbols\":"
     "\"SSL_write\"}]}",
     "f.json: $.probes[0]: unknown key \"symbols\" (allowed: role, handler, trace_type, span)"},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"locate\":\"boringssl\",\"probes\":[{\"role\":"
     "\"send\",\"handler\":\"ssl_write\"}]}",
     "f.json: $.probes[0].role: a located spec's probe needs \"role\": \"write\", \"read\" (SSL "
     "functions) or \"seal\", \"open\" (AEAD)"},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"locate\":\"aws-lc\",\"probes\":[{\"role\":"
     "\"seal\",\"handler\":\"ssl_write\"}]}",
     "f.json: $.probes[0].handler: role \"seal\" goes with handler \"aead_seal\" or "
     "\"aead_open\""},
    {"{\"name\":\"x\",\"target\":\"$exe\",\"probes\":[{\"symbols\":\"f\",\"handler\":"
     "\"aead_seal\"}]}",
     "f.json: $.probes[0].handler: \"aead_seal\" captures a located function: it goes in a spec "
     "with \"locate\": \"aws-lc\" and a \"role\""},
};

static void rejects_bad_specs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct agt_spec s;
		char err[512] = "";

		assert_int_equal(agt_spec_parse(bad[i].json, "f.json", &s, err, sizeof(err)), -22);
		if (strcmp(err, bad[i].expect))
			fail_msg("case %zu:\n got: %s\nwant: %s", i, err, bad[i].expect);
	}
}

static void uprobe_one_off(void **state)
{
	(void)state;
	struct agt_spec s;
	char err[512] = "";

	assert_int_equal(agt_spec_from_uprobe("libc.so.6:get*", &s, err, sizeof(err)), 0);
	assert_string_equal(s.targets[0], "libc.so.6");
	assert_string_equal(s.probes[0].symbols[0], "get*");
	assert_int_equal(s.probes[0].ret_mode, AGT_RET_URETPROBE);
	assert_int_equal(s.probes[0].ret.kind, AGT_VAL_INT);
	agt_spec_free(&s);
	assert_int_equal(agt_spec_from_uprobe("/bin/x:ns::f", &s, err, sizeof(err)), 0);
	assert_string_equal(s.targets[0], "/bin/x");
	assert_string_equal(s.probes[0].symbols[0], "ns::f");
	agt_spec_free(&s);
	assert_int_equal(agt_spec_from_uprobe("/bin/x", &s, err, sizeof(err)), -22);
	assert_string_equal(err, "--uprobe /bin/x: expected PATH:SYMBOL, e.g. "
				 "/usr/bin/myapp:handle_request or libc.so.6:malloc");
}

static void unreadable_file(void **state)
{
	(void)state;
	struct agt_spec s;
	char err[512] = "";

	assert_int_equal(agt_spec_load("/nonexistent/x.json", &s, err, sizeof(err)), -2);
	assert_string_equal(err, "cannot read probe spec /nonexistent/x.json: No such file or "
				 "directory; check the path and its permissions");
}

static void shipped_specs_are_valid(void **state)
{
	(void)state;
	struct agt_spec s;
	char err[512] = "";

	assert_int_equal(agt_spec_load("probes/python-gc.json", &s, err, sizeof(err)), 0);
	assert_string_equal(s.name, "python-gc");
	assert_string_equal(s.probes[0].trace_type, "metric");
	agt_spec_free(&s);
	/* the located specs: a library to find and a role per probe, no symbols */
	assert_int_equal(agt_spec_load("probes/openssl.json", &s, err, sizeof(err)), 0);
	assert_string_equal(s.funnel, "openssl3");
	assert_int_equal(s.nprobes, 7);
	assert_int_equal(s.probes[5].role, AGT_TLS_WRITE);
	assert_string_equal(s.probes[5].handler->name, "openssl_write_internal");
	assert_int_equal(s.probes[5].ninstead_of, 2);
	assert_string_equal(s.probes[6].instead_of[1], "SSL_read_ex");
	agt_spec_free(&s);
	assert_int_equal(agt_spec_load("probes/openssl-static.json", &s, err, sizeof(err)), 0);
	assert_string_equal(s.locate, "openssl3");
	assert_true(s.auto_attach);
	assert_int_equal(s.nprobes, 2);
	assert_int_equal(s.probes[0].role, AGT_TLS_WRITE);
	assert_string_equal(s.probes[0].handler->name, "ssl_write_internal");
	assert_int_equal(s.probes[1].role, AGT_TLS_READ);
	assert_null(s.probes[0].symbols);
	agt_spec_free(&s);
	assert_int_equal(agt_spec_load("probes/rustls-aws-lc.json", &s, err, sizeof(err)), 0);
	assert_string_equal(s.locate, "aws-lc");
	assert_int_equal(s.probes[0].role, AGT_TLS_SEAL);
	assert_int_equal(s.probes[0].handler->kind, AGT_HK_AEAD);
	assert_int_equal(s.probes[1].role, AGT_TLS_OPEN);
	agt_spec_free(&s);
	assert_int_equal(agt_spec_load("probes/boringssl-static.json", &s, err, sizeof(err)), 0);
	assert_string_equal(s.locate, "boringssl");
	assert_string_equal(s.probes[1].handler->name, "ssl_read");
	agt_spec_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parses_full_spec),	       cmocka_unit_test(rejects_bad_specs),
	    cmocka_unit_test(uprobe_one_off),	       cmocka_unit_test(unreadable_file),
	    cmocka_unit_test(shipped_specs_are_valid),
	};
	return cmocka_run_group_tests_name("spec", tests, NULL, NULL);
}
