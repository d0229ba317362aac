#include "capture/units.h"
#include "base/log.h"
#include "base/util.h"
#include "func.skel.h"
#include "proc.skel.h"
#include "sock.skel.h"
#include "tls.skel.h"
#include "file.skel.h"
#include "agtrace.h"
#include "rt.skel.h"
#include "aead.skel.h"
#include <bpf/libbpf.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define BPF_FS_MAGIC_ 0xcafe4a11

/* ---- one row per BPF object ---- */

struct unit_desc {
	const char *what; /* for messages: "the TLS capture" */
	int (*wanted)(const struct agt_unit_params *p);
	void *(*open)(const struct bpf_object_open_opts *o);
	void (*configure)(void *skel, const struct agt_unit_params *p);
	int (*load)(void *skel);
	int (*attach)(void *skel); /* NULL: its programs are attached per target */
	void (*destroy)(void *skel);
	struct bpf_object *(*object)(void *skel);
};

static int always(const struct agt_unit_params *p)
{
	(void)p;
	return 1;
}

static int with_tcp(const struct agt_unit_params *p)
{
	return p->tcp;
}

/* Every object's common rodata: CPUs for the per-CPU token buckets, the sampling salt. */
#define COMMON(s, p)                                                                             \
	do {                                                                                     \
		(s)->rodata->agt_ncpus = (p)->ncpus;                                             \
		(s)->rodata->agt_sample_salt = (p)->salt;                                        \
	} while (0)

static void *func_open(const struct bpf_object_open_opts *o)
{
	return func_bpf__open_opts(o);
}
static void func_configure(void *s, const struct agt_unit_params *p)
{
	COMMON((struct func_bpf *)s, p);
}
static int func_load(void *s)
{
	return func_bpf__load(s);
}
static void func_destroy(void *s)
{
	func_bpf__destroy(s);
}
static struct bpf_object *func_object(void *s)
{
	return ((struct func_bpf *)s)->obj;
}

static void *proc_open(const struct bpf_object_open_opts *o)
{
	return proc_bpf__open_opts(o);
}
static void proc_configure(void *s, const struct agt_unit_params *p)
{
	struct proc_bpf *b = s;

	COMMON(b, p);
	b->rodata->discover = p->discover;
	/* Attached per dynamic loader file by the probes code. */
	bpf_program__set_autoattach(b->progs.ld_debug_state, false);
}
static int proc_load(void *s)
{
	return proc_bpf__load(s);
}
static int proc_attach(void *s)
{
	return proc_bpf__attach(s);
}
static void proc_destroy(void *s)
{
	proc_bpf__destroy(s);
}
static struct bpf_object *proc_object(void *s)
{
	return ((struct proc_bpf *)s)->obj;
}

static void *tls_open(const struct bpf_object_open_opts *o)
{
	return tls_bpf__open_opts(o);
}
static void tls_configure(void *s, const struct agt_unit_params *p)
{
	struct tls_bpf *b = s;

	COMMON(b, p);
	b->rodata->tls_call_cap = p->call_cap;
}
static int tls_load(void *s)
{
	return tls_bpf__load(s);
}
static void tls_destroy(void *s)
{
	tls_bpf__destroy(s);
}
static struct bpf_object *tls_object(void *s)
{
	return ((struct tls_bpf *)s)->obj;
}

static void *sock_open(const struct bpf_object_open_opts *o)
{
	return sock_bpf__open_opts(o);
}
static void sock_configure(void *s, const struct agt_unit_params *p)
{
	struct sock_bpf *b = s;

	struct bpf_program *pipe_progs[] = {
	    b->progs.pipe_enter_write, b->progs.pipe_enter_writev, b->progs.pipe_enter_read,
	    b->progs.pipe_enter_readv, b->progs.pipe_exit_write,   b->progs.pipe_exit_writev,
	    b->progs.pipe_exit_read,   b->progs.pipe_exit_readv};

	COMMON(b, p);
	b->rodata->sock_call_cap = p->call_cap;
	/* Pipes only when asked for: their system call tracepoints cost every system call. */
	for (size_t i = 0; i < sizeof(pipe_progs) / sizeof(pipe_progs[0]); i++)
		bpf_program__set_autoload(pipe_progs[i], p->pipes);
	if (p->pipes)
		agt_mount_tracefs();
}
static int sock_load(void *s)
{
	return sock_bpf__load(s);
}
static int sock_attach(void *s)
{
	return sock_bpf__attach(s);
}
static void sock_destroy(void *s)
{
	sock_bpf__destroy(s);
}
static struct bpf_object *sock_object(void *s)
{
	return ((struct sock_bpf *)s)->obj;
}

static int with_files(const struct agt_unit_params *p)
{
	return p->files;
}

static void *file_open(const struct bpf_object_open_opts *o)
{
	return file_bpf__open_opts(o);
}
static void file_configure(void *s, const struct agt_unit_params *p)
{
	struct file_bpf *b = s;

	COMMON(b, p);
	b->rodata->files_read = p->files_read;
	/* Reads are followed only when asked for (and then, like writes, by the file position:
	 * only pread, which leaves it alone, has programs). */
	bpf_program__set_autoload(b->progs.file_enter_pread64, p->files_read);
	bpf_program__set_autoload(b->progs.file_exit_pread64, p->files_read);
}
static int file_load(void *s)
{
	return file_bpf__load(s);
}
/* The exit programs shared by several system calls, attached here to each (one program per
 * kind of exit: verified once). One capture per process, so one set of these links. */
static struct bpf_link *file_links[16];
static int nfile_links;

static int file_attach(void *s)
{
	static const char *const opens[] = {"sys_exit_open", "sys_exit_openat", "sys_exit_creat",
					    "sys_exit_openat2"};
	static const char *const paths[] = {"sys_exit_rename",	 "sys_exit_renameat",
					    "sys_exit_renameat2", "sys_exit_unlink",
					    "sys_exit_unlinkat",	 "sys_exit_truncate",
					    "sys_exit_ftruncate"};
	struct file_bpf *b = s;
	struct statfs fs;
	int rc;

	/* Per-syscall tracepoints live in tracefs: mount it when nothing has. */
	if (access("/sys/kernel/tracing/events", F_OK) && access("/sys/kernel/debug/tracing/events",
								  F_OK) &&
	    statfs("/sys/kernel/tracing", &fs) == 0)
		mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL);
	if ((rc = file_bpf__attach(b)))
		return rc;
	for (size_t i = 0; i < AGT_ARRAY_SIZE(opens) + AGT_ARRAY_SIZE(paths); i++) {
		int open = i < AGT_ARRAY_SIZE(opens);
		const char *tp = open ? opens[i] : paths[i - AGT_ARRAY_SIZE(opens)];
		struct bpf_link *l = bpf_program__attach_tracepoint(
		    open ? b->progs.file_exit_open : b->progs.file_exit_path, "syscalls", tp);

		if (!l)
			return -errno;
		file_links[nfile_links++] = l;
	}
	return 0;
}
static void file_destroy(void *s)
{
	while (nfile_links > 0)
		bpf_link__destroy(file_links[--nfile_links]);
	file_bpf__destroy(s);
}
static struct bpf_object *file_object(void *s)
{
	return ((struct file_bpf *)s)->obj;
}

static int with_runtime(const struct agt_unit_params *p)
{
	return p->runtime;
}
static void *rt_open(const struct bpf_object_open_opts *o)
{
	return rt_bpf__open_opts(o);
}
static void rt_configure(void *s, const struct agt_unit_params *p)
{
	COMMON((struct rt_bpf *)s, p);
}
static int rt_load(void *s)
{
	return rt_bpf__load(s);
}
static void rt_destroy(void *s)
{
	rt_bpf__destroy(s);
}
static struct bpf_object *rt_object(void *s)
{
	return ((struct rt_bpf *)s)->obj;
}

static void *aead_open(const struct bpf_object_open_opts *o)
{
	return aead_bpf__open_opts(o);
}
static void aead_configure(void *s, const struct agt_unit_params *p)
{
	struct aead_bpf *b = s;

	COMMON(b, p);
	b->rodata->aead_call_cap = p->call_cap;
}
static int aead_load(void *s)
{
	return aead_bpf__load(s);
}
static void aead_destroy(void *s)
{
	aead_bpf__destroy(s);
}
static struct bpf_object *aead_object(void *s)
{
	return ((struct aead_bpf *)s)->obj;
}

static const struct unit_desc units[AGT_UNIT_COUNT] = {
    [AGT_UNIT_FUNC] = {"function probes", always, func_open, func_configure, func_load, NULL,
		       func_destroy, func_object},
    [AGT_UNIT_PROC] = {"process tracepoints", always, proc_open, proc_configure, proc_load,
		       proc_attach, proc_destroy, proc_object},
    [AGT_UNIT_TLS] = {"TLS capture", always, tls_open, tls_configure, tls_load, NULL,
		      tls_destroy, tls_object},
    [AGT_UNIT_SOCK] = {"TCP capture (socket tracepoints)", with_tcp, sock_open, sock_configure,
		       sock_load, sock_attach, sock_destroy, sock_object},
    [AGT_UNIT_FILE] = {"file lineage (syscall tracepoints)", with_files, file_open, file_configure,
		       file_load, file_attach, file_destroy, file_object},
    [AGT_UNIT_RT] = {"runtime metrics", with_runtime, rt_open, rt_configure, rt_load, NULL,
		     rt_destroy, rt_object},
    [AGT_UNIT_AEAD] = {"TLS capture at the AEAD layer", always, aead_open, aead_configure,
		       aead_load, NULL, aead_destroy, aead_object},
};

static void **slot(struct agt_capture *c, int id)
{
	switch (id) {
	case AGT_UNIT_FUNC: return (void **)&c->func;
	case AGT_UNIT_PROC: return (void **)&c->proc;
	case AGT_UNIT_TLS: return (void **)&c->tls;
	case AGT_UNIT_FILE: return (void **)&c->file;
	case AGT_UNIT_RT: return (void **)&c->rt;
	case AGT_UNIT_AEAD: return (void **)&c->aead;
	default: return (void **)&c->sock;
	}
}

/* tracefs, where libbpf finds the ids of the system call tracepoints (pipe capture). */
void agt_mount_tracefs(void)
{
	if (!access("/sys/kernel/tracing/events", F_OK))
		return;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL))
		agt_warn("cannot mount tracefs at /sys/kernel/tracing (%s); pipe capture needs it "
			 "(mount -t tracefs tracefs /sys/kernel/tracing)",
			 strerror(errno));
}

/* ---- this run's pin folder, and the folders of runs that are gone ---- */

/* /proc/PID/stat field 22 (start time in clock ticks); 0 when the process is gone. */
static uint64_t start_ticks(int pid)
{
	char path[64], buf[1024], *p;
	size_t n;
	FILE *f;
	int field = 2;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!(f = fopen(path, "re")))
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
	while (p && *p && field < 22)
		if (*p++ == ' ')
			field++;
	return p ? strtoull(p, NULL, 10) : 0;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[512];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* Whether folder name "PID_START" belongs to a process still running; its pid in *pid. */
static int live_instance(const char *name, int *pid)
{
	char *sep;
	long p = strtol(name, &sep, 10);

	if (p <= 0 || *sep != '_' || !isdigit((unsigned char)sep[1]))
		return -1; /* not an instance folder */
	*pid = (int)p;
	return start_ticks((int)p) == strtoull(sep + 1, NULL, 10);
}

int agt_instances_list(struct agt_instance *out, int max)
{
	DIR *d = opendir(AGT_INSTANCES_DIR);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d))) {
		char path[300];
		int pid, live = live_instance(e->d_name, &pid);

		if (live < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", AGT_INSTANCES_DIR, e->d_name);
		if (!live) { /* killed before it could clean up: its maps are freed now */
			remove_dir(path);
			continue;
		}
		if (n < max) {
			out[n].pid = pid;
			snprintf(out[n].dir, sizeof(out[n].dir), "%s", path);
		}
		n++;
	}
	if (d)
		closedir(d);
	return n < max ? n : max;
}

/* Make this run's folder, mounting bpffs when it is not mounted; "" when that fails (the units
 * then share maps by descriptor, and `agtrace sample` cannot reach this run). */
static void make_dir(struct agt_capture *c)
{
	struct statfs fs;
	struct agt_instance seen[1];

	c->dir[0] = 0;
	if (statfs(AGT_BPFFS, &fs) || fs.f_type != BPF_FS_MAGIC_) {
		mkdir(AGT_BPFFS, 0700);
		if (mount("bpf", AGT_BPFFS, "bpf", 0, NULL)) {
			agt_warn("cannot mount bpffs at %s (%s); sampling cannot be changed while "
				 "this run goes on (mount it: mount -t bpf bpf %s)",
				 AGT_BPFFS, strerror(errno), AGT_BPFFS);
			return;
		}
	}
	mkdir(AGT_INSTANCES_DIR, 0700);
	agt_instances_list(seen, 0); /* removes what runs that are gone left behind */
	snprintf(c->dir, sizeof(c->dir), "%s/%d_%llu", AGT_INSTANCES_DIR, (int)getpid(),
		 (unsigned long long)start_ticks(getpid()));
	remove_dir(c->dir);
	if (mkdir(c->dir, 0700)) {
		agt_warn("cannot make %s (%s); sampling cannot be changed while this run goes on",
			 c->dir, strerror(errno));
		c->dir[0] = 0;
	}
}

/* Without a pin folder: the maps marked for pinning are shared by descriptor with the first
 * unit's, and pinned nowhere. */
static int share_by_fd(struct agt_capture *c, struct bpf_object *obj, int first)
{
	struct bpf_map *m;

	bpf_object__for_each_map(m, obj)
	{
		struct bpf_map *own;

		if (!bpf_map__pin_path(m))
			continue;
		if (bpf_map__set_pin_path(m, NULL))
			return -EINVAL;
		if (first)
			continue;
		own = bpf_object__find_map_by_name(c->func->obj, bpf_map__name(m));
		if (own && bpf_map__reuse_fd(m, bpf_map__fd(own)))
			return -errno;
	}
	return 0;
}

int agt_capture_load(struct agt_capture *c, const struct agt_unit_params *p, char *err,
		     size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	int rc;

	make_dir(c);
	if (c->dir[0])
		oo.pin_root_path = c->dir;
	for (int id = 0; id < AGT_UNIT_COUNT; id++) {
		const struct unit_desc *u = &units[id];
		void **s = slot(c, id);

		if (!u->wanted(p))
			continue;
		if (!(*s = u->open(&oo)))
			return agt_seterr(err, errlen, -errno,
					  "cannot open agtrace's %s: %s; run `agtrace check`",
					  u->what, strerror(errno));
		u->configure(*s, p);
		if (!c->dir[0] && (rc = share_by_fd(c, u->object(*s), id == AGT_UNIT_FUNC)))
			return agt_seterr(err, errlen, rc, "cannot share maps with agtrace's %s: %s",
					  u->what, strerror(-rc));
		if ((rc = u->load(*s)))
			return agt_seterr(err, errlen, rc,
					  "the kernel refused agtrace's %s (%s); run `agtrace "
					  "check`, and -v shows the verifier log",
					  u->what, strerror(rc < 0 ? -rc : rc));
	}
	return 0;
}

int agt_capture_attach(struct agt_capture *c, char *err, size_t errlen)
{
	for (int id = 0; id < AGT_UNIT_COUNT; id++) {
		void *s = *slot(c, id);
		int rc;

		if (!s || !units[id].attach)
			continue;
		if ((rc = units[id].attach(s)))
			return agt_seterr(err, errlen, rc,
					  "cannot attach agtrace's %s (%s); run `agtrace check`%s",
					  units[id].what, strerror(rc < 0 ? -rc : rc),
					  id == AGT_UNIT_SOCK	? ", or use --no-tcp"
					  : id == AGT_UNIT_FILE ? ", or drop --files"
								: "");
	}
	c->attached = 1;
	return 0;
}

int agt_capture_aead_watch(struct agt_capture *c, int pid, char *err, size_t errlen)
{
	struct bpf_program *progs[2];
	uint32_t key = (uint32_t)pid, one = 1;

	if (!c->aead)
		return agt_seterr(err, errlen, -EINVAL, "the AEAD capture is not loaded");
	progs[0] = c->aead->progs.aead_sys_enter;
	progs[1] = c->aead->progs.aead_sys_exit;
	for (int i = 0; i < 2; i++)
		if (!c->aead_tp[i] && !(c->aead_tp[i] = bpf_program__attach(progs[i]))) {
			int e = -errno;

			return agt_seterr(err, errlen, e,
					  "cannot attach the AEAD capture's system call tracepoints "
					  "(%s); run `agtrace check`",
					  strerror(-e));
		}
	if (bpf_map__update_elem(c->aead->maps.aead_procs, &key, sizeof(key), &one, sizeof(one),
				 0))
		return agt_seterr(err, errlen, -errno, "cannot add PID %d to the AEAD capture: %s",
				  pid, strerror(errno));
	return 0;
}

void agt_capture_aead_unwatch(struct agt_capture *c, int pid)
{
	uint32_t key = (uint32_t)pid;

	if (c->aead)
		bpf_map__delete_elem(c->aead->maps.aead_procs, &key, sizeof(key), 0);
}

void agt_capture_destroy(struct agt_capture *c)
{
	for (int i = 0; i < 2; i++) {
		bpf_link__destroy(c->aead_tp[i]);
		c->aead_tp[i] = NULL;
	}
	for (int id = AGT_UNIT_COUNT - 1; id >= 0; id--) {
		void **s = slot(c, id);

		if (*s)
			units[id].destroy(*s);
		*s = NULL;
	}
	if (c->dir[0])
		remove_dir(c->dir);
	c->dir[0] = 0;
}

struct bpf_map *agt_capture_map(struct agt_capture *c, const char *name)
{
	return c->func ? bpf_object__find_map_by_name(c->func->obj, name) : NULL;
}
