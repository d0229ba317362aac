/* `agtrace attach` command line: --help and the options, checked before anything runs. */
#include "tracer/run.h"
#include "base/log.h"
#include "base/util.h"
#include "base/redact.h"
#include "export/metrics.h"
#include <getopt.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

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
	    "  --redact REGEX           also redact what this PCRE2 regex matches, such as \\d{4} (API\n"
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
	    "  --audit-key FILE         chain the trail with HMAC-SHA256 under this key, so it\n"
	    "                           cannot be forged or re-hashed without it; readable by\n"
	    "                           agtrace's user only (head -c 32 /dev/urandom > FILE;\n"
	    "                           chmod 600 FILE)\n"
	    "  --audit-checkpoint-records N, --audit-checkpoint-seconds S\n"
	    "                           a checkpoint (record count and chain head, synced to\n"
	    "                           disk, handed out as an anchor) every N records (100) or\n"
	    "                           S seconds (30); a clean stop seals the trail\n"
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
	    "                           when full, --spool-overflow newest (refuse new spans, the\n"
	    "                           default) or oldest (delete the oldest), counted as lost;\n"
	    "                           --spool-sync-ms N (100): at most one fsync per N ms;\n"
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

int agt_attach_parse_opts(struct attach_opts *o, int argc, char **argv)
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
		OPT_AUDIT_KEY,
		OPT_AUDIT_CKPT_RECORDS,
		OPT_AUDIT_CKPT_SECONDS,
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
		OPT_SPOOL_OVERFLOW,
		OPT_SPOOL_SYNC,
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
	    {"audit-key", required_argument, NULL, OPT_AUDIT_KEY},
	    {"audit-checkpoint-records", required_argument, NULL, OPT_AUDIT_CKPT_RECORDS},
	    {"audit-checkpoint-seconds", required_argument, NULL, OPT_AUDIT_CKPT_SECONDS},
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
	    {"spool-overflow", required_argument, NULL, OPT_SPOOL_OVERFLOW},
	    {"spool-sync-ms", required_argument, NULL, OPT_SPOOL_SYNC},
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
	for (int k = 0; k < AGT_SS_MAX; k++)
		o->sample_cfg[k] = (struct agt_sample_cfg){.ratio_ppm = AGT_SAMPLE_ONE};
	if (!o->redactor && !(o->redactor = agt_redactor_new())) {
		agt_err("out of memory");
		return AGT_EXIT_USAGE;
	}
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

			if (agt_redactor_add(o->redactor, optarg, err, sizeof(err))) {
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
			/* The fields named change the source's settings; the rest stay. */
			agt_sample_parse(optarg, &src, &o->sample_cfg[src], NULL, 0);
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
		case OPT_AUDIT_KEY: o->audit_key_file = optarg; break;
		case OPT_AUDIT_CKPT_RECORDS:
		case OPT_AUDIT_CKPT_SECONDS:
			if (agt_parse_long(optarg, 1, 1000000, &v))
				return usage_error("--audit-checkpoint-records/-seconds need a "
						   "number from 1 to 1000000, got \"%s\"",
						   optarg);
			*(c == OPT_AUDIT_CKPT_RECORDS ? &o->audit_ckpt_records
						      : &o->audit_ckpt_seconds) = v;
			break;
		case OPT_ES: o->exp[AGT_EXP_ELASTICSEARCH].url = optarg; break;
		case OPT_OTLP: o->exp[AGT_EXP_OTLP].url = optarg; break;
		case OPT_FLUENTD: o->exp[AGT_EXP_FLUENTD].url = optarg; break;
		case OPT_FLUENTD_TAG: o->exp[AGT_EXP_FLUENTD].tag = optarg; break;
		case OPT_ES_INDEX: o->exp[AGT_EXP_ELASTICSEARCH].index_pattern = optarg; break;
		case OPT_ES_KEY: o->exp[AGT_EXP_ELASTICSEARCH].api_key_file = optarg; break;
		case OPT_ES_USER: o->exp[AGT_EXP_ELASTICSEARCH].user = optarg; break;
		case OPT_ES_PASSWORD: o->exp[AGT_EXP_ELASTICSEARCH].password_file = optarg; break;
		case OPT_ES_CA: o->exp[AGT_EXP_ELASTICSEARCH].ca_file = optarg; break;
		case OPT_ES_INSECURE: o->exp[AGT_EXP_ELASTICSEARCH].insecure = 1; break;
		case OPT_ES_TEMPLATE: o->exp[AGT_EXP_ELASTICSEARCH].install_template = 1; break;
		case OPT_SPOOL_DIR: o->delivery.spool_dir = optarg; break;
		case OPT_DEAD_LETTER: o->delivery.dead_letter = optarg; break;
		case OPT_ES_DRAIN:
			if (agt_parse_long(optarg, 1, 3600, &v))
				return usage_error("--es-drain-seconds needs 1 to 3600, got \"%s\"",
						   optarg);
			o->delivery.drain_seconds = (double)v;
			break;
		case OPT_SPOOL_MAX:
			if (agt_parse_long(optarg, 4096, 1L << 40, &v))
				return usage_error(
				    "--spool-max-bytes needs a byte count from 4096, got "
				    "\"%s\"",
				    optarg);
			o->delivery.spool_max = (uint64_t)v;
			break;
		case OPT_SPOOL_OVERFLOW:
			if (strcmp(optarg, "oldest") && strcmp(optarg, "newest"))
				return usage_error("--spool-overflow needs oldest or newest, got "
						   "\"%s\"",
						   optarg);
			o->delivery.overflow =
			    strcmp(optarg, "oldest") ? AGT_OVERFLOW_NEWEST : AGT_OVERFLOW_OLDEST;
			break;
		case OPT_SPOOL_SYNC:
			if (agt_parse_long(optarg, 1, 60000, &v))
				return usage_error("--spool-sync-ms needs milliseconds from 1 to "
						   "60000, got \"%s\"",
						   optarg);
			o->delivery.sync_ms = (int)v;
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
	if (!o->audit_file && (o->audit_key_file || o->audit_ckpt_records || o->audit_ckpt_seconds))
		return usage_error("%s--audit-key and --audit-checkpoint-* need --audit FILE", "");
	if (!o->npids && !o->nselects)
		return usage_error("%sno target: give the process to trace with -p PID, or "
				   "--select KEY=PATTERN to find processes by name, command line, "
				   "container or pod",
				   "");
	return 0;
}
