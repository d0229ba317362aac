/* What the trace stage asks of a file (file lineage, trace/files.h) and the capture side answers
 * (capture/filestate.c): plain data, so neither includes the other. */
#ifndef AGT_RECORD_FILESTATE_H
#define AGT_RECORD_FILESTATE_H
#include <stddef.h>
#include <stdint.h>

/* A file as a process sees it now. */
struct agt_file_state {
	int exists;
	uint64_t size;
	char sha256[65]; /* "" when not hashed (then note says why) */
	char note[96];
	char *content; /* when asked for (content_max > 0) and it fit: the bytes (caller frees) */
	size_t content_len;
};
/* Fill st for path as process pid sees it (its root); content up to content_max bytes. */
typedef void (*agt_file_state_fn)(void *ctx, uint32_t pid, const char *path, uint64_t hash_max,
				  size_t content_max, struct agt_file_state *st);

#endif
