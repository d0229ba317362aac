// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* TLS plaintext at the library boundary: SSL_write/SSL_read and their _ex forms (OpenSSL 1.1
 * and 3, shared or linked into a binary such as node, or located in a static one),
 * gnutls_record_send/recv (GnuTLS), and Go's crypto/tls.(*Conn).Write/Read. The entry saves the
 * buffer per call; the return copies what was really moved, in chunks, up to a per-call cap. A
 * write that moves all of its buffer or fails (OpenSSL's SSL_write without partial writes, Go's
 * Write) is copied at its entry instead, with no return probe. The library's close functions
 * (SSL_free, SSL_shutdown, gnutls_deinit, gnutls_bye, (*Conn).Close) end the connection; so does
 * the end of its TCP socket (sock.bpf.c), which a write tells: the record it encrypts goes out on
 * the socket from the same thread (map tls_writing).
 *
 * Uprobes are attached once per file, so every process mapping the file hits them: the first
 * test is whether the process is traced at all (agt_traced). A C library's call returns on the
 * thread it entered, so C calls are keyed by thread. A Go call can return on another thread than
 * it entered (the goroutine moved), so Go calls are keyed by goroutine: by the address of its
 * runtime.g, which Go's register ABI keeps in r14 for the whole call, and which stays put for the
 * goroutine's life (goroutine stacks move, their g does not: the garbage collector does not move
 * objects, and a g is only reused after its goroutine ended). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "agtrace.h"
#include "common.bpf.h"
#include "data.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Bytes copied per call at most (a whole HTTP message is usually one or a few calls). */
const volatile __u64 tls_call_cap = 1 << 20;

/* A call in flight: C calls by thread {pid_tgid, 0}, Go calls by goroutine {tgid, g}. */
struct tls_key {
	__u64 a, b;
};

struct tls_call {
	__u64 conn, buf, len_ptr, start_ns;
};

/* LRU: a call whose return never comes (its thread or goroutine died in it) is forgotten in time
 * instead of filling the table. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tls_key);
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

/* The last write copied at its entry by a C library, per thread: a write that failed with
 * WANT_WRITE is called again with the same connection, length and bytes before anything is read
 * on that thread, and must not be copied twice. A read entry on the thread forgets it. */
struct tls_whole {
	__u64 conn, num;
	__u64 head[4]; /* its first 32 bytes */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct tls_whole);
} tls_last_write SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tls_whole);
} tls_whole_scratch SEC(".maps");

/* Is this C write at its entry the one copied last on this thread (retried after WANT_WRITE)?
 * Remembers it otherwise. */
static __always_inline int same_write_again(__u64 id, __u64 conn, __u64 buf, __u64 num)
{
	struct tls_whole *w, *last;
	__u32 zero = 0, head;

	if (!(w = bpf_map_lookup_elem(&tls_whole_scratch, &zero)))
		return 0;
	w->conn = conn;
	w->num = num;
	head = num < sizeof(w->head) ? (__u32)num : sizeof(w->head);
	__builtin_memset(w->head, 0, sizeof(w->head));
	if (head > sizeof(w->head) || bpf_probe_read_user(w->head, head, (const void *)buf))
		__builtin_memset(w->head, 0, sizeof(w->head));
	last = bpf_map_lookup_elem(&tls_last_write, &id);
	if (last && last->conn == conn && last->num == num && last->head[0] == w->head[0] &&
	    last->head[1] == w->head[1] && last->head[2] == w->head[2] &&
	    last->head[3] == w->head[3])
		return 1;
	bpf_map_update_elem(&tls_last_write, &id, w, BPF_ANY);
	return 0;
}

static __always_inline void call_key(struct pt_regs *ctx, __u64 cookie, __u64 id,
				     struct tls_key *k)
{
	if (cookie & AGT_TLS_COOKIE_GO) {
		k->a = id >> 32;
		k->b = AGT_REG(ctx, r14); /* the goroutine's g (ABIInternal) */
	} else {
		k->a = id;
		k->b = 0;
	}
}

/* The byte count a call is given: Go's b's length in rcx; a size_t in rdx (the _ex functions,
 * GnuTLS); else an int in edx, its low half. */
static __always_inline __u64 call_len(struct pt_regs *ctx, __u64 cookie)
{
	if (cookie & AGT_TLS_COOKIE_GO)
		return AGT_REG(ctx, cx);
	if (cookie & (AGT_TLS_COOKIE_EX | AGT_TLS_COOKIE_SSIZE))
		return AGT_REG(ctx, dx);
	return (__u64)(__s64)(int)AGT_REG(ctx, dx);
}

/* A call that moved n bytes of buf on conn: sampled, capped and copied in chunks. */
static __always_inline void emit_call(__u64 cookie, __u64 id, __u64 start_ns, __u64 conn,
				      __u64 buf, __u64 n)
{
	struct agt_data *e;

	e = agt_data_init(cookie & 0xffff, id, start_ns, conn, n,
			  (cookie & AGT_TLS_COOKIE_READ) ? AGT_DIR_INGRESS : AGT_DIR_EGRESS,
			  AGT_SRC_TLS);
	if (!e)
		return;
	if (!agt_sample(AGT_SS_TLS, id >> 32)) {
		agt_error_metadata(e, buf, n);
		return;
	}
	if (n > agt_byte_cap(AGT_SS_TLS, tls_call_cap)) {
		agt_count_drop(AGT_KDROP_TLS_TRUNCATED);
		n = agt_byte_cap(AGT_SS_TLS, tls_call_cap);
	}
	e->captured = n;
	agt_emit_bytes(e, buf, n, 0, AGT_KDROP_TLS_READ);
}

SEC("uprobe")
int BPF_KPROBE(tls_entry)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_key k;
	struct tls_call c = {.start_ns = 0};

	if (!agt_traced(id >> 32))
		return 0;
	if (cookie & AGT_TLS_COOKIE_GO) {
		/* func (c *Conn) Write/Read(b []byte) (int, error): c in rax, b's data and length
		 * in rbx and rcx. */
		c.conn = AGT_REG(ctx, ax);
		c.buf = AGT_REG(ctx, bx);
	} else {
		c.conn = AGT_REG(ctx, di);
		c.buf = AGT_REG(ctx, si);
		c.len_ptr = !(cookie & AGT_TLS_COOKIE_EX)	      ? 0
			    : (cookie & AGT_TLS_COOKIE_OUTLEN_R8) ? AGT_REG(ctx, r8)
								  : AGT_REG(ctx, cx);
		if (cookie & AGT_TLS_COOKIE_READ) /* a write after this is a new one */
			bpf_map_delete_elem(&tls_last_write, &id);
	}
	if (!(cookie & AGT_TLS_COOKIE_READ)) { /* its records go out on the connection's socket */
		struct agt_tls_writer who = {id, 0};
		struct agt_tls_writing w = {.conn = c.conn, .len = call_len(ctx, cookie)};

		if (cookie & AGT_TLS_COOKIE_GO)
			who = (struct agt_tls_writer){id >> 32, AGT_REG(ctx, r14)};
		bpf_map_update_elem(&tls_writing, &who, &w, BPF_ANY);
	}
	c.start_ns = bpf_ktime_get_ns();
	if (cookie & AGT_TLS_COOKIE_AT_ENTRY) {
		/* All of the buffer goes, or the call fails: copied now, so the request is in the
		 * ring buffer before the response another thread may read meanwhile. */
		__u64 n = call_len(ctx, cookie);

		if (!n || n >= (1ull << 40))
			return 0;
		if (!(cookie & AGT_TLS_COOKIE_GO) && same_write_again(id, c.conn, c.buf, n))
			return 0; /* the same write again after WANT_WRITE: copied already */
		emit_call(cookie, id, c.start_ns, c.conn, c.buf, n);
		return 0;
	}
	call_key(ctx, cookie, id, &k);
	bpf_map_update_elem(&tls_calls, &k, &c, BPF_ANY);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_return)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_key k;
	struct tls_call *c;
	long ret;
	__u64 n, buf, conn, start_ns;

	if (!agt_traced(id >> 32))
		return 0;
	call_key(ctx, cookie, id, &k);
	c = bpf_map_lookup_elem(&tls_calls, &k);
	if (!c) {
		agt_count_drop(AGT_KDROP_TLS_NO_ENTRY);
		return 0;
	}
	/* SSL_read/SSL_write return int: only eax is defined, the upper half of rax is not.
	 * gnutls_record_send/recv return ssize_t; Go's Write/Read return the int n in rax. */
	if (cookie & (AGT_TLS_COOKIE_SSIZE | AGT_TLS_COOKIE_GO))
		ret = (long)AGT_REG(ctx, ax);
	else
		ret = (long)(int)AGT_REG(ctx, ax);
	if (c->len_ptr) {
		/* SSL_write_ex/SSL_read_ex (and OpenSSL's internal functions): 1 on success, the
		 * length through the 4th (or with AGT_TLS_COOKIE_OUTLEN_R8 the 5th) argument. */
		n = 0;
		if (ret == 1 && bpf_probe_read_user(&n, sizeof(n), (const void *)c->len_ptr))
			n = 0;
	} else {
		n = ret > 0 ? ret : 0;
	}
	buf = c->buf;
	conn = c->conn;
	start_ns = c->start_ns;
	bpf_map_delete_elem(&tls_calls, &k);
	if (n)
		emit_call(cookie, id, start_ns, conn, buf, n);
	return 0;
}

/* SSL_free/SSL_shutdown(ssl), gnutls_deinit(session)/gnutls_bye(session, how), Go's
 * (*Conn).Close(c): the connection the first argument names is over. Its pointer may name
 * another connection from now on, so the reader must not pair what comes next with what came
 * before. */
SEC("uprobe")
int BPF_KPROBE(tls_close)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	__u64 conn;
	struct agt_data *e;

	if (!agt_traced(id >> 32) || !agt_session_sampled(AGT_SS_TLS, id >> 32))
		return 0;
	conn = (cookie & AGT_TLS_COOKIE_GO) ? AGT_REG(ctx, ax) : AGT_REG(ctx, di);
	e = agt_data_init(cookie & 0xffff, id, bpf_ktime_get_ns(), conn, 0, AGT_DIR_EGRESS,
			  AGT_SRC_TLS);
	if (e)
		agt_send_close(e);
	return 0;
}
