/* Benchmark target: "run N" calls work() N times and prints the elapsed nanoseconds, so the
 * cost of a probe is measured inside the traced process itself. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile long sink;

__attribute__((noinline)) long work(long i)
{
	sink += i;
	return sink;
}

int main(void)
{
	char line[64];

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", (int)getpid());
	while (fgets(line, sizeof(line), stdin)) {
		long n = 0;
		struct timespec a, b;

		if (sscanf(line, "run %ld", &n) != 1)
			break;
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (long i = 0; i < n; i++)
			work(i);
		clock_gettime(CLOCK_MONOTONIC, &b);
		printf("elapsed %lld\n",
		       (long long)(b.tv_sec - a.tv_sec) * 1000000000ll + (b.tv_nsec - a.tv_nsec));
	}
	return 0;
}
