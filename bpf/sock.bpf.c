// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Plaintext at the socket: HTTP over TCP, for agents that talk to local model servers (Ollama,
 * vLLM, llama.cpp), and newline-delimited JSON over UNIX stream sockets and pipes, for MCP
 * servers over stdio (libuv, so Node, gives a child's stdio as UNIX socket pairs; Python's
 * subprocess gives pipes).
 *
 * Sockets are seen at the sock:sock_send_length and sock:sock_recv_length tracepoints, which
 * the kernel passes once per socket send or receive (at the end of sock_sendmsg/sock_recvmsg):
 * no system call tracepoint is attached for them, so the system calls of the node do not take
 * the kernel's traced slow path. The bytes are read from the user buffer the system call named
 * (its registers, bpf_task_pt_regs), which holds them at that point in both directions. The
 * first test is whether the process is traced; then only those kinds of socket pass, and a
 * connection's first bytes decide whether it carries HTTP/1.x (TCP) or JSON (UNIX) at all:
 * nothing else is ever copied. A TCP connection the process closes ends at
 * sock:inet_sock_set_state, and so does the TLS connection whose records it carried (tied at
 * the send of its first application data record after a TLS write: tls_tie).
 *
 * Pipes have no such tracepoint: they are read at the read/write/readv/writev system call
 * tracepoints, which the loader attaches only when pipe capture is asked for (they put every
 * system call of the node on the traced slow path). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "agtrace.h"
#include "common.bpf.h"
#include "data.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define MSG_PEEK 2
#define S_IFMT 00170000
#define S_IFIFO 0010000
#define MAX_IOV 8

const volatile __u64 sock_call_cap = 1 << 20;

enum { SOCK_UNKNOWN = 0, SOCK_HTTP = 1, SOCK_SKIP = 2 };

/* What a connection carries, decided on its first bytes, and whose it is (a closed TCP
 * connection's end is reported to that process), and the TLS connection it carries, if a TLS
 * write of that process was seen going out on it (its end is reported too). */
struct sock_state {
	__u32 tgid;
	__u8 kind; /* SOCK_HTTP (or JSON for IPC) / SOCK_SKIP */
	__u8 pad[3];
	__u64 tls_conn;
};

/* connection (struct sock * or a pipe's struct file *) -> what it carries. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct sock_state);
} sock_kind SEC(".maps");

/* HTTP/1.x starts with a method or a status line: decide once per socket. */
static __always_inline int looks_like_http(__u64 buf)
{
	char b[5] = {};

	if (bpf_probe_read_user(b, 4, (const void *)buf))
		return 0;
	if (b[0] == 'H' && b[1] == 'T' && b[2] == 'T' && b[3] == 'P')
		return 1;
	/* GET PUT POST HEAD DELETE PATCH OPTIONS CONNECT TRACE: upper-case letters, then more
	 * of them or a space. */
	return b[0] >= 'A' && b[0] <= 'Z' && b[1] >= 'A' && b[1] <= 'Z' && b[2] >= 'A' &&
	       b[2] <= 'Z' && (b[3] == ' ' || (b[3] >= 'A' && b[3] <= 'Z'));
}

/* Newline-delimited JSON-RPC (MCP over stdio) starts with an object. */
static __always_inline int looks_like_json(__u64 buf)
{
	char b = 0;

	return bpf_probe_read_user(&b, 1, (const void *)buf) == 0 && b == '{';
}

static __always_inline void fill_peer(struct agt_data *e, struct sock *sk)
{
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->peer_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	/* BPF_CORE_READ_INTO copies sizeof(*dst): read into typed locals, not the byte array. */
	if (e->family == AF_INET) {
		__u32 a = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(e->peer_addr, &a, sizeof(a));
	} else {
		struct in6_addr a6 = BPF_CORE_READ(sk, __sk_common.skc_v6_daddr);

		__builtin_memcpy(e->peer_addr, &a6, sizeof(a6));
	}
}

/* One call's bytes: a plain buffer, or iovcnt iovecs at buf. */
struct io_call {
	__u64 conn, buf, start_ns;
	__u32 iovcnt; /* 0: plain buffer */
	__u8 dir, source;
};

/* Whether the connection carries what this capture wants, deciding it on its first bytes. */
static __always_inline int wanted(struct io_call *c, __u32 tgid)
{
	struct sock_state *st = bpf_map_lookup_elem(&sock_kind, &c->conn), ns = {.tgid = tgid};
	__u64 first = c->buf;

	if (st)
		return st->kind == SOCK_HTTP;
	if (c->iovcnt) {
		struct iovec iov;

		if (bpf_probe_read_user(&iov, sizeof(iov), (const void *)c->buf))
			return 0;
		first = (__u64)iov.iov_base;
	}
	ns.kind = (c->source == AGT_SRC_IPC ? looks_like_json(first) : looks_like_http(first))
		      ? SOCK_HTTP
		      : SOCK_SKIP;
	bpf_map_update_elem(&sock_kind, &c->conn, &ns, BPF_ANY);
	return ns.kind == SOCK_HTTP;
}

/* Bytes a TLS record adds to its plaintext at most: an explicit IV, a MAC (SHA-384) and
 * CBC padding, or an AEAD tag and TLS 1.3's inner content type. */
#define TLS_RECORD_OVERHEAD (16 + 48 + 256)
#define TLS_MAX_PLAINTEXT 16384

/* A TCP send of the current thread that is a TLS application data record (content type 23,
 * version 3.x) right after a TLS write's entry on that thread, and no longer than a record of
 * that write can be: the write's connection rides on this socket. Handshake records (22), and
 * records too long for the write tie nothing. A record with no library write before it ties
 * the socket to itself, as a TLS stack captured at the record layer (rustls: aead.bpf.c) keys
 * its connection, until a library write ties it to its connection. */
static __always_inline void tls_tie(struct io_call *c, __u64 pid_tgid, struct pt_regs *regs)
{
	struct agt_tls_writer who = {pid_tgid, 0};
	struct agt_tls_writing *tls;
	__u64 first = c->buf, most;
	struct sock_state *st;
	__u8 b[5] = {};

	if (c->iovcnt) {
		struct iovec iov;

		if (bpf_probe_read_user(&iov, sizeof(iov), (const void *)c->buf))
			return;
		first = (__u64)iov.iov_base;
	}
	if (bpf_probe_read_user(b, sizeof(b), (const void *)first) || b[0] != 23 || b[1] != 3 ||
	    !(st = bpf_map_lookup_elem(&sock_kind, &c->conn)))
		return;
	if (!(tls = bpf_map_lookup_elem(&tls_writing, &who))) {
		/* a goroutine's, by its g (r14 in Go's register ABI, at the system call) */
		who = (struct agt_tls_writer){pid_tgid >> 32, BPF_CORE_READ(regs, r14)};
		if (!(tls = bpf_map_lookup_elem(&tls_writing, &who))) {
			if (!st->tls_conn)
				st->tls_conn = c->conn;
			return;
		}
	}
	most = (tls->len < TLS_MAX_PLAINTEXT ? tls->len : TLS_MAX_PLAINTEXT) + TLS_RECORD_OVERHEAD;
	if (((__u64)b[3] << 8 | b[4]) > most)
		return;
	st->tls_conn = tls->conn;
	bpf_map_delete_elem(&tls_writing, &who);
}

/* n bytes moved by call c of the current thread: sampled, capped and copied. */
static __always_inline void emit_call(struct io_call *c, __u64 n, struct sock *sk)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct agt_data *e;
	__u64 done = 0;

	e = agt_data_init(0, pid_tgid, c->start_ns, c->conn, n, c->dir, c->source);
	if (!e)
		return;
	if (sk && c->source == AGT_SRC_TCP)
		fill_peer(e, sk);
	if (!agt_sample(AGT_SS_SOCK, pid_tgid >> 32)) {
		if (!c->iovcnt)
			agt_error_metadata(e, c->buf, n);
		return;
	}
	if (n > agt_byte_cap(AGT_SS_SOCK, sock_call_cap)) {
		agt_count_drop(AGT_KDROP_TCP_TRUNCATED);
		n = agt_byte_cap(AGT_SS_SOCK, sock_call_cap);
	}
	e->captured = n;
	if (!c->iovcnt) {
		agt_emit_bytes(e, c->buf, n, 0, AGT_KDROP_TLS_READ);
		return;
	}
	/* readv/writev/sendmsg/recvmsg: the iovecs in order, as far as the call moved bytes. */
	for (int i = 0; i < MAX_IOV; i++) {
		struct iovec iov;
		__u64 len;

		if (i >= c->iovcnt || done >= n)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov), (const void *)(c->buf + i * sizeof(iov))))
			break;
		len = iov.iov_len < n - done ? iov.iov_len : n - done;
		agt_emit_bytes(e, (__u64)iov.iov_base, len, done, AGT_KDROP_TLS_READ);
		done += len;
	}
	if (done < n)
		agt_count_drop(AGT_KDROP_TCP_TRUNCATED);
}

/* ---- sockets: sock_send_length / sock_recv_length ---- */

/* The socket the current thread just sent or received ret bytes on (in direction dir). */
static __always_inline int sock_io(struct sock *sk, int ret, int flags, __u8 dir)
{
	struct io_call c = {.dir = dir};
	struct pt_regs *regs;
	__u16 family;
	long nr;

	if (ret <= 0 || !agt_traced(bpf_get_current_pid_tgid() >> 32))
		return 0;
	if (dir == AGT_DIR_INGRESS && (flags & MSG_PEEK))
		return 0; /* the bytes are read again later */
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_UNIX && BPF_CORE_READ(sk, sk_type) == SOCK_STREAM)
		c.source = AGT_SRC_IPC;
	else if ((family == AF_INET || family == AF_INET6) &&
		 BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP)
		c.source = AGT_SRC_TCP;
	else
		return 0;
	/* The system call that moved the bytes names the user buffer (io_uring, sendfile and the
	 * kernel's own sockets pass here too, under other numbers: not captured). */
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	nr = BPF_CORE_READ(regs, orig_ax);
	c.buf = AGT_SYSCALL_ARG2(regs);
	switch (nr) {
	case AGT_NR_WRITE:
	case AGT_NR_SENDTO:
		if (dir != AGT_DIR_EGRESS)
			return 0;
		break;
	case AGT_NR_READ:
	case AGT_NR_RECVFROM:
		if (dir != AGT_DIR_INGRESS)
			return 0;
		break;
	case AGT_NR_WRITEV:
	case AGT_NR_READV:
		if (dir != (nr == AGT_NR_WRITEV ? AGT_DIR_EGRESS : AGT_DIR_INGRESS))
			return 0;
		c.iovcnt = AGT_SYSCALL_ARG3(regs);
		break;
	case AGT_NR_SENDMSG:
	case AGT_NR_RECVMSG: {
		struct user_msghdr m;

		if (dir != (nr == AGT_NR_SENDMSG ? AGT_DIR_EGRESS : AGT_DIR_INGRESS) ||
		    bpf_probe_read_user(&m, sizeof(m), (const void *)c.buf))
			return 0;
		c.buf = (__u64)m.msg_iov;
		c.iovcnt = m.msg_iovlen;
		break;
	}
	default: return 0;
	}
	if (c.iovcnt > 1024)
		return 0;
	c.conn = (__u64)sk;
	c.start_ns = bpf_ktime_get_ns();
	if (!wanted(&c, bpf_get_current_pid_tgid() >> 32)) {
		if (c.source == AGT_SRC_TCP && dir == AGT_DIR_EGRESS)
			tls_tie(&c, bpf_get_current_pid_tgid(), regs);
		return 0;
	}
	emit_call(&c, ret, sk);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send, struct sock *sk, int ret, int flags)
{
	return sock_io(sk, ret, flags, AGT_DIR_EGRESS);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv, struct sock *sk, int ret, int flags)
{
	return sock_io(sk, ret, flags, AGT_DIR_INGRESS);
}

/* A connection's end: an AGT_DATA_CLOSE record for tgid's conn. */
static __always_inline void emit_close(__u32 tgid, __u64 conn, __u8 source)
{
	struct agt_data *e;

	e = agt_data_init(0, (__u64)tgid << 32, bpf_ktime_get_ns(), conn, 0, AGT_DIR_EGRESS,
			  source);
	if (!e)
		return;
	e->h.tid = 0;
	agt_send_close(e);
}

/* A TCP connection whose bytes were captured, or that carried a TLS connection, is closed (by
 * its process: FIN_WAIT1 or LAST_ACK; or reset: CLOSE): its end goes to the process that used
 * it, so a new connection that gets the same struct sock (or the same SSL *: a library object
 * reused or freed without its close function, close(2) on the descriptor alone) is not taken
 * for the old one. The peer's FIN alone (CLOSE_WAIT) ends nothing: the process may still read.
 * Runs in softirq context too; the connection's owner is remembered with its kind. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sock_state_change, const struct sock *sk, const int oldstate, const int newstate)
{
	__u64 conn = (__u64)sk;
	struct sock_state *st;
	__u32 tgid;

	if (newstate != TCP_FIN_WAIT1 && newstate != TCP_LAST_ACK && newstate != TCP_CLOSE)
		return 0;
	st = bpf_map_lookup_elem(&sock_kind, &conn);
	if (!st)
		return 0;
	tgid = st->tgid;
	if (st->kind == SOCK_HTTP)
		emit_close(tgid, conn, AGT_SRC_TCP);
	if (st->tls_conn)
		emit_close(tgid, st->tls_conn, AGT_SRC_TLS);
	bpf_map_delete_elem(&sock_kind, &conn);
	return 0;
}

/* ---- pipes: read/write/readv/writev system call tracepoints (attached on demand) ---- */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct io_call);
} pipe_calls SEC(".maps");

/* The pipe behind fd (its struct file), or 0. */
static __always_inline __u64 pipe_of(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	struct file *f = 0;

	if (fd < 0 || (unsigned long)fd >= max)
		return 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	return (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) == S_IFIFO ? (__u64)f : 0;
}

static __always_inline int pipe_enter(struct trace_event_raw_sys_enter *ctx, __u8 dir, int vec)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct io_call c = {.dir = dir, .source = AGT_SRC_IPC};
	struct sock_state *st;

	if (!agt_traced(pid_tgid >> 32) || !(c.conn = pipe_of(ctx->args[0])))
		return 0;
	st = bpf_map_lookup_elem(&sock_kind, &c.conn);
	if (st && st->kind == SOCK_SKIP)
		return 0;
	c.buf = ctx->args[1];
	c.iovcnt = vec ? ctx->args[2] : 0;
	c.start_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&pipe_calls, &pid_tgid, &c, BPF_ANY);
	return 0;
}

static __always_inline int pipe_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct io_call *cp = bpf_map_lookup_elem(&pipe_calls, &pid_tgid), c;

	if (!cp)
		return 0;
	c = *cp;
	bpf_map_delete_elem(&pipe_calls, &pid_tgid);
	if (ctx->ret <= 0 || c.iovcnt > 1024 || !wanted(&c, pid_tgid >> 32))
		return 0;
	emit_call(&c, ctx->ret, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int pipe_enter_write(struct trace_event_raw_sys_enter *ctx)
{
	return pipe_enter(ctx, AGT_DIR_EGRESS, 0);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int pipe_enter_writev(struct trace_event_raw_sys_enter *ctx)
{
	return pipe_enter(ctx, AGT_DIR_EGRESS, 1);
}

SEC("tracepoint/syscalls/sys_enter_read")
int pipe_enter_read(struct trace_event_raw_sys_enter *ctx)
{
	return pipe_enter(ctx, AGT_DIR_INGRESS, 0);
}

SEC("tracepoint/syscalls/sys_enter_readv")
int pipe_enter_readv(struct trace_event_raw_sys_enter *ctx)
{
	return pipe_enter(ctx, AGT_DIR_INGRESS, 1);
}

SEC("tracepoint/syscalls/sys_exit_write")
int pipe_exit_write(struct trace_event_raw_sys_exit *ctx)
{
	return pipe_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_writev")
int pipe_exit_writev(struct trace_event_raw_sys_exit *ctx)
{
	return pipe_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_read")
int pipe_exit_read(struct trace_event_raw_sys_exit *ctx)
{
	return pipe_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_readv")
int pipe_exit_readv(struct trace_event_raw_sys_exit *ctx)
{
	return pipe_exit(ctx);
}
