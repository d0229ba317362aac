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
#define AGT_COMM_PATS 16 /* comm patterns the kernel pre-filters discovery's execs with */
#define AGT_POLL_MS 50 /* the reader polls the ring buffer at least this often */
#define AGT_POLL_BUSY_MS 2 /* and this soon again after a poll that found records */
#define AGT_POLL_DISCOVER_MS 10 /* at least this often with selectors (execs wait unwoken) */

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
	AGT_EV_FILE = 9,	  /* a traced process changed (or read) a file: struct agt_file_event */
	AGT_EV_TLS_JOIN = 10,	 /* a thread's sealed TLS records went out on this socket */
};

/* TLS plaintext: bytes an SSL_write handed to the library or an SSL_read got from it. */
#define AGT_DATA_CHUNK 16384 /* bytes per ring buffer record; a call is split into chunks */
enum agt_dir { AGT_DIR_EGRESS = 0, AGT_DIR_INGRESS = 1 };
/* TLS plaintext, TCP socket, or local IPC (pipes and UNIX stream sockets: MCP over stdio). */
enum agt_source { AGT_SRC_TLS = 0, AGT_SRC_TCP = 1, AGT_SRC_IPC = 2 };
/* An unsampled session's HTTP error response: only its status line, so errors are always seen. */
#define AGT_DATA_META_ONLY 1
/* A TLS record sealed at the AEAD layer (rustls): its connection is the socket the same thread
 * writes next, which an AGT_EV_TLS_JOIN record names; conn is 0 until then. */
#define AGT_DATA_UNJOINED 2
/* Attach cookie of the TLS programs: probe id in the low 16 bits, then these flags. */
#define AGT_TLS_COOKIE_READ (1u << 16)	/* SSL_read*: ingress */
#define AGT_TLS_COOKIE_EX (1u << 17)	/* *_ex: length through the 4th argument */
#define AGT_TLS_COOKIE_SSIZE (1u << 18) /* returns ssize_t (GnuTLS), not int (OpenSSL) */
#define AGT_TLS_COOKIE_GO (1u << 19)	/* Go's register ABI; a call is matched to its return by \
					 * goroutine (the g in r14), not by thread */
/* A write whose length is known at its entry: the library moves all of it or fails (Go's Write;
 * OpenSSL's SSL_write and SSL_write_ex without SSL_MODE_ENABLE_PARTIAL_WRITE), so the bytes are
 * copied at the entry and no return probe is attached. A failed C write retried with the same
 * arguments (WANT_WRITE) is copied once. */
#define AGT_TLS_COOKIE_AT_ENTRY (1u << 20)
/* *_ex-like with the out-length in the 5th argument (r8): OpenSSL >= 3.3's
 * ssl_write_internal(s, buf, num, flags, &written), located in static binaries. */
#define AGT_TLS_COOKIE_OUTLEN_R8 (1u << 24)
/* The connection is over (the library freed or shut it down, or the socket closed): a data
 * record with no bytes, in agt_data.flags. */
#define AGT_DATA_CLOSE 4

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
	AGT_KDROP_TLS_NO_SOCKET = 7, /* AEAD-opened TLS record on a thread that read no TCP socket */
	AGT_KDROP_TLS_PADDING = 8,   /* TLS 1.3 record with more padding than is searched: skipped */
	AGT_KDROP_MAX = 9,
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

/* A comm pattern discovery's exec program tests (bpf/proc.bpf.c, comm_pats). */
struct agt_comm_pat {
	__u8 len;    /* bytes of s to compare */
	__u8 prefix; /* 1: comm starts with s; 0: comm is s */
	__u8 pad[6];
	char s[16];
};

struct agt_event_hdr {
	__u32 kind;
	__u32 probe_id;
	__u32 pid; /* tgid */
	__u32 tid;
	__u64 ts_ns; /* CLOCK_MONOTONIC */
};

/* The python:audit events a tool call's record keeps (what a tool does: processes, network,
 * files), X(prefix, exact): an event whose name starts with prefix (is it, when exact). The
 * audit program drops the rest in the kernel (imports, compile, exec of code objects, and an
 * HTTP client's http.client.send on every request); the agent model keeps these only while a
 * tool call runs. */
#define AGT_AUDIT_EVENTS(X)                                                                       \
	X("subprocess.", 0) X("os.system", 0) X("os.exec", 0) X("os.posix_spawn", 0)               \
	X("os.spawn", 0) X("os.fork", 0) X("os.kill", 0) X("os.remove", 0) X("os.rename", 0)       \
	X("os.rmdir", 0) X("os.mkdir", 0) X("shutil.", 0) X("socket.connect", 0)                  \
	X("socket.getaddrinfo", 0) X("urllib.Request", 0) X("http.client.connect", 0)             \
	X("open", 1) X("ctypes.dlopen", 0) X("webbrowser.open", 0)
#define AGT_AUDIT_NAME_MAX 32 /* longer than any prefix above, with its NUL (a power of 2) */

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

/* An executable file as the kernel names it: its superblock's s_dev and its inode number (the
 * key of the known_exes map; userspace takes it from the record, never from stat). */
struct agt_exe_key {
	__u64 dev;
	__u64 ino;
};

/* A followed process ran execve. */
#define AGT_ARGV_LEN 256
#define AGT_FILENAME_LEN 128
struct agt_proc_exec {
	struct agt_event_hdr h;
	__u32 argv_len; /* bytes in argv: NUL-separated arguments as in /proc/PID/cmdline */
	__u32 flags;	/* AGT_EXEC_STOPPED, AGT_EXEC_UNSAMPLED */
	char filename[AGT_FILENAME_LEN];
	char argv[AGT_ARGV_LEN];
	struct agt_exe_key exe;
};
/* The kernel stopped the process (SIGSTOP) at exec: its executable was not in known_exes.
 * Userspace looks at the file, probes it, marks it known and sends SIGCONT. */
#define AGT_EXEC_STOPPED 1
/* Not kept by process sampling: sent only to be resumed (no exec span). */
#define AGT_EXEC_UNSAMPLED 2

/* Discovery: a process outside the target table ran execve; userspace matches its selectors.
 * h.pid is the process. */
struct agt_proc_discover {
	struct agt_event_hdr h;
	char filename[AGT_FILENAME_LEN];
	__u32 flags; /* AGT_EXEC_STOPPED */
	__u32 pad;
	struct agt_exe_key exe;
};

/* A traced process (a target or a followed descendant) loaded libraries: the dynamic loader
 * told its debugger interface (_dl_debug_state) that its list of objects changed, at start-up
 * and at each dlopen. Userspace looks for probe spec objects it now maps. h.pid is the process. */
struct agt_map_exec {
	struct agt_event_hdr h;
};

/* The TLS records a thread sealed since its last socket write (AGT_DATA_UNJOINED data records
 * of h.tid) belong to this connection: the TCP socket it has just written to. */
struct agt_tls_join {
	struct agt_event_hdr h;
	__u64 conn; /* struct sock * */
};

/* A task of a target process exited. group_dead: it was the last one. */
struct agt_proc_exit {
	struct agt_event_hdr h;
	__u32 exit_code; /* wait status: code << 8 | signal */
	__u32 group_dead;
};

/* File lineage (bpf/file.bpf.c): what traced processes do to regular files, seen at the system
 * call. One record kind; op says which call it was. Paths are sent as the process gave them,
 * with the directory they are relative to (its cwd, or the directory of dirfd) walked in the
 * kernel up to the process's root: each path is "DIR\0NAME\0" (DIR "" when NAME is absolute;
 * for a file known by descriptor, DIR is its whole path and NAME ""). */
enum agt_file_op {
	AGT_FILE_OPEN = 1,     /* a regular file opened for writing (or reading, with files_read) */
	AGT_FILE_CLOSE = 2,    /* a close of a file opened so: bytes moved through it so far */
	AGT_FILE_RENAME = 3,   /* path[0] renamed to path[1] */
	AGT_FILE_UNLINK = 4,   /* path[0] removed */
	AGT_FILE_TRUNCATE = 5, /* truncate(path) or ftruncate(fd): bytes is the new length */
};
#define AGT_FILE_F_CREATED 0x1	/* open: the call created the file (FMODE_CREATED) */
#define AGT_FILE_F_TRUNC 0x2	/* open: O_TRUNC */
#define AGT_FILE_F_APPEND 0x4	/* open: O_APPEND */
#define AGT_FILE_F_WRITE 0x8	/* open: for writing (else for reading) */
#define AGT_FILE_F_LAST 0x10	/* close: the last reference to the open file went */
#define AGT_FILE_F_LONG 0x20	/* a directory was deeper or longer than the kernel walks */
#define AGT_FILE_F_EXCHANGE 0x40 /* rename: RENAME_EXCHANGE (the two swapped) */
#define AGT_FILE_BLOB 8192	 /* bytes of one path in data[] at most; path[1] starts here */

struct agt_file_event {
	struct agt_event_hdr h;
	__u64 file;  /* open/close: the struct file (an identity until its last close) */
	__u64 bytes; /* close: bytes written (read) through it so far; truncate: the length */
	__u16 op;    /* enum agt_file_op */
	__u16 flags; /* AGT_FILE_F_* */
	__u16 len[2];	/* bytes of path[0] at data[0] and of path[1] at data[AGT_FILE_BLOB] */
	char data[2 * AGT_FILE_BLOB];
};
/* Runtime metrics (bpf/rt.bpf.c): what the garbage collectors and event loops of traced Python,
 * Go and Node processes do, counted in the kernel per process (the rt_stats map, read by the
 * loader at scrape time: no record per event). The attach cookie of the runtime programs is
 * the event. */
enum agt_rt_event {
	AGT_RT_PY_GC = 1,	    /* python:gc__start(generation) .. python:gc__done(collected) */
	AGT_RT_GO_GC_CYCLE = 2,	    /* runtime.gcMarkTermination: a GC cycle ends */
	AGT_RT_GO_STW_STOP = 3,	    /* runtime.stopTheWorldWithSema: the world stops */
	AGT_RT_GO_STW_START = 4,    /* returns of runtime.startTheWorldWithSema: it runs again */
	AGT_RT_GO_HEAP_LIVE = 5,    /* runtime.(*gcControllerState).resetLive(c, bytesMarked) */
	AGT_RT_GO_G_START = 6,	    /* runtime.newproc1: a goroutine is created */
	AGT_RT_GO_G_EXIT = 7,	    /* runtime.goexit0: a goroutine ends */
	AGT_RT_NODE_GC_START = 8,   /* v8::internal::Heap::CallGCPrologueCallbacks(this, type) */
	AGT_RT_NODE_GC_END = 9,	    /* v8::internal::Heap::CallGCEpilogueCallbacks(this, type) */
	AGT_RT_NODE_POLL = 10,	    /* epoll_wait/epoll_pwait of the main thread: libuv's poll */
	AGT_RT_NODE_POLL_RET = 11,  /* ... and its return */
};
enum agt_rt_kind { AGT_RT_NONE = 0, AGT_RT_PYTHON = 1, AGT_RT_GO = 2, AGT_RT_NODE = 3 };
/* Node's GC kinds, in the order of V8's GCType bits (scavenge 1, minor mark-sweep 2,
 * mark-sweep-compact 4, incremental marking 8, weak callbacks 16). */
#define AGT_RT_NODE_KINDS 5
#define AGT_RT_SERIES 5	   /* pause histograms per process: Python generations, Node kinds */
#define AGT_RT_BUCKETS 16  /* pause buckets: 10us .. 1s, then the rest */
#define AGT_RT_BOUNDS_NS                                                                        \
	{10000ull,    25000ull,	   50000ull,	100000ull,   250000ull,	  500000ull,		\
	 1000000ull,  2500000ull,  5000000ull,	10000000ull, 25000000ull, 50000000ull,		\
	 100000000ull, 250000000ull, 1000000000ull}

struct agt_rt_hist {
	__u64 bucket[AGT_RT_BUCKETS]; /* counts per bucket (not cumulative); the last: over 1 s */
	__u64 sum_ns;
};

struct agt_rt_stats {
	__u32 kind;	/* enum agt_rt_kind, written by the loader when it attaches */
	__u32 pad;
	__u64 gc[AGT_RT_SERIES];	/* Python: collections by generation; Node: GCs by kind; Go:
					 * [0] cycles */
	__u64 collected[3];		/* Python: objects collected, by generation */
	struct agt_rt_hist pause[AGT_RT_SERIES]; /* Python by generation, Node by kind, Go [0] */
	__u64 go_heap_live;	/* bytes marked live by the last GC */
	__u64 go_controller;	/* the address of runtime.gcController */
	__u64 go_g_started, go_g_exited;
	__u64 loop_idle_ns;	/* Node: the main thread inside the poll */
	__u64 loop_polls;
	__u64 stw_start_ns;	/* Go: when the world was stopped (0: it runs) */
};
#endif

