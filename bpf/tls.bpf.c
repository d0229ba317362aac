// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* TLS plaintext at the library boundary: SSL_write/SSL_read and their _ex forms (OpenSSL 1.1
 * and 3, shared or linked into a binary such as node), gnutls_record_send/recv (GnuTLS). The entry
 * saves the buffer per thread; the return copies what was really moved, in chunks, up to a per-call
 * cap. Uprobes are attached per target PID, so only target processes pay for a copy. */
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

struct tls_call {
	__u64 conn, buf, len_ptr, start_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

/* The last write copied at its entry, per thread (AGT_TLS_COOKIE_WHOLE): a write that failed
 * with WANT_WRITE is called again with the same connection, length and bytes before anything is
 * read on that thread, and must not be copied twice. A read entry on the thread forgets it. */
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

/* Copy a whole write at its entry; no return probe follows. */
static __always_inline void tls_write_at_entry(__u64 cookie, __u64 id, __u64 ssl, __u64 buf,
					       __u64 num)
{
	struct tls_whole *w, *last;
	struct agt_data *e;
	__u32 zero = 0;
	__u64 n = num;
	__u32 head;

	if ((__s64)num <= 0 || !(w = bpf_map_lookup_elem(&tls_whole_scratch, &zero)))
		return;
	w->conn = ssl;
	w->num = num;
	head = num < sizeof(w->head) ? (__u32)num : sizeof(w->head);
	__builtin_memset(w->head, 0, sizeof(w->head));
	if (head > sizeof(w->head) || bpf_probe_read_user(w->head, head, (const void *)buf))
		__builtin_memset(w->head, 0, sizeof(w->head));
	last = bpf_map_lookup_elem(&tls_last_write, &id);
	if (last && last->conn == ssl && last->num == num && last->head[0] == w->head[0] &&
	    last->head[1] == w->head[1] && last->head[2] == w->head[2] &&
	    last->head[3] == w->head[3])
		return; /* the same write again after WANT_WRITE: copied already */
	bpf_map_update_elem(&tls_last_write, &id, w, BPF_ANY);
	e = agt_data_init(cookie & 0xffff, id, bpf_ktime_get_ns(), ssl, n, AGT_DIR_EGRESS,
			  AGT_SRC_TLS);
	if (!e)
		return;
	if (!agt_sample(AGT_SS_TLS, id >> 32))
		return;
	if (n > agt_byte_cap(AGT_SS_TLS, tls_call_cap)) {
		agt_count_drop(AGT_KDROP_TLS_TRUNCATED);
		n = agt_byte_cap(AGT_SS_TLS, tls_call_cap);
	}
	e->captured = n;
	agt_emit_bytes(e, buf, n, 0, AGT_KDROP_TLS_READ);
}

SEC("uprobe")
int BPF_KPROBE(tls_entry, void *ssl, void *buf, __u64 num, void *len_ptr)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 id = bpf_get_current_pid_tgid();

	if (cookie & AGT_TLS_COOKIE_WHOLE) {
		/* SSL_write takes an int length: only its low half is defined */
		tls_write_at_entry(cookie, id, (__u64)ssl, (__u64)buf,
				   (cookie & AGT_TLS_COOKIE_EX) ? num : (__u64)(__s64)(int)num);
		return 0;
	}
	if (cookie & AGT_TLS_COOKIE_READ)
		bpf_map_delete_elem(&tls_last_write, &id); /* a write after this is a new one */
	{
		struct tls_call c = {
		    .conn = (__u64)ssl,
		    .buf = (__u64)buf,
		    .len_ptr = !(cookie & AGT_TLS_COOKIE_EX)	? 0
			       : (cookie & AGT_TLS_COOKIE_OUTLEN_R8) ? (__u64)PT_REGS_PARM5(ctx)
								: (__u64)len_ptr,
		    .start_ns = bpf_ktime_get_ns(),
		};

		bpf_map_update_elem(&tls_calls, &id, &c, BPF_ANY);
	}
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_return)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call *c = bpf_map_lookup_elem(&tls_calls, &id);
	/* SSL_read/SSL_write return int: only eax is defined, the upper half of rax is not.
	 * gnutls_record_send/recv return ssize_t. */
	long ret = (cookie & AGT_TLS_COOKIE_SSIZE) ? (long)PT_REGS_RC_CORE(ctx)
						   : (long)(int)PT_REGS_RC_CORE(ctx);
	struct agt_data *e;
	__u64 n, buf;

	if (!c) {
		agt_count_drop(AGT_KDROP_TLS_NO_ENTRY);
		return 0;
	}
	if (c->len_ptr) {
		/* SSL_write_ex/SSL_read_ex (and OpenSSL's internal functions): 1 on success, the
		 * length through the 4th (or with AGT_TLS_COOKIE_OUTLEN_R8 the 5th) argument. */
		n = 0;
		if (ret == 1 && bpf_probe_read_user(&n, sizeof(n), (const void *)c->len_ptr))
			n = 0;
	} else {
		n = ret > 0 ? ret : 0;
	}
	if (!n) {
		bpf_map_delete_elem(&tls_calls, &id);
		return 0;
	}
	e = agt_data_init(cookie & 0xffff, id, c->start_ns, c->conn, n,
			  (cookie & AGT_TLS_COOKIE_READ) ? AGT_DIR_INGRESS : AGT_DIR_EGRESS,
			  AGT_SRC_TLS);
	buf = c->buf;
	bpf_map_delete_elem(&tls_calls, &id);
	if (!e)
		return 0;
	if (!agt_sample(AGT_SS_TLS, id >> 32)) {
		agt_error_metadata(e, buf, n);
		return 0;
	}
	if (n > agt_byte_cap(AGT_SS_TLS, tls_call_cap)) {
		agt_count_drop(AGT_KDROP_TLS_TRUNCATED);
		n = agt_byte_cap(AGT_SS_TLS, tls_call_cap);
	}
	e->captured = n;
	agt_emit_bytes(e, buf, n, 0, AGT_KDROP_TLS_READ);
	return 0;
}
