/* Capture sources as units: each BPF object agtrace loads is one row of a table saying how to
 * open it, what to fix in it before load, how to load it, and whether its programs attach on
 * their own (tracepoints) or per target (uprobes, attached by capture/attach code). The maps
 * the objects share are marked LIBBPF_PIN_BY_NAME in bpf/common.bpf.h and pinned in this run's
 * own folder, /sys/fs/bpf/agtrace/<pid>_<start time> (bpffs refuses dots in names): several agtrace runs on one node never
 * share or remove each other's maps, and `agtrace sample` finds each run's sampling map there.
 * Without bpffs the objects share the maps by file descriptor instead (same set, same names). */
#ifndef AGT_UNITS_H
#define AGT_UNITS_H
#include <stddef.h>
#include <stdint.h>

#define AGT_BPFFS "/sys/fs/bpf"
#define AGT_INSTANCES_DIR AGT_BPFFS "/agtrace"

/* What the objects need to know before they are loaded. */
struct agt_unit_params {
	uint32_t ncpus;	   /* the token buckets are per CPU */
	uint64_t salt;	   /* for the session-sampling hash */
	uint64_t call_cap; /* TLS and socket payload bytes copied per call at most */
	int discover;	   /* report execs of non-targets (selectors given) */
	int tcp;	   /* load the socket capture (TCP and IPC) */
	int files;	   /* load the file lineage capture */
	int files_read;	   /* ... and follow files opened for reading too */
	int runtime;	   /* load the runtime metrics programs */
	int pipes;	   /* with it, pipes too (system call tracepoints: every system call of
			    * the node then takes the kernel's traced slow path) */
};

enum agt_unit_id {
	AGT_UNIT_FUNC = 0, /* function probes and USDT: loaded first, it creates the shared maps */
	AGT_UNIT_PROC = 1, /* fork, exec, exit; library loads */
	AGT_UNIT_TLS = 2,  /* TLS plaintext at the library */
	AGT_UNIT_SOCK = 3, /* TCP and IPC payloads at the system call (with --tcp) */
	AGT_UNIT_FILE = 4, /* file lineage at the system call (with --files) */
	AGT_UNIT_RT = 5,   /* runtime metrics: GC and event loops (with --metrics) */
	AGT_UNIT_AEAD = 6, /* TLS records at the AEAD layer (rustls), joined to their sockets */
	AGT_UNIT_COUNT = 7,
};

struct func_bpf;
struct proc_bpf;
struct tls_bpf;
struct sock_bpf;
struct file_bpf;
struct rt_bpf;
struct aead_bpf;
struct bpf_map;
struct bpf_link;

/* The loaded units of one run. A unit not wanted (sock without TCP capture) is NULL. */
struct agt_capture {
	struct func_bpf *func;
	struct proc_bpf *proc;
	struct tls_bpf *tls;
	struct sock_bpf *sock;
	struct aead_bpf *aead;
	struct bpf_link *aead_tp[2]; /* its system call programs, attached for the first user */
	char dir[300]; /* this run's pin folder; "" when maps are shared by descriptor */
	int attached;  /* the self-attaching units' programs are attached */
	struct file_bpf *file;
	struct rt_bpf *rt;
};

/* Open, configure and load every wanted unit; the maps they share end up one set. -errno with
 * one sentence in err (what the kernel refused, and what to do). */
int agt_capture_load(struct agt_capture *c, const struct agt_unit_params *p, char *err,
		     size_t errlen);
/* Attach the units whose programs attach on their own (tracepoints). -errno with a sentence. */
int agt_capture_attach(struct agt_capture *c, char *err, size_t errlen);
/* Destroy the units and remove this run's pin folder. Safe on a partly loaded capture. */
void agt_capture_destroy(struct agt_capture *c);
/* Process pid has AEAD probes: its socket reads and writes are watched from now on (the AEAD
 * unit's system call programs are attached on the first call). -errno with a sentence. */
int agt_capture_aead_watch(struct agt_capture *c, int pid, char *err, size_t errlen);
/* Process pid has no AEAD probes any more (it exited): its calls are no longer looked at. */
void agt_capture_aead_unwatch(struct agt_capture *c, int pid);
/* A map every unit shares, by name ("events", "targets", "sampling", ...). */
struct bpf_map *agt_capture_map(struct agt_capture *c, const char *name);

/* Mount tracefs at /sys/kernel/tracing when it is not (warned about when that fails). */
void agt_mount_tracefs(void);

/* Running agtrace instances (for `agtrace sample`): their pid and pin folder. */
struct agt_instance {
	int pid;
	char dir[300];
};
/* Up to max live instances; the folders of runs that are gone are removed on the way. */
int agt_instances_list(struct agt_instance *out, int max);
#endif
