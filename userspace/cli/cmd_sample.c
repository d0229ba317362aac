/* `agtrace sample show|set`: the kernel-side sampling of a running agtrace, read and changed
 * through the sampling map pinned in that run's folder. With several agtrace runs on the node
 * (a DaemonSet and a `kubectl exec` beside it), --pid chooses one. */
#include "base/log.h"
#include "base/util.h"
#include "capture/sampling.h"
#include "capture/units.h"
#include "cli/cli.h"
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cmd_sample_usage(FILE *f)
{
	fprintf(f,
		"Usage: agtrace sample show [--pid PID]\n"
		"       agtrace sample set [--pid PID] SOURCE RATIO\n"
		"       agtrace sample set [--pid PID] SOURCE=RATIO[,rate=N][,burst=N][,bytes=N]\n\n"
		"Sampling of a running agtrace, decided in the kernel before anything is copied.\n"
		"SOURCE: func (probe specs), tls (TLS payloads), sock (TCP and IPC payloads),\n"
		"proc (fork/exec), python (python:audit). RATIO: sessions kept, 0 to 1 (a whole\n"
		"process session is kept or not, so traces stay whole; HTTP errors of unsampled\n"
		"sessions still arrive as metadata). rate: events per second at most; burst: the\n"
		"bucket size; bytes: payload bytes copied per call.\n\n"
		"Each running agtrace pins its sampling map in its own folder, %s/PID_START\n"
		"(bpftool map dump pinned %s/PID_START/sampling works too). When several run,\n"
		"--pid PID says which one.\n",
		AGT_INSTANCES_DIR, AGT_INSTANCES_DIR);
}

/* The sampling map of the run chosen: the only one, or the one with this pid. */
static int open_map(int pid, char *path, size_t n)
{
	struct agt_instance v[64];
	int k = agt_instances_list(v, 64), fd, pick = -1;

	for (int i = 0; i < k; i++)
		if (!pid || v[i].pid == pid)
			pick = pick < 0 ? i : -2;
	if (pick == -1) {
		if (pid)
			agt_err("no agtrace with PID %d is running (running: %d); see `agtrace sample "
				"--help`",
				pid, k);
		else
			agt_err("no running agtrace to sample (none has a folder in %s); start "
				"`agtrace attach` first",
				AGT_INSTANCES_DIR);
		return -ESRCH;
	}
	if (pick == -2) {
		char list[512] = "";
		size_t used = 0;

		for (int i = 0; i < k && used < sizeof(list); i++)
			used += snprintf(list + used, sizeof(list) - used, "%s%d", i ? ", " : "",
					 v[i].pid);
		agt_err("%d agtrace runs are running (PIDs %s); choose one with --pid PID", k,
			list);
		return -EINVAL;
	}
	snprintf(path, n, "%s/sampling", v[pick].dir);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		agt_err("cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	return fd;
}

/* show and set: argv[0] is which. */
static int sample_cmd(int argc, char **argv)
{
	struct agt_sample_cfg cfg;
	int fd, source = -1, pid = 0, set = !strcmp(argv[0], "set");
	char err[256], line[160], joined[256], path[400];
	long v;

	if (argc >= 3 && !strcmp(argv[1], "--pid")) {
		if (agt_parse_long(argv[2], 1, 0x3fffffff, &v)) {
			agt_err("--pid needs the PID of a running agtrace, got \"%s\"", argv[2]);
			return AGT_EXIT_USAGE;
		}
		pid = (int)v;
		argv += 2, argc -= 2;
	}
	if (set && argc == 3) { /* the two-word form: SOURCE RATIO */
		snprintf(joined, sizeof(joined), "%s=%s", argv[1], argv[2]);
		argv[1] = joined;
		argc = 2;
	}
	if (set ? argc != 2 : argc != 1) {
		agt_err(set ? "sample set needs SOURCE RATIO, or SOURCE=RATIO[,rate=N,...]; see "
			      "`agtrace sample --help`"
			    : "sample show takes no argument but --pid PID; see `agtrace sample "
			      "--help`");
		return AGT_EXIT_USAGE;
	}
	if (set) { /* check the setting before touching any map */
		memset(&cfg, 0, sizeof(cfg));
		if (agt_sample_parse(argv[1], &source, &cfg, err, sizeof(err))) {
			agt_err("%s", err);
			return AGT_EXIT_USAGE;
		}
	}
	if ((fd = open_map(pid, path, sizeof(path))) < 0)
		return AGT_EXIT_USAGE;
	if (set) {
		uint32_t k = (uint32_t)source;

		/* Only the fields named change. */
		bpf_map_lookup_elem(fd, &k, &cfg);
		agt_sample_parse(argv[1], &source, &cfg, NULL, 0);
		cfg.generation++;
		if (bpf_map_update_elem(fd, &k, &cfg, BPF_ANY)) {
			agt_err("cannot update %s: %s", path, strerror(errno));
			close(fd);
			return AGT_EXIT_USAGE;
		}
		agt_sample_describe(source, &cfg, line, sizeof(line));
		printf("set: %s\n", line);
	} else {
		for (uint32_t k = 0; k < AGT_SS_MAX; k++) {
			if (bpf_map_lookup_elem(fd, &k, &cfg))
				continue;
			agt_sample_describe((int)k, &cfg, line, sizeof(line));
			printf("%s\n", line);
		}
	}
	close(fd);
	return 0;
}

int cmd_sample_show(int argc, char **argv)
{
	return sample_cmd(argc, argv);
}

int cmd_sample_set(int argc, char **argv)
{
	return sample_cmd(argc, argv);
}
