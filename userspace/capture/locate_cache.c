/* The TLS locator's cache: one small text file per binary in a cache directory, so that
 * locating in a binary seen before costs no scan.
 *
 * Key. With a GNU build id: "b-<build id>-<file size>". The build id names the link output;
 * the size tells apart files that share it but differ (`bun build --compile` appends the
 * script to the same runtime, keeping its build id). Without one: "s-<SHA-256 of the
 * content>-<size>"; hashing a large file takes time, so an index file per (device, inode)
 * remembers the hash with the size, mtime and ctime it was computed at, and the hash is
 * computed again only when one of those changed. A file replaced in place gets a new ctime
 * whatever its mtime says (no system call sets ctime), so the index cannot vouch for changed
 * content.
 * Check. An entry records the first 32 bytes of code at every site it found; they are read
 * from the file and compared before the entry is used, so even a build id reused for other
 * code (or a patched binary) cannot return offsets that do not hold that code.
 * Trust. Entries decide where probes go, so a cache directory that is not the caller's own, or
 * that group or others can write to, is not used (the locator then just scans).
 * Format. Text lines, the first "agtrace-locate 1", then "key ...", the result, and a last
 * line with the FNV-1a hash of everything before it: a file that is cut, edited, from another
 * version or for another key is ignored and rewritten (written to a temporary file and renamed
 * into place, so readers never see half of one). */
#include "capture/locate.h"
#include "capture/locate_int.h"
#include "base/log.h"
#include "base/util.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAGIC "agtrace-locate 1"
#define FP_LEN 32

static void hexs(const uint8_t *b, size_t n, char *out)
{
	agt_hex(b, n, out);
}

/* Make every character of s printable on one line (it goes to a line-based file). */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

static int mkdirs(const char *dir)
{
	char buf[4096];
	size_t n = strlen(dir);

	if (!n || n >= sizeof(buf))
		return -1;
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(buf, 0755) && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

/* Entries say where probes go: a directory someone else could write to is not used. */
static int trusted_dir(const char *dir)
{
	struct stat st;

	return !stat(dir, &st) && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
	       !(st.st_mode & (S_IWGRP | S_IWOTH));
}

static int sha256_hex(const uint8_t *data, size_t n, char *out)
{
	uint8_t md[32];
	unsigned mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) && EVP_DigestUpdate(c, data, n) &&
		 EVP_DigestFinal_ex(c, md, &mdlen) && mdlen == 32;

	EVP_MD_CTX_free(c);
	if (!ok)
		return -1;
	hexs(md, 32, out);
	return 0;
}

/* The cache key of the file; 0, or -1 when none can be made. */
static int cache_key(const char *dir, const struct agt_img *img, const struct stat *st, char *key,
		     size_t keylen)
{
	char hash[65], idx[4200], line[256], want[256];
	FILE *f;

	if (img->build_id_len) {
		char bid[2 * sizeof(img->build_id) + 1];

		hexs(img->build_id, img->build_id_len, bid);
		snprintf(key, keylen, "b-%s-%" PRIu64, bid, (uint64_t)st->st_size);
		return 0;
	}
	snprintf(idx, sizeof(idx), "%s/i-%" PRIu64 "-%" PRIu64, dir, (uint64_t)st->st_dev,
		 (uint64_t)st->st_ino);
	snprintf(want, sizeof(want), "%" PRIu64 " %ld.%09ld %ld.%09ld ", (uint64_t)st->st_size,
		 (long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (long)st->st_ctim.tv_sec,
		 st->st_ctim.tv_nsec);
	if ((f = fopen(idx, "re"))) {
		int ok = fgets(line, sizeof(line), f) && !strncmp(line, want, strlen(want)) &&
			 strlen(line) == strlen(want) + 65 && line[strlen(want) + 64] == '\n';

		fclose(f);
		if (ok) {
			memcpy(hash, line + strlen(want), 64);
			hash[64] = 0;
			snprintf(key, keylen, "s-%s-%" PRIu64, hash, (uint64_t)st->st_size);
			return 0;
		}
	}
	if (sha256_hex(img->data, img->size, hash))
		return -1;
	snprintf(key, keylen, "s-%s-%" PRIu64, hash, (uint64_t)st->st_size);
	if ((f = fopen(idx, "we"))) {
		fprintf(f, "%s%s\n", want, hash);
		fclose(f);
	}
	return 0;
}

static int fingerprint(const struct agt_img *img, uint64_t vaddr, char *out)
{
	const uint8_t *p = agt_img_ptr(img, vaddr, FP_LEN);

	if (!p)
		return -1;
	hexs(p, FP_LEN, out);
	return 0;
}

/* Read a string field "name value..." (rest of the line) into out. */
static int field(char **cur, const char *name, char *out, size_t n)
{
	char *line = *cur, *nl = strchr(line, '\n');
	size_t nl_len = strlen(name);

	if (!nl || strncmp(line, name, nl_len) || line[nl_len] != ' ')
		return -1;
	*nl = 0;
	if ((size_t)(nl - line - nl_len - 1) >= n)
		return -1;
	memcpy(out, line + nl_len + 1, nl - line - nl_len);
	*cur = nl + 1;
	return 0;
}

static int parse_long(const char *s, long min, long max, long *v)
{
	return agt_parse_long(s, min, max, v);
}

/* Parse and check one entry; 0 when usable (out, *rc, err filled). */
static int load(const char *path, const char *key, const struct agt_img *img,
		struct agt_tls_located *out, int *rc, char *err, size_t errlen)
{
	char *text, *cur, *sum, buf[600], ebuf[600], nbuf[32], fp[2 * FP_LEN + 1];
	size_t len;
	long v;
	struct agt_tls_located r;
	int ok = -1;

	memset(&r, 0, sizeof(r));
	text = agt_read_file(path, 64 << 10, &len);
	if (!text)
		return -1;
	/* the last line: "sum <16 hex>" over everything before it */
	sum = len >= 22 ? text + len - 21 : NULL;
	if (!sum || strncmp(sum - 1, "\nsum ", 5) || text[len - 1] != '\n')
		goto out;
	snprintf(buf, sizeof(buf), "%016" PRIx64,
		 agt_fnv1a(text, sum - text, 0xcbf29ce484222325ull));
	if (strncmp(sum + 4, buf, 16))
		goto out;
	*sum = 0;
	cur = text;
	if (field(&cur, "agtrace-locate", buf, sizeof(buf)) || strcmp(buf, "1") ||
	    field(&cur, "key", buf, sizeof(buf)) || strcmp(buf, key) ||
	    field(&cur, "rc", buf, sizeof(buf)) || parse_long(buf, -4095, 0, &v))
		goto out;
	*rc = (int)v;
	if (field(&cur, "library", r.library, sizeof(r.library)) ||
	    field(&cur, "version", r.version_hint, sizeof(r.version_hint)) ||
	    field(&cur, "bounds", r.bounds, sizeof(r.bounds)) ||
	    field(&cur, "why_not", r.why_not, sizeof(r.why_not)) ||
	    field(&cur, "err", ebuf, sizeof(ebuf)) || field(&cur, "sites", nbuf, sizeof(nbuf)) ||
	    parse_long(nbuf, 0, 4, &v))
		goto out;
	r.nsites = (int)v;
	for (int i = 0; i < r.nsites; i++) {
		struct agt_tls_site *s = &r.sites[i];
		char line[600], *tab;
		unsigned long long off, va, size;
		int role, conv, outlen, nchar = 0;

		if (field(&cur, "site", line, sizeof(line)) || !(tab = strchr(line, '\t')))
			goto out;
		*tab = 0;
		if (sscanf(line, "%d %d %d %llx %llx %llx %31s %64s%n", &role, &conv, &outlen, &off,
			   &va, &size, s->name, fp, &nchar) != 8 ||
		    line[nchar] || role < AGT_TLS_WRITE || role > AGT_TLS_OPEN ||
		    conv < AGT_TLS_CONV_INT || conv > AGT_TLS_CONV_AEAD || outlen < -1 ||
		    outlen > 5 || strlen(tab + 1) >= sizeof(s->evidence))
			goto out;
		s->role = role;
		s->conv = conv;
		s->outlen_arg = outlen;
		s->offset = off;
		s->vaddr = va;
		s->size = size;
		snprintf(s->evidence, sizeof(s->evidence), "%s", tab + 1);
		/* the code must still be there */
		{
			char now[2 * FP_LEN + 1];
			uint64_t o;

			if (fingerprint(img, va, now) || strcmp(now, fp) ||
			    agt_img_v2o(img, va, &o) || o != off)
				goto out;
		}
	}
	if (*cur)
		goto out;
	r.from_cache = 1;
	*out = r;
	snprintf(err, errlen, "%s", ebuf);
	ok = 0;
out:
	free(text);
	return ok;
}

static void store(const char *dir, const char *path, const char *key, const struct agt_img *img,
		  const struct agt_tls_located *r, int rc, const char *err)
{
	char tmp[4300], *body = NULL, e[600], w[sizeof(r->why_not)];
	size_t blen = 0;
	FILE *m = open_memstream(&body, &blen);
	int fd;

	if (!m)
		return;
	snprintf(e, sizeof(e), "%s", err);
	one_line(e);
	snprintf(w, sizeof(w), "%s", r->why_not);
	one_line(w);
	fprintf(
	    m,
	    "%s\nkey %s\nrc %d\nlibrary %s\nversion %s\nbounds %s\nwhy_not %s\nerr %s\nsites %d\n",
	    CACHE_MAGIC, key, rc, r->library, r->version_hint, r->bounds, w, e, r->nsites);
	for (int i = 0; i < r->nsites; i++) {
		const struct agt_tls_site *s = &r->sites[i];
		char fp[2 * FP_LEN + 1], ev[sizeof(s->evidence)];

		if (fingerprint(img, s->vaddr, fp)) {
			fclose(m);
			free(body);
			return;
		}
		snprintf(ev, sizeof(ev), "%s", s->evidence);
		one_line(ev);
		fprintf(m, "site %d %d %d %" PRIx64 " %" PRIx64 " %" PRIx64 " %s %s\t%s\n", s->role,
			s->conv, s->outlen_arg, s->offset, s->vaddr, s->size, s->name, fp, ev);
	}
	if (fclose(m)) {
		free(body);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path);
	fd = mkstemp(tmp);
	if (fd >= 0) {
		char sum[32];
		int n = snprintf(sum, sizeof(sum), "sum %016" PRIx64 "\n",
				 agt_fnv1a(body, blen, 0xcbf29ce484222325ull));
		int ok = write(fd, body, blen) == (ssize_t)blen && write(fd, sum, n) == n;

		fchmod(fd, 0644);
		if (close(fd) || !ok || rename(tmp, path))
			unlink(tmp);
	}
	(void)dir;
	free(body);
}

int agt_locate_tls_cached(const char *path, const char *cache_dir, struct agt_tls_located *out,
			  char *err, size_t errlen)
{
	const char *env = getenv("AGTRACE_LOCATE_CACHE");
	const char *dir = cache_dir ? cache_dir : env && *env ? env : AGT_LOCATE_CACHE_DIR;
	char key[300], entry[4200];
	struct agt_img img;
	int rc, cached_rc = 0;

	memset(out, 0, sizeof(*out));
	/* An unreadable or non-ELF file fails here, uncached: that costs nothing to find out. */
	if ((rc = agt_img_open(path, &img, err, errlen)))
		return rc;
	if (mkdirs(dir) || !trusted_dir(dir) || cache_key(dir, &img, &img.st, key, sizeof(key))) {
		agt_img_close(&img);
		return agt_locate_tls(path, out, err, errlen);
	}
	snprintf(entry, sizeof(entry), "%s/%s", dir, key);
	if (!load(entry, key, &img, out, &cached_rc, err, errlen)) {
		agt_img_close(&img);
		if (!cached_rc && errlen)
			err[0] = 0;
		return cached_rc;
	}
	rc = agt_locate_tls(path, out, err, errlen);
	if (rc == 0 || rc == -ENOENT || rc == -EINVAL || rc == -ENOTSUP)
		store(dir, entry, key, &img, out, rc, rc ? err : "");
	agt_img_close(&img);
	return rc;
}

int agt_locate_report(const char *path, FILE *out)
{
	return agt_locate_report_dir(path, NULL, out);
}

int agt_locate_report_dir(const char *path, const char *cache_dir, FILE *out)
{
	struct agt_tls_located r;
	char err[768] = "";
	int rc = agt_locate_tls_cached(path, cache_dir, &r, err, sizeof(err));

	fprintf(out, "%s: ", path);
	if (rc == -ENOENT || (rc && !r.library[0])) {
		fprintf(out, "no TLS library located: %s\n", err);
		return rc;
	}
	fprintf(out, "%s%s%s%s (function bounds from %s%s)\n", r.library,
		r.version_hint[0] ? " \"" : "", r.version_hint, r.version_hint[0] ? "\"" : "",
		r.bounds[0] ? r.bounds : "?", r.from_cache ? ", cached" : "");
	if (rc) {
		fprintf(out, "  refused: %s\n", r.why_not);
		return rc;
	}
	for (int i = 0; i < r.nsites; i++) {
		const struct agt_tls_site *s = &r.sites[i];

		fprintf(out, "  %-5s %-18s offset 0x%lx  vaddr 0x%lx  size %lu\n",
			agt_tls_role_name(s->role), s->name, (unsigned long)s->offset,
			(unsigned long)s->vaddr, (unsigned long)s->size);
		if (s->conv == AGT_TLS_CONV_INT)
			fprintf(out, "        ssl=rdi buf=rsi num=edx (int); returns int bytes in "
				     "eax when > 0\n");
		else if (s->conv == AGT_TLS_CONV_AEAD && s->role == AGT_TLS_SEAL)
			fprintf(out, "        ctx=rdi; plaintext in/in_len and the record header "
				     "ad/ad_len on the stack (7th..10th); read at entry\n");
		else if (s->conv == AGT_TLS_CONV_AEAD)
			fprintf(out,
				"        ctx=rdi out=rsi size_t *out_len=rdx; the record header "
				"ad/ad_len on the stack (9th, 10th); plaintext read at return "
				"when it returns 1\n");
		else
			fprintf(
			    out,
			    "        ssl=rdi buf=rsi num=rdx (size_t); size_t *%s in %s; returns "
			    "> 0 on success, bytes in *%s\n",
			    s->role == AGT_TLS_WRITE ? "written" : "readbytes",
			    s->outlen_arg == 3 ? "rcx" : "r8",
			    s->role == AGT_TLS_WRITE ? "written" : "readbytes");
		fprintf(out, "        evidence: %s\n", s->evidence);
	}
	return 0;
}
