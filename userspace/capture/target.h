/* Target processes: identity, and the objects they map (seen through /proc/PID/root, so paths
 * inside containers resolve too). */
#ifndef AGT_TARGET_H
#define AGT_TARGET_H
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include "capture/container.h"
#include "record/proc.h"

struct agt_proc {
	struct agt_proc_info info; /* what spans show of it */
	int pidfd;		   /* -1 when not open */
	int gone;		   /* exited (exit seen or pidfd readable) */
	uint64_t gone_ns;	   /* when (CLOCK_MONOTONIC) */
	int discovered;		   /* found by a selector, not given with -p */
	int nlinks;		   /* probe links on the objects it maps (each object's links are
				    * shared by every process that maps it) */
	int rescan;		   /* it loaded libraries since the last look */
	/* The probed objects it holds (the run's registry of files with probes; opaque here):
	 * mapped, or attached ahead (a library it or a child may load; one for its children). */
	struct {
		const void *obj;
		int mapped;
	} uses[64];
	int nuses;
};

/* Fill p for pid; -ESRCH "no process with PID N", -EACCES when /proc says no. */
int agt_proc_open(int pid, struct agt_proc *p, char *err, size_t errlen);
void agt_proc_close(struct agt_proc *p);

/* While held (nested holds of the same PID count), resolves in pid read the /proc/PID/maps
 * read at the first hold: one read for a pass over every spec's targets (a followed command's
 * exec). Hold it only while the process cannot map anything that pass must see. */
void agt_maps_hold(int pid);
void agt_maps_release(int pid);

/* Resolve a spec target for a process into a path usable from this (host) mount namespace:
 *   "$exe"       the process's executable
 *   "/abs/path"  that file in the process's filesystem (must be mapped or exist there)
 *   "glob"       a mapped file whose basename matches (libssl.so*, python3.*)
 * Writes host_path (/proc/PID/root/...) and the path as mapped by the process. */
int agt_proc_resolve(const struct agt_proc *p, const char *target, char *host_path, size_t n,
		     char *mapped, size_t mn, char *err, size_t errlen);
/* For a library glob the process does not map yet (one discovered as it execs, before the
 * dynamic loader or a later dlopen maps it): the first regular file named like it in the
 * process's standard library directories. A uprobe on that file fires once it is mapped. */
int agt_proc_resolve_libdir(const struct agt_proc *p, const char *glob, char *host_path, size_t n,
			    char *mapped, size_t mn);
#endif
