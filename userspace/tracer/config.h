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
	const char *output_file;
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
	long idle_timeout; /* seconds without activity before a conversation is closed */
	struct agt_sample_cfg sample_cfg[AGT_SS_MAX]; /* per source, as --sample set it */
	long event_budget; /* events per second the adaptive controller aims under; 0: off */
	const char *selects[MAX_SPECS]; /* --select: discover targets by these */
	int nselects;
	struct agt_k8s_config k8s;
	long max_targets;  /* live discovered targets at most */
	long forget_after; /* seconds a gone target is kept before it is freed */
	int dry_run;	   /* check the options and stop */
	struct agt_redactor *redactor; /* built-in rules and the --redact patterns */
	char **owned; /* strings the config owns (from a configuration file) */
	int nowned;
};

/* What the tracer runs: 0, or -errno after one sentence on stderr. argv is recorded (redacted)
 * in the audit trail as what started the run. */
int agt_run(const struct agt_config *c, int argc, char **argv);
#endif
