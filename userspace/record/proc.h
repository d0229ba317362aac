/* A traced process as spans show it (process.*, session_id, container.*, k8s.*): plain data,
 * filled once by the capture side (capture/target.c) and read by the trace stage and exporters.
 * It lives as long as its target: the tracer frees a target only after every stage has let go
 * of it (the pipeline's forget fan-out). */
#ifndef AGT_PROC_H
#define AGT_PROC_H
#include <limits.h>
#include <stdint.h>
#include "record/identity.h"

struct agt_proc_info {
	int pid;
	char comm[17];
	char exe[PATH_MAX];	/* executable path as the process sees it */
	uint64_t start_ticks;	/* /proc/PID/stat field 22: with pid, unique across reuse */
	char session_id[17];	/* 16 hex: hash of boot id, pid, start time */
	struct agt_identity id; /* container and pod */
};
#endif
