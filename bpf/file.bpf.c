// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* File lineage: what traced processes (targets and their followed descendants) do to regular
 * files, at the system call: opens for writing (and, with files_read, for reading), renames,
 * unlinks, truncations, and the bytes written (read) through each open file, reported at its
 * closes. Per-syscall tracepoints, so only these calls run a program; each first asks whether
 * the process is traced, and returns at once when not.
 *
 * A call's arguments are kept at its entry (per thread) and the record is made at its exit,
 * only when it succeeded: the path as the process gave it, and the directory it is relative to
 * (cwd or dirfd) walked up to the process's root, so userspace can show the path as the process
 * saw it even after a short-lived command (sed -i in a subshell that cd'd) is gone. Bytes are
 * counted in the kernel per open file (struct file, shared by dup'd and inherited descriptors)
 * from how far its position moved, and sent with each close: one record per open and close,
 * and no program on write(2) or read(2) at all (struct open_file says how). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "agtrace.h"
#include "common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader: also record regular files opened for reading, and the bytes read. */
const volatile __u32 files_read = 0;

#define AT_FDCWD -100
#define O_ACCMODE 00000003
#define O_CREAT 00000100
#define O_TRUNC 00001000
#define O_APPEND 00002000
#define O_DIRECTORY 00200000
#define O_PATH 010000000
#define S_IFMT 00170000
#define S_IFREG 0100000
#define AT_REMOVEDIR 0x200
#define RENAME_EXCHANGE 2
#define FMODE_CREATED 0x100000

#define MAX_DEPTH 64    /* directory components walked at most (a power of two) */
#define DIR_MAX 4096	/* bytes of the walked directory at most */
#define NAME_MAX_ 4096	/* bytes of the path as given at most */

/* A call in flight: what its exit needs from its entry. */
struct pending {
	__u64 name[2]; /* user pointers of the path arguments */
	__s32 dfd[2];
	__u32 flags;	/* open flags, rename flags */
	__u16 op;	/* enum agt_file_op */
	__u16 accmode;	/* open: read or write intent (AGT_FILE_F_WRITE) */
	__u64 arg;	/* truncate: the length; ftruncate: the fd */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct pending);
} file_calls SEC(".maps");

/* Open files being followed: struct file -> bytes through it. No write(2) or read(2) is hooked
 * (they are the busiest calls on a node: a per-syscall tracepoint costs every process's every
 * write about 0.3 us here, whoever it is). The bytes that move the file position are the
 * position's advance past mark, read when the file is closed; a seek first settles them into
 * bytes and moves mark; pwrite (pread), which leave the position alone, are added as they
 * happen. An O_APPEND write moves the position to the end of the file, so there mark starts at
 * the size. */
struct open_file {
	__u64 bytes; /* settled: before mark, and by pwrite (pread) */
	__u64 mark;  /* the position bytes are counted from */
	__u32 write; /* opened for writing (else reading) */
	__u32 append;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct open_file);
} open_files SEC(".maps");

/* A pread or a seek in flight: the open file it is on. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);   /* pid_tgid */
	__type(value, __u64); /* struct file * */
} file_moves SEC(".maps");

/* The record being built, and the dentries of a directory walk. */
struct scratch {
	struct agt_file_event ev;
	char slack[NAME_MAX_ + 512]; /* past data[]: room for a bounded copy that runs over */
	struct dentry *comp[MAX_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} file_scratch SEC(".maps");

/* Kernels before 6.13 count a file's references in f_count (1: one reference). */
struct file___pre613 {
	atomic_long_t f_count;
} __attribute__((preserve_access_index));

static __always_inline int traced_now(__u64 id)
{
	__u32 tgid = id >> 32;

	return agt_traced(tgid) && agt_session_sampled(AGT_SS_PROC, tgid);
}

static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	struct file *f = 0;

	if (fd < 0 || (unsigned int)fd >= max)
		return 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* References to f, with the one a descriptor being closed holds. */
static __always_inline long file_refs(struct file *f)
{
	if (bpf_core_field_exists(f->f_ref)) /* file_ref_t: 0 means one reference */
		return BPF_CORE_READ(f, f_ref.refcnt.counter) + 1;
	return BPF_CORE_READ((struct file___pre613 *)f, f_count.counter);
}

struct walk_ctx {
	struct scratch *s;
	char *buf;
	struct dentry *d, *root_d;
	struct vfsmount *vm, *root_m;
	struct mount *m;
	__u64 mnt_off;
	__u32 n, off;
	__u16 flags;
};

/* Up one step: a component, or the crossing of a mount point. 1 ends the walk. */
static long walk_up(__u32 i, void *arg)
{
	struct walk_ctx *c = arg;
	struct dentry *d = c->d, *up;
	struct vfsmount *vm = c->vm;
	struct mount *m = c->m;

	if (!d || (d == c->root_d && vm == c->root_m))
		return 1;
	if (d == BPF_CORE_READ(vm, mnt_root)) { /* the top of a mount: go to where it is */
		struct mount *parent = BPF_CORE_READ(m, mnt_parent);

		if (!parent || parent == m)
			return 1;
		c->d = BPF_CORE_READ(m, mnt_mountpoint);
		c->m = parent;
		c->vm = (struct vfsmount *)((void *)parent + c->mnt_off);
		return 0;
	}
	up = BPF_CORE_READ(d, d_parent);
	if (up == d)
		return 1;
	if (c->n >= MAX_DEPTH) {
		c->flags |= AGT_FILE_F_LONG;
		return 1;
	}
	c->s->comp[c->n & (MAX_DEPTH - 1)] = d;
	c->n++;
	c->d = up;
	return 0;
}

/* Down: the components outermost first, "/NAME" each. */
static long walk_down(__u32 i, void *arg)
{
	struct walk_ctx *c = arg;
	struct dentry *d;
	const unsigned char *name;
	__u32 len, off = c->off;

	if (i >= c->n)
		return 1;
	d = c->s->comp[(c->n - 1 - i) & (MAX_DEPTH - 1)];
	name = BPF_CORE_READ(d, d_name.name);
	len = BPF_CORE_READ(d, d_name.len) & 255;
	if (off + 1 + len >= DIR_MAX) {
		c->flags |= AGT_FILE_F_LONG;
		return 1;
	}
	c->buf[off & (DIR_MAX - 1)] = '/';
	off++;
	bpf_probe_read_kernel(&c->buf[off & (DIR_MAX - 1)], len, name);
	c->off = off + len;
	return 0;
}

/* Walk from (d, vm) up to the process's root, crossing mount points, and write the path
 * ("/a/b/c", "" at the root) at buf; its length with the NUL, and AGT_FILE_F_LONG in *flags
 * when it was too deep or too long (the outermost components are then missing). */
static __always_inline __u32 walk(struct scratch *s, char *buf, struct dentry *d,
				  struct vfsmount *vm, __u16 *flags)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct walk_ctx c = {.s = s, .buf = buf, .d = d, .vm = vm};

	c.root_d = BPF_CORE_READ(t, fs, root.dentry);
	c.root_m = BPF_CORE_READ(t, fs, root.mnt);
	c.mnt_off = bpf_core_field_offset(struct mount, mnt);
	c.m = (struct mount *)((void *)vm - c.mnt_off);
	bpf_loop(MAX_DEPTH + 16, walk_up, &c, 0);
	bpf_loop(MAX_DEPTH, walk_down, &c, 0);
	buf[c.off & (DIR_MAX - 1)] = 0;
	*flags |= c.flags;
	return (c.off & (DIR_MAX - 1)) + 1;
}

/* One path at buf: the directory name is relative to (dfd's, or the cwd; nothing when name is
 * absolute), then name as given. Its length. */
static __always_inline __u32 put_path(struct scratch *s, char *buf, int dfd, __u64 name,
				      __u16 *flags)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct dentry *d = 0;
	struct vfsmount *vm = 0;
	__u32 off = 1;
	char first = 0;
	long n;

	bpf_probe_read_user(&first, 1, (const void *)name);
	buf[0] = 0;
	if (first != '/') {
		if (dfd == AT_FDCWD) {
			d = BPF_CORE_READ(t, fs, pwd.dentry);
			vm = BPF_CORE_READ(t, fs, pwd.mnt);
		} else {
			struct file *f = fd_file(dfd);

			if (f) {
				d = BPF_CORE_READ(f, f_path.dentry);
				vm = BPF_CORE_READ(f, f_path.mnt);
			}
		}
		if (d && vm)
			off = walk(s, buf, d, vm, flags);
	}
	off &= DIR_MAX * 2 - 1;
	n = bpf_probe_read_user_str(&buf[off], NAME_MAX_, (const void *)name);
	if (n <= 0) {
		buf[off] = 0;
		n = 1;
	}
	return off + (__u32)n;
}

static __always_inline struct scratch *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&file_scratch, &zero);
}

/* Set by the reader before it sleeps its long sleep (run.c: it polls again within
 * AGT_POLL_BUSY_MS while records keep coming), cleared by the one wakeup below. */
__u32 reader_idle = 0;

/* A last close of a file written, a rename or a truncation wakes the reader at once: it reads the
 * file's content then, before the agent's next step can change it again. Only a reader in its
 * long sleep is woken, once: a wakeup costs the closing thread tens of microseconds here (an
 * interrupt to another CPU), and a process saving files in a loop would pay it at every close,
 * while a reader awake polls again soon anyway. Other records wait for the reader's next poll,
 * or for enough of them to be pending (agt_submit). */
static __always_inline void send(struct agt_file_event *e, __u32 size)
{
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= agt_wake_bytes
			  ? BPF_RB_FORCE_WAKEUP
			  : BPF_RB_NO_WAKEUP;

	if (reader_idle && (e->op == AGT_FILE_RENAME || e->op == AGT_FILE_TRUNCATE ||
			    (e->op == AGT_FILE_CLOSE && (e->flags & AGT_FILE_F_LAST) &&
			     (e->flags & AGT_FILE_F_WRITE)))) {
		reader_idle = 0;
		flags = BPF_RB_FORCE_WAKEUP;
	}
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (bpf_ringbuf_output(&events, e, size, flags))
		agt_count_drop(AGT_KDROP_RINGBUF_FULL);
}

static __always_inline struct agt_file_event *event(struct scratch *s, __u16 op, __u64 id)
{
	struct agt_file_event *e = &s->ev;

	e->h.kind = AGT_EV_FILE;
	e->h.probe_id = 0;
	e->h.pid = id >> 32;
	e->h.tid = (__u32)id;
	e->h.ts_ns = bpf_ktime_get_ns();
	e->file = e->bytes = 0;
	e->op = op;
	e->flags = 0;
	e->len[0] = e->len[1] = 0;
	return e;
}

/* ---- entries: keep the arguments ---- */

static __always_inline int keep(struct pending *p)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (!traced_now(id))
		return 0;
	bpf_map_update_elem(&file_calls, &id, p, BPF_ANY);
	return 0;
}

static __always_inline int keep_open(int dfd, __u64 name, __u64 flags)
{
	struct pending p = {.op = AGT_FILE_OPEN, .dfd = {dfd, 0}, .name = {name, 0},
			    .flags = (__u32)flags};
	int write = (flags & O_ACCMODE) || (flags & (O_CREAT | O_TRUNC));

	if (flags & (O_PATH | O_DIRECTORY))
		return 0;
	if (!write && !files_read)
		return 0;
	p.accmode = write ? AGT_FILE_F_WRITE : 0;
	return keep(&p);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int file_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return keep_open((int)ctx->args[0], ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_open")
int file_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return keep_open(AT_FDCWD, ctx->args[0], ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_creat")
int file_enter_creat(struct trace_event_raw_sys_enter *ctx)
{
	return keep_open(AT_FDCWD, ctx->args[0], O_CREAT | O_TRUNC | 1);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int file_enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	__u64 flags = 0;

	if (!agt_traced(bpf_get_current_pid_tgid() >> 32))
		return 0;
	bpf_probe_read_user(&flags, sizeof(flags), (const void *)ctx->args[2]); /* how->flags */
	return keep_open((int)ctx->args[0], ctx->args[1], flags);
}

static __always_inline int keep_rename(int odfd, __u64 old, int ndfd, __u64 new, __u32 flags)
{
	struct pending p = {.op = AGT_FILE_RENAME, .dfd = {odfd, ndfd}, .name = {old, new},
			    .flags = flags};

	return keep(&p);
}

SEC("tracepoint/syscalls/sys_enter_rename")
int file_enter_rename(struct trace_event_raw_sys_enter *ctx)
{
	return keep_rename(AT_FDCWD, ctx->args[0], AT_FDCWD, ctx->args[1], 0);
}

SEC("tracepoint/syscalls/sys_enter_renameat")
int file_enter_renameat(struct trace_event_raw_sys_enter *ctx)
{
	return keep_rename((int)ctx->args[0], ctx->args[1], (int)ctx->args[2], ctx->args[3], 0);
}

SEC("tracepoint/syscalls/sys_enter_renameat2")
int file_enter_renameat2(struct trace_event_raw_sys_enter *ctx)
{
	return keep_rename((int)ctx->args[0], ctx->args[1], (int)ctx->args[2], ctx->args[3],
			   (__u32)ctx->args[4]);
}

static __always_inline int keep_unlink(int dfd, __u64 name, __u64 flag)
{
	struct pending p = {.op = AGT_FILE_UNLINK, .dfd = {dfd, 0}, .name = {name, 0}};

	if (flag & AT_REMOVEDIR) /* rmdir: a directory, no file's content */
		return 0;
	return keep(&p);
}

SEC("tracepoint/syscalls/sys_enter_unlink")
int file_enter_unlink(struct trace_event_raw_sys_enter *ctx)
{
	return keep_unlink(AT_FDCWD, ctx->args[0], 0);
}

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int file_enter_unlinkat(struct trace_event_raw_sys_enter *ctx)
{
	return keep_unlink((int)ctx->args[0], ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_truncate")
int file_enter_truncate(struct trace_event_raw_sys_enter *ctx)
{
	struct pending p = {.op = AGT_FILE_TRUNCATE, .dfd = {AT_FDCWD, 0},
			    .name = {ctx->args[0], 0}, .arg = ctx->args[1]};

	return keep(&p);
}

SEC("tracepoint/syscalls/sys_enter_ftruncate")
int file_enter_ftruncate(struct trace_event_raw_sys_enter *ctx)
{
	struct pending p = {.op = AGT_FILE_TRUNCATE, .dfd = {(int)ctx->args[0], 0},
			    .flags = 1 /* by descriptor */, .arg = ctx->args[1]};

	return keep(&p);
}

/* ---- exits: the record, when the call succeeded ---- */

static __always_inline struct pending *take(__u64 id, struct pending *out)
{
	struct pending *p = bpf_map_lookup_elem(&file_calls, &id);

	if (!p)
		return 0;
	*out = *p;
	bpf_map_delete_elem(&file_calls, &id);
	return out;
}

static __always_inline int exit_open(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pending p;
	struct scratch *s;
	struct agt_file_event *e;
	struct open_file of = {};
	struct file *f;
	__u64 fp;
	__u32 mode;

	if (!take(id, &p) || ret < 0 || !(f = fd_file((int)ret)))
		return 0;
	mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFREG || !(s = scratch()))
		return 0; /* /dev/null, a tty, a fifo: no file content to follow */
	e = event(s, AGT_FILE_OPEN, id);
	fp = (__u64)f;
	e->file = fp;
	e->flags = p.accmode;
	if (BPF_CORE_READ(f, f_mode) & FMODE_CREATED)
		e->flags |= AGT_FILE_F_CREATED;
	if (p.flags & O_TRUNC)
		e->flags |= AGT_FILE_F_TRUNC;
	if (p.flags & O_APPEND)
		e->flags |= AGT_FILE_F_APPEND;
	of.write = !!p.accmode;
	of.append = !!(p.flags & O_APPEND);
	of.mark = of.append ? (__u64)BPF_CORE_READ(f, f_inode, i_size) : (__u64)BPF_CORE_READ(f, f_pos);
	bpf_map_update_elem(&open_files, &fp, &of, BPF_ANY);
	e->len[0] = put_path(s, e->data, p.dfd[0], p.name[0], &e->flags);
	send(e, offsetof(struct agt_file_event, data) + e->len[0]);
	return 0;
}

/* One program for the exits of open, openat, creat and openat2 (attached to each by the loader:
 * verified once). */
SEC("tracepoint")
int file_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return exit_open(ctx->ret);
}

/* rename, unlink, truncate: the paths as given, with their directories. */
static __always_inline int exit_path_call(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct agt_file_event *e;
	struct pending p;
	struct scratch *s;
	__u32 size;

	if (!take(id, &p) || ret < 0 || !(s = scratch()))
		return 0;
	e = event(s, p.op, id);
	if (p.op == AGT_FILE_TRUNCATE) {
		e->bytes = p.arg;
		if (p.flags) { /* ftruncate: the file's own path */
			struct file *f = fd_file(p.dfd[0]);

			if (!f)
				return 0;
			e->len[0] = walk(s, e->data, BPF_CORE_READ(f, f_path.dentry),
					 BPF_CORE_READ(f, f_path.mnt), &e->flags);
			e->data[e->len[0] & (DIR_MAX * 2 - 1)] = 0;
			e->len[0]++;
			send(e, offsetof(struct agt_file_event, data) + e->len[0]);
			return 0;
		}
	}
	e->len[0] = put_path(s, e->data, p.dfd[0], p.name[0], &e->flags);
	size = offsetof(struct agt_file_event, data) + e->len[0];
	if (p.op == AGT_FILE_RENAME) {
		if (p.flags & RENAME_EXCHANGE)
			e->flags |= AGT_FILE_F_EXCHANGE;
		e->len[1] = put_path(s, e->data + AGT_FILE_BLOB, p.dfd[1], p.name[1], &e->flags);
		size = offsetof(struct agt_file_event, data) + AGT_FILE_BLOB + e->len[1];
	}
	send(e, size);
	return 0;
}

/* One program for the exits of rename, renameat, renameat2, unlink, unlinkat, truncate and
 * ftruncate (attached to each by the loader). */
SEC("tracepoint")
int file_exit_path(struct trace_event_raw_sys_exit *ctx)
{
	return exit_path_call(ctx->ret);
}

/* ---- bytes through open files, and their closes ---- */

static __always_inline struct open_file *followed(int fd, __u64 *fp)
{
	struct file *f;

	if (!agt_traced(bpf_get_current_pid_tgid() >> 32) || !(f = fd_file(fd)))
		return 0;
	*fp = (__u64)f;
	return bpf_map_lookup_elem(&open_files, fp);
}

/* How far the position of f moved past of->mark. */
static __always_inline __u64 moved(struct open_file *of, struct file *f)
{
	__u64 pos = BPF_CORE_READ(f, f_pos);

	return pos > of->mark ? pos - of->mark : 0;
}

static __always_inline __u64 iov_bytes(__u64 iov, __u64 cnt)
{
	__u64 n = 0;

	for (int i = 0; i < 16; i++) {
		struct iovec v;

		if ((__u64)i >= cnt || bpf_probe_read_user(&v, sizeof(v), (void *)(iov + i * sizeof(v))))
			break;
		n += v.iov_len;
	}
	return n;
}

/* pwrite: bytes a write at an offset asks to write (a regular file's writes are whole unless
 * the disk is full); the position stays. */
static __always_inline int add_pwrite(int fd, __u64 n)
{
	struct open_file *of;
	__u64 fp;

	if ((of = followed(fd, &fp)) && of->write)
		__sync_fetch_and_add(&of->bytes, n);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_pwrite64")
int file_enter_pwrite64(struct trace_event_raw_sys_enter *ctx)
{
	return add_pwrite((int)ctx->args[0], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_pwritev")
int file_enter_pwritev(struct trace_event_raw_sys_enter *ctx)
{
	struct open_file *of;
	__u64 fp;

	if ((of = followed((int)ctx->args[0], &fp)) && of->write)
		__sync_fetch_and_add(&of->bytes, iov_bytes(ctx->args[1], ctx->args[2]));
	return 0;
}

/* A seek: what the position moved so far is settled, and counting restarts where the seek
 * lands (for O_APPEND, at the end of the file at the latest: the next write goes there). */
SEC("tracepoint/syscalls/sys_enter_lseek")
int file_enter_lseek(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), fp, n;
	struct open_file *of = followed((int)ctx->args[0], &fp);

	if (!of)
		return 0;
	n = moved(of, (struct file *)fp);
	__sync_fetch_and_add(&of->bytes, n);
	of->mark += n; /* a failed seek leaves the position here */
	bpf_map_update_elem(&file_moves, &id, &fp, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_lseek")
int file_exit_lseek(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), *fp;
	struct open_file *of;

	if (!(fp = bpf_map_lookup_elem(&file_moves, &id)))
		return 0;
	if (ctx->ret >= 0 && (of = bpf_map_lookup_elem(&open_files, fp))) {
		__u64 size = of->append ? BPF_CORE_READ((struct file *)*fp, f_inode, i_size) : 0;

		of->mark = (__u64)ctx->ret > size ? (__u64)ctx->ret : size;
	}
	bpf_map_delete_elem(&file_moves, &id);
	return 0;
}

/* pread (files_read): the open file at the entry, the bytes really read at the exit. */
SEC("tracepoint/syscalls/sys_enter_pread64")
int file_enter_pread64(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), fp;
	struct open_file *of = followed((int)ctx->args[0], &fp);

	if (of && !of->write)
		bpf_map_update_elem(&file_moves, &id, &fp, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_pread64")
int file_exit_pread64(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), *fp;
	struct open_file *of;

	if (!(fp = bpf_map_lookup_elem(&file_moves, &id)))
		return 0;
	if (ctx->ret > 0 && (of = bpf_map_lookup_elem(&open_files, fp)))
		__sync_fetch_and_add(&of->bytes, ctx->ret);
	bpf_map_delete_elem(&file_moves, &id);
	return 0;
}

/* The record of a descriptor of fp closing; the last one (refs: the file's references before
 * this one goes) also forgets the file. */
static __always_inline void close_record(struct scratch *s, __u64 id, struct open_file *of,
					 __u64 fp, long refs)
{
	struct agt_file_event *e = event(s, AGT_FILE_CLOSE, id);

	e->file = fp;
	e->bytes = of->bytes + moved(of, (struct file *)fp);
	e->flags = of->write ? AGT_FILE_F_WRITE : 0;
	if (refs <= 1) {
		e->flags |= AGT_FILE_F_LAST;
		bpf_map_delete_elem(&open_files, &fp);
	}
	send(e, offsetof(struct agt_file_event, data));
}

SEC("tracepoint/syscalls/sys_enter_close")
int file_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), fp;
	struct open_file *of = followed((int)ctx->args[0], &fp);
	struct scratch *s;

	if (of && (s = scratch()))
		close_record(s, id, of, fp, file_refs((struct file *)fp));
	return 0;
}

/* dup2 and dup3 close what the new descriptor held (a shell's `builtin > file` puts the file
 * on 1, then puts the saved descriptor back over it: no close(2) is ever called for it). */
static __always_inline int enter_dup(int oldfd, int newfd)
{
	__u64 id = bpf_get_current_pid_tgid(), fp;
	struct open_file *of;
	struct scratch *s;

	if (oldfd == newfd || !(of = followed(newfd, &fp)) || fd_file(oldfd) == (struct file *)fp ||
	    !(s = scratch()))
		return 0;
	close_record(s, id, of, fp, file_refs((struct file *)fp));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_dup2")
int file_enter_dup2(struct trace_event_raw_sys_enter *ctx)
{
	return enter_dup((int)ctx->args[0], (int)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_dup3")
int file_enter_dup3(struct trace_event_raw_sys_enter *ctx)
{
	return enter_dup((int)ctx->args[0], (int)ctx->args[1]);
}

/* Descriptors closed together, with no close(2) each: all of a process's at its exit_group
 * (a command whose stdout a shell redirected to a file rarely closes it), or a close_range. A
 * file on several of them is closed as often, its last close where its references run out. */
#define WALK_FDS 4096 /* descriptors looked at most */
#define WALK_SEEN 8   /* files on several descriptors, kept count of */

struct fd_walk {
	struct scratch *s;
	struct file **fds;
	unsigned long *open;
	__u64 id, word;
	__u32 first, n;
	__u64 seen[WALK_SEEN];
	__u32 times[WALK_SEEN];
};

static long walk_fd(__u32 i, void *arg)
{
	struct fd_walk *w = arg;
	struct open_file *of;
	struct file *f = 0;
	__u32 fd = w->first + i, k, times = 0;
	__u64 fp;

	if (fd >= w->n)
		return 1;
	if (i == 0 || (fd & 63) == 0)
		bpf_probe_read_kernel(&w->word, sizeof(w->word), &w->open[fd >> 6]);
	if (!((w->word >> (fd & 63)) & 1))
		return 0;
	bpf_probe_read_kernel(&f, sizeof(f), &w->fds[fd]);
	fp = (__u64)f;
	if (!f || !(of = bpf_map_lookup_elem(&open_files, &fp)))
		return 0;
	for (k = 0; k < WALK_SEEN; k++) {
		if (w->seen[k] == fp || !w->seen[k]) {
			w->seen[k] = fp;
			times = w->times[k]++;
			break;
		}
	}
	close_record(w->s, w->id, of, fp, file_refs(f) - times);
	return 0;
}

static __always_inline void walk_fds(__u32 first, __u32 last)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct fd_walk w = {.id = bpf_get_current_pid_tgid(), .first = first};
	__u32 max = BPF_CORE_READ(fdt, max_fds);

	if (!(w.s = scratch()) || first >= max)
		return;
	w.fds = BPF_CORE_READ(fdt, fd);
	w.open = BPF_CORE_READ(fdt, open_fds);
	w.n = last < max - 1 ? last + 1 : max;
	bpf_loop(w.n - first < WALK_FDS ? w.n - first : WALK_FDS, walk_fd, &w, 0);
}

SEC("tracepoint/syscalls/sys_enter_exit_group")
int file_enter_exit_group(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();

	/* The descriptors go with the process unless another process shares their table. */
	if (!agt_traced(bpf_get_current_pid_tgid() >> 32) ||
	    BPF_CORE_READ(t, files, count.counter) != 1)
		return 0;
	walk_fds(0, ~0u);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_close_range")
int file_enter_close_range(struct trace_event_raw_sys_enter *ctx)
{
	/* CLOSE_RANGE_CLOEXEC only marks them; CLOSE_RANGE_UNSHARE closes in a copy: the same. */
	if (!agt_traced(bpf_get_current_pid_tgid() >> 32) || (ctx->args[2] & (1u << 2)))
		return 0;
	walk_fds((__u32)ctx->args[0], (__u32)ctx->args[1]);
	return 0;
}
