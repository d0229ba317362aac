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

SEC("uprobe")
int BPF_KPROBE(tls_entry, void *ssl, void *buf, __u64 num, void *len_ptr)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call c = {
	    .conn = (__u64)ssl,
	    .buf = (__u64)buf,
	    .len_ptr = !(cookie & AGT_TLS_COOKIE_EX)	     ? 0
		       : (cookie & AGT_TLS_COOKIE_OUTLEN_R8) ? (__u64)PT_REGS_PARM5(ctx)
							     : (__u64)len_ptr,
	    .start_ns = bpf_ktime_get_ns(),
	};

	bpf_map_update_elem(&tls_calls, &id, &c, BPF_ANY);
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
