/* File lineage: what the agent's processes did to files, window by window. A window is a tool
 * call (its changes hang below it) or, outside any tool call, the process itself (its changes
 * are flushed once they have been quiet for a second). For each path a window touched, one
 * span: what was done to it (create, write, truncate, rename, delete, read, in order), the
 * bytes, and the SHA-256 of its content when the window ended, next to the one agtrace last
 * knew for that path (from an earlier window): which tool call changed which file from which
 * content to which. Reading and hashing a file is asked of whoever built the stage (struct
 * agt_files_cfg's state): the trace stage itself never opens a file. */
#ifndef AGT_FILES_H
#define AGT_FILES_H
#include <stddef.h>
#include <stdint.h>
#include "record/filestate.h"
#include "record/span.h"
#include "trace/emit.h"

/* One file operation as the decoder hands it over. */
struct agt_file_call {
	uint16_t op;	/* enum agt_file_op (bpf/agtrace.h) */
	uint16_t flags; /* AGT_FILE_F_* */
	uint64_t file;	/* open/close: the open file's identity */
	uint64_t bytes; /* close: bytes through it so far; truncate: the length */
	const char *path;  /* absolute, as the process saw it */
	const char *path2; /* rename: the new path */
};

struct agt_files_cfg {
	int read;     /* reads are recorded too */
	int diffs;    /* unified diffs of small text files */
	uint64_t hash_max;
	const char *const *ignore; /* path globs never recorded */
	int nignore;
	agt_file_state_fn state;
	void *state_ctx;
};

struct agt_files_stats {
	uint64_t changes;    /* file spans emitted */
	uint64_t over_cap;   /* operations on paths past a window's cap: not recorded */
	uint64_t ignored;    /* operations on --files-ignore paths */
};

struct agt_files;
struct agt_fileset; /* the changes of one window */

struct agt_files *agt_files_new(struct agt_emitter *em, const struct agt_files_cfg *cfg);
void agt_files_free(struct agt_files *f);
/* One operation by process pid (who: what spans show of it) of the agent root, in window *set
 * (a tool call's; NULL: the root's own window, outside tool calls). tool_*: the tool call. */
void agt_files_op(struct agt_files *f, struct agt_fileset **set, uint32_t root,
		  const struct agt_proc_info *who, uint32_t pid, uint32_t tid, uint64_t ts,
		  const struct agt_file_call *op);
/* A tool call ended: its changes as children of parent (the tool's span, before it is
 * emitted), then the set is freed. root: the agent process whose view of paths counts. */
void agt_files_emit(struct agt_files *f, struct agt_fileset **set, const struct agt_span *parent,
		    uint32_t root, uint64_t ts);
/* Free a set without emitting it. */
void agt_files_drop(struct agt_files *f, struct agt_fileset **set);
/* The roots' own windows: each quiet since before now - quiet_ns is emitted (all: every one of
 * root, or every root when root is 0). */
void agt_files_flush(struct agt_files *f, uint32_t root, uint64_t now, uint64_t quiet_ns, int all);
/* The records at hand are handled (a ring buffer batch): read the files closed, renamed or
 * truncated meanwhile, once each. */
void agt_files_settle(struct agt_files *f);
const struct agt_files_stats *agt_files_stats(const struct agt_files *f);
#endif
