#include "capture/sampling.h"
#include "base/log.h"
#include "base/util.h"
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define BPF_FS_MAGIC_ 0xcafe4a11

const char *const agt_sample_source_names[AGT_SS_MAX] = {"func", "tls", "sock", "proc", "python"};

static int source_by_name(const char *s, size_t n)
{
	for (int i = 0; i < AGT_SS_MAX; i++)
		if (strlen(agt_sample_source_names[i]) == n &&
		    !strncmp(s, agt_sample_source_names[i], n))
			return i;
	return -1;
}

static int parse_ratio(const char *s, uint32_t *ppm)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !(v >= 0.0 && v <= 1.0))
		return -EINVAL;
	*ppm = (uint32_t)(v * AGT_SAMPLE_ONE + 0.5);
	return 0;
}

int agt_sample_parse(const char *spec, int *source, struct agt_sample_cfg *cfg, char *err,
		     size_t errlen)
{
	char *copy = strdup(spec), *tok, *save = NULL;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		long v;
		int src;

		if (!eq) {
			rc = agt_seterr(
			    err, errlen, -EINVAL,
			    "sampling \"%s\": expected NAME=VALUE (e.g. tls=0.25,rate=100)", tok);
			break;
		}
		*eq = 0;
		if ((src = source_by_name(tok, strlen(tok))) >= 0) {
			*source = src;
			if (parse_ratio(eq + 1, &cfg->ratio_ppm))
				rc = agt_seterr(
				    err, errlen, -EINVAL,
				    "sampling ratio for %s must be a number from 0 to 1, "
				    "got \"%s\"",
				    tok, eq + 1);
		} else if (!strcmp(tok, "rate") || !strcmp(tok, "burst") || !strcmp(tok, "bytes")) {
			if (agt_parse_long(eq + 1, 0, 0x7fffffff, &v))
				rc = agt_seterr(
				    err, errlen, -EINVAL,
				    "sampling %s must be a whole number (0 for no limit), got "
				    "\"%s\"",
				    tok, eq + 1);
			else if (!strcmp(tok, "rate"))
				cfg->rate = (uint32_t)v;
			else if (!strcmp(tok, "burst"))
				cfg->burst = (uint32_t)v;
			else
				cfg->byte_cap = (uint32_t)v;
		} else {
			rc = agt_seterr(
			    err, errlen, -EINVAL,
			    "unknown sampling key \"%s\"; sources are func, tls, sock, proc, "
			    "python, and limits rate, burst, bytes",
			    tok);
		}
	}
	if (!rc && *source < 0)
		rc = agt_seterr(err, errlen, -EINVAL,
				"sampling \"%s\" names no source (func, tls, sock, proc or python)",
				spec);
	free(copy);
	return rc;
}

int agt_sample_pin(int map_fd, char *err, size_t errlen)
{
	struct statfs fs;

	if (statfs("/sys/fs/bpf", &fs) || fs.f_type != BPF_FS_MAGIC_) {
		mkdir("/sys/fs/bpf", 0700);
		if (mount("bpf", "/sys/fs/bpf", "bpf", 0, NULL))
			return agt_seterr(
			    err, errlen, -errno,
			    "cannot mount bpffs at /sys/fs/bpf (%s); mount it (mount -t "
			    "bpf bpf /sys/fs/bpf) to change sampling at run time",
			    strerror(errno));
	}
	mkdir(AGT_PIN_DIR, 0700);
	if (access(AGT_PIN_SAMPLING, F_OK) == 0) {
		agt_warn("replacing %s left by an earlier agtrace", AGT_PIN_SAMPLING);
		unlink(AGT_PIN_SAMPLING);
	}
	if (bpf_obj_pin(map_fd, AGT_PIN_SAMPLING))
		return agt_seterr(err, errlen, -errno, "cannot pin the sampling map at %s: %s",
				  AGT_PIN_SAMPLING, strerror(errno));
	return 0;
}

void agt_sample_unpin(void)
{
	unlink(AGT_PIN_SAMPLING);
	rmdir(AGT_PIN_DIR);
}

void agt_sample_describe(int source, const struct agt_sample_cfg *c, char *buf, size_t n)
{
	char rate[32] = "unlimited", bytes[32] = "default";

	if (c->rate)
		snprintf(rate, sizeof(rate), "%u/s burst %u", c->rate,
			 c->burst ? c->burst : c->rate);
	if (c->byte_cap)
		snprintf(bytes, sizeof(bytes), "%u", c->byte_cap);
	snprintf(buf, n, "%-6s ratio %.6g  rate %s  payload bytes %s",
		 agt_sample_source_names[source], (double)c->ratio_ppm / AGT_SAMPLE_ONE, rate,
		 bytes);
}

static void sample_usage(FILE *f)
{
	fprintf(f,
		"Usage: agtrace sample show\n"
		"       agtrace sample set SOURCE RATIO\n"
		"       agtrace sample set SOURCE=RATIO[,rate=N][,burst=N][,bytes=N]\n\n"
		"Sampling of a running agtrace, decided in the kernel before anything is copied.\n"
		"SOURCE: func (probe specs), tls (TLS payloads), sock (TCP and IPC payloads),\n"
		"proc (fork/exec), python (python:audit). RATIO: sessions kept, 0 to 1 (a whole\n"
		"process session is kept or not, so traces stay whole; HTTP errors of unsampled\n"
		"sessions still arrive as metadata). rate: events per second at most; burst: the\n"
		"bucket size; bytes: payload bytes copied per call. The state is the pinned map\n"
		"%s (bpftool map dump pinned %s works too).\n",
		AGT_PIN_SAMPLING, AGT_PIN_SAMPLING);
}

int cmd_sample(int argc, char **argv)
{
	struct agt_sample_cfg cfg;
	int fd, source = -1;
	char err[256], line[160], joined[256];

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		sample_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? AGT_EXIT_USAGE : 0;
	}
	if (strcmp(argv[1], "show") && strcmp(argv[1], "set")) {
		agt_err("unknown sample command \"%s\"; use show or set", argv[1]);
		return AGT_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "set") && argc == 4) { /* the two-word form: SOURCE RATIO */
		snprintf(joined, sizeof(joined), "%s=%s", argv[2], argv[3]);
		argv[2] = joined;
		argc = 3;
	}
	if (!strcmp(argv[1], "set") && argc != 3) {
		agt_err("sample set needs SOURCE RATIO, or SOURCE=RATIO[,rate=N,...]; see `agtrace "
			"sample --help`");
		return AGT_EXIT_USAGE;
	}
	fd = bpf_obj_get(AGT_PIN_SAMPLING);
	if (fd < 0) {
		agt_err(
		    "no running agtrace to sample: %s is not there (%s); start `agtrace attach` "
		    "first",
		    AGT_PIN_SAMPLING, strerror(errno));
		return AGT_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "set")) {
		uint32_t k;

		/* Find the source first, then change only the fields named. */
		memset(&cfg, 0, sizeof(cfg));
		if (agt_sample_parse(argv[2], &source, &cfg, err, sizeof(err))) {
			agt_err("%s", err);
			close(fd);
			return AGT_EXIT_USAGE;
		}
		k = (uint32_t)source;
		bpf_map_lookup_elem(fd, &k, &cfg);
		agt_sample_parse(argv[2], &source, &cfg, NULL, 0);
		cfg.generation++;
		if (bpf_map_update_elem(fd, &k, &cfg, BPF_ANY)) {
			agt_err("cannot update %s: %s", AGT_PIN_SAMPLING, strerror(errno));
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
