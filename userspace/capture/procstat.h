/* What /proc says of a process now: CPU time, resident memory, threads, open descriptors and
 * start time. Read by agtrace (no cost to the process). */
#ifndef AGT_PROCSTAT_H
#define AGT_PROCSTAT_H
#include <stdint.h>

struct agt_procstat {
	double cpu_seconds;	  /* user + system, of every thread */
	uint64_t rss_bytes;
	uint64_t threads;
	uint64_t fds;
	double start_seconds;	  /* since the epoch */
	uint64_t start_ticks;	  /* /proc/PID/stat field 22: with pid, the process's identity */
};

/* 0, or -errno (-ENOENT: gone). */
int agt_procstat_read(int pid, struct agt_procstat *out);
/* The state letter (field 3 of /proc/PID/stat: 'R', 'S', 'T'...) and the parent's PID (field
 * 4) of pid, read after the command name (which may hold ") "); 0, or -1 when unreadable. */
int agt_proc_state(int pid, char *state, int *ppid);
#endif
