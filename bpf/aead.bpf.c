// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* TLS plaintext at the AEAD layer, for TLS stacks that keep the record layer to themselves and
 * only call a crypto library to protect records: rustls over aws-lc-rs calls aws-lc's
 * EVP_AEAD_CTX_seal (one record out) and EVP_AEAD_CTX_open (one record in), found by the
 * locator in stripped binaries (capture/locate.c). Both take
 *   (ctx, out, size_t *out_len, max_out_len, nonce, nonce_len, in, in_len, ad, ad_len)
 * with the last four on the stack. The additional data is the record's header: 5 bytes
 * (23, 3, 3, length) in TLS 1.3, whose plaintext ends with the real content type and padding;
 * 13 bytes (sequence number, type, version, length) in TLS 1.2. Anything else (QUIC, an
 * application's own AEAD use) is not a TLS record and is left alone; so are handshake
 * records, alerts and everything but application data.
 *
 * The record carries no connection, so the thread's sockets tell it: an opened record belongs
 * to the TCP socket the thread read last (the TLS stack reads ciphertext, then opens what it
 * read), a sealed record to the socket the thread writes next (it seals, then writes the
 * ciphertext): sealed records go out marked AGT_DATA_UNJOINED and an AGT_EV_TLS_JOIN record
 * names the socket at that write; the decoder joins them. The system call programs attach only
 * once a process has AEAD probes, and only that process's calls (aead_procs) are looked at. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "agtrace.h"
#include "common.bpf.h"
#include "data.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define TLS_APPLICATION_DATA 23
#define TLS13_PAD_SEARCH 32 /* bytes searched for the inner content type from the end */

const volatile __u64 aead_call_cap = 1 << 20;

/* tgid -> 1: processes with AEAD probes; filled by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} aead_procs SEC(".maps");

/* thread -> the TCP socket (struct sock *) it last read bytes from */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} aead_last_read SEC(".maps");

/* thread -> records it sealed since its last socket write */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} aead_unjoined SEC(".maps");

struct aead_sys {
	__u64 sk;
	__u32 dir;
};

/* thread -> its read or write system call in flight on a TCP socket */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct aead_sys);
} aead_sys SEC(".maps");

struct aead_open {
	__u64 out, out_len_ptr, start_ns;
	__u32 tls13; /* 1: TLS 1.3 (inner type at the end); 0: TLS 1.2 application data */
};

/* thread -> its EVP_AEAD_CTX_open in flight */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct aead_open);
} aead_opens SEC(".maps");

/* The stack arguments 7..10 of both functions: in, in_len, ad, ad_len. */
struct aead_stack_args {
	__u64 in, in_len, ad, ad_len;
};

/* What record the additional data describes: 1 TLS 1.3, 0 TLS 1.2 application data,
 * -1 anything else (another record type in TLS 1.2, or not a TLS record). */
static __always_inline int record_kind(__u64 ad, __u64 ad_len)
{
	__u8 b[13] = {};

	if (ad_len == 5) {
		if (bpf_probe_read_user(b, 5, (const void *)ad))
			return -1;
		return b[0] == TLS_APPLICATION_DATA && b[1] == 3 && b[2] == 3 ? 1 : -1;
	}
	if (ad_len == 13) {
		if (bpf_probe_read_user(b, 13, (const void *)ad))
			return -1;
		return b[8] == TLS_APPLICATION_DATA && b[9] == 3 ? 0 : -1;
	}
	return -1;
}

/* A TLS 1.3 plaintext of n bytes at buf: the length of its content when the content type (the
 * last non-zero byte) is application data, else -1. */
static __always_inline __s64 tls13_content(__u64 buf, __u64 n)
{
	__u8 tail[TLS13_PAD_SEARCH] = {};
	__u64 k = n < TLS13_PAD_SEARCH ? n : TLS13_PAD_SEARCH;

	if (k == 0 || k > TLS13_PAD_SEARCH)
		return -1;
	if (bpf_probe_read_user(tail, k, (const void *)(buf + n - k)))
		return -1;
	for (int i = TLS13_PAD_SEARCH - 1; i >= 0; i--) {
		if ((__u64)i >= k || !tail[i])
			continue;
		if (tail[i] != TLS_APPLICATION_DATA)
			return -1;
		return n - k + i;
	}
	agt_count_drop(AGT_KDROP_TLS_PADDING);
	return -1;
}

static __always_inline void emit(__u32 probe_id, __u64 id, __u64 start_ns, __u64 conn, __u64 buf,
				 __u64 n, __u8 dir, __u16 flags)
{
	struct agt_data *e = agt_data_init(probe_id, id, start_ns, conn, n, dir, AGT_SRC_TLS);

	if (!e)
		return;
	e->flags = flags;
	if (!agt_sample(AGT_SS_TLS, id >> 32)) {
		if (dir == AGT_DIR_INGRESS)
			agt_error_metadata(e, buf, n);
		return;
	}
	if (n > agt_byte_cap(AGT_SS_TLS, aead_call_cap)) {
		agt_count_drop(AGT_KDROP_TLS_TRUNCATED);
		n = agt_byte_cap(AGT_SS_TLS, aead_call_cap);
	}
	e->captured = n;
	agt_emit_bytes(e, buf, n, 0, AGT_KDROP_TLS_READ);
}

SEC("uprobe")
int BPF_KPROBE(aead_seal)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), id = bpf_get_current_pid_tgid();
	struct aead_stack_args a;
	__u32 one = 1, *cnt;
	__s64 n;
	int kind;

	if (bpf_probe_read_user(&a, sizeof(a), (const void *)(PT_REGS_SP(ctx) + 8)))
		return 0;
	kind = record_kind(a.ad, a.ad_len);
	if (kind < 0)
		return 0;
	n = kind ? tls13_content(a.in, a.in_len) : (__s64)a.in_len;
	if (n <= 0)
		return 0;
	emit(cookie & 0xffff, id, bpf_ktime_get_ns(), 0, a.in, n, AGT_DIR_EGRESS,
	     AGT_DATA_UNJOINED);
	cnt = bpf_map_lookup_elem(&aead_unjoined, &id);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	else
		bpf_map_update_elem(&aead_unjoined, &id, &one, BPF_ANY);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(aead_open_entry, void *actx, void *out, void *out_len_ptr)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct aead_stack_args a;
	struct aead_open o = {};
	int kind;

	if (bpf_probe_read_user(&a, sizeof(a), (const void *)(PT_REGS_SP(ctx) + 8)))
		return 0;
	kind = record_kind(a.ad, a.ad_len);
	if (kind < 0)
		return 0;
	o.out = (__u64)out;
	o.out_len_ptr = (__u64)out_len_ptr;
	o.start_ns = bpf_ktime_get_ns();
	o.tls13 = kind;
	bpf_map_update_elem(&aead_opens, &id, &o, BPF_ANY);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(aead_open_return)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), id = bpf_get_current_pid_tgid();
	struct aead_open *op = bpf_map_lookup_elem(&aead_opens, &id), o;
	__u64 len = 0, *sk;
	__s64 n;

	if (!op)
		return 0;
	o = *op;
	bpf_map_delete_elem(&aead_opens, &id);
	if ((int)AGT_REG(ctx, ax) != 1 ||
	    bpf_probe_read_user(&len, sizeof(len), (const void *)o.out_len_ptr) || !len)
		return 0;
	n = o.tls13 ? tls13_content(o.out, len) : (__s64)len;
	if (n <= 0)
		return 0;
	sk = bpf_map_lookup_elem(&aead_last_read, &id);
	if (!sk) {
		agt_count_drop(AGT_KDROP_TLS_NO_SOCKET);
		return 0;
	}
	emit(cookie & 0xffff, id, o.start_ns, *sk, o.out, n, AGT_DIR_INGRESS, 0);
	return 0;
}

/* The TCP socket behind fd, or 0. */
static __always_inline __u64 tcp_sock_of(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	struct file *f = 0;
	struct socket *so;
	struct sock *sk;
	__u16 family;

	if (fd < 0 || (unsigned int)fd >= max)
		return 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	so = BPF_CORE_READ(f, private_data);
	sk = BPF_CORE_READ(so, sk);
	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if ((family != AF_INET && family != AF_INET6) ||
	    BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	return (__u64)sk;
}

static __always_inline int sys_dir(long id)
{
	switch (id) {
	case AGT_NR_READ:
	case AGT_NR_READV:
	case AGT_NR_RECVFROM:
	case AGT_NR_RECVMSG: return AGT_DIR_INGRESS;
	case AGT_NR_WRITE:
	case AGT_NR_WRITEV:
	case AGT_NR_SENDTO:
	case AGT_NR_SENDMSG: return AGT_DIR_EGRESS;
	default: return -1;
	}
}

SEC("tp_btf/sys_enter")
int BPF_PROG(aead_sys_enter, struct pt_regs *regs, long nr)
{
	int dir = sys_dir(nr);
	__u64 id;
	__u32 tgid;
	struct aead_sys c;

	if (dir < 0)
		return 0;
	id = bpf_get_current_pid_tgid();
	tgid = id >> 32;
	if (!bpf_map_lookup_elem(&aead_procs, &tgid))
		return 0;
	c.sk = tcp_sock_of((int)AGT_SYSCALL_ARG1(regs));
	if (!c.sk)
		return 0;
	c.dir = dir;
	bpf_map_update_elem(&aead_sys, &id, &c, BPF_ANY);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(aead_sys_exit, struct pt_regs *regs, long ret)
{
	__u64 id;
	struct aead_sys *cp, c;
	struct agt_tls_join *j;

	if (sys_dir(AGT_SYSCALL_NR(regs)) < 0)
		return 0;
	id = bpf_get_current_pid_tgid();
	cp = bpf_map_lookup_elem(&aead_sys, &id);
	if (!cp)
		return 0;
	c = *cp;
	bpf_map_delete_elem(&aead_sys, &id);
	if (ret <= 0)
		return 0;
	if (c.dir == AGT_DIR_INGRESS) {
		bpf_map_update_elem(&aead_last_read, &id, &c.sk, BPF_ANY);
		return 0;
	}
	if (!bpf_map_lookup_elem(&aead_unjoined, &id))
		return 0;
	bpf_map_delete_elem(&aead_unjoined, &id);
	j = bpf_ringbuf_reserve(&events, sizeof(*j), 0);
	if (!j) {
		agt_count_drop(AGT_KDROP_RINGBUF_FULL);
		return 0;
	}
	j->h.kind = AGT_EV_TLS_JOIN;
	j->h.probe_id = 0;
	j->h.pid = id >> 32;
	j->h.tid = (__u32)id;
	j->h.ts_ns = bpf_ktime_get_ns();
	j->conn = c.sk;
	agt_submit(j);
	return 0;
}
