/* A file as a traced process sees it, now: whether it is there, its size, the SHA-256 of its
 * content (up to a size), and the content itself when it is small. Opened through the
 * process's root (/proc/PID/root, symbolic links resolved inside it), so paths inside
 * containers are the container's files. */
#ifndef AGT_FILESTATE_H
#define AGT_FILESTATE_H
#include <stddef.h>
#include <stdint.h>
#include "record/filestate.h"

/* agt_file_state_fn (record/filestate.h): ctx unused. */
void agt_file_state_read(void *ctx, uint32_t pid, const char *path, uint64_t hash_max,
			 size_t content_max, struct agt_file_state *st);
#endif
