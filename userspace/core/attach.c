/* `agtrace attach`: resolve probe specs against target processes, load and attach the BPF
 * programs, run the pipeline until the targets exit, a signal, or --duration. */
#include "core/container.h"
#include "core/elfsym.h"
#include "core/log.h"
#include "core/pipeline.h"
#include "core/reaper.h"
#include "core/redact.h"
#include "core/sampling.h"
#include "core/select.h"
#include "export/audit.h"
#include "export/es.h"
#include "export/metrics.h"
#include "protocols/jsonrpc.h"
#include "trace/agent.h"
#include "core/preflight.h"
#include "core/util.h"
#include "func.skel.h"
#include "proc.skel.h"
#include "sock.skel.h"
#include "tls.skel.h"
#include <bpf/libbpf.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MAX_PIDS 256
#define MAX_SPECS 64
#define MAX_LINKS 20000

struct attach_opts {
	int pids[MAX_PIDS];
	int npids;
	const char *spec_args[MAX_SPECS];
	int nspec_args;
	const char *uprobe_args[MAX_SPECS];
	int nuprobe_args;
	const char *output; /* tree | jsonl | NULL (auto) */
	const char *output_file;
	const char *audit_file;
	const char *metrics_listen;
	struct agt_es_config es;
	const char *otlp_url, *fluentd, *fluentd_tag;
	long duration;
	long max_depth, max_threads;
	long max_message;  /* bytes of one TLS call / HTTP message captured at most */
	int tcp;	   /* capture plaintext HTTP over TCP: -1 auto (on without probes given) */
	long idle_timeout; /* seconds without activity before a conversation is closed */
	const char *sample[16]; /* --sample specs */
	int nsample;
	long event_budget; /* events per second the adaptive controller aims under; 0: off */
	const char *selects[MAX_SPECS]; /* --select: discover targets by these */
	int nselects;
	struct agt_k8s_config k8s;
	long max_targets;  /* live discovered targets at most */
	long forget_after; /* seconds a gone target is kept before it is freed */
	int dry_run;	   /* check the options and stop */
};

struct attach_run {
	struct attach_opts o;
	struct agt_spec specs[2 * MAX_SPECS];
	int nspecs;
	int auto_mode; /* no probes given: shipped "auto" specs, skipped where they do not apply */
	struct agt_pipeline pl;
	struct func_bpf *func;
	struct proc_bpf *proc;
	struct tls_bpf *tls;
	struct sock_bpf *sock;			       /* NULL without TCP capture */
	struct agt_sample_cfg sample_seen[AGT_SS_MAX]; /* the sampling last reported */
	uint32_t sample_max[AGT_SS_MAX];	       /* ratios as configured: the ceiling */
	uint64_t last_records, last_ringbuf_full;
	int pinned;
	struct bpf_link **links;
	int nlinks;
	struct agt_proc **link_owner; /* the target each link was attached for */
	struct agt_selector sel[MAX_SPECS];
	int nsel;
	struct agt_k8s *k8s;
	int ep;		     /* the event loop's epoll: targets' pidfds join it as they come */
	int live_seen;	     /* pl.live when gone targets were last detached */
	uint64_t discovered; /* targets found by a selector */
	uint64_t discover_failed, discover_limited;
	uint64_t forgotten;	   /* targets freed after they exited */
	uint64_t exec_gone;	   /* execs whose process was gone before it could be looked at */
	struct agt_reaper *reaper; /* destroys the links of targets that exited */
	struct ring_buffer *rb;
	FILE *out;
	struct agt_audit *audit;
	struct agt_metrics *metrics;
	struct agt_es *exp[3]; /* Elasticsearch, OTLP, Fluentd: one delivery core each */
	const volatile unsigned long *rb_cons, *rb_prod; /* ring buffer positions, read-only */
	uint64_t rb_size;
};

static void attach_usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: agtrace attach (-p PID | --select SELECTOR)... [--probes FILE|NAME...] "
	    "[--uprobe PATH:SYMBOL...]\n"
	    "                      [-o tree|jsonl] [--output-file FILE] [--duration SECONDS]\n"
	    "\n"
	    "Attach to running processes without touching them and print their calls as spans.\n"
	    "\n"
	    "  -p, --pid PID            process to trace (repeat for several)\n"
	    "  --select SELECTOR        trace every process that matches, already running or\n"
	    "                           started later (found at exec), until it exits; KEY=GLOB\n"
	    "                           conditions joined by commas, all must hold: exe, comm,\n"
	    "                           cmdline, cgroup, container (id), namespace, pod, and\n"
	    "                           label.NAME (pod labels); repeat for alternatives; runs\n"
	    "                           until stopped. Example: --select 'comm=python3*,\n"
	    "                           cmdline=*agent*'  or  --select "
	    "'namespace=ai,label.app=bot'\n"
	    "  --max-targets N          discovered processes traced at once at most (1024)\n"
	    "  --forget-after SECONDS   a target that exited is kept this long (late events of\n"
	    "                           its children still find it), then freed (default 60)\n"
	    "  --k8s-pods-url URL       where pod names, namespaces and labels come from: the\n"
	    "                           kubelet's https://NODE:10250/pods or the API server's\n"
	    "                           /api/v1/pods?fieldSelector=spec.nodeName=NODE (default in\n"
	    "                           a pod: the API server, with $NODE_NAME); "
	    "--k8s-token-file,\n"
	    "                           --k8s-ca FILE, --k8s-insecure\n"
	    "  (no --probes/--uprobe)   the shipped specs marked auto, on what each target maps:\n"
	    "                           LLM API calls over TLS (OpenSSL in a library or linked\n"
	    "                           into the binary, as in node)\n"
	    "  --probes FILE|NAME       a probe spec (JSON), or the name of a shipped one\n"
	    "                           (see `agtrace probes list`); repeatable\n"
	    "  --uprobe PATH:SYMBOL     one-off probe: PATH is an absolute path or a library name\n"
	    "                           as the target maps it (globs allowed: libc.so*), SYMBOL a\n"
	    "                           function name or glob; records entry, return and duration\n"
	    "  -o, --output tree|jsonl  tree: spans nested by thread, printed when each root call\n"
	    "                           finishes (default on a terminal); jsonl: one JSON object "
	    "per\n"
	    "                           span or event (default otherwise)\n"
	    "  --output-file FILE       append there instead of writing to stdout\n"
	    "  --duration SECONDS       stop after this long (default: until every target exits "
	    "or\n"
	    "                           SIGINT/SIGTERM)\n"
	    "  --max-depth N            open calls kept per thread (default 64; deeper ones are\n"
	    "                           counted as depth_exceeded)\n"
	    "  --max-threads N          threads with open calls kept (default 4096)\n"
	    "  --max-message BYTES      bytes of one HTTP message (one TLS call) captured at most\n"
	    "                           (default 1048576); longer ones are marked truncated\n"
	    "  --redact REGEX           also redact what this POSIX extended regex matches (API\n"
	    "                           keys, bearer tokens and credential fields always are)\n"
	    "  --tcp, --no-tcp          capture plaintext HTTP over TCP (local model servers such\n"
	    "                           as Ollama or vLLM) through syscall tracepoints; on by\n"
	    "                           default when no --probes/--uprobe is given\n"
	    "  --idle-timeout SECONDS   a conversation with no activity for this long is closed,\n"
	    "                           its open tool calls as unfinished (default 300)\n"
	    "  --sample SOURCE=RATIO[,rate=N][,burst=N][,bytes=N]\n"
	    "                           kernel-side sampling per source (func, tls, sock, proc,\n"
	    "                           python): sessions kept, events/s, payload bytes; change\n"
	    "                           it while running with `agtrace sample set`\n"
	    "  --event-budget N         adapt the sampling ratios (halve, or double back up to "
	    "the\n"
	    "                           configured ones) to stay under N events per second and\n"
	    "                           keep the ring buffer from overflowing\n"
	    "  --audit FILE             append a hash-chained audit trail: configuration, attach,\n"
	    "                           detach, exits, sampling changes, and a digest of every\n"
	    "                           decision and tool call (check it: agtrace audit verify)\n"
	    "  --metrics [ADDR:]PORT    serve Prometheus metrics at http://ADDR:PORT/metrics\n"
	    "  --es URL                 also send every span to Elasticsearch (_bulk, gzip), into\n"
	    "                           daily indices (--es-index, default "
	    "agentic-traces-%%Y.%%m.%%d)\n"
	    "                           with _id = span id; credentials from --es-api-key-file or\n"
	    "                           $AGTRACE_ES_API_KEY, or --es-user with --es-password-file "
	    "or\n"
	    "                           $AGTRACE_ES_PASSWORD (never the command line); --es-ca "
	    "FILE;\n"
	    "                           --es-install-template puts the index template and ILM "
	    "policy\n"
	    "  --otlp URL               also send every span to an OpenTelemetry collector over\n"
	    "                           OTLP/HTTP JSON (URL/v1/traces), with GenAI attribute "
	    "names;\n"
	    "                           same delivery guarantees and spool (DIR/otlp) as --es\n"
	    "  --fluentd HOST:PORT      also send every span to Fluentd (forward protocol, "
	    "msgpack,\n"
	    "                           acks required: at-least-once; --fluentd-tag TAG, default\n"
	    "                           agentic.traces; spool DIR/fluentd)\n"
	    "  --spool-dir DIR          where undeliverable spans wait, replayed in order "
	    "(default\n"
	    "                           /var/lib/agtrace/spool); --spool-max-bytes N (256 MiB);\n"
	    "                           --dead-letter FILE for documents Elasticsearch rejects;\n"
	    "                           at exit, --es-drain-seconds N (10) of trying, then the "
	    "spool\n"
	    "  --dry-run                check the options, selectors and probe specs, print what\n"
	    "                           would be traced, and stop (no privileges needed)\n"
	    "  -v, --verbose            debug output, including libbpf's own log\n"
	    "\n"
	    "Examples:\n"
	    "  agtrace attach -p $(pidof myapp) --uprobe /usr/local/bin/myapp:handle_*\n"
	    "  agtrace attach -p 1234 --uprobe libc.so.6:getaddrinfo -o jsonl --duration 30\n"
	    "  agtrace attach -p $(pidof python3) --probes python-gc\n"
	    "  agtrace attach --select 'exe=*/node,cmdline=*agent.mjs*' -o jsonl\n"
	    "\n"
	    "On exit a summary goes to stderr: records seen, spans emitted, drops by reason.\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "agtrace: error: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "; see `agtrace attach --help`\n");
	return AGT_EXIT_USAGE;
}

static int parse_opts(struct attach_opts *o, int argc, char **argv)
{
	enum {
		OPT_PROBES = 256,
		OPT_UPROBE,
		OPT_OUTFILE,
		OPT_DURATION,
		OPT_MAXDEPTH,
		OPT_MAXTHREADS,
		OPT_MAXMSG,
		OPT_REDACT,
		OPT_TCP,
		OPT_NOTCP,
		OPT_IDLE,
		OPT_SAMPLE,
		OPT_BUDGET,
		OPT_AUDIT,
		OPT_METRICS,
		OPT_ES,
		OPT_ES_INDEX,
		OPT_ES_KEY,
		OPT_ES_USER,
		OPT_ES_PASSWORD,
		OPT_ES_CA,
		OPT_ES_INSECURE,
		OPT_ES_TEMPLATE,
		OPT_SPOOL_DIR,
		OPT_SPOOL_MAX,
		OPT_DEAD_LETTER,
		OPT_ES_DRAIN,
		OPT_OTLP,
		OPT_FLUENTD,
		OPT_FLUENTD_TAG,
		OPT_SELECT,
		OPT_K8S_URL,
		OPT_K8S_TOKEN,
		OPT_K8S_CA,
		OPT_K8S_INSECURE,
		OPT_MAX_TARGETS,
		OPT_DRY_RUN,
		OPT_FORGET
	};
	static const struct option lopts[] = {
	    {"pid", required_argument, NULL, 'p'},
	    {"probes", required_argument, NULL, OPT_PROBES},
	    {"uprobe", required_argument, NULL, OPT_UPROBE},
	    {"output", required_argument, NULL, 'o'},
	    {"output-file", required_argument, NULL, OPT_OUTFILE},
	    {"duration", required_argument, NULL, OPT_DURATION},
	    {"max-depth", required_argument, NULL, OPT_MAXDEPTH},
	    {"max-threads", required_argument, NULL, OPT_MAXTHREADS},
	    {"max-message", required_argument, NULL, OPT_MAXMSG},
	    {"redact", required_argument, NULL, OPT_REDACT},
	    {"tcp", no_argument, NULL, OPT_TCP},
	    {"no-tcp", no_argument, NULL, OPT_NOTCP},
	    {"idle-timeout", required_argument, NULL, OPT_IDLE},
	    {"sample", required_argument, NULL, OPT_SAMPLE},
	    {"event-budget", required_argument, NULL, OPT_BUDGET},
	    {"audit", required_argument, NULL, OPT_AUDIT},
	    {"metrics", required_argument, NULL, OPT_METRICS},
	    {"es", required_argument, NULL, OPT_ES},
	    {"es-index", required_argument, NULL, OPT_ES_INDEX},
	    {"es-api-key-file", required_argument, NULL, OPT_ES_KEY},
	    {"es-user", required_argument, NULL, OPT_ES_USER},
	    {"es-password-file", required_argument, NULL, OPT_ES_PASSWORD},
	    {"es-ca", required_argument, NULL, OPT_ES_CA},
	    {"es-insecure", no_argument, NULL, OPT_ES_INSECURE},
	    {"es-install-template", no_argument, NULL, OPT_ES_TEMPLATE},
	    {"spool-dir", required_argument, NULL, OPT_SPOOL_DIR},
	    {"spool-max-bytes", required_argument, NULL, OPT_SPOOL_MAX},
	    {"dead-letter", required_argument, NULL, OPT_DEAD_LETTER},
	    {"es-drain-seconds", required_argument, NULL, OPT_ES_DRAIN},
	    {"otlp", required_argument, NULL, OPT_OTLP},
	    {"fluentd", required_argument, NULL, OPT_FLUENTD},
	    {"fluentd-tag", required_argument, NULL, OPT_FLUENTD_TAG},
	    {"select", required_argument, NULL, OPT_SELECT},
	    {"k8s-pods-url", required_argument, NULL, OPT_K8S_URL},
	    {"k8s-token-file", required_argument, NULL, OPT_K8S_TOKEN},
	    {"k8s-ca", required_argument, NULL, OPT_K8S_CA},
	    {"k8s-insecure", no_argument, NULL, OPT_K8S_INSECURE},
	    {"max-targets", required_argument, NULL, OPT_MAX_TARGETS},
	    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
	    {"forget-after", required_argument, NULL, OPT_FORGET},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	int c;
	long v;

	o->max_depth = 64;
	o->max_message = 1 << 20;
	o->tcp = -1;
	o->idle_timeout = 300;
	o->max_threads = 4096;
	o->max_targets = 1024;
	o->forget_after = 60;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:o:vh", lopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (agt_parse_long(optarg, 1, 0x3fffffff, &v))
				return usage_error(
				    "-p needs a process id (a positive number), got \"%s\"",
				    optarg);
			if (o->npids == MAX_PIDS)
				return usage_error("too many -p options (at most 256), at \"%s\"",
						   optarg);
			o->pids[o->npids++] = (int)v;
			break;
		case OPT_PROBES:
		case OPT_UPROBE: {
			const char **arr = c == OPT_PROBES ? o->spec_args : o->uprobe_args;
			int *n = c == OPT_PROBES ? &o->nspec_args : &o->nuprobe_args;

			if (*n == MAX_SPECS)
				return usage_error(
				    "too many --probes/--uprobe options (at most 64), at \"%s\"",
				    optarg);
			arr[(*n)++] = optarg;
			break;
		}
		case 'o':
			if (strcmp(optarg, "tree") && strcmp(optarg, "jsonl"))
				return usage_error("-o must be tree or jsonl, got \"%s\"", optarg);
			o->output = optarg;
			break;
		case OPT_OUTFILE: o->output_file = optarg; break;
		case OPT_DURATION:
			if (agt_parse_long(optarg, 1, 365L * 86400, &v))
				return usage_error(
				    "--duration needs a whole number of seconds, got \"%s\"",
				    optarg);
			o->duration = v;
			break;
		case OPT_MAXDEPTH:
		case OPT_MAXTHREADS:
			if (agt_parse_long(optarg, 1, 1 << 20, &v))
				return usage_error(
				    "--max-depth/--max-threads need a number from 1 to "
				    "1048576, got \"%s\"",
				    optarg);
			*(c == OPT_MAXDEPTH ? &o->max_depth : &o->max_threads) = v;
			break;
		case OPT_MAXMSG:
			if (agt_parse_long(optarg, 4096, 64L << 20, &v))
				return usage_error("--max-message needs a byte count from 4096 to "
						   "67108864, got \"%s\"",
						   optarg);
			o->max_message = v;
			break;
		case OPT_REDACT: {
			char err[256];

			if (agt_redact_add(optarg, err, sizeof(err))) {
				agt_err("%s", err);
				return AGT_EXIT_USAGE;
			}
			break;
		}
		case OPT_IDLE:
			if (agt_parse_long(optarg, 1, 86400, &v))
				return usage_error(
				    "--idle-timeout needs a whole number of seconds from 1 "
				    "to 86400, got \"%s\"",
				    optarg);
			o->idle_timeout = v;
			break;
		case OPT_SAMPLE: {
			struct agt_sample_cfg c = {0};
			int src = -1;
			char err[256];

			if (agt_sample_parse(optarg, &src, &c, err, sizeof(err))) {
				agt_err("%s; see `agtrace sample --help`", err);
				return AGT_EXIT_USAGE;
			}
			if (o->nsample == 16)
				return usage_error(
				    "too many --sample options (at most 16), at \"%s\"", optarg);
			o->sample[o->nsample++] = optarg;
			break;
		}
		case OPT_BUDGET:
			if (agt_parse_long(optarg, 1, 100000000, &v))
				return usage_error(
				    "--event-budget needs events per second, a whole "
				    "number from 1, got \"%s\"",
				    optarg);
			o->event_budget = v;
			break;
		case OPT_AUDIT: o->audit_file = optarg; break;
		case OPT_ES: o->es.url = optarg; break;
		case OPT_OTLP: o->otlp_url = optarg; break;
		case OPT_FLUENTD: o->fluentd = optarg; break;
		case OPT_FLUENTD_TAG: o->fluentd_tag = optarg; break;
		case OPT_ES_INDEX: o->es.index_pattern = optarg; break;
		case OPT_ES_KEY: o->es.api_key_file = optarg; break;
		case OPT_ES_USER: o->es.user = optarg; break;
		case OPT_ES_PASSWORD: o->es.password_file = optarg; break;
		case OPT_ES_CA: o->es.ca_file = optarg; break;
		case OPT_ES_INSECURE: o->es.insecure = 1; break;
		case OPT_ES_TEMPLATE: o->es.install_template = 1; break;
		case OPT_SPOOL_DIR: o->es.spool_dir = optarg; break;
		case OPT_DEAD_LETTER: o->es.dead_letter = optarg; break;
		case OPT_ES_DRAIN:
			if (agt_parse_long(optarg, 1, 3600, &v))
				return usage_error("--es-drain-seconds needs 1 to 3600, got \"%s\"",
						   optarg);
			o->es.drain_seconds = (double)v;
			break;
		case OPT_SPOOL_MAX:
			if (agt_parse_long(optarg, 4096, 1L << 40, &v))
				return usage_error(
				    "--spool-max-bytes needs a byte count from 4096, got "
				    "\"%s\"",
				    optarg);
			o->es.spool_max = (uint64_t)v;
			break;
		case OPT_METRICS: {
			struct sockaddr_in sa;
			char err[256];

			if (agt_metrics_listen_addr(optarg, &sa, err, sizeof(err))) {
				agt_err("%s", err);
				return AGT_EXIT_USAGE;
			}
			o->metrics_listen = optarg;
			break;
		}
		case OPT_SELECT:
			if (o->nselects == MAX_SPECS)
				return usage_error(
				    "too many --select options (at most 64), at \"%s\"", optarg);
			o->selects[o->nselects++] = optarg;
			break;
		case OPT_K8S_URL: o->k8s.pods_url = optarg; break;
		case OPT_K8S_TOKEN: o->k8s.token_file = optarg; break;
		case OPT_K8S_CA: o->k8s.ca_file = optarg; break;
		case OPT_K8S_INSECURE: o->k8s.insecure = 1; break;
		case OPT_DRY_RUN: o->dry_run = 1; break;
		case OPT_FORGET:
			if (agt_parse_long(optarg, 1, 86400, &v))
				return usage_error(
				    "--forget-after needs seconds from 1 to 86400, got "
				    "\"%s\"",
				    optarg);
			o->forget_after = v;
			break;
		case OPT_MAX_TARGETS:
			if (agt_parse_long(optarg, 1, 16384, &v))
				return usage_error(
				    "--max-targets needs a number from 1 to 16384, got \"%s\"",
				    optarg);
			o->max_targets = v;
			break;
		case OPT_TCP: o->tcp = 1; break;
		case OPT_NOTCP: o->tcp = 0; break;
		case 'v': agt_log_set_level(AGT_LOG_DEBUG); break;
		case 'h': attach_usage(stdout); exit(0);
		case ':': return usage_error("option %s needs a value", argv[optind - 1]);
		default: return usage_error("unknown option \"%s\"", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument \"%s\"", argv[optind]);
	if (!o->npids && !o->nselects)
		return usage_error("%sno target: give the process to trace with -p PID, or "
				   "--select KEY=PATTERN to find processes by name, command line, "
				   "container or pod",
				   "");
	return 0;
}

static int load_auto_one(const char *path, void *arg)
{
	struct attach_run *r = arg;
	char err[512];

	if (r->nspecs == (int)AGT_ARRAY_SIZE(r->specs))
		return 1;
	if (agt_spec_load(path, &r->specs[r->nspecs], err, sizeof(err))) {
		agt_warn("skipping a broken shipped spec: %s", err);
		return 0;
	}
	if (r->specs[r->nspecs].auto_attach)
		r->nspecs++;
	else
		agt_spec_free(&r->specs[r->nspecs]);
	return 0;
}

/* No --probes and no --uprobe: the shipped specs marked "auto", on whatever each target maps. */
static int load_auto_specs(struct attach_run *r)
{
	r->auto_mode = 1;
	agt_spec_for_each_shipped(load_auto_one, r);
	if (!r->nspecs) {
		agt_err(
		    "no built-in probe specs found (see `agtrace probes list`); give --probes FILE "
		    "or --uprobe PATH:SYMBOL");
		return AGT_EXIT_USAGE;
	}
	return 0;
}

static int load_specs(struct attach_run *r)
{
	char err[512], path[4096];

	if (!r->o.nspec_args && !r->o.nuprobe_args)
		return load_auto_specs(r);

	for (int i = 0; i < r->o.nspec_args; i++) {
		const char *arg = r->o.spec_args[i];

		if (!strchr(arg, '/') && access(arg, F_OK) &&
		    !agt_spec_find_shipped(arg, path, sizeof(path)))
			arg = path;
		if (agt_spec_load(arg, &r->specs[r->nspecs], err, sizeof(err))) {
			agt_err("%s", err);
			return AGT_EXIT_USAGE;
		}
		r->nspecs++;
	}
	for (int i = 0; i < r->o.nuprobe_args; i++) {
		if (agt_spec_from_uprobe(r->o.uprobe_args[i], &r->specs[r->nspecs], err,
					 sizeof(err))) {
			agt_err("%s", err);
			return AGT_EXIT_USAGE;
		}
		r->nspecs++;
	}
	return 0;
}

/* The probe id for (probe spec, symbol, object); shared by every target mapping that object. */
static struct agt_probe_info *probe_id_for(struct attach_run *r, const struct agt_spec *spec,
					   const struct agt_probe_spec *ps, const char *symbol,
					   const char *object)
{
	struct agt_pipeline *p = &r->pl;
	struct agt_probe_info *pi, **np;
	const char *tpl;
	size_t used = 0;

	for (uint32_t i = 0; i < p->nprobes; i++) {
		pi = p->probes[i];
		if (pi->ps == ps && !strcmp(pi->symbol, symbol) && !strcmp(pi->object, object))
			return pi;
	}
	if (p->nprobes >= AGT_MAX_PROBES)
		return NULL;
	np = realloc(p->probes, (p->nprobes + 1) * sizeof(*np));
	if (!np || !(pi = calloc(1, sizeof(*pi))))
		return NULL;
	p->probes = np;
	pi->id = p->nprobes;
	pi->spec = spec;
	pi->ps = ps;
	snprintf(pi->symbol, sizeof(pi->symbol), "%s", symbol);
	snprintf(pi->object, sizeof(pi->object), "%s", object);
	/* Render the span template: {symbol} becomes the function (or marker) name. */
	for (tpl = ps->span; *tpl && used + 1 < sizeof(pi->span_name);) {
		if (!strncmp(tpl, "{symbol}", 8)) {
			used += snprintf(pi->span_name + used, sizeof(pi->span_name) - used, "%s",
					 symbol);
			if (used >= sizeof(pi->span_name))
				used = sizeof(pi->span_name) - 1;
			tpl += 8;
		} else {
			pi->span_name[used++] = *tpl++;
		}
	}
	pi->span_name[used] = 0;
	p->probes[p->nprobes++] = pi;
	return pi;
}

static int add_link(struct attach_run *r, struct bpf_link *l, int target, const char *what,
		    const char *path)
{
	struct bpf_link **nl;
	struct agt_proc **no;
	int e = errno;

	if (!l) {
		agt_err("cannot attach %s in %s (PID %d): %s; run `agtrace check` and retry with "
			"-v for "
			"libbpf's log",
			what, path, r->pl.procs[target]->pid, strerror(e));
		return AGT_EXIT_USAGE;
	}
	if (r->nlinks == MAX_LINKS) {
		bpf_link__destroy(l);
		agt_err("more than %d probe links requested; narrow the symbol globs", MAX_LINKS);
		return AGT_EXIT_USAGE;
	}
	nl = realloc(r->links, (r->nlinks + 1) * sizeof(*nl));
	if (nl)
		r->links = nl;
	no = realloc(r->link_owner, (r->nlinks + 1) * sizeof(*no));
	if (no)
		r->link_owner = no;
	if (!nl || !no) {
		bpf_link__destroy(l);
		return AGT_EXIT_USAGE;
	}
	r->link_owner[r->nlinks] = r->pl.procs[target];
	r->links[r->nlinks++] = l;
	r->pl.procs[target]->nlinks++;
	return 0;
}

static int write_cfg(struct attach_run *r, const struct agt_probe_info *pi)
{
	struct agt_probe_cfg cfg = {
	    .nargs = pi->ps->nargs,
	    .ret_kind = pi->ps->ret.kind,
	    .abi = pi->ps->abi,
	    .valid = 1,
	    .source = pi->ps->handler == AGT_HANDLER_PY_AUDIT ? AGT_SS_PYTHON : AGT_SS_FUNC};
	uint32_t key = pi->id;

	for (int i = 0; i < pi->ps->nargs; i++)
		cfg.arg_kind[i] = pi->ps->args[i].kind;
	if (bpf_map__update_elem(r->func->maps.probe_cfg, &key, sizeof(key), &cfg, sizeof(cfg),
				 0)) {
		agt_err("cannot write the probe configuration map: %s", strerror(errno));
		return AGT_EXIT_USAGE;
	}
	return 0;
}

static int attach_function(struct attach_run *r, int t, const struct agt_spec *spec,
			   const struct agt_probe_spec *ps, const char *host, const char *mapped,
			   const struct agt_sym *sym)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo);
	struct agt_probe_info *pi = probe_id_for(r, spec, ps, sym->name, mapped);
	int pid = r->pl.procs[t]->pid, rc;
	char what[200], err[512];
	uint64_t entry;

	if (!pi) {
		agt_err("more than %d distinct probes requested; narrow the symbol globs",
			AGT_MAX_PROBES);
		return AGT_EXIT_USAGE;
	}
	if (ps->handler) {
		static const uint32_t flags[] = {
		    [AGT_HANDLER_SSL_WRITE] = 0,
		    [AGT_HANDLER_SSL_READ] = AGT_TLS_COOKIE_READ,
		    [AGT_HANDLER_SSL_WRITE_EX] = AGT_TLS_COOKIE_EX,
		    [AGT_HANDLER_SSL_READ_EX] = AGT_TLS_COOKIE_READ | AGT_TLS_COOKIE_EX,
		    [AGT_HANDLER_GNUTLS_SEND] = AGT_TLS_COOKIE_SSIZE,
		    [AGT_HANDLER_GNUTLS_RECV] = AGT_TLS_COOKIE_READ | AGT_TLS_COOKIE_SSIZE,
		};

		uo.bpf_cookie = pi->id | flags[ps->handler];
		snprintf(what, sizeof(what), "TLS uprobe on %s", sym->name);
		rc = add_link(r,
			      bpf_program__attach_uprobe_opts(r->tls->progs.tls_entry, pid, host,
							      sym->offset, &uo),
			      t, what, mapped);
		if (rc)
			return rc;
		uo.retprobe = true;
		snprintf(what, sizeof(what), "TLS uretprobe on %s", sym->name);
		return add_link(r,
				bpf_program__attach_uprobe_opts(r->tls->progs.tls_return, pid, host,
								sym->offset, &uo),
				t, what, mapped);
	}
	if ((rc = write_cfg(r, pi)))
		return rc;
	uo.bpf_cookie = pi->id;
	snprintf(what, sizeof(what), "uprobe on %s", sym->name);
	entry = ps->abi == AGT_ABI_GO ? agt_elf_go_entry_offset(host, sym) : sym->offset;
	if (entry != sym->offset)
		agt_dbg("%s: entry probe past the stack check, at +0x%llx", sym->name,
			(unsigned long long)(entry - sym->offset));
	rc = add_link(
	    r, bpf_program__attach_uprobe_opts(r->func->progs.func_entry, pid, host, entry, &uo), t,
	    what, mapped);
	if (rc)
		return rc;
	if (ps->ret_mode == AGT_RET_URETPROBE) {
		uo.retprobe = true;
		snprintf(what, sizeof(what), "uretprobe on %s", sym->name);
		return add_link(r,
				bpf_program__attach_uprobe_opts(r->func->progs.func_return, pid,
								host, sym->offset, &uo),
				t, what, mapped);
	}
	if (ps->ret_mode == AGT_RET_INSN) {
		uint64_t *offs;
		int n;

		if (agt_elf_ret_offsets(host, sym, &offs, &n, err, sizeof(err))) {
			agt_err("%s", err);
			return AGT_EXIT_USAGE;
		}
		agt_dbg("%s: %d return instructions", sym->name, n);
		for (int i = 0; i < n && !rc; i++) {
			snprintf(what, sizeof(what), "return-instruction uprobe on %s+0x%llx",
				 sym->name, (unsigned long long)(offs[i] - sym->offset));
			rc = add_link(r,
				      bpf_program__attach_uprobe_opts(r->func->progs.func_return,
								      pid, host, offs[i], &uo),
				      t, what, mapped);
		}
		free(offs);
	}
	return rc;
}

static int attach_usdt(struct attach_run *r, int t, const struct agt_spec *spec,
		       const struct agt_probe_spec *ps, const char *host, const char *mapped,
		       int soft)
{
	LIBBPF_OPTS(bpf_usdt_opts, uo);
	char sym[128], what[200], root_path[4200];
	struct agt_probe_info *pi;
	int pid = r->pl.procs[t]->pid, rc;
	struct bpf_link *l;

	/* libbpf finds a USDT object's load address by matching the realpath of the path it is
	 * given against /proc/PID/maps: give it the /proc/PID/root path, not the map_files one. */
	if (!strncmp(host, "/proc/", 6) && strstr(host, "/map_files/")) {
		snprintf(root_path, sizeof(root_path), "/proc/%d/root%s", pid, mapped);
		host = root_path;
	}
	snprintf(sym, sizeof(sym), "%s:%s", ps->usdt_provider, ps->usdt_name);
	if (!(pi = probe_id_for(r, spec, ps, sym, mapped)))
		return AGT_EXIT_USAGE;
	if ((rc = write_cfg(r, pi)))
		return rc;
	uo.usdt_cookie = pi->id;
	snprintf(what, sizeof(what), "USDT %s", sym);
	l = bpf_program__attach_usdt(r->func->progs.usdt_entry, pid, host, ps->usdt_provider,
				     ps->usdt_name, &uo);
	if (!l && soft) {
		/* A chroot in another mount namespace: libbpf cannot match the object's path
		 * to its mapping. An auto spec goes without it; counted in the links shown. */
		agt_warn("PID %d (%s): USDT %s in %s not attached (%s); its events are not "
			 "captured",
			 pid, r->pl.procs[t]->comm, sym, mapped, strerror(errno));
		return 0;
	}
	rc = add_link(r, l, t, what, mapped);
	if (rc || !ps->ret_usdt_name)
		return rc;
	snprintf(what, sizeof(what), "USDT %s:%s", ps->ret_usdt_provider, ps->ret_usdt_name);
	return add_link(r,
			bpf_program__attach_usdt(r->func->progs.usdt_return, pid, host,
						 ps->ret_usdt_provider, ps->ret_usdt_name, &uo),
			t, what, mapped);
}

/* A message naming a /proc/PID/map_files/... path, with the path a user can run tools on in its
 * place: /proc/PID/root and the file as the process maps it. */
static const char *user_path(char *msg, const char *host, int pid, const char *mapped)
{
	static char out[2048];
	char root[4200];
	size_t hl = strlen(host), o = 0;

	if (!strstr(host, "/map_files/"))
		return msg;
	snprintf(root, sizeof(root), "/proc/%d/root%s", pid, mapped);
	for (const char *m = msg; *m && o + 1 < sizeof(out);) {
		if (!strncmp(m, host, hl)) {
			o += snprintf(out + o, sizeof(out) - o, "%s", root);
			m += hl;
		} else {
			out[o++] = *m++;
		}
		if (o >= sizeof(out))
			o = sizeof(out) - 1;
	}
	out[o] = 0;
	return out;
}

/* Whether (spec, file) was tried on proc already; records it when not. */
static int tried_before(struct agt_proc *proc, const struct agt_spec *spec, const char *host)
{
	struct stat st;

	if (stat(host, &st))
		return 0;
	for (int i = 0; i < proc->ntried; i++)
		if (proc->tried[i].spec == spec && proc->tried[i].dev == st.st_dev &&
		    proc->tried[i].ino == st.st_ino)
			return 1;
	if (proc->ntried < (int)AGT_ARRAY_SIZE(proc->tried)) {
		proc->tried[proc->ntried].spec = spec;
		proc->tried[proc->ntried].dev = st.st_dev;
		proc->tried[proc->ntried++].ino = st.st_ino;
	}
	return 0;
}

/* Attach every probe of spec to one object (host: its path from here) of target t. */
static int attach_object(struct attach_run *r, int t, const struct agt_spec *spec, int soft,
			 const char *host, const char *mapped)
{
	struct agt_proc *proc = r->pl.procs[t];
	char err[768];
	int rc = 0;

	if (tried_before(proc, spec, host))
		return 0;
	agt_dbg("%s: PID %d: %s -> %s", spec->name, proc->pid, mapped, host);
	for (int i = 0; i < spec->nprobes && !rc; i++) {
		const struct agt_probe_spec *ps = &spec->probes[i];

		if (ps->usdt_name) {
			rc = attach_usdt(r, t, spec, ps, host, mapped, soft);
			continue;
		}
		for (int s = 0; s < ps->nsymbols && !rc; s++) {
			struct agt_sym *syms;
			int n;

			if (agt_elf_find_funcs(host, ps->symbols[s], &syms, &n, err, sizeof(err))) {
				if (soft) {
					agt_dbg("%s: PID %d: %s", spec->name, proc->pid, err);
					continue;
				}
				agt_err("PID %d (%s): %s", proc->pid, proc->comm,
					user_path(err, host, proc->pid, mapped));
				return AGT_EXIT_USAGE;
			}
			for (int k = 0; k < n && !rc; k++)
				rc = attach_function(r, t, spec, ps, host, mapped, &syms[k]);
			agt_syms_free(syms, n);
		}
	}
	return rc;
}

/* Resolve one spec against one target and attach every probe it names. soft (auto-attached
 * specs, discovered targets): a target that maps none of the spec's objects, or lacks a probe's
 * symbols, is skipped quietly; returns -1 when nothing of the spec applied. The first of the
 * spec's objects the target maps that yields probes is used. A discovered target is caught at
 * exec, before its libraries are mapped: when none of its mapped objects yields probes, the
 * spec's library globs are looked up in its filesystem (python loads libssl later; node's
 * OpenSSL is in its executable, found in the first pass). */
static int attach_spec(struct attach_run *r, int t, const struct agt_spec *spec, int soft)
{
	struct agt_proc *proc = r->pl.procs[t];
	char host[4096 + 64], mapped[4096], err[768], first_err[768] = "";
	int rc = 0, resolved = 0, before = proc->nlinks;

	for (int pass = 0; pass < 1 + proc->discovered && !rc && proc->nlinks == before; pass++)
		for (int ti = 0; ti < spec->ntargets && !rc && proc->nlinks == before; ti++) {
			if (pass ? agt_proc_resolve_libdir(proc, spec->targets[ti], host,
							   sizeof(host), mapped, sizeof(mapped))
				 : agt_proc_resolve(proc, spec->targets[ti], host, sizeof(host),
						    mapped, sizeof(mapped), err, sizeof(err))) {
				if (!first_err[0] && !pass)
					snprintf(first_err, sizeof(first_err), "%s", err);
				continue;
			}
			resolved = 1;
			rc = attach_object(r, t, spec, soft, host, mapped);
			if (!soft)
				break; /* a spec given by the user names the object it means first
					*/
		}
	if (!resolved) {
		if (soft)
			return -1;
		agt_err("%s: %s", spec->file, first_err);
		return AGT_EXIT_USAGE;
	}
	if (!rc && soft && proc->nlinks == before)
		return -1;
	if (!rc)
		agt_dbg("%s: PID %d: %d links", spec->name, proc->pid, proc->nlinks - before);
	return rc;
}

/* Sampling starts at "keep everything", then the --sample options; the map is pinned so
 * `agtrace sample set` can change it while this runs. */
static int init_sampling(struct attach_run *r)
{
	char err[256];

	for (uint32_t k = 0; k < AGT_SS_MAX; k++) {
		r->sample_seen[k] = (struct agt_sample_cfg){.ratio_ppm = AGT_SAMPLE_ONE};
		for (int i = 0; i < r->o.nsample; i++) {
			int src = -1;
			struct agt_sample_cfg probe = {0};

			agt_sample_parse(r->o.sample[i], &src, &probe, NULL, 0);
			if (src == (int)k)
				agt_sample_parse(r->o.sample[i], &src, &r->sample_seen[k], NULL, 0);
		}
		r->sample_max[k] = r->sample_seen[k].ratio_ppm;
		if (bpf_map__update_elem(r->func->maps.sampling, &k, sizeof(k), &r->sample_seen[k],
					 sizeof(r->sample_seen[k]), 0)) {
			agt_err("cannot write the sampling map: %s", strerror(errno));
			return AGT_EXIT_USAGE;
		}
	}
	if (agt_sample_pin(bpf_map__fd(r->func->maps.sampling), err, sizeof(err)))
		agt_warn("%s; sampling stays as started", err);
	else
		r->pinned = 1;
	return 0;
}

/* Report sampling changed from outside (agtrace sample set) as state_change events. */
static void watch_sampling(struct attach_run *r)
{
	for (uint32_t k = 0; k < AGT_SS_MAX; k++) {
		struct agt_sample_cfg c;
		char msg[160];

		if (bpf_map__lookup_elem(r->func->maps.sampling, &k, sizeof(k), &c, sizeof(c), 0) ||
		    c.generation == r->sample_seen[k].generation)
			continue;
		r->sample_seen[k] = c;
		agt_sample_describe((int)k, &c, msg, sizeof(msg));
		for (int t = 0; t < r->pl.nprocs; t++)
			if (!r->pl.procs[t]->gone)
				agt_pipeline_state(&r->pl, r->pl.procs[t], agt_mono_ns(),
						   "sampling", msg, 0, 0);
		agt_info("sampling changed: %s", msg);
	}
}

static void percpu_sums(const struct bpf_map *map, uint32_t n, uint64_t *out);

/* The adaptive controller, once a second: over the event budget, or the ring buffer dropped
 * events, halves the payload sources' ratios (down to 0.1%); well under it, doubles them back
 * up to what was configured. Each change is a state_change saying why. */
static void adapt_sampling(struct attach_run *r)
{
	static const int payload[] = {AGT_SS_FUNC, AGT_SS_TLS, AGT_SS_SOCK, AGT_SS_PYTHON};
	uint64_t kd[AGT_KDROP_MAX], rate = r->pl.records - r->last_records;
	int over, under;

	percpu_sums(r->func->maps.drops, AGT_KDROP_MAX, kd);
	over =
	    rate > (uint64_t)r->o.event_budget || kd[AGT_KDROP_RINGBUF_FULL] > r->last_ringbuf_full;
	under = rate < (uint64_t)r->o.event_budget / 4;
	r->last_records = r->pl.records;
	r->last_ringbuf_full = kd[AGT_KDROP_RINGBUF_FULL];
	for (size_t i = 0; i < AGT_ARRAY_SIZE(payload); i++) {
		uint32_t k = payload[i];
		struct agt_sample_cfg c = r->sample_seen[k];
		uint32_t want = c.ratio_ppm;
		char msg[256], desc[160];

		if (over && c.ratio_ppm > 1000)
			want = c.ratio_ppm / 2 > 1000 ? c.ratio_ppm / 2 : 1000;
		else if (under && c.ratio_ppm < r->sample_max[k])
			want =
			    c.ratio_ppm * 2 < r->sample_max[k] ? c.ratio_ppm * 2 : r->sample_max[k];
		if (want == c.ratio_ppm)
			continue;
		c.ratio_ppm = want;
		c.generation++;
		if (bpf_map__update_elem(r->func->maps.sampling, &k, sizeof(k), &c, sizeof(c), 0))
			continue;
		r->sample_seen[k] = c; /* reported here, not again by watch_sampling */
		agt_sample_describe((int)k, &c, desc, sizeof(desc));
		snprintf(msg, sizeof(msg), "%s (adaptive: %llu events/s, budget %ld%s)", desc,
			 (unsigned long long)rate, r->o.event_budget,
			 kd[AGT_KDROP_RINGBUF_FULL] > r->last_ringbuf_full ? ", ring buffer full"
									   : "");
		for (int t = 0; t < r->pl.nprocs; t++)
			if (!r->pl.procs[t]->gone)
				agt_pipeline_state(&r->pl, r->pl.procs[t], agt_mono_ns(),
						   "sampling", msg, 0, 0);
		agt_info("sampling changed: %s", msg);
	}
}

/* Every object after the first uses the first one's ring buffer, drop table and target table. */
static int share_maps(struct attach_run *r, struct bpf_object *obj)
{
	static const char *const shared[] = {"events",		 "drops",   "targets",
					     "sampling",	 "buckets", "sample_drops",
					     "session_decisions"};

	for (size_t i = 0; i < AGT_ARRAY_SIZE(shared); i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(obj, shared[i]);
		struct bpf_map *own = bpf_object__find_map_by_name(r->func->obj, shared[i]);

		if (m && own && bpf_map__reuse_fd(m, bpf_map__fd(own)))
			return -1;
	}
	return 0;
}

static int load_failed(const char *what, int err)
{
	agt_err("the kernel refused agtrace's %s (%s); run `agtrace check`, and -v shows the "
		"verifier log",
		what, strerror(err < 0 ? -err : err));
	return AGT_EXIT_USAGE;
}

static int load_bpf(struct attach_run *r)
{
	int err;

	r->func = func_bpf__open();
	r->proc = proc_bpf__open();
	r->tls = tls_bpf__open();
	r->sock = r->o.tcp ? sock_bpf__open() : NULL;
	if (!r->func || !r->proc || !r->tls || (r->o.tcp && !r->sock)) {
		agt_err("cannot open the BPF objects: %s", strerror(errno));
		return AGT_EXIT_USAGE;
	}
	/* What sampling needs to know before load: CPUs (the token buckets are per CPU) and a
	 * salt for the session hash. */
	{
		uint32_t ncpu = (uint32_t)libbpf_num_possible_cpus();
		struct agt_rng rng;
		uint64_t salt;

		agt_rng_init(&rng);
		salt = agt_rng_next(&rng);
		r->func->rodata->agt_ncpus = r->proc->rodata->agt_ncpus =
		    r->tls->rodata->agt_ncpus = ncpu;
		r->func->rodata->agt_sample_salt = r->proc->rodata->agt_sample_salt =
		    r->tls->rodata->agt_sample_salt = salt;
		if (r->sock) {
			r->sock->rodata->agt_ncpus = ncpu;
			r->sock->rodata->agt_sample_salt = salt;
		}
	}
	if ((err = func_bpf__load(r->func)))
		return load_failed("function probes", err);
	if ((err = init_sampling(r)))
		return err;
	r->proc->rodata->discover = r->o.nselects > 0;
	if (r->sock) /* the socket program's sys_exit reports library mappings too */
		bpf_program__set_autoattach(r->proc->progs.proc_sys_exit, false);
	if (share_maps(r, r->proc->obj) || (err = proc_bpf__load(r->proc)))
		return load_failed("process tracepoint", err ? err : errno);
	r->tls->rodata->tls_call_cap = r->o.max_message;
	if (share_maps(r, r->tls->obj) || (err = tls_bpf__load(r->tls)))
		return load_failed("TLS capture", err ? err : errno);
	if (r->sock) {
		r->sock->rodata->sock_call_cap = r->o.max_message;
		if (share_maps(r, r->sock->obj) || (err = sock_bpf__load(r->sock)))
			return load_failed("TCP capture", err ? err : errno);
	}
	for (int i = 0; i < r->pl.nprocs; i++) {
		uint32_t pid = r->pl.procs[i]->pid, one = 1;

		bpf_map__update_elem(r->func->maps.targets, &pid, sizeof(pid), &one, sizeof(one),
				     0);
	}
	if ((err = proc_bpf__attach(r->proc))) {
		agt_err("cannot attach the process exit tracepoint (%s); run `agtrace check`",
			strerror(-err));
		return AGT_EXIT_USAGE;
	}
	if (r->sock && (err = sock_bpf__attach(r->sock))) {
		agt_err("cannot attach the syscall tracepoints for TCP capture (%s); run `agtrace "
			"check`, or use --no-tcp",
			strerror(-err));
		return AGT_EXIT_USAGE;
	}
	return 0;
}

/* Sums of the first n entries of a per-CPU u64 array map (counters). */
static void percpu_sums(const struct bpf_map *map, uint32_t n, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals = calloc(ncpu > 0 ? ncpu : 1, sizeof(uint64_t));

	for (uint32_t k = 0; k < n; k++) {
		out[k] = 0;
		if (!vals || !map ||
		    bpf_map__lookup_elem(map, &k, sizeof(k), vals, ncpu * sizeof(uint64_t), 0))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[k] += vals[c];
	}
	free(vals);
}

/* Every drop counter, by reason: fn(ctx, reason, value, is_events) where is_events says it
 * counts lost events (not bytes, degraded values, or notes). One list for the summary line and
 * the metrics. */
typedef void (*drop_fn)(void *ctx, const char *reason, uint64_t v, int is_events);

static void for_each_drop(struct attach_run *r, drop_fn fn, void *ctx)
{
	const struct agt_nest_stats *ns = agt_nest_stats(r->pl.nest);
	const struct agt_agent_stats *as = agt_agent_stats(r->pl.agent);
	uint64_t kd[AGT_KDROP_MAX], sd[AGT_SS_MAX * AGT_SAMPLE_REASONS];
	char name[48];

	percpu_sums(r->func ? r->func->maps.drops : NULL, AGT_KDROP_MAX, kd);
	percpu_sums(r->func ? r->func->maps.sample_drops : NULL, AGT_SS_MAX * AGT_SAMPLE_REASONS,
		    sd);
	for (int i = 0; i < AGT_KDROP_MAX; i++)
		fn(ctx, agt_kdrop_names[i], kd[i], i != AGT_KDROP_ARG_READ);
	for (int i = 0; i < AGT_UDROP_MAX; i++)
		fn(ctx, agt_udrop_names[i], r->pl.udrops[i], 1);
	for (int i = 0; i < AGT_SDROP_MAX; i++)
		fn(ctx, agt_sdrop_names[i], agt_streams_drops(r->pl.streams)[i],
		   i != AGT_SDROP_GAP_BYTES);
	for (int i = 0; i < AGT_JDROP_MAX; i++)
		fn(ctx, agt_jdrop_names[i], agt_jsonrpc_drops(r->pl.rpc)[i], 1);
	for (int s = 0; s < AGT_SS_MAX; s++) {
		snprintf(name, sizeof(name), "sampled_out_%s", agt_sample_source_names[s]);
		fn(ctx, name, sd[s * AGT_SAMPLE_REASONS + AGT_SAMPLE_UNSAMPLED], 1);
		snprintf(name, sizeof(name), "rate_limited_%s", agt_sample_source_names[s]);
		fn(ctx, name, sd[s * AGT_SAMPLE_REASONS + AGT_SAMPLE_RATE], 1);
	}
	fn(ctx, "conversations_evicted", as->convs_evicted, 1);
	fn(ctx, "conversations_idle_closed", as->convs_idle, 0);
	fn(ctx, "tool_events_over_cap", as->events_over_cap, 1);
	fn(ctx, "children_not_followed", as->children_dropped, 1);
	fn(ctx, "depth_exceeded", ns->depth_exceeded, 1);
	fn(ctx, "return_without_entry", ns->return_without_entry, 1);
	fn(ctx, "thread_table_full", ns->thread_table_full, 1);
	fn(ctx, "tree_early_flush", r->pl.sink ? r->pl.sink->early_flushes : 0, 0);
}

struct summary {
	char list[4096];
	size_t used;
	uint64_t total;
};

static void summary_reason(void *ctx, const char *reason, uint64_t v, int is_events)
{
	struct summary *s = ctx;

	if (is_events)
		s->total += v;
	if (s->used < sizeof(s->list))
		s->used += snprintf(s->list + s->used, sizeof(s->list) - s->used, "%s%s=%llu",
				    s->used ? " " : "", reason, (unsigned long long)v);
}

static void print_summary(struct attach_run *r)
{
	struct summary s = {.used = 0};

	for_each_drop(r, summary_reason, &s);
	agt_info("summary: %llu events seen, %llu spans and events emitted (%llu unfinished), %llu "
		 "dropped (%s)",
		 (unsigned long long)r->pl.records, (unsigned long long)r->pl.emitted,
		 (unsigned long long)agt_nest_stats(r->pl.nest)->unfinished,
		 (unsigned long long)s.total, s.list);
	if (r->nsel)
		agt_info(
		    "discovery: %llu execs seen, %llu processes discovered, %llu not traced "
		    "(--max-targets), %llu with probes that failed to attach, %llu gone before "
		    "they could be looked at, %llu forgotten after exit",
		    (unsigned long long)r->pl.execs_seen, (unsigned long long)r->discovered,
		    (unsigned long long)r->discover_limited, (unsigned long long)r->discover_failed,
		    (unsigned long long)r->exec_gone, (unsigned long long)r->forgotten);
}

static void metrics_reason(void *ctx, const char *reason, uint64_t v, int is_events)
{
	char l[96];

	snprintf(l, sizeof(l), "reason=\"%s\"", reason);
	agt_metrics_set(ctx, is_events ? "agtrace_dropped_events_total" : "agtrace_noted_total", l,
			(double)v);
}

/* agtrace's own figures for /metrics: refreshed once a second and at the end. */
static void update_self_metrics(struct attach_run *r)
{
	static const char *const src[] = {"func", "tls", "tcp", "ipc", "proc"};
	unsigned convs = 0, pending = 0;

	if (!r->metrics)
		return;
	for_each_drop(r, metrics_reason, r->metrics);
	for (int i = 0; i < 5; i++) {
		char l[32];

		snprintf(l, sizeof(l), "source=\"%s\"", src[i]);
		agt_metrics_set(r->metrics, "agtrace_events_total", l, (double)r->pl.by_source[i]);
	}
	agt_agent_open(r->pl.agent, &convs, &pending);
	agt_metrics_set(r->metrics, "agentic_active_workflows", "", convs);
	agt_metrics_set(r->metrics, "agentic_trace_buffer_size", "",
			(double)(agt_nest_stats(r->pl.nest)->open + convs + pending));
	agt_metrics_set(r->metrics, "agtrace_attached_processes", "", r->pl.live);
	if (r->nsel) {
		uint64_t req, fail;
		unsigned pods;

		agt_metrics_set(r->metrics, "agtrace_discovered_processes_total", "",
				(double)r->discovered);
		agt_metrics_set(r->metrics, "agtrace_discovery_skipped_total",
				"reason=\"max_targets\"", (double)r->discover_limited);
		agt_metrics_set(r->metrics, "agtrace_discovery_skipped_total",
				"reason=\"attach_failed\"", (double)r->discover_failed);
		agt_metrics_set(r->metrics, "agtrace_discovery_skipped_total",
				"reason=\"exited_first\"", (double)r->exec_gone);
		agt_k8s_stats(r->k8s, &req, &fail, &pods);
		agt_metrics_set(r->metrics, "agtrace_k8s_pod_list_requests_total", "", (double)req);
		agt_metrics_set(r->metrics, "agtrace_k8s_pod_list_failures_total", "",
				(double)fail);
		agt_metrics_set(r->metrics, "agtrace_k8s_pods_known", "", pods);
	}
	if (r->rb_cons && r->rb_prod) {
		agt_metrics_set(r->metrics, "agtrace_ringbuf_used_bytes", "",
				(double)(*r->rb_prod - *r->rb_cons));
		agt_metrics_set(r->metrics, "agtrace_ringbuf_size_bytes", "", (double)r->rb_size);
	}
	for (int k = 0; k < 3; k++) {
		static const char *const lab[] = {"exporter=\"elasticsearch\"", "exporter=\"otlp\"",
						  "exporter=\"fluentd\""};
		struct agt_es_stats es;
		const char *l = lab[k];

		if (!r->exp[k])
			continue;
		agt_es_stats(r->exp[k], &es);
		agt_metrics_set(r->metrics, "agtrace_export_delivered_total", l,
				(double)es.delivered);
		agt_metrics_set(r->metrics, "agtrace_export_retried_total", l, (double)es.retried);
		agt_metrics_set(r->metrics, "agtrace_export_failures_total", l,
				(double)es.send_failures);
		agt_metrics_set(r->metrics, "agtrace_export_dead_lettered_total", l,
				(double)es.dead_lettered);
		agt_metrics_set(r->metrics, "agtrace_export_lost_total", l,
				(double)es.spool_dropped);
		agt_metrics_set(r->metrics, "agtrace_spool_bytes", l, (double)es.spool_bytes);
		agt_metrics_set(r->metrics, "agtrace_spool_oldest_age_seconds", l,
				(double)es.spool_oldest_age_s);
		agt_metrics_set(r->metrics, "agtrace_export_latency_seconds", l,
				(double)es.last_latency_ms / 1000.0);
	}
}

/* ---- Targets: given by PID at start, or discovered by a selector at any time ---- */

/* A new target slot (pointers stay valid: spans keep them). */
static struct agt_proc *push_proc(struct attach_run *r)
{
	struct agt_pipeline *p = &r->pl;
	struct agt_proc *proc;

	if (p->nprocs == p->procs_cap) {
		int cap = p->procs_cap ? 2 * p->procs_cap : 16;
		struct agt_proc **np = realloc(p->procs, cap * sizeof(*np));

		if (!np)
			return NULL;
		p->procs = np;
		p->procs_cap = cap;
	}
	if (!(proc = calloc(1, sizeof(*proc))))
		return NULL;
	proc->pidfd = -1;
	p->procs[p->nprocs] = proc;
	return proc;
}

/* Attach every spec to target t; 0, or AGT_EXIT_USAGE for a target given by PID that nothing
 * applies to (a discovered one is kept for its process and TCP events). */
static int attach_target_specs(struct attach_run *r, int t)
{
	struct agt_proc *proc = r->pl.procs[t];
	int rc = 0, applied = 0, soft = r->auto_mode || proc->discovered;

	for (int s = 0; s < r->nspecs && rc <= 0; s++) {
		rc = attach_spec(r, t, &r->specs[s], soft);
		applied += rc == 0;
	}
	if (rc < 0)
		rc = 0;
	if (rc || applied)
		return rc;
	if (proc->discovered)
		agt_info("PID %d (%s) matched a selector but maps nothing the probe specs name%s",
			 proc->pid, proc->comm,
			 r->o.tcp ? ": capturing its plaintext HTTP over TCP and its processes only"
				  : ": following its processes only");
	else if (r->auto_mode && !r->o.tcp) {
		agt_err(
		    "PID %d (%s) maps nothing agtrace's built-in probes know (a TLS library "
		    "such as libssl.so*, or SSL_write in its executable); give --probes FILE or "
		    "--uprobe PATH:SYMBOL, or drop --no-tcp",
		    proc->pid, proc->comm);
		return AGT_EXIT_USAGE;
	} else if (r->auto_mode) {
		agt_info("PID %d (%s) maps no TLS library agtrace knows: capturing plaintext HTTP "
			 "over TCP only",
			 proc->pid, proc->comm);
	}
	return 0;
}

/* Event loop sources: these three, or a target's pidfd (data.ptr: the target). */
enum { EV_SIGNAL = 1, EV_RING = 2, EV_TIMER = 3 };

static void watch_pidfd(struct attach_run *r, int t)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = r->pl.procs[t]};

	if (r->ep >= 0 && r->pl.procs[t]->pidfd >= 0)
		epoll_ctl(r->ep, EPOLL_CTL_ADD, r->pl.procs[t]->pidfd, &ev);
}

/* Destroy the probe links of targets that are gone: uprobes on their files cost every other
 * process mapping them nothing more, and the kernel frees them. */
static void detach_gone(struct attach_run *r)
{
	int w = 0;

	for (int i = 0; i < r->nlinks; i++) {
		if (r->link_owner[i]->gone) {
			agt_reaper_push(r->reaper, r->links[i]);
			r->link_owner[i]->nlinks--;
			continue;
		}
		r->links[w] = r->links[i];
		r->link_owner[w++] = r->link_owner[i];
	}
	r->nlinks = w;
	for (int t = 0; t < r->pl.nprocs; t++)
		if (r->pl.procs[t]->gone && r->pl.procs[t]->pidfd >= 0) {
			if (r->ep >= 0)
				epoll_ctl(r->ep, EPOLL_CTL_DEL, r->pl.procs[t]->pidfd, NULL);
			agt_proc_close(r->pl.procs[t]);
		}
	r->live_seen = r->pl.live;
}

/* Free targets gone for longer than --forget-after, once nothing can refer to them: their
 * connections, MCP calls and conversations are ended first (a followed child may have kept one
 * open after the target exited). Bounds the memory of a long discovery run. */
static void forget_gone(struct attach_run *r, uint64_t now)
{
	uint64_t grace = (uint64_t)r->o.forget_after * 1000000000ull;
	int w = 0, freed = 0;

	for (int t = 0; t < r->pl.nprocs; t++) {
		struct agt_proc *p = r->pl.procs[t];

		if (!p->gone || p->nlinks || p->pidfd >= 0 || now - p->gone_ns < grace) {
			r->pl.procs[w++] = p;
			continue;
		}
		if (!freed++)
			r->pl.sink->flush(r->pl.sink); /* spans waiting in a tree refer to it */
		agt_streams_close_proc(r->pl.streams, p, now);
		agt_jsonrpc_close_proc(r->pl.rpc, p, now);
		agt_agent_close_proc(r->pl.agent, p, now);
		free(p);
	}
	r->pl.nprocs = w;
	r->forgotten += freed;
}

static int is_target(struct attach_run *r, int pid)
{
	struct agt_proc *p = agt_pipeline_proc(&r->pl, (uint32_t)pid);
	uint32_t key = (uint32_t)pid, v;

	if (p && !p->gone)
		return 1;
	/* A followed descendant of a target is traced as part of it already. */
	return bpf_map__lookup_elem(r->func->maps.targets, &key, sizeof(key), &v, sizeof(v), 0) ==
	       0;
}

/* Match a process against the selectors and, when one holds, make it a target: probes, the
 * kernel's target table, its pidfd in the event loop, and an attach state_change span. */
static void discover_pid(struct attach_run *r, int pid, const char *why)
{
	struct agt_proc *proc;
	char cmdline[4096], err[512], msg[256];
	int t, hit = -1;

	if (pid == getpid() || is_target(r, pid)) {
		agt_dbg("exec of PID %d (%s): a target already", pid, why);
		return;
	}
	if (!(proc = push_proc(r)))
		return;
	if (agt_proc_open(pid, proc, err, sizeof(err)) ||
	    agt_read_cmdline(pid, cmdline, sizeof(cmdline))) {
		agt_dbg("exec of PID %d (%s): %s", pid, why, err);
		r->exec_gone += !strcmp(why, "exec");
		free(proc); /* gone already, or a kernel thread: nothing to trace */
		return;
	}
	for (int i = 0; i < r->nsel && hit < 0; i++) {
		if (agt_selector_needs_k8s(&r->sel[i]))
			agt_k8s_lookup(r->k8s, &proc->id);
		if (agt_selector_match(&r->sel[i], proc, cmdline, r->k8s))
			hit = i;
	}
	if (hit < 0) {
		agt_proc_close(proc);
		free(proc);
		return;
	}
	if (r->pl.live >= r->o.max_targets) {
		r->discover_limited++;
		agt_warn("PID %d (%s) matches \"%s\" but %ld targets are traced already "
			 "(--max-targets); not traced",
			 pid, proc->comm, r->sel[hit].text, r->o.max_targets);
		agt_proc_close(proc);
		free(proc);
		return;
	}
	agt_k8s_lookup(r->k8s, &proc->id);
	proc->discovered = 1;
	t = r->pl.nprocs++;
	r->pl.live++;
	{
		uint32_t key = (uint32_t)pid, one = 1;

		bpf_map__update_elem(r->func->maps.targets, &key, sizeof(key), &one, sizeof(one),
				     0);
	}
	if (attach_target_specs(r, t)) {
		r->discover_failed++;
		agt_warn("PID %d (%s): attaching its probes failed; its process and TCP events "
			 "are still traced",
			 pid, proc->comm);
	}
	watch_pidfd(r, t);
	r->discovered++;
	snprintf(msg, sizeof(msg), "%d probe links; discovered (%s) by selector \"%s\"",
		 proc->nlinks, why, r->sel[hit].text);
	agt_pipeline_state(&r->pl, proc, agt_mono_ns(), "attach", msg, 0, 0);
	agt_info("discovered PID %d (%s%s%s) by \"%s\": %d probe links", pid, proc->comm,
		 proc->id.pod_name[0] ? " in pod " : "", proc->id.pod_name, r->sel[hit].text,
		 proc->nlinks);
	/* A process that exited while being attached: its pidfd is readable already, and the
	 * event loop notices it at the next wait. */
}

/* Targets that mapped new executable files (a library loaded after attach, by the dynamic
 * loader of a process caught at exec, or by dlopen/import later): attach the specs to every
 * spec object they map now that was not tried on them yet. */
static void rescan_targets(struct attach_run *r)
{
	r->pl.rescan_pending = 0;
	for (int t = 0; t < r->pl.nprocs; t++) {
		struct agt_proc *proc = r->pl.procs[t];
		int before = proc->nlinks;
		char host[4096 + 64], mapped[4096], err[768], what[4096] = "";

		if (!proc->rescan || proc->gone)
			continue;
		proc->rescan = 0;
		for (int s = 0; s < r->nspecs; s++)
			for (int ti = 0; ti < r->specs[s].ntargets; ti++) {
				if (agt_proc_resolve(proc, r->specs[s].targets[ti], host,
						     sizeof(host), mapped, sizeof(mapped), err,
						     sizeof(err)))
					continue;
				if (attach_object(r, t, &r->specs[s], 1, host, mapped))
					agt_warn("PID %d (%s): probes of %s on %s: some failed to "
						 "attach",
						 proc->pid, proc->comm, r->specs[s].name, mapped);
				else if (proc->nlinks > before && !what[0])
					snprintf(what, sizeof(what), "%s", mapped);
			}
		if (proc->nlinks > before) {
			char msg[4200];

			snprintf(msg, sizeof(msg), "%d more probe links: %s loaded",
				 proc->nlinks - before, what);
			agt_pipeline_state(&r->pl, proc, agt_mono_ns(), "attach", msg, 0, 0);
			agt_info("PID %d (%s): %s", proc->pid, proc->comm, msg);
		}
	}
}

static void on_exec(void *ctx, uint32_t pid, const char *filename)
{
	(void)filename;
	discover_pid(ctx, (int)pid, "exec");
}

/* The processes running when agtrace starts. */
static void scan_running(struct attach_run *r)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (isdigit((unsigned char)de->d_name[0]))
			discover_pid(r, atoi(de->d_name), "running");
	closedir(d);
}

static int event_loop(struct attach_run *r)
{
	struct epoll_event ev, evs[16];
	sigset_t mask;
	int ep = r->ep, sfd, tfd = -1;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = EV_SIGNAL};
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = EV_RING};
	epoll_ctl(ep, EPOLL_CTL_ADD, ring_buffer__epoll_fd(r->rb), &ev);
	if (r->o.duration) {
		struct itimerspec its = {.it_value.tv_sec = r->o.duration};

		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		timerfd_settime(tfd, 0, &its, NULL);
		ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = EV_TIMER};
		epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	}
	uint64_t next_expire = 0;

	/* With selectors, run until stopped: targets come and go. */
	for (int stop = 0; !stop && (r->pl.live > 0 || r->nsel);) {
		int n = epoll_wait(ep, evs, AGT_ARRAY_SIZE(evs), AGT_POLL_MS);

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			uint64_t src = evs[i].data.u64;

			if (src == EV_SIGNAL || src == EV_TIMER)
				stop = 1;
			if (src > EV_TIMER) {
				struct agt_proc *p = evs[i].data.ptr;

				/* Everything the process did is in the ring buffer before it is
				 * gone. */
				ring_buffer__consume(r->rb);
				epoll_ctl(ep, EPOLL_CTL_DEL, p->pidfd, NULL);
				agt_pipeline_target_exit(&r->pl, p, agt_mono_ns(), 0, 0);
			}
		}
		if (ring_buffer__consume(r->rb) < 0 && errno != EINTR)
			break;
		if (r->pl.rescan_pending)
			rescan_targets(r);
		if (r->pl.live != r->live_seen)
			detach_gone(r);
		if (agt_mono_ns() >= next_expire) {
			next_expire = agt_mono_ns() + 1000000000ull;
			watch_sampling(r);
			update_self_metrics(r);
			if (r->o.event_budget)
				adapt_sampling(r);
			agt_agent_expire(r->pl.agent, agt_mono_ns(),
					 r->o.idle_timeout * 1000000000ull);
			forget_gone(r, agt_mono_ns());
		}
	}
	ring_buffer__consume(r->rb);
	if (tfd >= 0)
		close(tfd);
	close(sfd);
	return 0;
}

int cmd_attach(int argc, char **argv)
{
	struct attach_run *r = calloc(1, sizeof(*r));
	int rc, nprobes_total = 0;
	char err[512] = "";

	if (!r)
		return 1;
	r->ep = -1;
	if ((rc = parse_opts(&r->o, argc, argv)))
		goto cleanup;
	/* SIGINT/SIGTERM are read from a signalfd by the event loop: block them before any thread
	 * (exporter, metrics server) exists, so none of those can be killed by them. */
	{
		sigset_t mask;

		sigemptyset(&mask);
		sigaddset(&mask, SIGINT);
		sigaddset(&mask, SIGTERM);
		sigprocmask(SIG_BLOCK, &mask, NULL);
	}
	if ((rc = load_specs(r)))
		goto cleanup;
	if (r->o.tcp < 0)
		r->o.tcp = r->auto_mode;
	for (int i = 0; i < r->o.nselects; i++) {
		if (agt_selector_parse(r->o.selects[i], &r->sel[i], err, sizeof(err))) {
			agt_err("%s", err);
			rc = AGT_EXIT_USAGE;
			goto cleanup;
		}
		r->nsel++;
	}
	if (r->nsel) {
		r->k8s = agt_k8s_new(&r->o.k8s, err, sizeof(err));
		if (!r->k8s && err[0]) {
			agt_err("%s", err);
			rc = AGT_EXIT_USAGE;
			goto cleanup;
		}
		for (int i = 0; i < r->nsel && !r->k8s; i++)
			if (agt_selector_needs_k8s(&r->sel[i]))
				agt_warn("selector \"%s\" needs pod metadata, but there is no "
					 "Kubernetes API to ask (not in a pod, and no "
					 "--k8s-pods-url): it matches nothing",
					 r->sel[i].text);
	}
	if (r->o.dry_run) {
		printf("configuration OK: %d PID%s, %d selector%s, %d probe spec%s%s%s\n",
		       r->o.npids, r->o.npids == 1 ? "" : "s", r->nsel, r->nsel == 1 ? "" : "s",
		       r->nspecs, r->nspecs == 1 ? "" : "s",
		       r->auto_mode ? " (built-in, auto)" : "", r->o.tcp ? ", TCP capture" : "");
		for (int i = 0; i < r->nsel; i++)
			printf("  select %s\n", r->sel[i].text);
		rc = 0;
		goto cleanup;
	}
	if ((rc = agt_require_bpf_privileges()))
		goto cleanup;
	r->ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < r->o.npids; i++) {
		for (int j = 0; j < i; j++)
			if (r->o.pids[j] == r->o.pids[i]) {
				agt_err("PID %d is given twice; give each -p once", r->o.pids[i]);
				rc = AGT_EXIT_USAGE;
				goto cleanup;
			}
		if (!push_proc(r)) {
			rc = 1;
			goto cleanup;
		}
		if (agt_proc_open(r->o.pids[i], r->pl.procs[i], err, sizeof(err))) {
			free(r->pl.procs[i]);
			agt_err("%s", err);
			rc = AGT_EXIT_USAGE;
			goto cleanup;
		}
		r->pl.nprocs++;
	}
	r->pl.live = r->pl.nprocs;
	libbpf_set_print(agt_libbpf_print);
	if ((rc = load_bpf(r)))
		goto cleanup;
	for (int t = 0; t < r->pl.nprocs && !rc; t++) {
		agt_k8s_lookup(r->k8s, &r->pl.procs[t]->id);
		rc = attach_target_specs(r, t);
	}
	if (rc)
		goto cleanup;

	/* Output. */
	r->out = stdout;
	if (r->o.output_file &&
	    !(r->out = fopen(r->o.output_file,
			     "ae") /* appended: a run never erases an earlier one */)) {
		agt_err("cannot write %s: %s; check the directory exists and is writable",
			r->o.output_file, strerror(errno));
		rc = AGT_EXIT_USAGE;
		goto cleanup;
	}
	agt_export_ctx_init(&r->pl.ectx);
	if (r->o.output ? !strcmp(r->o.output, "tree") : (!r->o.output_file && isatty(1)))
		r->pl.sink = agt_tree_new(r->out, &r->pl.ectx, 100000);
	else
		r->pl.sink = agt_jsonl_new(r->out, &r->pl.ectx);
	if (r->pl.sink && r->o.metrics_listen) {
		char err[512];

		if (!(r->metrics = agt_metrics_start(r->o.metrics_listen, err, sizeof(err)))) {
			agt_err("%s", err);
			rc = AGT_EXIT_USAGE;
			goto cleanup;
		}
		r->pl.sink = agt_metrics_tee(r->pl.sink, r->metrics);
	}
	for (int k = 0; k < 3 && r->pl.sink; k++) {
		static const char *const sub[] = {NULL, "otlp", "fluentd"};
		const char *url = k == 0 ? r->o.es.url : k == 1 ? r->o.otlp_url : r->o.fluentd;
		const char *base = r->o.es.spool_dir ? r->o.es.spool_dir : "/var/lib/agtrace/spool";
		struct agt_es_config c = r->o.es;
		char err[512], dir[1024];

		if (!url)
			continue;
		c.url = url;
		c.otlp = k == 1;
		c.forward = k == 2;
		c.tag = r->o.fluentd_tag;
		if (k) { /* each exporter spools apart; templates are Elasticsearch's */
			c.install_template = 0;
			c.dead_letter = NULL;
			mkdir(base, 0700);
			snprintf(dir, sizeof(dir), "%s/%s", base, sub[k]);
			c.spool_dir = dir;
		}
		if (!(r->exp[k] = agt_es_start(&c, &r->pl.ectx, err, sizeof(err)))) {
			agt_err("%s", err);
			rc = AGT_EXIT_USAGE;
			goto cleanup;
		}
		r->pl.sink = agt_es_tee(r->pl.sink, r->exp[k]);
	}
	if (r->pl.sink && r->o.audit_file) {
		char err[512];
		cJSON *cfg = cJSON_CreateObject(), *args = cJSON_AddArrayToObject(cfg, "argv");

		if (!(r->audit = agt_audit_open(r->o.audit_file, &r->pl.ectx, err, sizeof(err)))) {
			agt_err("%s", err);
			cJSON_Delete(cfg);
			rc = AGT_EXIT_USAGE;
			goto cleanup;
		}
		for (int i = 0; i < argc; i++) {
			char *a = agt_redact(argv[i]);

			cJSON_AddItemToArray(args, cJSON_CreateString(a ? a : ""));
			free(a);
		}
		agt_audit_record(r->audit, "config", cfg);
		r->pl.sink = agt_audit_tee(r->pl.sink, r->audit);
	}
	if (!r->pl.sink ||
	    agt_pipeline_init(&r->pl, r->o.max_depth, r->o.max_threads, r->o.max_message)) {
		rc = 1;
		goto cleanup;
	}
	r->rb =
	    ring_buffer__new(bpf_map__fd(r->func->maps.events), agt_decode_record, &r->pl, NULL);
	if (!r->rb) {
		agt_err("cannot open the ring buffer: %s", strerror(errno));
		rc = AGT_EXIT_USAGE;
		goto cleanup;
	}
	for (int t = 0; t < r->pl.nprocs; t++) {
		char msg[256];

		watch_pidfd(r, t);
		snprintf(msg, sizeof(msg), "%d probe links", r->pl.procs[t]->nlinks);
		agt_pipeline_state(&r->pl, r->pl.procs[t], agt_mono_ns(), "attach", msg, 0, 0);
		nprobes_total += r->pl.procs[t]->nlinks;
	}
	r->pl.sink->flush(r->pl.sink);
	if (r->pl.nprocs)
		agt_info("attached %d probe links (%u probes)%s to %d process%s; Ctrl-C to stop",
			 nprobes_total, r->pl.nprobes, r->sock ? " and TCP capture" : "",
			 r->pl.nprocs, r->pl.nprocs == 1 ? "" : "es");
	if (r->nsel) {
		/* Execs are reported from now on; then the processes already running. */
		r->reaper = agt_reaper_start();
		r->pl.on_discover = on_exec;
		r->pl.discover_ctx = r;
		scan_running(r);
		r->pl.sink->flush(r->pl.sink);
		agt_info("discovery: %d selector%s; %llu running process%s matched; watching "
			 "new ones as they start; Ctrl-C to stop",
			 r->nsel, r->nsel == 1 ? "" : "s", (unsigned long long)r->discovered,
			 r->discovered == 1 ? "" : "es");
	}

	if (r->metrics) {
		/* Ring buffer fill: the consumer and producer positions are the map's first two
		 * pages (libbpf 1.1 has no call for it); mapped read-only, next to libbpf's own. */
		long pg = sysconf(_SC_PAGESIZE);
		int fd = bpf_map__fd(r->func->maps.events);
		void *c = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 0);
		void *p = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, pg);

		r->rb_cons = c == MAP_FAILED ? NULL : c;
		r->rb_prod = p == MAP_FAILED ? NULL : p;
		r->rb_size = bpf_map__max_entries(r->func->maps.events);
	}
	update_self_metrics(r); /* a scrape right after attach already sees them */
	event_loop(r);

	agt_reaper_stop(r->reaper); /* the links of targets that exited: destroyed by now */
	r->reaper = NULL;
	/* Detach first so nothing new arrives, then close what is still open. */
	for (int i = 0; i < r->nlinks; i++)
		bpf_link__destroy(r->links[i]);
	r->nlinks = 0;
	ring_buffer__consume(r->rb);
	agt_streams_close(r->pl.streams, 0, agt_mono_ns());
	agt_jsonrpc_close(r->pl.rpc, 0, agt_mono_ns());
	agt_agent_close(r->pl.agent, 0, agt_mono_ns());
	agt_nest_flush(r->pl.nest, agt_mono_ns());
	for (int t = 0; t < r->pl.nprocs; t++)
		if (!r->pl.procs[t]->gone)
			agt_pipeline_state(&r->pl, r->pl.procs[t], agt_mono_ns(), "detach", "", 0,
					   0);
	r->pl.sink->flush(r->pl.sink);
	for (int k = 0; k < 3; k++) {
		static const char *const name[] = {"elasticsearch", "otlp", "fluentd"};
		struct agt_es_stats es;

		if (!r->exp[k])
			continue;
		agt_es_stop(r->exp[k]); /* deliver what it can, spool the rest */
		agt_es_stats(r->exp[k], &es);
		agt_info("%s: %llu queued, %llu delivered, %llu retried, %llu dead-lettered, %llu "
			 "spooled (%llu bytes waiting), %llu lost (spool full)",
			 name[k], (unsigned long long)es.queued, (unsigned long long)es.delivered,
			 (unsigned long long)es.retried, (unsigned long long)es.dead_lettered,
			 (unsigned long long)es.spooled, (unsigned long long)es.spool_bytes,
			 (unsigned long long)es.spool_dropped);
	}
	update_self_metrics(r);
	print_summary(r);
	rc = 0;
cleanup:
	if (r->pinned)
		agt_sample_unpin();
	if (r->rb_cons)
		munmap((void *)r->rb_cons, sysconf(_SC_PAGESIZE));
	if (r->rb_prod)
		munmap((void *)r->rb_prod, sysconf(_SC_PAGESIZE));
	ring_buffer__free(r->rb);
	for (int i = 0; i < r->nlinks; i++)
		bpf_link__destroy(r->links[i]);
	free(r->links);
	sock_bpf__destroy(r->sock);
	tls_bpf__destroy(r->tls);
	proc_bpf__destroy(r->proc);
	func_bpf__destroy(r->func);
	if (r->pl.sink)
		r->pl.sink->destroy(r->pl.sink);
	agt_audit_close(r->audit);
	agt_metrics_stop(r->metrics);
	for (int k = 0; k < 3; k++)
		agt_es_free(r->exp[k]);
	agt_pipeline_fini(&r->pl);
	if (r->out && r->out != stdout)
		fclose(r->out);
	for (uint32_t i = 0; i < r->pl.nprobes; i++)
		free(r->pl.probes[i]);
	free(r->pl.probes);
	for (int i = 0; i < r->pl.nprocs; i++) {
		agt_proc_close(r->pl.procs[i]);
		free(r->pl.procs[i]);
	}
	free(r->pl.procs);
	free(r->link_owner);
	for (int i = 0; i < r->nsel; i++)
		agt_selector_free(&r->sel[i]);
	agt_k8s_free(r->k8s);
	if (r->ep >= 0)
		close(r->ep);
	for (int i = 0; i < r->nspecs; i++)
		agt_spec_free(&r->specs[i]);
	free(r);
	return rc;
}
