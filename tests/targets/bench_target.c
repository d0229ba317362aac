/* Benchmark target: "run N" calls work() N times and prints the elapsed nanoseconds, so the
 * cost of a probe is measured inside the traced process itself. "sys N": N getppid() system
 * calls; "exec N": N fork+exec+wait of /bin/true (what tracepoints cost processes agtrace does
 * not trace). "hold N": N nested calls of hold(); the innermost prints "holding N" and waits for
 * the next line, so N calls stay open (agtrace's memory with many open spans). */
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

volatile long sink;

__attribute__((noinline)) long work(long i)
{
	sink += i;
	return sink;
}

__attribute__((noinline)) long hold(long n)
{
	char line[64];

	if (n > 1)
		return hold(n - 1) + 1;
	printf("holding\n");
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	return 1;
}

int main(void)
{
	char line[64];

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", (int)getpid());
	while (fgets(line, sizeof(line), stdin)) {
		long n = 0;
		struct timespec a, b;
		char what[8];

		if (sscanf(line, "%7s %ld", what, &n) != 2)
			break;
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (!strcmp(what, "run")) {
			for (long i = 0; i < n; i++)
				work(i);
		} else if (!strcmp(what, "sys")) {
			for (long i = 0; i < n; i++)
				syscall(SYS_getppid);
		} else if (!strcmp(what, "hold")) {
			sink += hold(n);
		} else if (!strcmp(what, "exec")) {
			for (long i = 0; i < n; i++) {
				pid_t c = fork();

				if (c == 0) {
					execl("/bin/true", "true", (char *)NULL);
					_exit(127);
				}
				waitpid(c, NULL, 0);
			}
		} else {
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		printf("elapsed %lld\n",
		       (long long)(b.tv_sec - a.tv_sec) * 1000000000ll + (b.tv_nsec - a.tv_nsec));
	}
	return 0;
}
