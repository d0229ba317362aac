/* The settings of a run: one struct, filled from the command line (`agtrace attach`) or from a
 * JSON file (`agtrace run --config`) through the same option table and the same checks
 * (the commands fill it; the run only reads it). Strings point into argv or into memory the
 * config owns, freed with it. */
#ifndef AGT_CONFIG_H
#define AGT_CONFIG_H
#include "agtrace.h"
#include "capture/container.h"
#include "export/exporters.h"

#define MAX_PIDS 256
#define MAX_SPECS 64

struct agt_redactor;

struct agt_config {
	int pids[MAX_PIDS];
	int npids;
	const char *spec_args[MAX_SPECS];
	int nspec_args;
	const char *uprobe_args[MAX_SPECS];
	int nuprobe_args;
	const char *output; /* tree | jsonl | NULL (auto) */
	const char *output_file; /* may name one file per day: spans-%Y-%m-%d.jsonl (UTC) */
	/* Rotation of the output file and of the audit trail: past max_bytes or older than
	 * max_age seconds, a file is renamed FILE.N; keep_bytes bounds all of them. 0: never. */
	long output_max_bytes, output_max_age, output_keep_bytes;
	long audit_max_bytes, audit_max_age, audit_keep_bytes;
	const char *audit_file;
	const char *audit_key_file;		     /* HMAC key of the trail; NULL: unkeyed */
	long audit_ckpt_records, audit_ckpt_seconds; /* 0: the defaults */
	const char *metrics_listen;
	struct agt_exporter_config exp[AGT_EXP_COUNT]; /* each exporter's own settings */
	struct agt_delivery_config delivery;	       /* spool, dead letters, drain: shared */
	long duration;
	long max_depth, max_threads;
	long max_message;  /* bytes of one TLS call / HTTP message captured at most */
	int tcp;	   /* capture plaintext HTTP over TCP: -1 auto (on without probes given) */
	int pipes;	   /* with it, JSON-RPC over pipes (system call tracepoints) */
	int no_exec_stop;  /* never stop a process at exec of an executable not looked at yet */
	long idle_timeout; /* seconds without activity before a conversation is closed */
	struct agt_sample_cfg sample_cfg[AGT_SS_MAX]; /* per source, as --sample set it */
	long event_budget; /* events per second the adaptive controller aims under; 0: off */
	const char *selects[MAX_SPECS]; /* --select: discover targets by these */
	int nselects;
	struct agt_k8s_config k8s;
	long max_targets;  /* live discovered targets at most */
	long forget_after; /* seconds a gone target is kept before it is freed */
	int dry_run;	   /* check the options and stop */
	const char *service_name;   /* service.name of every span; NULL: $OTEL_SERVICE_NAME, else
				       each workload's */
	int capture_content;	    /* export what LLM calls said (gen_ai.*.messages) */
	long capture_content_bytes; /* ... each at most this long; 0: 32768 */
	const char *log_level, *log_format; /* --log-level, --log-format; NULL: as before */
	int verbose;			    /* -v: --log-level debug */
	struct agt_redactor *redactor; /* built-in rules and the --redact patterns */
	/* File lineage (--files): what traced processes create, write, truncate, rename and
	 * delete, under the tool call that did it. */
	int files;
	int files_read;	    /* also files opened for reading */
	int capture_diffs;  /* a unified diff of small text files */
	const char *files_ignore[MAX_SPECS]; /* path globs never recorded */
	int nfiles_ignore;
	long files_hash_max; /* bytes of a file hashed at most (larger ones say so) */
	int runtime_metrics; /* the traced processes' runtime metrics: -1 auto (with --metrics) */
	char **owned; /* strings the config owns (from a configuration file) */
	int nowned;
};

/* What the tracer runs: 0, or -errno after one sentence on stderr. argv is recorded (redacted)
 * in the audit trail as what started the run. */
int agt_run(const struct agt_config *c, int argc, char **argv);
#endif
