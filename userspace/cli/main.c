/* agtrace: zero-instrumentation tracer for AI-agent runtimes. The command table, and the walk
 * that finds a command in it. */
#include "base/log.h"
#include "cli/cli.h"
#include "tracer/run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct agt_cmd probes_cmds[] = {
    {"list", cmd_probes_list, "the probe specs agtrace ships, and what each attaches to"},
    {"check", cmd_probes_check, "validate probe spec files"},
    {"locate", cmd_probes_locate, "the TLS functions found in a stripped binary, where and why"},
    {NULL},
};

static const struct agt_cmd sample_cmds[] = {
    {"show", cmd_sample_show, "the kernel-side sampling of a running agtrace"},
    {"set", cmd_sample_set, "change it while it runs"},
    {NULL},
};

static const struct agt_cmd audit_cmds[] = {
    {"verify", cmd_audit_verify, "check a hash-chained audit trail"},
    {NULL},
};

static const struct agt_cmd top_cmds[] = {
    {"check", cmd_check, "preflight: can agtrace run on this kernel with these privileges?"},
    {"attach", cmd_attach, "trace running processes by PID and print their spans"},
    {"run", cmd_run, "the same, its settings (exporters, sampling, ...) from a JSON file"},
    {"probes", NULL, "list the shipped probe specs, check a spec file, or locate TLS in a binary",
     probes_cmds, cmd_probes_usage},
    {"sample", NULL, "show or change the kernel-side sampling of a running agtrace", sample_cmds,
     cmd_sample_usage},
    {"audit", NULL, "verify a hash-chained audit trail", audit_cmds, cmd_audit_usage},
    {"version", cmd_version, "the version, the commit it was built from, and libbpf's"},
    {NULL},
};

static int is_help(const char *a)
{
	return !strcmp(a, "-h") || !strcmp(a, "--help");
}

/* "check, attach, run, probes, sample and audit" */
static void names(const struct agt_cmd *t, char *out, size_t n)
{
	size_t len = 0;

	out[0] = 0;
	for (int i = 0; t[i].name; i++)
		len += snprintf(out + len, len < n ? n - len : 0, "%s%s",
				!i ? "" : t[i + 1].name ? ", " : " and ", t[i].name);
}

static void listing(FILE *f, const char *path, const struct agt_cmd *t)
{
	fprintf(f, "Usage: %s COMMAND [ARGS]\n\nCommands:\n", path);
	for (int i = 0; t[i].name; i++)
		fprintf(f, "  %-8s %s\n", t[i].name, t[i].help);
	fprintf(f, "\n`%s COMMAND --help` tells more.\n", path);
}

static void group_usage(FILE *f, const struct agt_cmd *g, const char *path)
{
	if (g->usage)
		g->usage(f);
	else
		listing(f, path, g->sub);
}

/* argv[0] names a command of group g (whose words so far are path). */
static int dispatch(const struct agt_cmd *g, const char *path, int argc, char **argv)
{
	char list[256], sub[96];

	if (argc < 1) {
		group_usage(stderr, g, path);
		return AGT_EXIT_USAGE;
	}
	if (is_help(argv[0])) {
		group_usage(stdout, g, path);
		return 0;
	}
	for (int i = 0; g->sub[i].name; i++) {
		const struct agt_cmd *c = &g->sub[i];

		if (strcmp(argv[0], c->name))
			continue;
		if (c->fn) {
			/* A group's command asked for help: the group's page describes it (a top
			 * command, such as attach, prints its own). */
			if (g->usage && g->sub != top_cmds && argc > 1 && is_help(argv[1])) {
				g->usage(stdout);
				return 0;
			}
			return c->fn(argc, argv);
		}
		snprintf(sub, sizeof(sub), "%s %s", path, c->name);
		return dispatch(c, sub, argc - 1, argv + 1);
	}
	names(g->sub, list, sizeof(list));
	if (g->sub == top_cmds)
		agt_err("unknown command \"%s\"; the commands are %s", argv[0], list);
	else
		agt_err("unknown command \"%s %s\"; the commands are %s; see `%s --help`",
			path + strlen("agtrace "), argv[0], list, path);
	return AGT_EXIT_USAGE;
}

static void usage(FILE *f)
{
	fprintf(
	    f, "Usage: agtrace [-v] [--log-level LEVEL] [--log-format text|json] COMMAND [ARGS]\n"
	       "       agtrace --version\n\n"
	       "Trace AI agents and other running programs through eBPF, without touching them.\n\n"
	       "Commands:\n");
	for (int i = 0; top_cmds[i].name; i++)
		fprintf(f, "  %-8s %s\n", top_cmds[i].name, top_cmds[i].help);
	fprintf(
	    f,
	    "\nOptions (before the command; attach and run also take them):\n"
	    "  -v, --verbose             the same as --log-level debug (libbpf's log included)\n"
	    "  --log-level LEVEL         error, warn, info (default) or debug\n"
	    "  --log-format FORMAT       text (default) or json: one object a line with time,\n"
	    "                            level and msg\n"
	    "  --version                 the version, as `agtrace version` prints it\n"
	    "\n`agtrace COMMAND --help` tells more. Start with `agtrace check`, then for example\n"
	    "  agtrace attach -p $(pidof myapp) --uprobe /usr/local/bin/myapp:handle_request\n");
}

/* --NAME VALUE or --NAME=VALUE at argv[*i]: the value, or NULL (not this option). */
static const char *opt_value(const char *name, int argc, char **argv, int *i, int *missing)
{
	size_t l = strlen(name);

	if (strncmp(argv[*i], name, l))
		return NULL;
	if (argv[*i][l] == '=')
		return argv[*i] + l + 1;
	if (argv[*i][l])
		return NULL;
	if (*i + 1 >= argc) {
		*missing = 1;
		return NULL;
	}
	return argv[++*i];
}

int main(int argc, char **argv)
{
	static const struct agt_cmd root = {"agtrace", NULL, NULL, top_cmds, usage};
	int i = 1;

	if (argc == 4 && !strcmp(argv[1], "__guard")) /* agtrace's own guard (tracer/exestop.c) */
		return agt_guard_main(atoi(argv[2]), atoi(argv[3]));
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *v;
		int missing = 0;

		if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
			if (agt_log_level_given()) {
				agt_err("the log level is given twice (-v is --log-level debug); give "
					"it once");
				return AGT_EXIT_USAGE;
			}
			agt_log_set_level(AGT_LOG_DEBUG);
		} else if (is_help(argv[i])) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			agt_print_version(stdout);
			return 0;
		} else if ((v = opt_value("--log-level", argc, argv, &i, &missing))) {
			enum agt_log_level l;

			if (agt_log_parse_level(v, &l)) {
				agt_err("--log-level needs error, warn, info or debug, got \"%s\"", v);
				return AGT_EXIT_USAGE;
			}
			if (agt_log_level_given()) {
				agt_err("the log level is given twice (-v is --log-level debug); give "
					"it once");
				return AGT_EXIT_USAGE;
			}
			agt_log_set_level(l);
		} else if ((v = opt_value("--log-format", argc, argv, &i, &missing))) {
			enum agt_log_format fm;

			if (agt_log_parse_format(v, &fm)) {
				agt_err("--log-format needs text or json, got \"%s\"", v);
				return AGT_EXIT_USAGE;
			}
			if (agt_log_format_given()) {
				agt_err("--log-format is given twice; give it once");
				return AGT_EXIT_USAGE;
			}
			agt_log_set_format(fm);
		} else if (missing) {
			agt_err("option %s needs a value; see `agtrace --help`", argv[i]);
			return AGT_EXIT_USAGE;
		} else {
			agt_err("unknown option \"%s\"; see `agtrace --help`", argv[i]);
			return AGT_EXIT_USAGE;
		}
	}
	return dispatch(&root, "agtrace", argc - i, argv + i);
}
