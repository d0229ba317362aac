/* The option table of a run, and its two front ends: getopt over attach's command line, and a
 * walk over run's JSON configuration. A value reaches the config through the row's setter in
 * both cases, so a setting is checked the same way (and refused with the same sentence)
 * whichever way it is given. */
#include "cli/options.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/util.h"
#include "capture/sampling.h"
#include "export/metrics.h"
#include "export/outfile.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum opt_type {
	T_STR,	 /* a string */
	T_LONG,	 /* a whole number in [min, max] */
	T_FLAG,	 /* no value (a file's true sets it) */
	T_LIST,	 /* a string, repeatable (a file's array) */
	T_BOOL,	 /* file only: true or false */
	T_TITLE, /* not an option: a heading of --help */
};

struct opt;
/* Check v and keep it in c; name is how the user wrote the option, for the sentence. 0, or
 * -EINVAL with the sentence in err. */
typedef int (*opt_set)(struct agt_config *c, const struct opt *o, const char *name,
		       const char *v, char *err, size_t n);

struct opt {
	const char *flag; /* long option without its dashes; NULL: files only */
	char shrt;	  /* short option, or 0 */
	const char *json; /* dotted key in a configuration file; NULL: command line only */
	enum opt_type type;
	opt_set set;	  /* NULL: stored at off by type */
	size_t off;	  /* offsetof(struct agt_config, ...) */
	long min, max;	  /* T_LONG */
	const char *want; /* T_LONG: what a value must be ("a number from 1 to 16384") */
	const char *arg;  /* --help: the value's name */
	const char *help; /* --help: what it does (wrapped when printed) */
};

#define OFF(f) offsetof(struct agt_config, f)

/* ---- setters ---- */

static int set_pid(struct agt_config *c, const struct opt *o, const char *name, const char *v,
		   char *err, size_t n)
{
	long x;

	(void)o;
	if (agt_parse_long(v, 1, 0x3fffffff, &x))
		return agt_seterr(err, n, -EINVAL,
				  "%s needs a process id (a positive number), got \"%s\"", name, v);
	if (c->npids == MAX_PIDS)
		return agt_seterr(err, n, -EINVAL, "too many %s options (at most %d), at \"%s\"",
				  name, MAX_PIDS, v);
	c->pids[c->npids++] = (int)x;
	return 0;
}

static int set_list(const char **arr, int *cnt, const char *what, const char *v, char *err,
		    size_t n)
{
	if (*cnt == MAX_SPECS)
		return agt_seterr(err, n, -EINVAL, "too many %s options (at most %d), at \"%s\"",
				  what, MAX_SPECS, v);
	arr[(*cnt)++] = v;
	return 0;
}

static int set_probes(struct agt_config *c, const struct opt *o, const char *name, const char *v,
		      char *err, size_t n)
{
	(void)o;
	(void)name;
	return set_list(c->spec_args, &c->nspec_args, "--probes", v, err, n);
}

static int set_uprobe(struct agt_config *c, const struct opt *o, const char *name, const char *v,
		      char *err, size_t n)
{
	(void)o;
	(void)name;
	return set_list(c->uprobe_args, &c->nuprobe_args, "--uprobe", v, err, n);
}

static int set_select(struct agt_config *c, const struct opt *o, const char *name, const char *v,
		      char *err, size_t n)
{
	(void)o;
	(void)name;
	return set_list(c->selects, &c->nselects, "--select", v, err, n);
}

static int set_output(struct agt_config *c, const struct opt *o, const char *name, const char *v,
		      char *err, size_t n)
{
	(void)o;
	if (strcmp(v, "tree") && strcmp(v, "jsonl"))
		return agt_seterr(err, n, -EINVAL, "%s must be tree or jsonl, got \"%s\"", name, v);
	c->output = v;
	return 0;
}

static int set_redact(struct agt_config *c, const struct opt *o, const char *name, const char *v,
		      char *err, size_t n)
{
	(void)o;
	(void)name;
	return agt_redactor_add(c->redactor, v, err, n);
}

static int set_tcp(struct agt_config *c, const struct opt *o, const char *name, const char *v,
		   char *err, size_t n)
{
	(void)name;
	(void)err;
	(void)n;
	/* --tcp, --no-tcp, or a file's "tcp": true/false */
	c->tcp = o->type == T_BOOL ? !strcmp(v, "true") : !strcmp(o->flag, "tcp");
	return 0;
}

static int set_files(struct agt_config *c, const struct opt *o, const char *name, const char *v,
		     char *err, size_t n)
{
	(void)name, (void)v, (void)err, (void)n;
	/* --files, and what implies it: --files-read, --capture-diffs */
	c->files = 1;
	if (!strcmp(o->json, "files.read"))
		c->files_read = 1;
	else if (!strcmp(o->json, "files.diffs"))
		c->capture_diffs = 1;
	return 0;
}

static int set_files_ignore(struct agt_config *c, const struct opt *o, const char *name,
			    const char *v, char *err, size_t n)
{
	(void)o;
	if (!v[0])
		return agt_seterr(err, n, -EINVAL, "%s needs a path glob, such as '/home/*/.cache/*'",
				  name);
	return set_list(c->files_ignore, &c->nfiles_ignore, "--files-ignore", v, err, n);
}

static int set_runtime_metrics(struct agt_config *c, const struct opt *o, const char *name,
			       const char *v, char *err, size_t n)
{
	(void)name, (void)err, (void)n;
	/* --runtime-metrics, --no-runtime-metrics, or a file's "metrics.runtime": true/false */
	c->runtime_metrics =
	    o->type == T_BOOL ? !strcmp(v, "true") : !strcmp(o->flag, "runtime-metrics");
	return 0;
}

static int set_sample(struct agt_config *c, const struct opt *o, const char *name, const char *v,
		      char *err, size_t n)
{
	struct agt_sample_cfg probe = {0};
	int src = -1;

	(void)o;
	(void)name;
	if (agt_sample_parse(v, &src, &probe, err, n))
		return -EINVAL;
	/* The fields named change the source's settings; the rest stay. */
	agt_sample_parse(v, &src, &c->sample_cfg[src], NULL, 0);
	return 0;
}

static int set_metrics(struct agt_config *c, const struct opt *o, const char *name, const char *v,
		       char *err, size_t n)
{
	struct sockaddr_storage sa;

	(void)o;
	(void)name;
	if (agt_metrics_listen_addr(v, &sa, err, n))
		return -EINVAL;
	c->metrics_listen = v;
	return 0;
}

static int set_drain(struct agt_config *c, const struct opt *o, const char *name, const char *v,
		     char *err, size_t n)
{
	long x;

	(void)o;
	if (agt_parse_long(v, 1, 3600, &x))
		return agt_seterr(err, n, -EINVAL, "%s needs 1 to 3600, got \"%s\"", name, v);
	c->delivery.drain_seconds = (double)x;
	return 0;
}

static int set_spool_max(struct agt_config *c, const struct opt *o, const char *name,
			 const char *v, char *err, size_t n)
{
	long x;

	(void)o;
	if (agt_parse_long(v, 4096, 1L << 40, &x))
		return agt_seterr(err, n, -EINVAL, "%s needs a byte count from 4096, got \"%s\"",
				  name, v);
	c->delivery.spool_max = (uint64_t)x;
	return 0;
}

static int set_overflow(struct agt_config *c, const struct opt *o, const char *name,
			const char *v, char *err, size_t n)
{
	(void)o;
	if (strcmp(v, "oldest") && strcmp(v, "newest"))
		return agt_seterr(err, n, -EINVAL, "%s needs oldest or newest, got \"%s\"", name, v);
	c->delivery.overflow = strcmp(v, "oldest") ? AGT_OVERFLOW_NEWEST : AGT_OVERFLOW_OLDEST;
	return 0;
}

static int set_sync_ms(struct agt_config *c, const struct opt *o, const char *name,
		       const char *v, char *err, size_t n)
{
	long x;

	(void)o;
	if (agt_parse_long(v, 1, 60000, &x))
		return agt_seterr(err, n, -EINVAL,
				  "%s needs milliseconds from 1 to 60000, got \"%s\"", name, v);
	c->delivery.sync_ms = (int)x;
	return 0;
}

static int set_log_level(struct agt_config *c, const struct opt *o, const char *name,
			 const char *v, char *err, size_t n)
{
	enum agt_log_level l;

	(void)o;
	if (agt_log_parse_level(v, &l))
		return agt_seterr(err, n, -EINVAL, "%s needs error, warn, info or debug, got \"%s\"",
				  name, v);
	c->log_level = v;
	return 0;
}

static int set_log_format(struct agt_config *c, const struct opt *o, const char *name,
			  const char *v, char *err, size_t n)
{
	enum agt_log_format f;

	(void)o;
	if (agt_log_parse_format(v, &f))
		return agt_seterr(err, n, -EINVAL, "%s needs text or json, got \"%s\"", name, v);
	c->log_format = v;
	return 0;
}

#define ES(f) OFF(exp[AGT_EXP_ELASTICSEARCH].f)
#define OTLP(f) OFF(exp[AGT_EXP_OTLP].f)

static int set_otlp_header(struct agt_config *c, const struct opt *o, const char *name,
			   const char *v, char *err, size_t n)
{
	struct agt_exporter_config *x = &c->exp[AGT_EXP_OTLP];
	const char *eq = strchr(v, '=');

	(void)o;
	if (!eq || eq == v || strpbrk(v, "\r\n: "))
		return agt_seterr(err, n, -EINVAL, "%s needs NAME=VALUE (an HTTP header), got \"%s\"",
				  name, v);
	if (x->nheaders == AGT_MAX_HEADERS)
		return agt_seterr(err, n, -EINVAL, "too many %s options (at most %d)", name,
				  AGT_MAX_HEADERS);
	x->headers[x->nheaders++] = v;
	return 0;
}

static int set_otlp_protocol(struct agt_config *c, const struct opt *o, const char *name,
			     const char *v, char *err, size_t n)
{
	(void)o;
	if (strcmp(v, "http/protobuf") && strcmp(v, "http/json"))
		return agt_seterr(err, n, -EINVAL, "%s needs http/protobuf or http/json, got \"%s\"",
				  name, v);
	c->exp[AGT_EXP_OTLP].protocol = v;
	return 0;
}

static int set_otlp_compression(struct agt_config *c, const struct opt *o, const char *name,
				const char *v, char *err, size_t n)
{
	(void)o;
	if (strcmp(v, "gzip") && strcmp(v, "none"))
		return agt_seterr(err, n, -EINVAL, "%s needs gzip or none, got \"%s\"", name, v);
	c->exp[AGT_EXP_OTLP].compression = v;
	return 0;
}

/* Every option of a run. */
static const struct opt opts[] = {
    {.type = T_TITLE, .help = "Targets"},
    {"pid", 'p', "targets.pids", T_LIST, set_pid, 0, 0, 0, NULL, "PID",
     "process to trace (repeat for several)"},
    {"select", 0, "targets.select", T_LIST, set_select, 0, 0, 0, NULL, "SELECTOR",
     "trace every process that matches, already running or started later (found at\n"
     "exec), until it exits; KEY=GLOB conditions joined by commas, all must hold: exe,\n"
     "comm, cmdline, cgroup, container (id), namespace, pod, and label.NAME (pod labels);\n"
     "repeat for alternatives; runs until stopped. Example:\n"
     "--select 'comm=python3*,cmdline=*agent*' or --select 'namespace=ai,label.app=bot'"},
    {"max-targets", 0, "max_targets", T_LONG, NULL, OFF(max_targets), 1, 16384,
     "a number from 1 to 16384", "N", "discovered processes traced at once at most (1024)"},
    {"forget-after", 0, "forget_after", T_LONG, NULL, OFF(forget_after), 1, 86400,
     "seconds from 1 to 86400", "SECONDS",
     "a target that exited is kept this long (late events of its children still find\n"
     "it), then freed (default 60)"},
    {"k8s-pods-url", 0, "kubernetes.pods_url", T_STR, NULL, OFF(k8s.pods_url), 0, 0, NULL,
     "URL",
     "where pod names, namespaces and labels come from: the kubelet's\n"
     "https://NODE:10250/pods or the API server's\n"
     "/api/v1/pods?fieldSelector=spec.nodeName=NODE (default in a pod: the API server, with $NODE_NAME)"},
    {"k8s-token-file", 0, "kubernetes.token_file", T_STR, NULL, OFF(k8s.token_file), 0, 0,
     NULL, "FILE", "its bearer token (default in a pod: the service account's)"},
    {"k8s-ca", 0, "kubernetes.ca", T_STR, NULL, OFF(k8s.ca_file), 0, 0, NULL, "FILE",
     "its CA bundle"},
    {"k8s-insecure", 0, "kubernetes.insecure", T_FLAG, NULL, OFF(k8s.insecure), 0, 0, NULL,
     NULL, "do not verify its TLS certificate"},
    {.type = T_TITLE, .help = "What to capture"},
    {"probes", 0, "probes", T_LIST, set_probes, 0, 0, 0, NULL, "FILE|NAME",
     "a probe spec (JSON), or the name of a shipped one (see `agtrace probes list`);\n"
     "repeatable. Without --probes and --uprobe: the shipped specs marked auto, on what\n"
     "each target maps (LLM API calls over TLS, in a library or linked into the binary)"},
    {"uprobe", 0, "uprobes", T_LIST, set_uprobe, 0, 0, 0, NULL, "PATH:SYMBOL",
     "one-off probe: PATH is an absolute path or a library name as the target maps it\n"
     "(globs allowed: libc.so*), SYMBOL a function name or glob; records entry, return\n"
     "and duration"},
    {"tcp", 0, NULL, T_FLAG, set_tcp, 0, 0, 0, NULL, NULL,
     "capture plaintext HTTP over TCP (local model servers such as Ollama or vLLM)\n"
     "and JSON-RPC over UNIX sockets (MCP over stdio, as Node gives it) at the socket\n"
     "tracepoints; on by default when no --probes/--uprobe is given"},
    {"no-tcp", 0, NULL, T_FLAG, set_tcp, 0, 0, 0, NULL, NULL, "do not"},
    {NULL, 0, "tcp", T_BOOL, set_tcp, 0, 0, 0, NULL, NULL, NULL},
    {"pipes", 0, "pipes", T_FLAG, NULL, OFF(pipes), 0, 0, NULL, NULL,
     "with TCP capture, JSON-RPC over pipes too (MCP over stdio as Python gives it);\n"
     "through system call tracepoints, which every system call on the node then pays"},
    {"no-exec-stop", 0, "no_exec_stop", T_FLAG, NULL, OFF(no_exec_stop), 0, 0, NULL, NULL,
     "never stop a traced or pending process at the exec of an executable agtrace has\n"
     "not looked at yet (TLS in the executable itself, as Go's, is then probed only once\n"
     "agtrace has read the exec: the first calls may be missed)"},
    {"max-depth", 0, "max_depth", T_LONG, NULL, OFF(max_depth), 1, 1 << 20,
     "a number from 1 to 1048576", "N",
     "open calls kept per thread (default 64; deeper ones are counted as\n"
     "depth_exceeded)"},
    {"max-threads", 0, "max_threads", T_LONG, NULL, OFF(max_threads), 1, 1 << 20,
     "a number from 1 to 1048576", "N", "threads with open calls kept (default 4096)"},
    {"max-message", 0, "max_message", T_LONG, NULL, OFF(max_message), 4096, 64L << 20,
     "a byte count from 4096 to 67108864", "BYTES",
     "bytes of one HTTP message (one TLS call) captured at most (default 1048576);\n"
     "longer ones are marked truncated"},
    {"idle-timeout", 0, "idle_timeout", T_LONG, NULL, OFF(idle_timeout), 1, 86400,
     "a whole number of seconds from 1 to 86400", "SECONDS",
     "a conversation with no activity for this long is closed, its open tool calls as\n"
     "unfinished (default 300)"},
    {"files", 0, "files.track", T_FLAG, set_files, 0, 0, 0, NULL, NULL,
     "file lineage: record the regular files the traced processes and their children\n"
     "create, write, truncate, rename and delete (path as the process saw it, bytes, and\n"
     "the SHA-256 after the last close), as children of the tool call that did it; the\n"
     "rest as the process's own (syscall tracepoints, traced processes only)"},
    {"files-read", 0, "files.read", T_FLAG, set_files, 0, 0, 0, NULL, NULL,
     "... and the files they read (implies --files)"},
    {"files-ignore", 0, "files.ignore", T_LIST, set_files_ignore, 0, 0, 0, NULL, "GLOB",
     "never record paths that match (fnmatch, '*' crosses '/'), such as\n"
     "'/home/*/.cache/*'; repeatable"},
    {"files-hash-max", 0, "files.hash_max_bytes", T_LONG, NULL, OFF(files_hash_max), 0,
     1L << 40, "a byte count from 0", "BYTES",
     "hash files up to this size (default 16777216); larger ones say so"},
    {"capture-diffs", 0, "files.diffs", T_FLAG, set_files, 0, 0, 0, NULL, NULL,
     "add a unified diff (redacted, 4 KiB at most) of each changed text file up to\n"
     "64 KiB whose content before agtrace knows (implies --files)"},
    {.type = T_TITLE, .help = "Output"},
    {"output", 'o', "output.format", T_STR, set_output, 0, 0, 0, NULL, "tree|jsonl",
     "tree: spans nested by thread, printed when each root call finishes (default on a\n"
     "terminal); jsonl: one JSON object per span or event (default otherwise)"},
    {"output-file", 0, "output.file", T_STR, NULL, OFF(output_file), 0, 0, NULL, "FILE",
     "append there instead of writing to stdout (written at least once a second; a write\n"
     "that fails is counted and makes the exit code 1); strftime conversions in the file\n"
     "name (spans-%Y-%m-%d.jsonl) give one file per day (UTC), chosen by each span's start"},
    {"output-max-bytes", 0, "output.max_bytes", T_LONG, NULL, OFF(output_max_bytes), 4096,
     1L << 50, "a byte count from 4096", "BYTES",
     "rotate the output file before it grows past this: it is renamed FILE.N (N one more\n"
     "than the highest there) and a new FILE is started"},
    {"output-max-age", 0, "output.max_age", T_LONG, NULL, OFF(output_max_age), 1,
     365L * 86400, "seconds from 1 to 31536000", "SECONDS",
     "rotate the output file once it is this old"},
    {"output-keep-bytes", 0, "output.keep_bytes", T_LONG, NULL, OFF(output_keep_bytes), 4096,
     1L << 50, "a byte count from 4096", "BYTES",
     "bytes the output's files (rotated ones and other days') take at most, the current\n"
     "one included: the oldest are removed"},
    {"duration", 0, "duration", T_LONG, NULL, OFF(duration), 1, 365L * 86400,
     "a whole number of seconds", "SECONDS",
     "stop after this long (default: until every target exits or SIGINT/SIGTERM)"},
    {"redact", 0, "redact", T_LIST, set_redact, 0, 0, 0, NULL, "REGEX",
     "also redact what this PCRE2 regex matches, such as \\d{4} (API keys, bearer\n"
     "tokens and credential fields always are)"},
    {.type = T_TITLE, .help = "Sampling"},
    {"sample", 0, "sample", T_LIST, set_sample, 0, 0, 0, NULL,
     "SOURCE=RATIO[,rate=N][,burst=N][,bytes=N]",
     "kernel-side sampling per source (func, tls, sock, proc, python): sessions kept,\n"
     "events/s, payload bytes; change it while running with `agtrace sample set`"},
    {"event-budget", 0, "event_budget", T_LONG, NULL, OFF(event_budget), 1, 100000000,
     "events per second, a whole number from 1", "N",
     "adapt the sampling ratios (halve, or double back up to the configured ones) to\n"
     "stay under N events per second and keep the ring buffer from overflowing"},
    {.type = T_TITLE, .help = "Audit trail"},
    {"audit", 0, "audit", T_STR, NULL, OFF(audit_file), 0, 0, NULL, "FILE",
     "append a chained audit trail: configuration, attach, detach, exits, sampling\n"
     "changes, a digest of every decision and tool call, checkpoints and a seal at a\n"
     "clean end (check it: agtrace audit verify)"},
    {"audit-key", 0, "audit_key", T_STR, NULL, OFF(audit_key_file), 0, 0, NULL, "FILE",
     "HMAC-SHA256 key of the chain (at least 16 bytes, readable by its owner only; make\n"
     "one: head -c 32 /dev/urandom > FILE; chmod 600 FILE): a forged or re-hashed trail\n"
     "is then detected"},
    {"audit-checkpoint-records", 0, "audit_checkpoint_records", T_LONG, NULL,
     OFF(audit_ckpt_records), 1, 1000000, "a number from 1 to 1000000", "N",
     "a fsync'd checkpoint every N records (default 100)"},
    {"audit-checkpoint-seconds", 0, "audit_checkpoint_seconds", T_LONG, NULL,
     OFF(audit_ckpt_seconds), 1, 1000000, "a number from 1 to 1000000", "N",
     "... and at least every N seconds (default 30)"},
    {"audit-max-bytes", 0, "audit_max_bytes", T_LONG, NULL, OFF(audit_max_bytes), 4096,
     1L << 50, "a byte count from 4096", "BYTES",
     "rotate the trail before it grows past this: it ends in a rotate record, is renamed\n"
     "FILE.N, and the new FILE goes on with the chain (verify them together: agtrace audit\n"
     "verify FILE.1 FILE.2 ... FILE)"},
    {"audit-max-age", 0, "audit_max_age", T_LONG, NULL, OFF(audit_max_age), 1, 365L * 86400,
     "seconds from 1 to 31536000", "SECONDS", "rotate the trail once it is this old"},
    {"audit-keep-bytes", 0, "audit_keep_bytes", T_LONG, NULL, OFF(audit_keep_bytes), 4096,
     1L << 50, "a byte count from 4096", "BYTES",
     "bytes the trail's files take at most, the current one included: the oldest rotated\n"
     "ones are removed"},
    {.type = T_TITLE, .help = "Exporters"},
    {"metrics", 0, "metrics.listen", T_STR, set_metrics, 0, 0, 0, NULL, "[ADDR:]PORT",
     "serve Prometheus metrics at http://ADDR:PORT/metrics"},
    {"runtime-metrics", 0, NULL, T_FLAG, set_runtime_metrics, 0, 0, 0, NULL, NULL,
     "with --metrics (default on): each traced process's CPU, memory, threads, open\n"
     "files and start time, by workload, read from /proc at scrape time; Python, Go and\n"
     "Node garbage collections, goroutines and event-loop use from their runtimes' own\n"
     "markers and functions"},
    {"no-runtime-metrics", 0, NULL, T_FLAG, set_runtime_metrics, 0, 0, 0, NULL, NULL, "do not"},
    {NULL, 0, "metrics.runtime", T_BOOL, set_runtime_metrics, 0, 0, 0, NULL, NULL, NULL},
    {"es", 0, "elasticsearch.url", T_STR, NULL, ES(url), 0, 0, NULL, "URL",
     "also send every span to Elasticsearch (_bulk, gzip), into a data stream (op_type\n"
     "create, _id = span id)"},
    {"es-index", 0, "elasticsearch.index", T_STR, NULL, ES(index_pattern), 0, 0, NULL,
     "NAME", "the data stream (default agentic-traces; a strftime pattern, UTC, is expanded)"},
    {"es-api-key-file", 0, "elasticsearch.api_key_file", T_STR, NULL, ES(api_key_file), 0, 0,
     NULL, "FILE", "Elasticsearch's API key (else $AGTRACE_ES_API_KEY; never the command line)"},
    {"es-user", 0, "elasticsearch.user", T_STR, NULL, ES(user), 0, 0, NULL, "USER",
     "basic auth, with --es-password-file or $AGTRACE_ES_PASSWORD"},
    {"es-password-file", 0, "elasticsearch.password_file", T_STR, NULL, ES(password_file), 0, 0,
     NULL, "FILE", "the password of --es-user"},
    {"es-ca", 0, "elasticsearch.ca", T_STR, NULL, ES(ca_file), 0, 0, NULL, "FILE",
     "CA bundle for Elasticsearch's TLS"},
    {"es-insecure", 0, "elasticsearch.insecure", T_FLAG, NULL, ES(insecure), 0, 0, NULL, NULL,
     "do not verify Elasticsearch's TLS certificate"},
    {"es-install-template", 0, "elasticsearch.install_template", T_FLAG, NULL,
     ES(install_template), 0, 0, NULL, NULL,
     "put the index template (a data stream's) and ILM policy at start"},
    {"es-drain-seconds", 0, "elasticsearch.drain_seconds", T_STR, set_drain, 0, 0, 0, NULL,
     "N", "at exit, how long every exporter keeps trying before the spool (default 10)"},
    {"otlp", 0, "otlp.url", T_STR, NULL, OTLP(url), 0, 0, NULL, "URL",
     "also send every span to an OpenTelemetry collector over OTLP/HTTP (protobuf by\n"
     "default), one resource per workload, GenAI semantic conventions; URL is the full\n"
     "traces URL (http://collector:4318/v1/traces), /v1/traces is added to one without a\n"
     "path; same delivery guarantees and spool (DIR/otlp) as --es. Also\n"
     "$OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as it is) or $OTEL_EXPORTER_OTLP_ENDPOINT"},
    {"otlp-protocol", 0, "otlp.protocol", T_STR, set_otlp_protocol, 0, 0, 0, NULL,
     "http/protobuf|http/json", "OTLP's encoding (default http/protobuf, or\n"
     "$OTEL_EXPORTER_OTLP_PROTOCOL)"},
    {"otlp-header", 0, "otlp.headers", T_LIST, set_otlp_header, 0, 0, 0, NULL, "NAME=VALUE",
     "a request header of the OTLP exporter only, such as an Authorization (repeatable;\n"
     "also $OTEL_EXPORTER_OTLP_HEADERS)"},
    {"otlp-timeout", 0, "otlp.timeout_ms", T_LONG, NULL, OTLP(timeout_ms), 1, 600000,
     "milliseconds from 1 to 600000", "MS",
     "how long one request may take (default 10000, or $OTEL_EXPORTER_OTLP_TIMEOUT)"},
    {"otlp-compression", 0, "otlp.compression", T_STR, set_otlp_compression, 0, 0, 0, NULL,
     "gzip|none", "request bodies gzip'd or not (default gzip)"},
    {"otlp-ca", 0, "otlp.ca", T_STR, NULL, OTLP(ca_file), 0, 0, NULL, "FILE",
     "CA bundle for the collector's TLS (or $OTEL_EXPORTER_OTLP_CERTIFICATE)"},
    {"otlp-client-cert", 0, "otlp.client_cert", T_STR, NULL, OTLP(client_cert), 0, 0, NULL,
     "FILE", "TLS client certificate (or $OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE)"},
    {"otlp-client-key", 0, "otlp.client_key", T_STR, NULL, OTLP(client_key), 0, 0, NULL,
     "FILE", "its key (or $OTEL_EXPORTER_OTLP_CLIENT_KEY)"},
    {"otlp-insecure", 0, "otlp.insecure", T_FLAG, NULL, OTLP(insecure), 0, 0, NULL, NULL,
     "do not verify the collector's TLS certificate"},
    {"service-name", 0, "service_name", T_STR, NULL, OFF(service_name), 0, 0, NULL, "NAME",
     "service.name of every span (else $OTEL_SERVICE_NAME; by default each workload's:\n"
     "its pod's resource.opentelemetry.io/service.name annotation, its Deployment,\n"
     "StatefulSet, DaemonSet or Job, else its executable's name)"},
    {"capture-content", 0, "capture_content", T_FLAG, NULL, OFF(capture_content), 0, 0, NULL,
     NULL,
     "also export what LLM calls said: gen_ai.input.messages, gen_ai.output.messages and\n"
     "gen_ai.system_instructions (redacted, and capped by --capture-content-bytes)"},
    {"capture-content-bytes", 0, "capture_content_bytes", T_LONG, NULL,
     OFF(capture_content_bytes), 256, 16L << 20, "a byte count from 256 to 16777216", "BYTES",
     "bytes of each of those at most, and of each text in them (default 32768)"},
    {"fluentd", 0, "fluentd.address", T_STR, NULL, OFF(exp[AGT_EXP_FLUENTD].url), 0, 0, NULL,
     "HOST:PORT",
     "also send every span to Fluentd (forward protocol, msgpack, acks required:\n"
     "at-least-once; spool DIR/fluentd)"},
    {"fluentd-tag", 0, "fluentd.tag", T_STR, NULL, OFF(exp[AGT_EXP_FLUENTD].tag), 0, 0, NULL,
     "TAG", "its tag (default agentic.traces)"},
    {"spool-dir", 0, "spool.dir", T_STR, NULL, OFF(delivery.spool_dir), 0, 0, NULL, "DIR",
     "the exporters' write-ahead spool: spans are kept there until delivered, replayed\n"
     "in order, by the next run too (default /var/lib/agtrace/spool)"},
    {"spool-max-bytes", 0, "spool.max_bytes", T_STR, set_spool_max, 0, 0, 0, NULL, "N",
     "bytes the spool keeps at most (default 256 MiB)"},
    {"spool-overflow", 0, "spool.overflow", T_STR, set_overflow, 0, 0, 0, NULL,
     "oldest|newest",
     "when the spool is full: drop the oldest spans, or refuse new ones (default\n"
     "newest); what is dropped is counted"},
    {"spool-sync-ms", 0, "spool.sync_ms", T_STR, set_sync_ms, 0, 0, 0, NULL, "MS",
     "under load, fsync the spool at most this often (default 100): what a crash can\n"
     "cost at most"},
    {"dead-letter", 0, "dead_letter", T_STR, NULL, OFF(delivery.dead_letter), 0, 0, NULL,
     "FILE", "where documents Elasticsearch rejects go, with its reason"},
    {.type = T_TITLE, .help = "Other"},
    {"dry-run", 0, NULL, T_FLAG, NULL, OFF(dry_run), 0, 0, NULL, NULL,
     "check the options, selectors and probe specs, print what would be traced, and stop\n"
     "(no privileges needed)"},
    {"verbose", 'v', NULL, T_FLAG, NULL, OFF(verbose), 0, 0, NULL, NULL,
     "debug output, including libbpf's own log (--log-level debug)"},
    {"log-level", 0, "log.level", T_STR, set_log_level, 0, 0, 0, NULL, "LEVEL",
     "what goes to stderr: error, warn, info (default) or debug"},
    {"log-format", 0, "log.format", T_STR, set_log_format, 0, 0, 0, NULL, "text|json",
     "json: one object a line on stderr, {\"time\", \"level\", \"msg\"}, for a log\n"
     "collector (default text)"},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

int agt_config_init(struct agt_config *c)
{
	memset(c, 0, sizeof(*c));
	c->max_depth = 64;
	c->max_message = 1 << 20;
	c->tcp = -1;
	c->idle_timeout = 300;
	c->max_threads = 4096;
	c->max_targets = 1024;
	c->forget_after = 60;
	c->files_hash_max = 16L << 20;
	c->runtime_metrics = -1;
	for (int k = 0; k < AGT_SS_MAX; k++)
		c->sample_cfg[k] = (struct agt_sample_cfg){.ratio_ppm = AGT_SAMPLE_ONE};
	return (c->redactor = agt_redactor_new()) ? 0 : -ENOMEM;
}

void agt_config_free(struct agt_config *c)
{
	agt_redactor_free(c->redactor);
	c->redactor = NULL;
	for (int i = 0; i < c->nowned; i++)
		free(c->owned[i]);
	free(c->owned);
	c->owned = NULL;
	c->nowned = 0;
}

/* Check v and keep it, by the row's setter or its type. */
static int apply(struct agt_config *c, const struct opt *o, const char *name, const char *v,
		 char *err, size_t n)
{
	char *at = (char *)c + o->off;
	long x;

	if (o->set)
		return o->set(c, o, name, v, err, n);
	switch (o->type) {
	case T_STR: *(const char **)at = v; return 0;
	case T_FLAG: *(int *)at = 1; return 0;
	case T_LONG:
		if (agt_parse_long(v, o->min, o->max, &x))
			return agt_seterr(err, n, -EINVAL, "%s needs %s, got \"%s\"", name, o->want,
					  v);
		*(long *)at = x;
		return 0;
	default: return agt_seterr(err, n, -EINVAL, "%s cannot be given here", name);
	}
}

/* What holds whichever way the options came; what the environment adds (OTLP's variables). */
static int check(struct agt_config *c, char *err, size_t n)
{
	struct agt_outfile_config oc = {.path = c->output_file};
	int rc;

	if ((rc = agt_otlp_config_env(&c->exp[AGT_EXP_OTLP], err, n)))
		return rc;
	if (c->verbose && c->log_level)
		return agt_seterr(err, n, -EINVAL,
				  "-v and --log-level both set the log level (-v is --log-level "
				  "debug); give one");
	if (c->output && !strcmp(c->output, "tree") && c->log_format &&
	    !strcmp(c->log_format, "json"))
		return agt_seterr(err, n, -EINVAL,
				  "-o tree is a view for a person at a terminal and --log-format "
				  "json is for a log collector; use -o jsonl with JSON logs");
	if (!c->audit_file && (c->audit_key_file || c->audit_ckpt_records || c->audit_ckpt_seconds))
		return agt_seterr(err, n, -EINVAL,
				  "--audit-key and --audit-checkpoint-* need --audit FILE");
	if (!c->audit_file && (c->audit_max_bytes || c->audit_max_age || c->audit_keep_bytes))
		return agt_seterr(err, n, -EINVAL,
				  "--audit-max-bytes, --audit-max-age and --audit-keep-bytes need "
				  "--audit FILE");
	if (!c->output_file && (c->output_max_bytes || c->output_max_age || c->output_keep_bytes))
		return agt_seterr(err, n, -EINVAL,
				  "--output-max-bytes, --output-max-age and --output-keep-bytes need "
				  "--output-file FILE (standard output cannot be rotated)");
	return agt_outfile_check(&oc, err, n);
}

int agt_config_apply_logging(const struct agt_config *c)
{
	enum agt_log_level l = AGT_LOG_INFO;
	enum agt_log_format f = AGT_LOG_TEXT;

	if (c->verbose || c->log_level) {
		if (c->log_level)
			agt_log_parse_level(c->log_level, &l);
		else
			l = AGT_LOG_DEBUG;
		if (agt_log_level_given() && agt_log_get_level() != l) {
			agt_err("the log level is given twice, before the command and after it, "
				"differently; give it once");
			return -EINVAL;
		}
		agt_log_set_level(l);
	}
	if (c->log_format) {
		agt_log_parse_format(c->log_format, &f);
		if (agt_log_format_given() && agt_log_get_format() != f) {
			agt_err("the log format is given twice, before the command and after it, "
				"differently; give it once");
			return -EINVAL;
		}
		agt_log_set_format(f);
	}
	return 0;
}

/* ---- the command line ---- */

static int usage_error(const char *msg)
{
	agt_err("%s; see `agtrace attach --help`", msg);
	return -EINVAL;
}

int agt_config_argv(struct agt_config *c, int argc, char **argv)
{
	struct option lopts[NOPTS + 2];
	char shorts[3 * NOPTS + 4] = ":", err[512], name[64];
	char seen[NOPTS]; /* options given so far */
	size_t nl = 0, ns = 1;
	int ch, idx;

	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		int has_arg = o->type == T_FLAG ? no_argument : required_argument;

		if (!o->flag)
			continue;
		lopts[nl++] = (struct option){o->flag, has_arg, NULL, (int)(256 + i)};
		if (o->shrt) {
			shorts[ns++] = o->shrt;
			if (has_arg == required_argument)
				shorts[ns++] = ':';
		}
	}
	lopts[nl++] = (struct option){"help", no_argument, NULL, 'h'};
	lopts[nl] = (struct option){0};
	shorts[ns++] = 'h';
	shorts[ns] = 0;
	optind = 1;
	opterr = 0;
	memset(seen, 0, sizeof(seen));
	while ((ch = getopt_long(argc, argv, shorts, lopts, &idx)) != -1) {
		const struct opt *o = NULL;

		if (ch == 'h') {
			agt_config_usage(stdout);
			return 1;
		}
		if (ch == ':') {
			snprintf(err, sizeof(err), "option %s needs a value", argv[optind - 1]);
			return usage_error(err);
		}
		if (ch == '?') {
			snprintf(err, sizeof(err), "unknown option \"%s\"", argv[optind - 1]);
			return usage_error(err);
		}
		if (ch >= 256) {
			o = &opts[ch - 256];
		} else {
			for (size_t i = 0; i < NOPTS && !o; i++)
				if (opts[i].flag && opts[i].shrt == ch)
					o = &opts[i];
		}
		if (!o)
			continue;
		if (ch >= 256)
			snprintf(name, sizeof(name), "--%s", o->flag);
		else
			snprintf(name, sizeof(name), "-%c", o->shrt);
		/* Not last-wins: an option of one value given twice, or its opposite given. */
		if (o->type != T_LIST && seen[o - opts]) {
			snprintf(err, sizeof(err), "%s is given twice; give it once", name);
			return usage_error(err);
		}
		seen[o - opts] = 1;
		if (o->set == set_tcp)
			for (size_t i = 0; i < NOPTS; i++)
				if (opts[i].set == set_tcp && &opts[i] != o && seen[i]) {
					snprintf(err, sizeof(err),
						 "--tcp and --no-tcp contradict each other; give one");
					return usage_error(err);
				}
		if (apply(c, o, name, optarg, err, sizeof(err))) {
			/* What the option's own parser says (a spec, a pattern, an address) stands
			 * alone; the checks of a value point at --help. */
			if (o->set == set_redact || o->set == set_metrics)
				agt_err("%s", err);
			else if (o->set == set_sample)
				agt_err("%s; see `agtrace sample --help`", err);
			else
				return usage_error(err);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		snprintf(err, sizeof(err), "unexpected argument \"%s\"", argv[optind]);
		return usage_error(err);
	}
	if (check(c, err, sizeof(err)))
		return usage_error(err);
	if (!c->npids && !c->nselects)
		return usage_error("no target: give the process to trace with -p PID, or --select "
				   "KEY=PATTERN to find processes by name, command line, container "
				   "or pod");
	return 0;
}

/* ---- a configuration file ---- */

/* Where each member and value of the parsed file is in its text: cJSON keeps no positions, so
 * the text is walked once more in the same order as the tree cJSON built from it. */
struct pos {
	const cJSON *node;
	int key, value; /* offsets: the member's key (-1 in arrays), its value */
};

struct src {
	const char *file, *text;
	struct pos *pos;
	int npos, cap;
};

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *skip_string(const char *p) /* at the opening quote */
{
	for (p++; *p && *p != '"'; p++)
		if (*p == '\\' && p[1])
			p++;
	return *p ? p + 1 : p;
}

static void remember(struct src *f, const cJSON *node, int key, int value)
{
	if (f->npos == f->cap) {
		int cap = f->cap ? 2 * f->cap : 64;
		struct pos *np = realloc(f->pos, cap * sizeof(*np));

		if (!np)
			return;
		f->pos = np;
		f->cap = cap;
	}
	f->pos[f->npos++] = (struct pos){node, key, value};
}

/* node's value starts at p (blanks before it allowed); returns the end of the value. */
static const char *locate(struct src *f, const cJSON *node, const char *p, int key)
{
	p = skip_ws(p);
	remember(f, node, key, (int)(p - f->text));
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		const cJSON *kid = node ? node->child : NULL;

		p = skip_ws(p + 1);
		while (*p && *p != close) {
			int k = -1;

			if (close == '}') {
				k = (int)(p - f->text);
				p = skip_ws(skip_string(p));
				if (*p == ':')
					p++;
			}
			p = skip_ws(locate(f, kid, p, k));
			kid = kid ? kid->next : NULL;
			if (*p == ',')
				p = skip_ws(p + 1);
			else
				break;
		}
		return *p ? p + 1 : p;
	}
	if (*p == '"')
		return skip_string(p);
	while (*p && !strchr(",]} \t\r\n", *p))
		p++;
	return p;
}

/* "FILE:LINE:COLUMN" of an offset (columns count bytes, from 1). */
static void where(const struct src *f, int off, char *out, size_t n)
{
	int line = 1, col = 1;

	for (int i = 0; i < off && f->text[i]; i++) {
		if (f->text[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	snprintf(out, n, "%s:%d:%d", f->file, line, col);
}

/* One sentence naming the file, the line and column of node (its key when at_key, as for an
 * unknown key; else its value) and the JSON path. */
static int file_error(const struct src *f, const cJSON *node, int at_key, const char *path,
		      const char *what)
{
	char at[PATH_MAX + 32];
	int off = 0;

	for (int i = 0; i < f->npos; i++)
		if (f->pos[i].node == node) {
			off = at_key && f->pos[i].key >= 0 ? f->pos[i].key : f->pos[i].value;
			break;
		}
	where(f, off, at, sizeof(at));
	agt_err("%s: %s: %s; see the configuration section of the README", at, path, what);
	return -EINVAL;
}

/* A string the config keeps (it outlives the parsed file). */
static const char *own(struct agt_config *c, const char *s)
{
	char **v = realloc(c->owned, (c->nowned + 1) * sizeof(*v)), *d;

	if (!v)
		return NULL;
	c->owned = v;
	if (!(d = strdup(s)))
		return NULL;
	return c->owned[c->nowned++] = d;
}

/* A selector object -> "key=glob,...,label.K=glob" (commas and backslashes escaped). */
static int selector_text(const struct src *file, const cJSON *sel, char *out, size_t cap)
{
	static const char *const keys[] = {"exe",	"comm",	     "cmdline", "cgroup",
					   "container", "namespace", "pod"};
	size_t n = 0;
	const cJSON *it;

	if (!cJSON_IsObject(sel) || !sel->child)
		return file_error(file, sel, 0, "$.targets.select",
				  "must be a list of objects such as {\"comm\": \"python3*\", "
				  "\"cmdline\": \"*agent*\"}");
	cJSON_ArrayForEach(it, sel)
	{
		int labels = !strcmp(it->string, "labels"), known = labels;
		char path[128];

		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			known |= !strcmp(it->string, keys[i]);
		snprintf(path, sizeof(path), "$.targets.select[].%s", it->string);
		if (!known)
			return file_error(file, it, 1, path,
					  "unknown key (exe, comm, cmdline, cgroup, container, "
					  "namespace, pod, labels)");
		if (labels ? !cJSON_IsObject(it) : !cJSON_IsString(it))
			return file_error(file, it, 0, path,
					  labels ? "must be an object of strings"
						 : "must be a string (a glob)");
		for (const cJSON *lab = labels ? it->child : it; lab;
		     lab = labels ? lab->next : NULL) {
			const char *val = cJSON_GetStringValue(lab);

			if (!val) {
				snprintf(path, sizeof(path), "$.targets.select[].labels.%s",
					 lab->string);
				return file_error(file, lab, 0, path, "must be a string (a glob)");
			}
			n += snprintf(out + n, n < cap ? cap - n : 0, "%s%s%s=", n ? "," : "",
				      labels ? "label." : "", lab->string);
			for (const char *ch = val; *ch && n + 2 < cap; ch++) {
				if (*ch == ',' || *ch == '\\')
					out[n++] = '\\';
				out[n++] = *ch;
			}
			if (n + 2 >= cap)
				return file_error(file, sel, 0, "$.targets.select",
						  "a selector is too long");
			out[n] = 0;
		}
	}
	return 0;
}

/* One JSON value of an option, as the text its setter takes. */
static int value_text(struct agt_config *c, const struct src *file, const char *path,
		      const struct opt *o, const cJSON *v, const char **out)
{
	char buf[4096];

	if (cJSON_IsString(v) && (o->type == T_STR || o->type == T_LIST) && o->set != set_pid) {
		*out = own(c, v->valuestring);
	} else if (cJSON_IsNumber(v) && (o->type == T_LONG || o->type == T_STR ||
					 o->type == T_LIST)) {
		if (v->valuedouble == (double)(long long)v->valuedouble)
			snprintf(buf, sizeof(buf), "%lld", (long long)v->valuedouble);
		else
			snprintf(buf, sizeof(buf), "%.17g", v->valuedouble);
		*out = own(c, buf);
	} else if (cJSON_IsBool(v) && (o->type == T_FLAG || o->type == T_BOOL)) {
		*out = cJSON_IsTrue(v) ? "true" : "false";
	} else if (cJSON_IsObject(v) && o->set == set_select) {
		if (selector_text(file, v, buf, sizeof(buf)))
			return -EINVAL;
		*out = own(c, buf);
	} else {
		return file_error(file, v, 0, path,
				  o->type == T_LONG   ? "must be a whole number"
				  : o->type == T_FLAG || o->type == T_BOOL ? "must be true or false"
				  : o->set == set_pid ? "must be process ids"
				  : o->set == set_select
				      ? "must be a list of objects such as {\"comm\": \"python3*\", "
					"\"cmdline\": \"*agent*\"}"
				      : "must be a string");
	}
	return *out ? 0 : -ENOMEM;
}

static int file_apply(struct agt_config *c, const struct src *file, const char *path,
		      const struct opt *o, const cJSON *v)
{
	char err[512], name[64];
	const char *text;
	int rc;

	if (o->type == T_LIST && !cJSON_IsArray(v))
		return file_error(file, v, 0, path,
				  o->set == set_pid ? "must be an array of process ids"
				  : o->set == set_select
				      ? "must be an array of selector objects"
				      : "must be an array of strings");
	for (const cJSON *e = o->type == T_LIST ? v->child : v; e;
	     e = o->type == T_LIST ? e->next : NULL) {
		text = NULL;
		if ((rc = value_text(c, file, path, o, e, &text)))
			return rc;
		if (o->type == T_FLAG && strcmp(text, "true"))
			continue; /* false: the option is not given */
		snprintf(name, sizeof(name), o->flag ? "--%s" : "%s", o->flag ? o->flag : path);
		if (apply(c, o, name, text, err, sizeof(err)))
			return file_error(file, e, 0, path, err);
	}
	return 0;
}

/* The members of obj at path (dotted, "" at the top). */
static int walk(struct agt_config *c, const struct src *file, const cJSON *obj,
		const char *prefix)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, obj)
	{
		char key[256], path[260];
		const struct opt *o = NULL;
		int section = 0;
		size_t kl;

		snprintf(key, sizeof(key), "%s%s%s", prefix, prefix[0] ? "." : "", it->string);
		snprintf(path, sizeof(path), "$.%s", key);
		for (const cJSON *before = obj->child; before != it; before = before->next)
			if (!strcmp(before->string, it->string))
				return file_error(file, it, 1, path,
						  "is given twice in this object; give it once");
		kl = strlen(key);
		for (size_t i = 0; i < NOPTS && !o; i++) {
			if (!opts[i].json)
				continue;
			if (!strcmp(opts[i].json, key))
				o = &opts[i];
			else if (!strncmp(opts[i].json, key, kl) && opts[i].json[kl] == '.')
				section = 1;
		}
		if (o) {
			if (file_apply(c, file, path, o, it))
				return -EINVAL;
		} else if (section) {
			if (!cJSON_IsObject(it))
				return file_error(file, it, 0, path, "must be an object");
			if (walk(c, file, it, key))
				return -EINVAL;
		} else {
			return file_error(file, it, 1, path, "unknown key");
		}
	}
	return 0;
}

int agt_config_file(struct agt_config *c, const char *file)
{
	char *text = agt_read_file(file, 1 << 20, NULL), err[512];
	struct src f = {.file = file};
	const char *end = NULL;
	cJSON *cfg;
	int rc = -EINVAL;

	if (!text) {
		int e = errno;

		agt_err("cannot read the configuration %s: %s", file, strerror(e));
		return -e;
	}
	f.text = text;
	cfg = cJSON_ParseWithOpts(text, &end, 1);
	if (!cfg) {
		char at[PATH_MAX + 32];
		const char *p = end ? end : text;

		if (!*skip_ws(p)) {
			where(&f, (int)(p - text), at, sizeof(at));
			agt_err("%s: the JSON ends too early (a bracket or a quote is not closed); "
				"fix the syntax",
				at);
		} else {
			/* cJSON stops after the culprit when blanks follow it: point at it */
			while (p > text && strchr(" \t\r\n", *p))
				p--;
			where(&f, (int)(p - text), at, sizeof(at));
			agt_err("%s: not valid JSON here (at `%.*s`); fix the syntax", at,
				(int)strcspn(p, "\r\n") < 16 ? (int)strcspn(p, "\r\n") : 16, p);
		}
		goto out;
	}
	locate(&f, cfg, text, -1);
	if (!cJSON_IsObject(cfg)) {
		file_error(&f, cfg, 0, "$", "must be a JSON object of settings");
		goto out;
	}
	if (walk(c, &f, cfg, ""))
		goto out;
	if (!c->npids && !c->nselects) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, "targets");

		file_error(&f, t ? t : cfg, 0, "$.targets",
			   "must name processes: \"pids\": [N...] and/or \"select\": [{\"comm\": "
			   "\"python3*\", \"cmdline\": \"*agent*\"}]");
		goto out;
	}
	/* What the environment adds is checked first: its mistakes are not the file's, and are
	 * said without a place in it. */
	if (agt_otlp_config_env(&c->exp[AGT_EXP_OTLP], err, sizeof(err))) {
		agt_err("%s", err);
		goto out;
	}
	if (check(c, err, sizeof(err))) {
		file_error(&f, cfg, 0, "$", err);
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(cfg);
	free(f.pos);
	free(text);
	return rc;
}

/* ---- --help, from the same rows ---- */

#define HELP_INDENT 28
#define HELP_WIDTH 98

/* One option's help, its line breaks taken as spaces, wrapped to HELP_WIDTH columns after
 * HELP_INDENT, with its file key in brackets at the end. */
static void wrap(FILE *f, const char *help, const char *json)
{
	char text[1024];
	int col = HELP_INDENT;

	snprintf(text, sizeof(text), "%s%s%s%s", help, json ? " [" : "", json ? json : "",
		 json ? "]" : "");
	for (char *w = text; *w;) {
		size_t n;

		while (*w == ' ' || *w == '\n')
			w++;
		n = strcspn(w, " \n");
		if (!n)
			break;
		if (col > HELP_INDENT && col + 1 + (int)n > HELP_WIDTH) {
			fprintf(f, "\n%*s", HELP_INDENT, "");
			col = HELP_INDENT;
		}
		fprintf(f, " %.*s", (int)n, w);
		col += 1 + (int)n;
		w += n;
	}
	fputc('\n', f);
}

void agt_config_usage(FILE *f)
{
	fprintf(f, "Usage: agtrace attach (-p PID | --select SELECTOR)...\n"
		   "                      [--probes FILE|NAME...] [--uprobe PATH:SYMBOL...]\n"
		   "                      [-o tree|jsonl] [--output-file FILE] [--duration SECONDS] "
		   "[exporters...]\n\n"
		   "Attach to running processes without touching them and print their calls as "
		   "spans.\n"
		   "Every option is also a key of `agtrace run --config FILE` (shown in brackets).\n");
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		char head[96];

		if (o->type == T_TITLE) {
			fprintf(f, "\n%s:\n", o->help);
			continue;
		}
		if (!o->flag || !o->help)
			continue;
		if (o->shrt)
			snprintf(head, sizeof(head), "-%c, --%s%s%s", o->shrt, o->flag,
				 o->arg ? " " : "", o->arg ? o->arg : "");
		else
			snprintf(head, sizeof(head), "--%s%s%s", o->flag, o->arg ? " " : "",
				 o->arg ? o->arg : "");
		fprintf(f, "  %-26s", head);
		if (strlen(head) > 26)
			fprintf(f, "\n  %-26s", "");
		wrap(f, o->help, o->json);
	}
	fprintf(f,
		"\nExamples:\n"
		"  agtrace attach -p $(pidof myapp) --uprobe /usr/local/bin/myapp:handle_*\n"
		"  agtrace attach -p 1234 --uprobe libc.so.6:getaddrinfo -o jsonl --duration 30\n"
		"  agtrace attach -p $(pidof python3) --probes python-gc\n"
		"  agtrace attach --select 'exe=*/node,cmdline=*agent.mjs*' -o jsonl\n"
		"\nOn exit a summary goes to stderr: records seen, spans emitted, drops by reason.\n");
}
