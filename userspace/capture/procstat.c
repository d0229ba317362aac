#include "capture/procstat.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The boot time (btime of /proc/stat), in seconds since the epoch. */
static double boot_time(void)
{
	static double btime;
	char line[256];
	FILE *f;

	if (btime > 0)
		return btime;
	if (!(f = fopen("/proc/stat", "re")))
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "btime ", 6))
			btime = strtod(line + 6, NULL);
	fclose(f);
	return btime;
}

int agt_procstat_read(int pid, struct agt_procstat *out)
{
	char path[64], buf[2048], *p;
	unsigned long long v[64] = {0};
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	size_t n;
	FILE *f;
	DIR *d;
	int field = 3;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!(f = fopen(path, "re")))
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* After the command name (which may hold spaces and parentheses): field 3 on. */
	if (!(p = strrchr(buf, ')')))
		return -EINVAL;
	p += 2;
	while (*p && field < 64) {
		char *end;

		v[field] = strtoull(p, &end, 10);
		if (end == p) /* the state letter (field 3) */
			end = p + 1;
		p = end;
		while (*p == ' ')
			p++;
		field++;
	}
	out->cpu_seconds = (double)(v[14] + v[15]) / (double)tick;
	out->threads = v[20];
	out->start_ticks = v[22];
	out->start_seconds = boot_time() + (double)v[22] / (double)tick;
	out->rss_bytes = v[24] * (uint64_t)page;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if ((d = opendir(path))) {
		struct dirent *e;

		while ((e = readdir(d)))
			out->fds += e->d_name[0] != '.';
		closedir(d);
	}
	return 0;
}

int agt_proc_state(int pid, char *state, int *ppid)
{
	char path[64], buf[512], *rparen;
	ssize_t got;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	got = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (got <= 0)
		return -1;
	buf[got] = 0;
	if (!(rparen = strrchr(buf, ')')) || sscanf(rparen + 1, " %c %d", state, ppid) != 2)
		return -1;
	return 0;
}
