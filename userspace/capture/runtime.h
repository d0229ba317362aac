/* Which runtime a traced binary is, for runtime metrics: Go versions whose runtime functions
 * agtrace's probes know, and executables with a libuv event loop (Node). */
#ifndef AGT_CAPTURE_RUNTIME_H
#define AGT_CAPTURE_RUNTIME_H
#include <stddef.h>

/* The Go versions covered: their runtimes have the functions bpf/rt.bpf.c is attached to
 * (gcMarkTermination, stop/startTheWorldWithSema, (*gcControllerState).resetLive, newproc1,
 * goexit0) and Go's register ABI. */
#define AGT_RT_GO_MIN_MINOR 18
#define AGT_RT_GO_MAX_MINOR 22

/* 1 when the Go binary at path was built by a covered Go version; 0 when by another one (ver
 * then names it, e.g. "go1.24.1"), -1 when it is no Go binary (or too old to say). */
int agt_rt_go_covered(const char *path, char *ver, size_t n);
/* 1 when the executable at path exports uv_run (libuv's loop: Node, Electron). */
int agt_rt_has_libuv(const char *path);
#endif
