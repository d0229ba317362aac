#include "base/util.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int agt_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end || end == s)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t agt_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

int64_t agt_mono_to_real_offset(void)
{
	/* Bracket the realtime read between two monotonic reads to halve the error. */
	uint64_t a = clock_ns(CLOCK_MONOTONIC);
	uint64_t r = clock_ns(CLOCK_REALTIME);
	uint64_t b = clock_ns(CLOCK_MONOTONIC);

	return (int64_t)r - (int64_t)(a + (b - a) / 2);
}

void agt_format_time(uint64_t real_ns, char *buf, size_t n)
{
	/* Spans come in bursts of the same second: its calendar text is made once per thread. */
	static __thread time_t last = (time_t)-1;
	static __thread char base[24];
	static __thread size_t blen;
	time_t secs = (time_t)(real_ns / 1000000000ull);
	unsigned us = (unsigned)((real_ns % 1000000000ull) / 1000);
	char out[40];
	size_t len;

	if (!n)
		return;
	if (secs != last) {
		struct tm tm;

		gmtime_r(&secs, &tm);
		blen = strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
		last = secs;
	}
	memcpy(out, base, blen);
	out[blen] = '.';
	for (int i = 6; i >= 1; i--, us /= 10)
		out[blen + i] = (char)('0' + us % 10);
	out[blen + 7] = 'Z';
	len = blen + 8; /* cut to fit n, as snprintf would */
	if (len > n - 1)
		len = n - 1;
	memcpy(buf, out, len);
	buf[len] = 0;
}

void agt_rng_init(struct agt_rng *r)
{
	uint64_t seed = 0;

	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = agt_mono_ns() ^ ((uint64_t)getpid() << 32);
	r->s = seed ? seed : 0x9e3779b97f4a7c15ull;
}

uint64_t agt_rng_next(struct agt_rng *r)
{
	uint64_t x;

	do {
		/* xorshift64* */
		x = r->s;
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		r->s = x;
		x *= 0x2545f4914f6cdd1dull;
	} while (!x);
	return x;
}

void agt_hex(const uint8_t *bytes, size_t n, char *out)
{
	/* Both digits of a byte at once (the ids in every document). */
	static const char pairs[513] =
	    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
	    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
	    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
	    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

	for (size_t i = 0; i < n; i++)
		memcpy(out + 2 * i, pairs + 2 * bytes[i], 2);
	out[2 * n] = 0;
}

char *agt_read_file(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "re");
	size_t cap = 4096, n = 0;
	char *buf;

	if (!f)
		return NULL;
	buf = malloc(cap + 1);
	while (buf) {
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (n < cap)
			break;
		if (cap >= max) {
			free(buf);
			fclose(f);
			errno = EFBIG;
			return NULL;
		}
		cap *= 2;
		char *nb = realloc(buf, cap + 1);
		if (!nb) {
			free(buf);
			buf = NULL;
		} else {
			buf = nb;
		}
	}
	if (buf && ferror(f)) {
		int e = errno;
		free(buf);
		fclose(f);
		errno = e ? e : EIO;
		return NULL;
	}
	fclose(f);
	if (!buf) {
		errno = ENOMEM;
		return NULL;
	}
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

uint64_t agt_fnv1a(const void *data, size_t n, uint64_t h)
{
	const unsigned char *p = data;

	if (!h)
		h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

int agt_path_join(const char *dir, const char *name, char *out, size_t n)
{
	size_t o = 0;
	int rc = 0;

	if (n < 2)
		return -ENAMETOOLONG;
	for (int part = name[0] == '/' ? 1 : 0; part < 2; part++) {
		const char *p = part ? name : dir;

		while (*p) {
			size_t len;

			while (*p == '/')
				p++;
			len = strcspn(p, "/");
			if (!len)
				break;
			if (len == 1 && p[0] == '.') {
				/* nothing */
			} else if (len == 2 && p[0] == '.' && p[1] == '.') {
				while (o > 0 && out[o - 1] != '/')
					o--;
				if (o > 0)
					o--; /* the slash before it */
			} else if (o + 1 + len < n) {
				out[o++] = '/';
				memcpy(out + o, p, len);
				o += len;
			} else {
				rc = -ENAMETOOLONG;
			}
			p += len;
		}
	}
	if (!o)
		out[o++] = '/';
	out[o] = 0;
	return rc;
}
