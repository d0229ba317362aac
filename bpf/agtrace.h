/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The one contract between the BPF programs and the agtrace loader: fixed-size types only. */
#ifndef AGTRACE_H
#define AGTRACE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define AGT_MAX_ARGS 6
#define AGT_STR_LEN 64
#define AGT_MAX_PROBES 4096
#define AGT_POLL_MS 50 /* the reader polls the ring buffer at least this often */

/* Event kinds, first field of every ring buffer record. */
enum agt_event_kind {
	AGT_EV_FUNC_ENTRY = 1,
	AGT_EV_FUNC_RETURN = 2,
	AGT_EV_PROC_EXIT = 3,
	AGT_EV_DATA = 4,
	AGT_EV_PROC_FORK = 5,
	AGT_EV_PROC_EXEC = 6,
	AGT_EV_PROC_DISCOVER = 7, /* a process that is not a target ran execve (discovery on) */
	AGT_EV_MAP_EXEC = 8,	  /* a traced process loaded libraries (its dynamic loader said so) */
};

/* TLS plaintext: bytes an SSL_write handed to the library or an SSL_read got from it. */
#define AGT_DATA_CHUNK 16384 /* bytes per ring buffer record; a call is split into chunks */
enum agt_dir { AGT_DIR_EGRESS = 0, AGT_DIR_INGRESS = 1 };
/* TLS plaintext, TCP socket, or local IPC (pipes and UNIX stream sockets: MCP over stdio). */
enum agt_source { AGT_SRC_TLS = 0, AGT_SRC_TCP = 1, AGT_SRC_IPC = 2 };
/* An unsampled session's HTTP error response: only its status line, so errors are always seen. */
#define AGT_DATA_META_ONLY 1
/* Attach cookie of the TLS programs: probe id in the low 16 bits, then these flags. */
#define AGT_TLS_COOKIE_READ (1u << 16)	/* SSL_read*: ingress */
#define AGT_TLS_COOKIE_EX (1u << 17)	/* *_ex: length through the 4th argument */
#define AGT_TLS_COOKIE_SSIZE (1u << 18) /* returns ssize_t (GnuTLS), not int (OpenSSL) */
#define AGT_TLS_COOKIE_GO (1u << 19)	/* Go's register ABI; a call is matched to its return by \
					 * goroutine (the g in r14), not by thread */
#define AGT_TLS_COOKIE_AT_ENTRY (1u << 20) /* the call moves all of its buffer or fails (Go's \
					    * Write): copied at the entry, no return probe */
/* The connection is over (the library freed or shut it down, or the socket closed): a data
 * record with no bytes, in agt_data.flags. */
#define AGT_DATA_CLOSE 2

/* Values of the targets map (tgid -> kind), kept by the loader and the process programs. */
enum agt_target_kind {
	AGT_TK_TARGET = 1,   /* a process the loader traces (by PID, by selector, a relaunch) */
	AGT_TK_FOLLOWED = 2, /* a descendant of a target, followed since its fork */
	AGT_TK_PENDING = 3,  /* exec'd while selectors are given, not yet matched by the loader:
			      * captured from its first instruction; its events are dropped by the
			      * loader if no selector takes it */
};

/* How a value (argument or return value) is read and shown. */
enum agt_value_kind {
	AGT_VAL_NONE = 0,
	AGT_VAL_INT = 1,  /* signed 64-bit */
	AGT_VAL_UINT = 2, /* unsigned 64-bit */
	AGT_VAL_PTR = 3,  /* address, shown in hex */
	AGT_VAL_STR = 4,  /* NUL-terminated user string, up to AGT_STR_LEN-1 bytes */
};

/* Calling convention used to find arguments in registers. */
enum agt_abi {
	AGT_ABI_SYSV = 0, /* C: rdi, rsi, rdx, rcx, r8, r9 */
	AGT_ABI_GO = 1,	  /* Go ABIInternal: rax, rbx, rcx, rdi, rsi, r8 */
};

/* Reasons the kernel side drops or degrades an event; indexes of the drops map. */
enum agt_kdrop {
	AGT_KDROP_RINGBUF_FULL = 0,  /* ring buffer had no room: event lost */
	AGT_KDROP_NO_CONFIG = 1,     /* probe id without configuration: event lost */
	AGT_KDROP_ARG_READ = 2,	     /* an argument could not be read: event kept, value 0 */
	AGT_KDROP_TLS_TRUNCATED = 3, /* TLS call longer than the per-call cap: tail not copied */
	AGT_KDROP_TLS_READ = 4,	     /* TLS plaintext could not be read from user memory */
	AGT_KDROP_TLS_NO_ENTRY = 5,  /* TLS return without its entry (attached mid-call) */
	AGT_KDROP_TCP_TRUNCATED =
	    6, /* TCP call over the cap, or an iovec past the 8th: not copied */
	AGT_KDROP_MAX = 7,
};

/* Sampling, per event source: what the kernel keeps before anything is copied. The decision is
 * made once per session (process): every event of a sampled session is kept, so traces stay
 * whole. Changed at run time through the pinned map (agtrace sample set). */
enum agt_sample_source {
	AGT_SS_FUNC = 0,   /* function probes and USDT markers of probe specs */
	AGT_SS_TLS = 1,	   /* TLS payloads */
	AGT_SS_SOCK = 2,   /* TCP and IPC payloads */
	AGT_SS_PROC = 3,   /* fork/exec of followed processes (exits are always kept) */
	AGT_SS_PYTHON = 4, /* python:audit events */
	AGT_SS_MAX = 5,
};
#define AGT_SAMPLE_ONE 1000000 /* ratio_ppm of "keep everything" */

struct agt_sample_cfg {
	__u32 ratio_ppm;  /* sessions kept, per million */
	__u32 rate;	  /* events per second at most (token bucket); 0: no limit */
	__u32 burst;	  /* bucket size; 0: one second's worth */
	__u32 byte_cap;	  /* payload bytes copied per call at most; 0: the loader's default */
	__u64 generation; /* bumped on every change, so the tracer can report it */
};

/* Drops by source: index source * AGT_SDROP_REASONS + reason. */
enum agt_sample_drop {
	AGT_SAMPLE_UNSAMPLED = 0, /* session not sampled */
	AGT_SAMPLE_RATE = 1,	  /* over the token bucket */
	AGT_SAMPLE_REASONS = 2,
};

/* Per-probe configuration, value of the probe_cfg array map, indexed by the attach cookie. */
struct agt_probe_cfg {
	__u8 arg_kind[AGT_MAX_ARGS];
	__u8 nargs;
	__u8 ret_kind;
	__u8 abi;
	__u8 valid;
	__u8 source; /* enum agt_sample_source */
	__u8 pad[5];
};

struct agt_event_hdr {
	__u32 kind;
	__u32 probe_id;
	__u32 pid; /* tgid */
	__u32 tid;
	__u64 ts_ns; /* CLOCK_MONOTONIC */
};

/* Function (uprobe or USDT) entry: raw register/argument values and copied strings. */
struct agt_func_entry {
	struct agt_event_hdr h;
	__u64 sp; /* stack pointer at entry: the frame's identity (0 for USDT) */
	__u64 args[AGT_MAX_ARGS];
	char str[AGT_MAX_ARGS][AGT_STR_LEN];
};

/* Function return (uretprobe, return instruction, or return USDT marker). */
struct agt_func_return {
	struct agt_event_hdr h;
	__u64 sp; /* stack pointer at return: entry sp + 8 after a uretprobe, = entry sp at a ret
		   * instruction, 0 for USDT */
	__u64 ret;
	char str[AGT_STR_LEN];
};

/* One chunk of one captured call: a TLS call (plaintext at the library) or a TCP socket
 * syscall (plaintext HTTP to local model servers). A call of call_len bytes arrives as chunks
 * with offsets 0, AGT_DATA_CHUNK, ... up to the per-call cap; bytes past the cap are never sent,
 * and the reader sees it from call_len. The record is only as long as header + len. */
struct agt_data {
	struct agt_event_hdr h;
	__u64 conn;	     /* SSL* (TLS) or struct sock * (TCP): the connection's identity */
	__u64 call_len;	     /* bytes the call moved */
	__u64 captured;	     /* of which sent as chunks (the rest was over a cap) */
	__u64 offset;	     /* of this chunk within the call */
	__u64 call_start_ns; /* entry of the call: for reads, when the process began waiting */
	__u32 len;	     /* bytes in data[] */
	__u8 dir;	     /* enum agt_dir */
	__u8 source;	     /* enum agt_source */
	__u16 family;	     /* TCP: AF_INET or AF_INET6 of the peer; 0 for TLS */
	__u8 peer_addr[16];  /* TCP: the peer's address (IPv4 in the first 4 bytes) */
	__u16 peer_port;     /* TCP: host byte order */
	__u16 flags;	     /* AGT_DATA_META_ONLY */
	__u16 pad[2];
	__u8 data[AGT_DATA_CHUNK];
};

/* A target process (or one of its descendants) started a child process; the child is
 * followed from then on (it joins the kernel's target table). h.pid is the child. */
struct agt_proc_fork {
	struct agt_event_hdr h;
	__u32 ppid;
	__u32 ptid;  /* the thread that forked: whose tool call the child belongs to */
	__u32 flags; /* AGT_FORK_PENDING */
	__u32 pad;
};
/* The parent was pending (AGT_TK_PENDING): so is the child, until the loader has decided on the
 * parent (then it is followed, or forgotten). */
#define AGT_FORK_PENDING 1

/* A followed process ran execve. */
#define AGT_ARGV_LEN 256
#define AGT_FILENAME_LEN 128
struct agt_proc_exec {
	struct agt_event_hdr h;
	__u32 argv_len; /* bytes in argv: NUL-separated arguments as in /proc/PID/cmdline */
	__u32 pad;
	char filename[AGT_FILENAME_LEN];
	char argv[AGT_ARGV_LEN];
};

/* Discovery: a process outside the target table ran execve; userspace matches its selectors.
 * h.pid is the process. */
struct agt_proc_discover {
	struct agt_event_hdr h;
	char filename[AGT_FILENAME_LEN];
};

/* A traced process (a target or a followed descendant) loaded libraries: the dynamic loader
 * told its debugger interface (_dl_debug_state) that its list of objects changed, at start-up
 * and at each dlopen. Userspace looks for probe spec objects it now maps. h.pid is the process. */
struct agt_map_exec {
	struct agt_event_hdr h;
};

/* A task of a target process exited. group_dead: it was the last one. */
struct agt_proc_exit {
	struct agt_event_hdr h;
	__u32 exit_code; /* wait status: code << 8 | signal */
	__u32 group_dead;
};

#endif
