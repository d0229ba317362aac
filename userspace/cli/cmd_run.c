/* `agtrace run --config FILE`: the same run as `attach`, its settings from a JSON file. Each key
 * becomes the attach option of the same meaning, so both stay one code path. With no exporter
 * configured, the embedded default: JSONL files under /var/lib/agtrace/traces and the metrics
 * endpoint on 127.0.0.1:9464. */
#include "base/log.h"
#include "base/util.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int cmd_attach(int argc, char **argv);

struct args {
	char *v[256];
	int n;
	char *file;
};

static void add(struct args *a, const char *s)
{
	if (a->n < 255)
		a->v[a->n++] = strdup(s);
}

/* Key -> option; kind: 's' string, 'n' number, 'b' flag (true adds it), 'a' array of strings. */
struct map {
	const char *path, *key, *opt;
	char kind;
};

static const struct map maps[] = {
    {"$", "probes", "--probes", 'a'},
    {"$", "uprobes", "--uprobe", 'a'},
    {"$", "redact", "--redact", 'a'},
    {"$", "sample", "--sample", 'a'},
    {"$", "event_budget", "--event-budget", 'n'},
    {"$", "max_message", "--max-message", 'n'},
    {"$", "idle_timeout", "--idle-timeout", 'n'},
    {"$", "max_depth", "--max-depth", 'n'},
    {"$", "duration", "--duration", 'n'},
    {"$", "audit", "--audit", 's'},
    {"$", "audit_key", "--audit-key", 's'},
    {"$", "audit_checkpoint_records", "--audit-checkpoint-records", 'n'},
    {"$", "audit_checkpoint_seconds", "--audit-checkpoint-seconds", 'n'},
    {"$", "dead_letter", "--dead-letter", 's'},
    {"$.output", "format", "-o", 's'},
    {"$.output", "file", "--output-file", 's'},
    {"$.elasticsearch", "url", "--es", 's'},
    {"$.elasticsearch", "index", "--es-index", 's'},
    {"$.elasticsearch", "api_key_file", "--es-api-key-file", 's'},
    {"$.elasticsearch", "user", "--es-user", 's'},
    {"$.elasticsearch", "password_file", "--es-password-file", 's'},
    {"$.elasticsearch", "ca", "--es-ca", 's'},
    {"$.elasticsearch", "insecure", "--es-insecure", 'b'},
    {"$.elasticsearch", "install_template", "--es-install-template", 'b'},
    {"$.elasticsearch", "drain_seconds", "--es-drain-seconds", 'n'},
    {"$.otlp", "url", "--otlp", 's'},
    {"$.fluentd", "address", "--fluentd", 's'},
    {"$.fluentd", "tag", "--fluentd-tag", 's'},
    {"$.metrics", "listen", "--metrics", 's'},
    {"$.spool", "dir", "--spool-dir", 's'},
    {"$.spool", "max_bytes", "--spool-max-bytes", 'n'},
    {"$.spool", "overflow", "--spool-overflow", 's'},
    {"$.spool", "sync_ms", "--spool-sync-ms", 'n'},
    {"$.kubernetes", "pods_url", "--k8s-pods-url", 's'},
    {"$.kubernetes", "token_file", "--k8s-token-file", 's'},
    {"$.kubernetes", "ca", "--k8s-ca", 's'},
    {"$.kubernetes", "insecure", "--k8s-insecure", 'b'},
    {"$", "max_targets", "--max-targets", 'n'},
};

static int fail(const char *file, const char *path, const char *key, const char *what)
{
	agt_err("%s: %s%s%s: %s; see the configuration section of the README", file, path,
		key ? "." : "", key ? key : "", what);
	return AGT_EXIT_USAGE;
}

/* Check every member of obj at path is known; apply the ones mapped there. */
static int apply(struct args *a, const char *file, const cJSON *obj, const char *path)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, obj)
	{
		const struct map *m = NULL;
		char buf[64];

		for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]) && !m; i++)
			if (!strcmp(maps[i].path, path) && !strcmp(maps[i].key, it->string))
				m = &maps[i];
		if (!m) {
			if (!strcmp(path, "$") &&
			    (!strcmp(it->string, "targets") || !strcmp(it->string, "output") ||
			     !strcmp(it->string, "elasticsearch") || !strcmp(it->string, "otlp") ||
			     !strcmp(it->string, "fluentd") || !strcmp(it->string, "metrics") ||
			     !strcmp(it->string, "spool") || !strcmp(it->string, "tcp") ||
			     !strcmp(it->string, "kubernetes")))
				continue;
			return fail(file, path, it->string, "unknown key");
		}
		switch (m->kind) {
		case 's':
			if (!cJSON_IsString(it))
				return fail(file, path, it->string, "must be a string");
			add(a, m->opt);
			add(a, it->valuestring);
			break;
		case 'n':
			if (!cJSON_IsNumber(it) || it->valuedouble < 0 ||
			    it->valuedouble != (double)(long long)it->valuedouble)
				return fail(file, path, it->string, "must be a whole number");
			snprintf(buf, sizeof(buf), "%lld", (long long)it->valuedouble);
			add(a, m->opt);
			add(a, buf);
			break;
		case 'b':
			if (!cJSON_IsBool(it))
				return fail(file, path, it->string, "must be true or false");
			if (cJSON_IsTrue(it))
				add(a, m->opt);
			break;
		case 'a': {
			const cJSON *e;

			if (!cJSON_IsArray(it))
				return fail(file, path, it->string, "must be an array of strings");
			cJSON_ArrayForEach(e, it)
			{
				if (!cJSON_IsString(e))
					return fail(file, path, it->string,
						    "must be an array of strings");
				add(a, m->opt);
				add(a, e->valuestring);
			}
		}
		}
	}
	return 0;
}

/* One selector object -> "key=glob,...,label.K=glob" (commas and backslashes escaped). */
static int selector_arg(struct args *a, const char *file, const cJSON *sel)
{
	static const char *const keys[] = {"exe",	"comm",	     "cmdline", "cgroup",
					   "container", "namespace", "pod"};
	char out[4096];
	size_t n = 0;
	const cJSON *it;

	if (!cJSON_IsObject(sel) || !sel->child)
		return fail(file, "$.targets", "select",
			    "must be a list of objects such as {\"comm\": \"python3*\", "
			    "\"cmdline\": \"*agent*\"}");
	cJSON_ArrayForEach(it, sel)
	{
		int known = !strcmp(it->string, "labels");
		const cJSON *lab;

		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			known |= !strcmp(it->string, keys[i]);
		if (!known)
			return fail(
			    file, "$.targets.select[]", it->string,
			    "unknown key (exe, comm, cmdline, cgroup, container, namespace, "
			    "pod, labels)");
		if (!strcmp(it->string, "labels") ? !cJSON_IsObject(it) : !cJSON_IsString(it))
			return fail(file, "$.targets.select[]", it->string,
				    !strcmp(it->string, "labels") ? "must be an object of strings"
								  : "must be a string (a glob)");
		for (lab = strcmp(it->string, "labels") ? it : it->child; lab;
		     lab = strcmp(it->string, "labels") ? NULL : lab->next) {
			const char *val = cJSON_GetStringValue(lab);

			if (!val)
				return fail(file, "$.targets.select[].labels", lab->string,
					    "must be a string (a glob)");
			n += snprintf(out + n, n < sizeof(out) ? sizeof(out) - n : 0,
				      "%s%s%s=", n ? "," : "", lab == it ? "" : "label.",
				      lab->string);
			for (const char *c = val; *c && n + 2 < sizeof(out); c++) {
				if (*c == ',' || *c == '\\')
					out[n++] = '\\';
				out[n++] = *c;
			}
			if (n + 2 >= sizeof(out))
				return fail(file, "$.targets", "select", "a selector is too long");
			out[n] = 0;
		}
	}
	add(a, "--select");
	add(a, out);
	return 0;
}

/* $.targets: {"pids": [N...], "select": [{...}...]}; at least one of them. */
static int add_targets(struct args *a, const char *file, const cJSON *t)
{
	const cJSON *pids = cJSON_GetObjectItemCaseSensitive(t, "pids"), *v;
	const cJSON *sel = cJSON_GetObjectItemCaseSensitive(t, "select");
	int rc;

	if (!cJSON_GetArraySize(pids) && !cJSON_GetArraySize(sel))
		return fail(file, "$", "targets",
			    "must name processes: \"pids\": [N...] and/or \"select\": "
			    "[{\"comm\": \"python3*\", \"cmdline\": \"*agent*\"}]");
	for (v = t->child; v; v = v->next)
		if (strcmp(v->string, "pids") && strcmp(v->string, "select"))
			return fail(file, "$.targets", v->string, "unknown key (pids, select)");
	if (pids && !cJSON_IsArray(pids))
		return fail(file, "$.targets", "pids", "must be an array of process ids");
	if (sel && !cJSON_IsArray(sel))
		return fail(file, "$.targets", "select", "must be an array of selector objects");
	cJSON_ArrayForEach(v, pids)
	{
		char b[32];

		if (!cJSON_IsNumber(v) || v->valuedouble < 1 ||
		    v->valuedouble != (double)v->valueint)
			return fail(file, "$.targets", "pids", "must be process ids");
		snprintf(b, sizeof(b), "%d", v->valueint);
		add(a, "-p");
		add(a, b);
	}
	cJSON_ArrayForEach(v, sel) if ((rc = selector_arg(a, file, v))) return rc;
	return 0;
}

int cmd_run(int argc, char **argv)
{
	const char *file = NULL;
	struct args a = {.n = 0};
	cJSON *cfg = NULL;
	const cJSON *v, *t;
	char *text;
	int rc = AGT_EXIT_USAGE, exporters = 0;

	int dry = argc == 4 && !strcmp(argv[3], "--dry-run");

	if ((argc == 3 || dry) && !strcmp(argv[1], "--config"))
		file = argv[2];
	if (!file) {
		fprintf(
		    argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) ? stdout
										       : stderr,
		    "Usage: agtrace run --config FILE [--dry-run]\n\nRuns as `agtrace attach` "
		    "does, with its "
		    "settings from a JSON file (each key is the attach option of the same "
		    "meaning;\n"
		    "the README lists them). With no exporter configured: JSONL files under "
		    "/var/lib/agtrace/traces and metrics on 127.0.0.1:9464.\n\n"
		    "Targets: \"targets\": {\"pids\": [N...], \"select\": [SELECTOR...]}, a "
		    "selector being\n"
		    "  {\"comm\": \"python3*\", \"cmdline\": \"*agent*\", \"exe\": ..., "
		    "\"cgroup\": ..., \"container\": ...,\n"
		    "   \"namespace\": \"ai\", \"pod\": \"bot-*\", \"labels\": {\"app\": "
		    "\"bot\"}}   (globs; all must hold)\n"
		    "Matching processes are traced when agtrace starts and as they start later; "
		    "pod names,\nnamespaces and labels come from \"kubernetes\": {\"pods_url\", "
		    "\"token_file\", \"ca\", \"insecure\"}\n(in a pod: the API server, for "
		    "$NODE_NAME).\n"
		    "Example: deploy/kubernetes/configmap.yaml.\n");
		return argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
			   ? 0
			   : AGT_EXIT_USAGE;
	}
	text = agt_read_file(file, 1 << 20, NULL);
	if (!text) {
		agt_err("cannot read the configuration %s: %s", file, strerror(errno));
		return AGT_EXIT_USAGE;
	}
	cfg = cJSON_Parse(text);
	free(text);
	if (!cJSON_IsObject(cfg)) {
		agt_err("%s: not a JSON object; fix the syntax", file);
		goto out;
	}
	add(&a, "attach");
	t = cJSON_GetObjectItemCaseSensitive(cfg, "targets");
	if (add_targets(&a, file, t))
		goto out;
	if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "tcp")))
		add(&a, cJSON_IsTrue(v) ? "--tcp" : "--no-tcp");
	if (apply(&a, file, cfg, "$"))
		goto out;
	static const char *const sections[] = {"output",  "elasticsearch", "otlp",	"fluentd",
					       "metrics", "spool",	   "kubernetes"};
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		char path[32];

		if (!(v = cJSON_GetObjectItemCaseSensitive(cfg, sections[i])))
			continue;
		snprintf(path, sizeof(path), "$.%s", sections[i]);
		if (!cJSON_IsObject(v)) {
			rc = fail(file, "$", sections[i], "must be an object");
			goto out;
		}
		if (apply(&a, file, v, path))
			goto out;
		exporters += i >= 1 && i <= 4;
	}
	if (!exporters && !cJSON_GetObjectItemCaseSensitive(cfg, "output")) {
		/* The embedded default: JSONL files and the metrics endpoint. */
		char path[256], day[16];
		time_t now = time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(day, sizeof(day), "%Y-%m-%d", &tm);
		if (!dry) {
			mkdir("/var/lib/agtrace", 0755);
			mkdir("/var/lib/agtrace/traces", 0755);
		}
		snprintf(path, sizeof(path), "/var/lib/agtrace/traces/spans-%s.jsonl", day);
		add(&a, "-o");
		add(&a, "jsonl");
		add(&a, "--output-file");
		add(&a, path);
		add(&a, "--metrics");
		add(&a, "127.0.0.1:9464");
		agt_info("no exporter configured: spans to %s, metrics on 127.0.0.1:9464", path);
	}
	if (dry)
		add(&a, "--dry-run");
	a.v[a.n] = NULL;
	rc = cmd_attach(a.n, a.v);
out:
	for (int i = 0; i < a.n; i++)
		free(a.v[i]);
	cJSON_Delete(cfg);
	return rc;
}
