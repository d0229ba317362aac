/* `agtrace run --config FILE`: the same run as `attach`, its settings from a JSON file read
 * through the same option table (cli/options.c). With no output and no exporter configured, the
 * embedded default: JSONL files under /var/lib/agtrace/traces and the metrics endpoint on
 * 127.0.0.1:9464. */
#include "base/log.h"
#include "cli/cli.h"
#include "cli/options.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_DIR "/var/lib/agtrace/traces"
#define DEFAULT_METRICS "127.0.0.1:9464"

static void run_usage(FILE *f)
{
	fprintf(f,
		"Usage: agtrace run --config FILE [--dry-run]\n\n"
		"Runs as `agtrace attach` does, with its settings from a JSON file: each key is an\n"
		"attach option of the same meaning (`agtrace attach --help` shows each key in\n"
		"brackets; the README's configuration section lists them). With no output and no\n"
		"exporter configured: JSONL files under " DEFAULT_DIR " and metrics on\n"
		DEFAULT_METRICS ".\n\n"
		"Targets: \"targets\": {\"pids\": [N...], \"select\": [SELECTOR...]}, a selector "
		"being\n"
		"  {\"comm\": \"python3*\", \"cmdline\": \"*agent*\", \"exe\": ..., \"cgroup\": ..., "
		"\"container\": ...,\n"
		"   \"namespace\": \"ai\", \"pod\": \"bot-*\", \"labels\": {\"app\": \"bot\"}}   "
		"(globs; all must hold)\n"
		"Matching processes are traced when agtrace starts and as they start later; pod "
		"names,\nnamespaces and labels come from \"kubernetes\": {\"pods_url\", "
		"\"token_file\", \"ca\", \"insecure\"}\n(in a pod: the API server, for "
		"$NODE_NAME).\n"
		"--dry-run checks the file, prints what would be traced and stops.\n"
		"Example: deploy/kubernetes/configmap.yaml.\n");
}

/* Nothing says where spans go: the embedded default, one file per day (UTC), the day chosen for
 * each span by its start. path must outlive the run. */
static void embedded_default(struct agt_config *c, char *path, size_t n)
{
	for (int k = 0; k < AGT_EXP_COUNT; k++)
		if (c->exp[k].url)
			return;
	if (c->output || c->output_file)
		return;
	snprintf(path, n, DEFAULT_DIR "/spans-%%Y-%%m-%%d.jsonl");
	if (!c->dry_run) {
		mkdir("/var/lib/agtrace", 0755);
		mkdir(DEFAULT_DIR, 0755);
	}
	c->output = "jsonl";
	c->output_file = path;
	if (!c->metrics_listen)
		c->metrics_listen = DEFAULT_METRICS;
	agt_info("no exporter configured: spans to %s, metrics on %s", path, c->metrics_listen);
}

int cmd_run(int argc, char **argv)
{
	struct agt_config c;
	char path[256];
	int help = argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"));
	int dry = argc == 4 && !strcmp(argv[3], "--dry-run");
	int rc;

	if (help || !((argc == 3 || dry) && !strcmp(argv[1], "--config"))) {
		run_usage(help ? stdout : stderr);
		return help ? 0 : AGT_EXIT_USAGE;
	}
	if ((rc = agt_config_init(&c)) == 0 && (rc = agt_config_file(&c, argv[2])) == 0 &&
	    (rc = agt_config_apply_logging(&c)) == 0) {
		c.dry_run |= dry;
		embedded_default(&c, path, sizeof(path));
		rc = agt_run(&c, argc, argv);
	}
	agt_config_free(&c);
	return agt_exit_code(rc);
}
