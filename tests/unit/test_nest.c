/* The nesting tree builder: parent links by thread, missing returns, bounded memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include "trace/nest.h"

#define MAXOUT 4096
static struct agt_span out[MAXOUT];
static int nout;
struct probe {
	uint32_t id;
};
static const struct probe pa = {0}, pb = {1}, pc = {2};

static void collect(struct agt_sink *sk, const struct agt_span *s)
{
	(void)sk;
	if (nout < MAXOUT)
		out[nout] = *s;
	nout++;
}

/* Spans go through an emitter into collect(). */
static struct agt_sink sink = {.span = collect};
static struct agt_emitter em;
static struct agt_emitter *emitter(void)
{
	agt_emitter_init(&em, &sink, NULL, NULL);
	return &em;
}

static void enter(struct agt_nest *n, const struct probe *p, uint32_t tid, uint64_t ts)
{
	struct agt_span s;

	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_FUNC;
	s.probe.id = p->id;
	s.pid = 100;
	s.tid = tid;
	s.start_ns = ts;
	strcpy(s.name, p == &pa ? "a" : p == &pb ? "b" : "c");
	s.trace_type = "tool_call";
	agt_nest_enter(n, &s, 0);
}

static void leave(struct agt_nest *n, const struct probe *p, uint32_t tid, uint64_t ts,
		  uint64_t rv)
{
	struct agt_value v = {.kind = AGT_VAL_INT, .u = rv};

	agt_nest_leave(n, 100, tid, p->id, 0, ts, &v);
}

static int setup(void **state)
{
	(void)state;
	nout = 0;
	memset(out, 0, sizeof(out));
	return 0;
}

static void nests_by_thread(void **state)
{
	(void)state;
	struct agt_nest *n = agt_nest_new(64, 16, emitter());

	enter(n, &pa, 1, 10);
	enter(n, &pb, 2, 11); /* another thread: its own root */
	enter(n, &pb, 1, 12);
	enter(n, &pc, 1, 13);
	leave(n, &pc, 1, 14, 3);
	leave(n, &pb, 1, 15, 2);
	enter(n, &pc, 1, 16);
	leave(n, &pc, 1, 17, 33);
	leave(n, &pa, 1, 18, 1);
	leave(n, &pb, 2, 19, 9);

	assert_int_equal(nout, 5);
	/* Post-order: c, b, c, a (thread 1), then b (thread 2). */
	assert_string_equal(out[0].name, "c");
	assert_string_equal(out[1].name, "b");
	assert_string_equal(out[2].name, "c");
	assert_string_equal(out[3].name, "a");
	assert_string_equal(out[4].name, "b");
	assert_int_equal(out[3].parent_id, 0);
	assert_int_equal(out[1].parent_id, out[3].span_id);
	assert_int_equal(out[0].parent_id, out[1].span_id);
	assert_int_equal(out[2].parent_id, out[3].span_id);
	assert_int_equal(out[4].parent_id, 0);
	assert_memory_equal(out[0].trace_id, out[3].trace_id, 16);
	assert_memory_not_equal(out[4].trace_id, out[3].trace_id, 16);
	assert_int_equal(out[0].depth, 2);
	assert_int_equal(out[3].start_ns, 10);
	assert_int_equal(out[3].end_ns, 18);
	assert_int_equal(out[3].probe.ret.u, 1);
	assert_int_equal(out[2].probe.ret.u, 33);
	for (int i = 0; i < 5; i++)
		assert_int_equal(out[i].status, AGT_STATUS_OK);
	assert_int_equal(agt_nest_open_threads(n), 0);
	assert_int_equal(agt_nest_stats(n)->spans, 5);
	agt_nest_free(n);
}

static void missing_returns_close_as_unfinished(void **state)
{
	(void)state;
	struct agt_nest *n = agt_nest_new(64, 16, emitter());

	/* a -> b -> c; c and b never return (longjmp back into a). */
	enter(n, &pa, 1, 10);
	enter(n, &pb, 1, 11);
	enter(n, &pc, 1, 12);
	leave(n, &pa, 1, 20, 7);
	assert_int_equal(nout, 3);
	assert_string_equal(out[0].name, "c");
	assert_int_equal(out[0].status, AGT_STATUS_UNFINISHED);
	assert_string_equal(out[1].name, "b");
	assert_int_equal(out[1].status, AGT_STATUS_UNFINISHED);
	assert_string_equal(out[2].name, "a");
	assert_int_equal(out[2].status, AGT_STATUS_OK);
	assert_int_equal(out[2].probe.ret.u, 7);
	/* A return nobody entered (call started before attach) is counted, not guessed. */
	leave(n, &pb, 1, 21, 0);
	assert_int_equal(agt_nest_stats(n)->return_without_entry, 1);
	assert_int_equal(agt_nest_stats(n)->unfinished, 2);
	assert_int_equal(agt_nest_open_threads(n), 0);
	agt_nest_free(n);
}

static void deep_recursion_is_bounded(void **state)
{
	(void)state;
	struct agt_nest *n = agt_nest_new(8, 16, emitter());

	for (int i = 0; i < 1000; i++)
		enter(n, &pa, 1, 10 + i);
	for (int i = 0; i < 1000; i++)
		leave(n, &pa, 1, 2000 + i, 1000 - i);
	/* Only the outermost 8 calls are spans; the 992 deeper ones are counted. */
	assert_int_equal(nout, 8);
	assert_int_equal(agt_nest_stats(n)->depth_exceeded, 992);
	assert_int_equal(out[0].depth, 7);
	assert_int_equal(out[7].depth, 0);
	assert_int_equal(out[7].start_ns, 10);
	assert_int_equal(out[7].end_ns, 2999);
	assert_int_equal(out[0].parent_id, out[1].span_id);
	assert_int_equal(agt_nest_open_threads(n), 0);
	agt_nest_free(n);
}

static void enter_sp(struct agt_nest *n, uint64_t sp, uint64_t ts)
{
	struct agt_span s;

	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_FUNC;
	s.probe.id = pa.id;
	s.pid = 100;
	s.tid = 1;
	s.start_ns = ts;
	s.frame_sp = sp;
	agt_nest_enter(n, &s, 0);
}

static void returns_match_frames_by_stack_pointer(void **state)
{
	(void)state;
	struct agt_nest *n = agt_nest_new(3, 16, emitter());
	struct agt_value v = {.kind = AGT_VAL_INT, .u = 1};

	/* Recursion 6 deep with room for 3; the kernel dropped the 3 innermost returns (its
	 * uretprobe nesting limit), so only the outer three return, each with its own sp. */
	for (int i = 0; i < 6; i++)
		enter_sp(n, 1000 - 16 * i, 10 + i);
	agt_nest_leave(n, 100, 1, pa.id, 1000 - 32, 50, &v);
	agt_nest_leave(n, 100, 1, pa.id, 1000 - 16, 51, &v);
	agt_nest_leave(n, 100, 1, pa.id, 1000, 52, &v);
	assert_int_equal(nout, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(out[i].status, AGT_STATUS_OK);
		assert_int_equal(out[i].frame_sp, 1000 - 32 + 16 * i);
		assert_int_equal(out[i].end_ns, 50 + i);
	}
	assert_int_equal(agt_nest_stats(n)->depth_exceeded, 3);
	assert_int_equal(agt_nest_stats(n)->return_without_entry, 0);
	assert_int_equal(agt_nest_open_threads(n), 0);

	/* Room for all: a missing inner return leaves that call unfinished, not its caller. */
	nout = 0;
	enter_sp(n, 1000, 60);
	enter_sp(n, 984, 61);
	enter_sp(n, 968, 62);
	agt_nest_leave(n, 100, 1, pa.id, 984, 70, &v);
	agt_nest_leave(n, 100, 1, pa.id, 1000, 71, &v);
	assert_int_equal(nout, 3);
	assert_int_equal(out[0].frame_sp, 968);
	assert_int_equal(out[0].status, AGT_STATUS_UNFINISHED);
	assert_int_equal(out[1].status, AGT_STATUS_OK);
	assert_int_equal(out[2].status, AGT_STATUS_OK);
	assert_int_equal(out[1].parent_id, out[2].span_id);
	agt_nest_free(n);
}

static void thread_and_process_exit(void **state)
{
	(void)state;
	struct agt_nest *n = agt_nest_new(64, 2, emitter());

	enter(n, &pa, 1, 10);
	enter(n, &pb, 1, 11);
	enter(n, &pa, 2, 12);
	enter(n, &pa, 3, 13); /* third thread: over max_threads */
	assert_int_equal(agt_nest_stats(n)->thread_table_full, 1);
	agt_nest_thread_exit(n, 100, 2, 50);
	assert_int_equal(nout, 1);
	assert_int_equal(out[0].tid, 2);
	assert_int_equal(out[0].status, AGT_STATUS_UNFINISHED);
	assert_int_equal(out[0].end_ns, 50);
	agt_nest_process_exit(n, 100, 60);
	assert_int_equal(nout, 3);
	assert_string_equal(out[1].name, "b");
	assert_string_equal(out[2].name, "a");
	assert_int_equal(out[2].status, AGT_STATUS_UNFINISHED);
	assert_int_equal(agt_nest_open_threads(n), 0);
	agt_nest_free(n);
}

static void instant_events_nest_without_opening(void **state)
{
	(void)state;
	struct agt_nest *n = agt_nest_new(64, 16, emitter());
	struct agt_span s;

	enter(n, &pa, 1, 10);
	memset(&s, 0, sizeof(s));
	s.kind = AGT_SPAN_FUNC;
	s.probe.id = pb.id;
	s.pid = 100;
	s.tid = 1;
	s.start_ns = 15;
	agt_nest_enter(n, &s, 1);
	leave(n, &pa, 1, 20, 0);
	assert_int_equal(nout, 2);
	assert_int_equal(out[0].start_ns, 15);
	assert_int_equal(out[0].end_ns, 15);
	assert_int_equal(out[0].parent_id, out[1].span_id);
	agt_nest_free(n);
}

static void flush_closes_everything(void **state)
{
	(void)state;
	struct agt_nest *n = agt_nest_new(64, 16, emitter());

	for (uint32_t t = 1; t <= 10; t++) {
		enter(n, &pa, t, 10);
		enter(n, &pb, t, 11);
	}
	agt_nest_flush(n, 99);
	assert_int_equal(nout, 20);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(out[i].status, AGT_STATUS_UNFINISHED);
		assert_int_equal(out[i].end_ns, 99);
	}
	assert_int_equal(agt_nest_open_threads(n), 0);
	agt_nest_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(nests_by_thread, setup),
	    cmocka_unit_test_setup(missing_returns_close_as_unfinished, setup),
	    cmocka_unit_test_setup(deep_recursion_is_bounded, setup),
	    cmocka_unit_test_setup(returns_match_frames_by_stack_pointer, setup),
	    cmocka_unit_test_setup(thread_and_process_exit, setup),
	    cmocka_unit_test_setup(instant_events_nest_without_opening, setup),
	    cmocka_unit_test_setup(flush_closes_everything, setup),
	};
	return cmocka_run_group_tests_name("nest", tests, NULL, NULL);
}
