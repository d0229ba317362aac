#include "trace/nest.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 1024
/* Threads whose calls have all returned are kept for the next new thread, up to this many, with
 * their stacks when those are small: a thread that makes one call at a time would otherwise
 * allocate and free a stack of spans (12 KiB) for every top-level call. */
#define SPARE_THREADS 16
#define SPARE_STACK 8

struct thread {
	struct thread *next;
	uint32_t pid, tid;
	struct agt_span *stack; /* open calls, outermost first */
	unsigned depth, cap;
	uint64_t overflow; /* entries beyond max_depth still open */
};

struct agt_nest {
	unsigned max_depth, max_threads, nthreads;
	struct agt_emitter *em;
	struct agt_nest_stats st;
	struct thread *buckets[NBUCKETS];
	struct thread *spare; /* idle, linked by next */
	unsigned nspare;
};

struct agt_nest *agt_nest_new(unsigned max_depth, unsigned max_threads, struct agt_emitter *em)
{
	struct agt_nest *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->max_depth = max_depth ? max_depth : 1;
	n->max_threads = max_threads ? max_threads : 1;
	n->em = em;
	return n;
}

static unsigned bucket(uint32_t pid, uint32_t tid)
{
	return (unsigned)((pid * 2654435761u) ^ tid) % NBUCKETS;
}

static struct thread **find(struct agt_nest *n, uint32_t pid, uint32_t tid)
{
	struct thread **pp = &n->buckets[bucket(pid, tid)];

	while (*pp && ((*pp)->pid != pid || (*pp)->tid != tid))
		pp = &(*pp)->next;
	return pp;
}

static void drop_if_idle(struct agt_nest *n, struct thread **pp)
{
	struct thread *t = *pp;

	if (t->depth || t->overflow)
		return;
	*pp = t->next;
	n->nthreads--;
	if (n->nspare < SPARE_THREADS && t->cap <= SPARE_STACK) {
		t->next = n->spare;
		n->spare = t;
		n->nspare++;
		return;
	}
	free(t->stack);
	free(t);
}

/* A thread entry with no calls: a spare one, or a new one. */
static struct thread *new_thread(struct agt_nest *n)
{
	struct thread *t = n->spare;

	if (!t)
		return calloc(1, sizeof(*t));
	n->spare = t->next;
	n->nspare--;
	t->next = NULL;
	t->overflow = 0; /* depth is 0: it was idle */
	return t;
}

static void emit(struct agt_nest *n, struct agt_span *s)
{
	n->st.spans++;
	if (s->status == AGT_STATUS_UNFINISHED)
		n->st.unfinished++;
	agt_emit(n->em, s);
}

void agt_nest_enter(struct agt_nest *n, const struct agt_span *in, int instant)
{
	struct thread **pp = find(n, in->pid, in->tid), *t = *pp;
	struct agt_span local, *s;

	if (!t) {
		if (instant) {
			local = *in;
			agt_emit_root(n->em, &local);
			local.depth = 0;
			local.end_ns = local.start_ns;
			emit(n, &local);
			return;
		}
		if (n->nthreads >= n->max_threads) {
			n->st.thread_table_full++;
			return;
		}
		t = new_thread(n);
		if (!t) {
			n->st.thread_table_full++;
			return;
		}
		t->pid = in->pid;
		t->tid = in->tid;
		*pp = t;
		n->nthreads++;
	}
	if (t->overflow || (!instant && t->depth >= n->max_depth)) {
		if (!instant)
			t->overflow++;
		n->st.depth_exceeded++;
		return;
	}
	if (!instant && t->depth == t->cap) {
		unsigned cap = t->cap ? t->cap * 2 : 8;
		struct agt_span *ns;

		if (cap > n->max_depth)
			cap = n->max_depth;
		ns = realloc(t->stack, cap * sizeof(*ns));
		if (!ns) {
			t->overflow++;
			n->st.depth_exceeded++;
			return;
		}
		t->stack = ns;
		t->cap = cap;
	}
	/* An open call is built where it stays, on its thread's stack (a span is a large record:
	 * one copy, not two). */
	s = instant ? &local : &t->stack[t->depth];
	*s = *in;
	if (t->depth) {
		const struct agt_span *top = &t->stack[t->depth - 1];

		memcpy(s->trace_id, top->trace_id, sizeof(s->trace_id));
		s->parent_id = top->span_id;
		s->span_id = agt_emit_id(n->em);
	} else {
		agt_emit_root(n->em, s);
	}
	s->depth = t->depth;
	if (instant) {
		s->end_ns = s->start_ns;
		emit(n, s);
		drop_if_idle(n, pp);
		return;
	}
	t->depth++;
	n->st.open++;
}

/* Pop and emit the top call of a thread with the given status. */
static void pop(struct agt_nest *n, struct thread *t, uint64_t ts, enum agt_status st)
{
	struct agt_span *s = &t->stack[--t->depth];

	n->st.open--;
	s->end_ns = ts;
	s->status = st;
	emit(n, s);
}

void agt_nest_leave(struct agt_nest *n, uint32_t pid, uint32_t tid, uint32_t probe_id,
		    uint64_t frame_sp, uint64_t ts, const struct agt_value *ret)
{
	struct thread **pp = find(n, pid, tid), *t = *pp;
	int i;

	if (!t) {
		n->st.return_without_entry++;
		return;
	}
	if (!frame_sp && t->overflow) {
		/* No stack pointer (USDT): returns match calls in LIFO order, so this one
		 * belongs to the innermost skipped call. */
		t->overflow--;
		drop_if_idle(n, pp);
		return;
	}
	for (i = (int)t->depth - 1; i >= 0; i--)
		if (t->stack[i].probe.id == probe_id &&
		    (!frame_sp || t->stack[i].frame_sp == frame_sp))
			break;
	if (i < 0) {
		/* Not a kept frame: a call skipped for depth (counted at its entry) while any are
		 * open, else a call that started before attach. */
		if (t->overflow)
			t->overflow--;
		else
			n->st.return_without_entry++;
		drop_if_idle(n, pp);
		return;
	}
	/* Every call deeper than a kept frame that returns is over, skipped ones included. */
	t->overflow = 0;
	/* Calls above the matching one never returned (longjmp, exception, tail call). */
	while ((int)t->depth > i + 1)
		pop(n, t, ts, AGT_STATUS_UNFINISHED);
	if (ret)
		t->stack[i].probe.ret = *ret;
	pop(n, t, ts, AGT_STATUS_OK);
	drop_if_idle(n, pp);
}

static void close_thread(struct agt_nest *n, struct thread **pp, uint64_t ts)
{
	struct thread *t = *pp;

	while (t->depth)
		pop(n, t, ts, AGT_STATUS_UNFINISHED);
	t->overflow = 0;
	drop_if_idle(n, pp);
}

void agt_nest_thread_exit(struct agt_nest *n, uint32_t pid, uint32_t tid, uint64_t ts)
{
	struct thread **pp = find(n, pid, tid);

	if (*pp)
		close_thread(n, pp, ts);
}

static void close_matching(struct agt_nest *n, int all, uint32_t pid, uint64_t ts)
{
	for (unsigned b = 0; b < NBUCKETS; b++) {
		struct thread **pp = &n->buckets[b];

		while (*pp) {
			if (all || (*pp)->pid == pid)
				close_thread(n, pp, ts); /* unlinks *pp */
			else
				pp = &(*pp)->next;
		}
	}
}

void agt_nest_process_exit(struct agt_nest *n, uint32_t pid, uint64_t ts)
{
	close_matching(n, 0, pid, ts);
}
void agt_nest_flush(struct agt_nest *n, uint64_t ts)
{
	close_matching(n, 1, 0, ts);
}
unsigned agt_nest_open_threads(const struct agt_nest *n)
{
	return n->nthreads;
}
const struct agt_nest_stats *agt_nest_stats(const struct agt_nest *n)
{
	return &n->st;
}

void agt_nest_free(struct agt_nest *n)
{
	if (!n)
		return;
	for (unsigned b = 0; b < NBUCKETS; b++)
		for (struct thread *t = n->buckets[b], *nx; t; t = nx) {
			nx = t->next;
			free(t->stack);
			free(t);
		}
	for (struct thread *t = n->spare, *nx; t; t = nx) {
		nx = t->next;
		free(t->stack);
		free(t);
	}
	free(n);
}
