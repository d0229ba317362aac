// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Plaintext at the syscall boundary: HTTP over TCP, for agents that talk to local model servers
 * (Ollama, vLLM, llama.cpp), and newline-delimited JSON over pipes and UNIX stream sockets, for
 * MCP servers over stdio. Raw syscall tracepoints see every process, so the first test is the
 * target table; then only those kinds of file pass, and a connection's first bytes decide
 * whether it carries HTTP/1.x (TCP) or JSON (IPC) at all: nothing else is ever copied. */
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
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFIFO 0010000
#define MAX_IOV 8

const volatile __u64 sock_call_cap = 1 << 20;

enum { SOCK_UNKNOWN = 0, SOCK_HTTP = 1, SOCK_SKIP = 2 };

struct sock_call {
	__u64 buf; /* buffer, or the iovec array */
	__u64 sk;
	__u64 start_ns;
	__u32 iovcnt; /* 0: plain buffer */
	__u8 dir;
	__u8 source; /* AGT_SRC_TCP or AGT_SRC_IPC */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct sock_call);
} sock_calls SEC(".maps");

/* connection -> SOCK_HTTP (or JSON for IPC) / SOCK_SKIP, decided on its first bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} sock_kind SEC(".maps");

/* The connection behind fd: a TCP socket (its struct sock), or a pipe or UNIX stream socket
 * (its struct file / struct sock); 0 for anything else. */
static __always_inline __u64 conn_of(int fd, __u8 *source)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	struct file *f = 0;
	struct socket *so;
	struct sock *sk;
	__u16 family, mode;

	if (fd < 0 || (unsigned int)fd >= max)
		return 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	mode = BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT;
	if (mode == S_IFIFO) {
		*source = AGT_SRC_IPC;
		return (__u64)f;
	}
	if (mode != S_IFSOCK)
		return 0;
	so = BPF_CORE_READ(f, private_data);
	sk = BPF_CORE_READ(so, sk);
	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_UNIX && BPF_CORE_READ(sk, sk_type) == SOCK_STREAM) {
		*source = AGT_SRC_IPC;
		return (__u64)sk;
	}
	if ((family != AF_INET && family != AF_INET6) ||
	    BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	*source = AGT_SRC_TCP;
	return (__u64)sk;
}

/* Both programs run for every system call on the node: the syscall number is checked first
 * (a register, or with tp_btf a direct load), the maps only for the few calls that matter. */
static __always_inline int sock_syscall(long id)
{
	return id == AGT_NR_READ || id == AGT_NR_WRITE || id == AGT_NR_READV || id == AGT_NR_WRITEV ||
	       id == AGT_NR_SENDTO || id == AGT_NR_RECVFROM;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sock_sys_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid;
	__u32 tgid;
	struct sock_call c = {};
	__u64 conn;
	__u8 *kind;

	if (!sock_syscall(id))
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	tgid = pid_tgid >> 32;
	if (!bpf_map_lookup_elem(&targets, &tgid))
		return 0;
	switch (id) {
	case AGT_NR_WRITE:
	case AGT_NR_SENDTO: c.dir = AGT_DIR_EGRESS; break;
	case AGT_NR_READ:
	case AGT_NR_RECVFROM: c.dir = AGT_DIR_INGRESS; break;
	case AGT_NR_WRITEV:
		c.dir = AGT_DIR_EGRESS;
		c.iovcnt = 1;
		break;
	case AGT_NR_READV:
		c.dir = AGT_DIR_INGRESS;
		c.iovcnt = 1;
		break;
	default: return 0;
	}
	conn = conn_of((int)AGT_SYSCALL_ARG1(regs), &c.source);
	if (!conn)
		return 0;
	c.sk = conn;
	kind = bpf_map_lookup_elem(&sock_kind, &c.sk);
	if (kind && *kind == SOCK_SKIP)
		return 0;
	c.buf = AGT_SYSCALL_ARG2(regs);
	if (c.iovcnt)
		c.iovcnt = AGT_SYSCALL_ARG3(regs);
	c.start_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&sock_calls, &pid_tgid, &c, BPF_ANY);
	return 0;
}

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

SEC("tp_btf/sys_exit")
int BPF_PROG(sock_sys_exit, struct pt_regs *regs, long ret)
{
	__u64 pid_tgid;
	struct sock_call *cp;
	struct sock_call c;
	struct agt_data *e;
	__u64 n, first;
	__u8 *kind, k;

	if (AGT_SYSCALL_NR(regs) == AGT_NR_MMAP) {
		agt_map_exec(regs, ret); /* the process program's job, done here to save a call */
		return 0;
	}
	if (!sock_syscall(AGT_SYSCALL_NR(regs)))
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	cp = bpf_map_lookup_elem(&sock_calls, &pid_tgid);
	if (!cp)
		return 0;
	c = *cp;
	bpf_map_delete_elem(&sock_calls, &pid_tgid);
	if (ret <= 0)
		return 0;
	first = c.buf;
	if (c.iovcnt) {
		struct iovec iov;

		if (bpf_probe_read_user(&iov, sizeof(iov), (const void *)c.buf))
			return 0;
		first = (__u64)iov.iov_base;
	}
	kind = bpf_map_lookup_elem(&sock_kind, &c.sk);
	if (!kind) {
		k = (c.source == AGT_SRC_IPC ? looks_like_json(first) : looks_like_http(first))
			? SOCK_HTTP
			: SOCK_SKIP;
		bpf_map_update_elem(&sock_kind, &c.sk, &k, BPF_ANY);
		if (k == SOCK_SKIP)
			return 0;
	} else if (*kind != SOCK_HTTP) {
		return 0;
	}
	n = ret;
	e = agt_data_init(0, pid_tgid, c.start_ns, c.sk, n, c.dir, c.source);
	if (!e)
		return 0;
	if (c.source == AGT_SRC_TCP)
		fill_peer(e, (struct sock *)c.sk);
	if (!agt_sample(AGT_SS_SOCK, pid_tgid >> 32)) {
		if (!c.iovcnt)
			agt_error_metadata(e, c.buf, n);
		return 0;
	}
	if (n > agt_byte_cap(AGT_SS_SOCK, sock_call_cap)) {
		agt_count_drop(AGT_KDROP_TCP_TRUNCATED);
		n = agt_byte_cap(AGT_SS_SOCK, sock_call_cap);
	}
	e->captured = n;
	if (!c.iovcnt) {
		agt_emit_bytes(e, c.buf, n, 0, AGT_KDROP_TLS_READ);
		return 0;
	}
	/* readv/writev: the iovecs in order, as far as the call moved bytes. */
	__u64 done = 0;

	for (int i = 0; i < MAX_IOV; i++) {
		struct iovec iov;
		__u64 len;

		if (i >= c.iovcnt || done >= n)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov), (const void *)(c.buf + i * sizeof(iov))))
			break;
		len = iov.iov_len < n - done ? iov.iov_len : n - done;
		agt_emit_bytes(e, (__u64)iov.iov_base, len, done, AGT_KDROP_TLS_READ);
		done += len;
	}
	if (done < n)
		agt_count_drop(AGT_KDROP_TCP_TRUNCATED);
	return 0;
}
