/* Benchmark target for file lineage: a process that writes files as an editor or a build does.
 * "save N DIR": N times, create-or-truncate DIR/f, write 64 KiB in 4 KiB writes, close;
 * "append N DIR": open DIR/log once, N 4 KiB writes, close. Prints the elapsed nanoseconds, so
 * the cost of --files is measured inside the writing process itself. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	static char block[4096];
	char line[512], what[16], dir[400], path[512];
	long n;

	memset(block, 'x', sizeof(block));
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", (int)getpid());
	while (fgets(line, sizeof(line), stdin)) {
		struct timespec a, b;
		int fd;

		if (sscanf(line, "%15s %ld %399s", what, &n, dir) != 3)
			break;
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (!strcmp(what, "save")) {
			snprintf(path, sizeof(path), "%s/f", dir);
			for (long i = 0; i < n; i++) {
				if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
					return 1;
				for (int k = 0; k < 16; k++)
					if (write(fd, block, sizeof(block)) != sizeof(block))
						return 1;
				close(fd);
			}
		} else if (!strcmp(what, "append")) {
			snprintf(path, sizeof(path), "%s/log", dir);
			if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644)) < 0)
				return 1;
			for (long i = 0; i < n; i++)
				if (write(fd, block, sizeof(block)) != sizeof(block))
					return 1;
			close(fd);
		} else {
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		printf("elapsed %lld\n",
		       (long long)(b.tv_sec - a.tv_sec) * 1000000000ll + (b.tv_nsec - a.tv_nsec));
	}
	return 0;
}
