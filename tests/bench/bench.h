/* Shared by the C benchmarks. */
#ifndef AGT_BENCH_H
#define AGT_BENCH_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Resident set size of this process, KiB (-1 when /proc says nothing). */
static inline long bench_rss_kib(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}
#endif
