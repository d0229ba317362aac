/* Small helpers shared by every stage: numbers, time, ids, files. */
#ifndef AGT_UTIL_H
#define AGT_UTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Strict decimal parse of a whole string into [min, max]; 0 or -EINVAL/-ERANGE. */
int agt_parse_long(const char *s, long min, long max, long *out);
/* CLOCK_MONOTONIC ns (the clock of bpf_ktime_get_ns) and its offset to CLOCK_REALTIME. */
uint64_t agt_mono_ns(void);
int64_t agt_mono_to_real_offset(void);
/* RFC 3339 UTC with microseconds, e.g. 2026-11-25T09:16:32.123456Z (buf >= 32). */
void agt_format_time(uint64_t real_ns, char *buf, size_t n);
/* Non-cryptographic random ids from a seeded xorshift; never 0. */
struct agt_rng {
	uint64_t s;
};
void agt_rng_init(struct agt_rng *r);
uint64_t agt_rng_next(struct agt_rng *r);
void agt_hex(const uint8_t *bytes, size_t n, char *out); /* out: 2n+1 */
/* Read a whole small file; NUL-terminated; caller frees. NULL and errno on failure. */
char *agt_read_file(const char *path, size_t max, size_t *len);
uint64_t agt_fnv1a(const void *data, size_t n, uint64_t h);

/* dir (absolute, "" for the root) joined with name (absolute names stand alone), with "." and
 * ".." and repeated slashes resolved as text (no symbolic link is followed): an absolute path
 * in out; 0, or -ENAMETOOLONG when it does not fit (out then holds what fit). */
int agt_path_join(const char *dir, const char *name, char *out, size_t n);

#define AGT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif
