/* A run's settings (cli/options.c): the command line of `attach` and the JSON file of `run` go
 * through one option table, so the same setting given either way must give the same config and
 * be refused with the same sentence. The list of options is read from `attach --help` (printed
 * from the table), so an option added later without a case here fails the first test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/redact.h"
#include "cli/options.h"

/* A value for every option that takes one, valid for it: {flag, command-line value, JSON value}.
 * Options without a value (flags) are true in JSON. */
static const struct sample {
	const char *flag, *arg, *json;
} samples[] = {
    {"pid", "4242", "4242"},
    {"select", "comm=py\\,thon*,label.app=bot", "{\"comm\": \"py,thon*\", \"labels\": {\"app\": \"bot\"}}"},
    {"max-targets", "77", "77"},
    {"forget-after", "9", "9"},
    {"k8s-pods-url", "https://k:10250/pods", "\"https://k:10250/pods\""},
    {"k8s-token-file", "/t", "\"/t\""},
    {"k8s-ca", "/ca", "\"/ca\""},
    {"probes", "python-gc", "\"python-gc\""},
    {"uprobe", "libc.so.6:getaddrinfo", "\"libc.so.6:getaddrinfo\""},
    {"max-depth", "12", "12"},
    {"max-threads", "99", "99"},
    {"max-message", "8192", "8192"},
    {"idle-timeout", "33", "33"},
    {"output", "jsonl", "\"jsonl\""},
    {"output-file", "/o.jsonl", "\"/o.jsonl\""},
    {"output-max-bytes", "100000", "100000"},
    {"output-max-age", "3600", "3600"},
    {"output-keep-bytes", "1000000", "1000000"},
    {"duration", "5", "5"},
    {"redact", "internal-[0-9]+", "\"internal-[0-9]+\""},
    {"sample", "tls=0.5,rate=100", "\"tls=0.5,rate=100\""},
    {"event-budget", "5000", "5000"},
    {"audit", "/a.jsonl", "\"/a.jsonl\""},
    {"audit-key", "/a.key", "\"/a.key\""},
    {"audit-checkpoint-records", "10", "10"},
    {"audit-checkpoint-seconds", "11", "11"},
    {"audit-max-bytes", "200000", "200000"},
    {"audit-max-age", "7200", "7200"},
    {"audit-keep-bytes", "2000000", "2000000"},
    {"metrics", "127.0.0.1:9999", "\"127.0.0.1:9999\""},
    {"es", "http://es:9200", "\"http://es:9200\""},
    {"es-index", "idx-%Y", "\"idx-%Y\""},
    {"es-api-key-file", "/k", "\"/k\""},
    {"es-user", "u", "\"u\""},
    {"es-password-file", "/p", "\"/p\""},
    {"es-ca", "/esca", "\"/esca\""},
    {"es-drain-seconds", "7", "7"},
    {"otlp", "http://otel:4318", "\"http://otel:4318\""},
    {"otlp-protocol", "http/json", "\"http/json\""},
    {"otlp-header", "x-tenant=acme", "\"x-tenant=acme\""},
    {"otlp-timeout", "2500", "2500"},
    {"otlp-compression", "none", "\"none\""},
    {"otlp-ca", "/oca", "\"/oca\""},
    {"otlp-client-cert", "/ocert", "\"/ocert\""},
    {"otlp-client-key", "/okey", "\"/okey\""},
    {"service-name", "svc", "\"svc\""},
    {"capture-content-bytes", "4096", "4096"},
    {"fluentd", "fd:24224", "\"fd:24224\""},
    {"fluentd-tag", "t.x", "\"t.x\""},
    {"spool-dir", "/s", "\"/s\""},
    {"spool-max-bytes", "8192", "8192"},
    {"spool-overflow", "oldest", "\"oldest\""},
    {"spool-sync-ms", "50", "50"},
    {"dead-letter", "/d", "\"/d\""},
    {"log-level", "debug", "\"debug\""},
    {"log-format", "json", "\"json\""},
    {"files-ignore", "/home/*/.cache/*", "\"/home/*/.cache/*\""},
    {"files-hash-max", "65536", "65536"},
};

/* Flags (no value): set by a file's true. */
static const char *const flags[] = {"k8s-insecure", "es-insecure", "es-install-template",
				    "otlp-insecure", "capture-content", "files", "files-read",
				    "capture-diffs", "pipes", "no-exec-stop"};

/* Options of the command line only, never in a file. */
static const char *const cli_only[] = {"tcp",	       "no-tcp",	     "dry-run",
				       "verbose", "runtime-metrics", "no-runtime-metrics"};

/* --help's rows: "--flag [json.key]" pairs. */
struct row {
	char flag[64], json[64];
};

static int help_rows(struct row *rows, int cap)
{
	char *buf = NULL, line[512];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int n = 0;

	agt_config_usage(f);
	fclose(f);
	f = fmemopen(buf, len, "r");
	while (fgets(line, sizeof(line), f) && n < cap) {
		char *p = line, *b;

		while (*p == ' ')
			p++;
		if (!strncmp(p, "-", 1) && p[1] != '-' && p[2] == ',')
			p += 4; /* "-p, --pid" */
		if (strncmp(p, "--", 2) || line[2] == ' ')
			goto key; /* a continuation line: its key may end it */
		sscanf(p + 2, "%63[a-z0-9-]", rows[n].flag);
		rows[n].json[0] = 0;
		n++;
	key:
		if (n && (b = strrchr(line, '[')) && strchr(b, ']') && b[1] != ']' &&
		    strchr(b, ']')[1] == '\n' && !strchr(b, ' '))
			sscanf(b + 1, "%63[a-z_.]", rows[n - 1].json);
	}
	fclose(f);
	free(buf);
	return n;
}

static const struct sample *sample_of(const char *flag)
{
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		if (!strcmp(samples[i].flag, flag))
			return &samples[i];
	return NULL;
}

static int in(const char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return 1;
	return 0;
}

/* Every field of a config as text, for comparing two configs. */
static char *describe(const struct agt_config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

#define S(x) fprintf(f, #x "=%s\n", (x) ? (x) : "(null)")
#define L(x) fprintf(f, #x "=%ld\n", (long)(x))
	for (int i = 0; i < c->npids; i++)
		L(c->pids[i]);
	for (int i = 0; i < c->nspec_args; i++)
		S(c->spec_args[i]);
	for (int i = 0; i < c->nuprobe_args; i++)
		S(c->uprobe_args[i]);
	for (int i = 0; i < c->nselects; i++)
		S(c->selects[i]);
	S(c->output);
	S(c->output_file);
	S(c->audit_file);
	S(c->audit_key_file);
	L(c->audit_ckpt_records);
	L(c->audit_ckpt_seconds);
	L(c->output_max_bytes);
	L(c->output_max_age);
	L(c->output_keep_bytes);
	L(c->audit_max_bytes);
	L(c->audit_max_age);
	L(c->audit_keep_bytes);
	S(c->metrics_listen);
	for (int k = 0; k < AGT_EXP_COUNT; k++) {
		const struct agt_exporter_config *e = &c->exp[k];

		S(e->url);
		S(e->index_pattern);
		S(e->api_key_file);
		S(e->user);
		S(e->password_file);
		S(e->ca_file);
		L(e->insecure);
		L(e->install_template);
		S(e->tag);
		for (int h = 0; h < e->nheaders; h++)
			S(e->headers[h]);
		S(e->protocol);
		L(e->timeout_ms);
		S(e->client_cert);
		S(e->client_key);
		S(e->compression);
	}
	S(c->delivery.spool_dir);
	S(c->delivery.dead_letter);
	L(c->delivery.spool_max);
	L(c->delivery.overflow);
	L(c->delivery.sync_ms);
	L(c->delivery.drain_seconds);
	L(c->duration);
	L(c->max_depth);
	L(c->max_threads);
	L(c->max_message);
	L(c->tcp);
	L(c->pipes);
	L(c->no_exec_stop);
	L(c->idle_timeout);
	for (int k = 0; k < AGT_SS_MAX; k++) {
		L(c->sample_cfg[k].ratio_ppm);
		L(c->sample_cfg[k].rate);
		L(c->sample_cfg[k].burst);
		L(c->sample_cfg[k].byte_cap);
	}
	L(c->event_budget);
	S(c->k8s.pods_url);
	S(c->k8s.token_file);
	S(c->k8s.ca_file);
	L(c->k8s.insecure);
	L(c->max_targets);
	L(c->forget_after);
	L(c->dry_run);
	S(c->service_name);
	L(c->capture_content);
	L(c->capture_content_bytes);
	S(c->log_level);
	S(c->log_format);
	L(c->verbose);
	L(c->files);
	L(c->files_read);
	L(c->capture_diffs);
	for (int i = 0; i < c->nfiles_ignore; i++)
		S(c->files_ignore[i]);
	L(c->files_hash_max);
	L(c->runtime_metrics);
#undef S
#undef L
	fclose(f);
	return buf;
}

/* What a call printed on stderr. */
static char captured[4096];

static int quiet_call(int (*fn)(void *), void *arg)
{
	FILE *tmp = tmpfile();
	int saved = dup(2), rc;
	size_t n;

	fflush(stderr);
	dup2(fileno(tmp), 2);
	rc = fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(captured, 1, sizeof(captured) - 1, tmp);
	captured[n] = 0;
	fclose(tmp);
	return rc;
}

struct argv_call {
	struct agt_config *c;
	int argc;
	char **argv;
};

static int do_argv(void *a)
{
	struct argv_call *x = a;

	return agt_config_argv(x->c, x->argc, x->argv);
}

struct file_call {
	struct agt_config *c;
	const char *path;
};

static int do_file(void *a)
{
	struct file_call *x = a;

	return agt_config_file(x->c, x->path);
}

static int parse_argv(struct agt_config *c, int argc, const char **argv)
{
	struct argv_call x = {c, argc, (char **)argv};

	assert_int_equal(agt_config_init(c), 0);
	return quiet_call(do_argv, &x);
}

static char path[64];

static int parse_json(struct agt_config *c, const char *json)
{
	struct file_call x = {c, path};
	FILE *f;

	strcpy(path, "/tmp/agtrace-test-config-XXXXXX");
	close(mkstemp(path));
	f = fopen(path, "w");
	fputs(json, f);
	fclose(f);
	assert_int_equal(agt_config_init(c), 0);
	int rc = quiet_call(do_file, &x);
	unlink(path);
	return rc;
}

/* Put "a.b.c": value into a JSON object being written (keys of one section kept together by
 * the caller's order is not needed: each section is its own object, merged here by path). */
struct jnode {
	char key[64];
	char *value; /* a leaf's JSON text (arrays already joined), or NULL for an object */
	struct jnode *kids[64];
	int nkids;
};

static struct jnode *jchild(struct jnode *n, const char *key)
{
	for (int i = 0; i < n->nkids; i++)
		if (!strcmp(n->kids[i]->key, key))
			return n->kids[i];
	n->kids[n->nkids] = calloc(1, sizeof(struct jnode));
	snprintf(n->kids[n->nkids]->key, 64, "%s", key);
	return n->kids[n->nkids++];
}

static void jput(struct jnode *root, const char *dotted, const char *value, int list)
{
	char k[128], *dot, *s = k;
	struct jnode *n = root;

	snprintf(k, sizeof(k), "%s", dotted);
	while ((dot = strchr(s, '.'))) {
		*dot = 0;
		n = jchild(n, s);
		s = dot + 1;
	}
	n = jchild(n, s);
	n->value = malloc(strlen(value) + 3);
	sprintf(n->value, list ? "[%s]" : "%s", value);
}

static void jwrite(FILE *f, const struct jnode *n)
{
	if (n->value) {
		fputs(n->value, f);
		return;
	}
	fputc('{', f);
	for (int i = 0; i < n->nkids; i++) {
		fprintf(f, "%s\"%s\": ", i ? ", " : "", n->kids[i]->key);
		jwrite(f, n->kids[i]);
	}
	fputc('}', f);
}

static void jfree(struct jnode *n)
{
	for (int i = 0; i < n->nkids; i++) {
		jfree(n->kids[i]);
		free(n->kids[i]);
	}
	free(n->value);
}

/* Every option, given on the command line and in a file, gives the same config; and --help
 * lists every option with the key a file uses for it. */
static void every_option_both_ways_same_config(void **state)
{
	struct row rows[128];
	int nrows = help_rows(rows, 128), argc = 1, tested = 0;
	const char *argv[256] = {"attach"};
	struct jnode root = {0};
	char *json = NULL, *a, *b;
	size_t jl = 0;
	FILE *jf;
	struct agt_config ca, cb;

	(void)state;
	assert_true(nrows > 40);
	for (int i = 0; i < nrows; i++) {
		const struct sample *s = sample_of(rows[i].flag);
		static char opt[128][80];
		int is_flag = in(flags, sizeof(flags) / sizeof(flags[0]), rows[i].flag);

		if (in(cli_only, sizeof(cli_only) / sizeof(cli_only[0]), rows[i].flag)) {
			assert_string_equal(rows[i].json, "");
			continue;
		}
		if (!s && !is_flag)
			fail_msg("option --%s has no sample value in this test", rows[i].flag);
		if (!rows[i].json[0])
			fail_msg("option --%s shows no configuration key in --help", rows[i].flag);
		snprintf(opt[i], sizeof(opt[i]), "--%s", rows[i].flag);
		argv[argc++] = opt[i];
		if (is_flag) {
			jput(&root, rows[i].json, "true", 0);
		} else {
			int list = !strcmp(rows[i].flag, "pid") || !strcmp(rows[i].flag, "select") ||
				   !strcmp(rows[i].flag, "probes") || !strcmp(rows[i].flag, "uprobe") ||
				   !strcmp(rows[i].flag, "redact") || !strcmp(rows[i].flag, "sample") ||
				   !strcmp(rows[i].flag, "otlp-header") ||
				   !strcmp(rows[i].flag, "files-ignore");

			argv[argc++] = s->arg;
			jput(&root, rows[i].json, s->json, list);
		}
		tested++;
	}
	assert_int_equal(tested, (int)(sizeof(samples) / sizeof(samples[0]) +
				       sizeof(flags) / sizeof(flags[0])));
	jf = open_memstream(&json, &jl);
	jwrite(jf, &root);
	fclose(jf);
	jfree(&root);

	assert_int_equal(parse_argv(&ca, argc, argv), 0);
	assert_int_equal(parse_json(&cb, json), 0);
	a = describe(&ca);
	b = describe(&cb);
	assert_string_equal(a, b);
	/* And the values are the ones given, not defaults. */
	assert_non_null(strstr(a, "c->selects[i]=comm=py\\,thon*,label.app=bot\n"));
	assert_non_null(strstr(a, "e->url=http://otel:4318\n"));
	assert_non_null(strstr(a, "c->delivery.spool_max=8192\n"));
	assert_non_null(strstr(a, "c->k8s.insecure=1\n"));
	assert_non_null(strstr(a, "e->headers[h]=x-tenant=acme\n"));
	assert_non_null(strstr(a, "e->protocol=http/json\n"));
	assert_non_null(strstr(a, "c->capture_content_bytes=4096\n"));
	assert_int_equal(ca.sample_cfg[1].ratio_ppm, 500000);
	assert_non_null(strstr(a, "c->files_ignore[i]=/home/*/.cache/*\n"));
	assert_non_null(strstr(a, "c->files_hash_max=65536\n"));
	assert_true(ca.files && ca.files_read && ca.capture_diffs);
	free(a);
	free(b);
	free(json);
	agt_config_free(&ca);
	agt_config_free(&cb);
}

/* The same mistake, given either way: the same sentence (the file's also names the file and the
 * JSON path), and -EINVAL. */
static void same_refusal_both_ways(void **state)
{
	static const struct {
		const char *flag, *arg, *json, *sentence;
	} cases[] = {
	    {"--max-depth", "0", "{\"max_depth\": 0}",
	     "--max-depth needs a number from 1 to 1048576, got \"0\""},
	    {"--output", "xml", "{\"output\": {\"format\": \"xml\"}}",
	     "--output must be tree or jsonl, got \"xml\""},
	    {"--spool-overflow", "middle", "{\"spool\": {\"overflow\": \"middle\"}}",
	     "--spool-overflow needs oldest or newest, got \"middle\""},
	    {"--spool-max-bytes", "10", "{\"spool\": {\"max_bytes\": 10}}",
	     "--spool-max-bytes needs a byte count from 4096, got \"10\""},
	    {"--max-message", "1.5", "{\"max_message\": 1.5}",
	     "--max-message needs a byte count from 4096 to 67108864, got \"1.5\""},
	    {"--es-drain-seconds", "0", "{\"elasticsearch\": {\"drain_seconds\": 0}}",
	     "--es-drain-seconds needs 1 to 3600, got \"0\""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *argv[] = {"attach", "-p", "1", cases[i].flag, cases[i].arg};
		char json[256], want[512];
		struct agt_config c;

		assert_int_equal(parse_argv(&c, 5, argv), -EINVAL);
		snprintf(want, sizeof(want), "agtrace: error: %s; see `agtrace attach --help`\n",
			 cases[i].sentence);
		assert_string_equal(captured, want);
		agt_config_free(&c);

		snprintf(json, sizeof(json), "{\"targets\": {\"pids\": [1]}, %s", cases[i].json + 1);
		assert_int_equal(parse_json(&c, json), -EINVAL);
		assert_non_null(strstr(captured, cases[i].sentence));
		assert_non_null(strstr(captured, path));
		agt_config_free(&c);
	}
}

/* What only a file can get wrong: the sentence names the JSON path of the culprit. */
static void file_errors_name_the_path(void **state)
{
	static const struct {
		const char *json, *sentence;
	} cases[] = {
	    {"{\"targets\": {\"pids\": [1]}, \"bogus\": 1}", "$.bogus: unknown key"},
	    {"{\"targets\": {\"pids\": [1]}, \"spool\": {\"size\": 1}}", "$.spool.size: unknown key"},
	    {"{\"targets\": {\"pids\": [1]}, \"spool\": 3}", "$.spool: must be an object"},
	    {"{\"targets\": {\"pids\": [1]}, \"max_depth\": \"3\"}", "$.max_depth: must be a whole number"},
	    {"{\"targets\": {\"pids\": [1]}, \"probes\": \"x\"}", "$.probes: must be an array of strings"},
	    {"{\"targets\": {\"pids\": [1]}, \"tcp\": 1}", "$.tcp: must be true or false"},
	    {"{\"targets\": {\"pids\": [\"1\"]}}", "$.targets.pids: must be process ids"},
	    {"{\"targets\": {\"select\": [{\"name\": \"x\"}]}}",
	     "$.targets.select[].name: unknown key (exe, comm, cmdline, cgroup, container, namespace, "
	     "pod, labels)"},
	    {"{\"targets\": {\"select\": [{\"labels\": {\"a\": 1}}]}}",
	     "$.targets.select[].labels.a: must be a string (a glob)"},
	    {"{\"targets\": {}}", "$.targets: must name processes"},
	    {"{\"targets\": {\"pids\": [1]}, \"audit_key\": \"/k\"}",
	     "$: --audit-key and --audit-checkpoint-* need --audit FILE"},
	    {"[1]", ":1:1: $: must be a JSON object of settings"},
	    {"{\"targets\": ",
	     ":1:13: the JSON ends too early (a bracket or a quote is not closed); fix the syntax"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct agt_config c;

		if (parse_json(&c, cases[i].json) != -EINVAL)
			fail_msg("%s: accepted", cases[i].json);
		if (!strstr(captured, cases[i].sentence))
			fail_msg("%s: got %s", cases[i].json, captured);
		agt_config_free(&c);
	}
}

/* Booleans: "tcp" is three-valued (auto unless given); a flag's false leaves it unset. */
static void booleans(void **state)
{
	struct agt_config c;
	const char *on[] = {"attach", "-p", "1", "--tcp"}, *off[] = {"attach", "-p", "1", "--no-tcp"};

	(void)state;
	assert_int_equal(parse_json(&c, "{\"targets\": {\"pids\": [1]}}"), 0);
	assert_int_equal(c.tcp, -1);
	agt_config_free(&c);
	assert_int_equal(parse_json(&c, "{\"targets\": {\"pids\": [1]}, \"tcp\": false}"), 0);
	assert_int_equal(c.tcp, 0);
	agt_config_free(&c);
	assert_int_equal(parse_json(&c, "{\"targets\": {\"pids\": [1]}, \"tcp\": true}"), 0);
	assert_int_equal(c.tcp, 1);
	agt_config_free(&c);
	assert_int_equal(parse_argv(&c, 4, on), 0);
	assert_int_equal(c.tcp, 1);
	agt_config_free(&c);
	assert_int_equal(parse_argv(&c, 4, off), 0);
	assert_int_equal(c.tcp, 0);
	agt_config_free(&c);
	assert_int_equal(
	    parse_json(&c, "{\"targets\": {\"pids\": [1]}, \"elasticsearch\": {\"insecure\": false}}"),
	    0);
	assert_int_equal(c.exp[AGT_EXP_ELASTICSEARCH].insecure, 0);
	agt_config_free(&c);
}

/* The command line's own mistakes, and --help. */
static void command_line(void **state)
{
	struct agt_config c;
	const char *none[] = {"attach"}, *unknown[] = {"attach", "-p", "1", "--bogus"},
		   *noval[] = {"attach", "-p"}, *extra[] = {"attach", "-p", "1", "stray"},
		   *help[] = {"attach", "--help"};

	(void)state;
	assert_int_equal(parse_argv(&c, 1, none), -EINVAL);
	assert_string_equal(captured,
			    "agtrace: error: no target: give the process to trace with -p PID, or "
			    "--select KEY=PATTERN to find processes by name, command line, container "
			    "or pod; see `agtrace attach --help`\n");
	agt_config_free(&c);
	assert_int_equal(parse_argv(&c, 4, unknown), -EINVAL);
	assert_string_equal(captured,
			    "agtrace: error: unknown option \"--bogus\"; see `agtrace attach --help`\n");
	agt_config_free(&c);
	assert_int_equal(parse_argv(&c, 2, noval), -EINVAL);
	assert_string_equal(captured,
			    "agtrace: error: option -p needs a value; see `agtrace attach --help`\n");
	agt_config_free(&c);
	assert_int_equal(parse_argv(&c, 4, extra), -EINVAL);
	assert_string_equal(captured,
			    "agtrace: error: unexpected argument \"stray\"; see `agtrace attach --help`\n");
	agt_config_free(&c);
	/* --help prints to stdout and says so with 1. */
	{
		int saved = dup(1), devnull = open("/dev/null", 1);

		fflush(stdout);
		dup2(devnull, 1);
		assert_int_equal(parse_argv(&c, 2, help), 1);
		fflush(stdout);
		dup2(saved, 1);
		close(saved);
		close(devnull);
	}
	agt_config_free(&c);
}

/* Repeated options and lists keep every value, in order. */
static void lists_keep_order(void **state)
{
	struct agt_config a, b;
	const char *argv[] = {"attach", "-p", "3", "-p", "1", "--uprobe", "/x:f", "--uprobe", "/y:g"};

	(void)state;
	assert_int_equal(parse_argv(&a, 9, argv), 0);
	assert_int_equal(
	    parse_json(&b, "{\"targets\": {\"pids\": [3, 1]}, \"uprobes\": [\"/x:f\", \"/y:g\"]}"),
	    0);
	assert_int_equal(a.npids, 2);
	assert_int_equal(a.pids[0], 3);
	assert_int_equal(a.pids[1], 1);
	assert_int_equal(b.npids, 2);
	assert_int_equal(b.pids[0], 3);
	assert_string_equal(b.uprobe_args[1], "/y:g");
	agt_config_free(&a);
	agt_config_free(&b);
}

/* Not last-wins: an option of one value given twice, and options that contradict each other,
 * are refused (the same rule for a file's members given twice). */
static void conflicts_are_refused(void **state)
{
	static const struct {
		int argc;
		const char *argv[8], *sentence;
	} cases[] = {
	    {5, {"attach", "-p", "1", "--duration", "5"}, NULL},
	    {7, {"attach", "-p", "1", "--duration", "5", "--duration", "6"},
	     "--duration is given twice; give it once"},
	    {6, {"attach", "-p", "1", "-o", "jsonl", "--output=tree"},
	     "--output is given twice; give it once"},
	    {5, {"attach", "-p", "1", "--tcp", "--no-tcp"},
	     "--tcp and --no-tcp contradict each other; give one"},
	    {5, {"attach", "-p", "1", "--no-tcp", "--tcp"},
	     "--tcp and --no-tcp contradict each other; give one"},
	    {6, {"attach", "-p", "1", "-v", "--log-level", "info"},
	     "-v and --log-level both set the log level (-v is --log-level debug); give one"},
	    {7, {"attach", "-p", "1", "-o", "tree", "--log-format", "json"},
	     "-o tree is a view for a person at a terminal and --log-format json is for a log "
	     "collector; use -o jsonl with JSON logs"},
	    {5, {"attach", "-p", "1", "--log-level", "loud"},
	     "--log-level needs error, warn, info or debug, got \"loud\""},
	    {7, {"attach", "-p", "1", "-p", "2", "--select", "comm=x"}, NULL}, /* lists repeat */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct agt_config c;
		char want[512];
		int rc = parse_argv(&c, cases[i].argc, (const char **)cases[i].argv);

		if (!cases[i].sentence) {
			assert_int_equal(rc, 0);
		} else {
			assert_int_equal(rc, -EINVAL);
			snprintf(want, sizeof(want), "agtrace: error: %s; see `agtrace attach --help`\n",
				 cases[i].sentence);
			assert_string_equal(captured, want);
		}
		agt_config_free(&c);
	}
}

/* A file's mistakes name the line and column: of the value that is wrong, of the key that is
 * unknown or given twice, of the character where the syntax breaks. */
static void file_errors_name_line_and_column(void **state)
{
	static const struct {
		const char *json, *where;
	} cases[] = {
	    {"{\n  \"targets\": {\"pids\": [1]},\n  \"spool\": {\"overflow\": \"middle\"}\n}\n",
	     ":3:25: $.spool.overflow: --spool-overflow needs oldest or newest, got \"middle\"; see "
	     "the configuration section of the README\n"},
	    {"{\n  \"targets\": {\"pids\": [1]},\n  \"duration\": 5,\n    \"duration\": 6\n}\n",
	     ":4:5: $.duration: is given twice in this object; give it once; see the configuration "
	     "section of the README\n"},
	    {"{\n  \"targets\": {\"pids\": [1]},\n  \"metrics\": {\n\t\"listn\": \"9464\"}}",
	     ":4:2: $.metrics.listn: unknown key; see the configuration section of the README\n"},
	    {"{\"targets\": {\"pids\": [1, \"2\"]}}",
	     ":1:26: $.targets.pids: must be process ids; see the configuration section of the "
	     "README\n"},
	    {"{\"targets\": {\"select\": [{\"comm\": \"x\"}, {\"labels\": {\"a\": 1}}]}}",
	     ":1:57: $.targets.select[].labels.a: must be a string (a glob); see the configuration "
	     "section of the README\n"},
	    {"{\n  \"targets\": {\"pids\": [1]},\n  \"duration\": 5,,\n}\n",
	     ":3:17: not valid JSON here (at `,`); fix the syntax\n"},
	    {"{\"targets\": {\"pids\": [1]}, \"output\": {\"format\": \"tree\"}, \"log\": "
	     "{\"format\": \"json\"}}",
	     ":1:1: $: -o tree is a view for a person at a terminal and --log-format json is for a "
	     "log collector; use -o jsonl with JSON logs; see the configuration section of the "
	     "README\n"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct agt_config c;
		char want[1024];

		assert_int_equal(parse_json(&c, cases[i].json), -EINVAL);
		snprintf(want, sizeof(want), "agtrace: error: %s%s", path, cases[i].where);
		assert_string_equal(captured, want);
		agt_config_free(&c);
	}
}

/* --redact takes PCRE2 syntax: \d, \b, (?i) and \K work. */
static void redact_takes_pcre2(void **state)
{
	const char *argv[] = {"attach", "-p", "1", "--redact", "\\bpin \\K\\d{4}\\b", "--redact",
			      "(?i)project-[a-z]+"};
	struct agt_config c;
	char *out;

	(void)state;
	assert_int_equal(parse_argv(&c, 7, argv), 0);
	out = agt_redact_str(c.redactor, "pin 1234 for PROJECT-Apollo, not 12345");
	assert_string_equal(out, "pin [REDACTED] for [REDACTED], not 12345");
	free(out);
	agt_config_free(&c);
	assert_int_equal(parse_json(&c, "{\"targets\": {\"pids\": [1]}, \"redact\": [\"\\\\d{3}-\\\\d{4}\"]}"), 0);
	out = agt_redact_str(c.redactor, "call 555-1234");
	assert_string_equal(out, "call [REDACTED]");
	free(out);
	agt_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_option_both_ways_same_config),
	    cmocka_unit_test(same_refusal_both_ways),
	    cmocka_unit_test(file_errors_name_the_path),
	    cmocka_unit_test(booleans),
	    cmocka_unit_test(command_line),
	    cmocka_unit_test(lists_keep_order),
	    cmocka_unit_test(conflicts_are_refused),
	    cmocka_unit_test(file_errors_name_line_and_column),
	    cmocka_unit_test(redact_takes_pcre2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
