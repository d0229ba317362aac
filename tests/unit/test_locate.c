/* The TLS locator on real binaries: a static OpenSSL client (stripped: the offsets must be
 * the unstripped build's symbols), three Bun releases and `bun build --compile` executables
 * made from them (the same write and read sites as their runtime), a BoringSSL stand-in with
 * one and with two SSL_write-like functions (found, then refused), binaries with no TLS
 * (-ENOENT), the cache (a second call does not scan; corrupt, foreign and stale entries are
 * not used), and corrupted ELF files (no crash, a clean error). Needs `make deps` (the Bun
 * packages) and the test programs the Makefile builds before this test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "capture/locate.h"
#include "capture/locate_int.h"
#include "capture/elfsym.h"
#include "base/util.h"

#define WORK "build/tests/locate"
#define BUN(v) "tests/bun/node_modules/bun-" v "/bin/bun"

static const char *const bun_versions[] = {"a", "b", "c"};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* CPU seconds of this process: unlike the wall clock, not stretched by other load. */
static double cpu(void)
{
	struct rusage u;

	getrusage(RUSAGE_SELF, &u);
	return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec +
	       u.ru_stime.tv_usec / 1e6;
}

static uint64_t sym_offset(const char *path, const char *name, uint64_t *size)
{
	struct agt_sym *s;
	char err[256];
	int n;
	uint64_t off;

	assert_int_equal(agt_elf_find_funcs(path, name, &s, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	off = s[0].offset;
	if (size)
		*size = s[0].size;
	agt_syms_free(s, n);
	return off;
}

static const struct agt_tls_site *site(const struct agt_tls_located *r, int role)
{
	for (int i = 0; i < r->nsites; i++)
		if (r->sites[i].role == role)
			return &r->sites[i];
	fail_msg("no %s site", agt_tls_role_name(role));
	return NULL;
}

static void copy_file(const char *from, const char *to)
{
	size_t len;
	char *data = agt_read_file(from, 512u << 20, &len);
	FILE *f;

	assert_non_null(data);
	unlink(to);
	f = fopen(to, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	chmod(to, 0755);
	free(data);
}

static void run(const char *cmd)
{
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	(void)state;
	mkdir("build/tests", 0755);
	run("rm -rf " WORK " && mkdir -p " WORK);
	return 0;
}

/* Stripped static OpenSSL: the internal functions, at the unstripped build's symbol offsets
 * and sizes, with the out-length in rcx (OpenSSL 3.0); the same from the call graph alone. */
static void openssl_stripped_equals_symbols(void **state)
{
	const char *full = "build/tests/tls_static", *stripped = "build/tests/tls_static_stripped";
	uint64_t wsize, rsize, woff = sym_offset(full, "ssl_write_internal", &wsize),
			       roff = sym_offset(full, "ssl_read_internal", &rsize);
	struct agt_tls_located r, g;
	char err[768];

	(void)state;
	assert_int_equal(agt_locate_tls(stripped, &r, err, sizeof(err)), 0);
	assert_string_equal(r.library, "openssl3");
	assert_string_equal(r.bounds, "eh_frame");
	assert_int_equal(r.nsites, 2);
	assert_string_equal(site(&r, AGT_TLS_WRITE)->name, "ssl_write_internal");
	assert_int_equal(site(&r, AGT_TLS_WRITE)->offset, woff);
	assert_int_equal(site(&r, AGT_TLS_WRITE)->size, wsize);
	assert_int_equal(site(&r, AGT_TLS_WRITE)->conv, AGT_TLS_CONV_EX);
	assert_int_equal(site(&r, AGT_TLS_WRITE)->outlen_arg, 3);
	assert_string_equal(site(&r, AGT_TLS_READ)->name, "ssl_read_internal");
	assert_int_equal(site(&r, AGT_TLS_READ)->offset, roff);
	assert_int_equal(site(&r, AGT_TLS_READ)->size, rsize);
	assert_int_equal(site(&r, AGT_TLS_READ)->outlen_arg, 3);
	assert_non_null(strstr(site(&r, AGT_TLS_WRITE)->evidence, "called by SSL_write (0x"));
	/* what `agtrace probes locate` will print */
	{
		char *text = NULL, want[160];
		size_t tlen = 0;
		FILE *m = open_memstream(&text, &tlen);

		agt_locate_report_dir(stripped, WORK "/cache4", m);
		fclose(m);
		snprintf(want, sizeof(want), "  write ssl_write_internal offset 0x%lx",
			 (unsigned long)woff);
		assert_non_null(strstr(text,
				       "build/tests/tls_static_stripped: openssl3 (function bounds "
				       "from eh_frame"));
		assert_non_null(strstr(text, want));
		assert_non_null(strstr(text,
				       "size_t *written in rcx; returns > 0 on success, bytes "
				       "in *written"));
		free(text);
	}
	/* the unstripped file: the same */
	assert_int_equal(agt_locate_tls(full, &g, err, sizeof(err)), 0);
	assert_int_equal(site(&g, AGT_TLS_WRITE)->offset, woff);
	assert_int_equal(site(&g, AGT_TLS_READ)->offset, roff);
	/* bounds from the call graph instead of .eh_frame: the same entries */
	assert_int_equal(agt_locate_tls_flags(stripped, AGT_LOCATE_NO_FDE, &g, err, sizeof(err)),
			 0);
	assert_string_equal(g.bounds, "callgraph");
	assert_int_equal(site(&g, AGT_TLS_WRITE)->offset, woff);
	assert_int_equal(site(&g, AGT_TLS_READ)->offset, roff);
}

/* A second function raising errors as "SSL_write": refused with the reason, never guessed. */
static void openssl_ambiguous_refused(void **state)
{
	struct agt_tls_located r;
	char err[768];

	(void)state;
	assert_int_equal(agt_locate_tls("build/tests/tls_ambig", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(r.library, "openssl3");
	assert_int_equal(r.nsites, 0);
	assert_string_equal(r.why_not, "write: 2 functions raise errors as \"SSL_write\" and 1 as "
				       "\"ssl_write_internal\" where exactly one each must. ");
	assert_string_equal(err, "build/tests/tls_ambig: OpenSSL 3 found but refused: write: 2 "
				 "functions raise errors as \"SSL_write\" and 1 as "
				 "\"ssl_write_internal\" where exactly one each must. ");
}

/* The BoringSSL stand-in (PIE, lea references, .eh_frame_hdr bounds): found at its symbols;
 * with two SSL_write-like functions refused. */
static void boringssl_standin(void **state)
{
	const char *one = "build/tests/boring_sites", *two = "build/tests/boring_two";
	struct agt_tls_located r;
	char err[768];

	(void)state;
	assert_int_equal(agt_locate_tls(one, &r, err, sizeof(err)), 0);
	assert_string_equal(r.library, "boringssl");
	assert_string_equal(r.bounds, "eh_frame");
	assert_string_equal(site(&r, AGT_TLS_WRITE)->name, "SSL_write");
	assert_int_equal(site(&r, AGT_TLS_WRITE)->offset, sym_offset(one, "write_one", NULL));
	assert_string_equal(site(&r, AGT_TLS_READ)->name, "SSL_peek");
	assert_int_equal(site(&r, AGT_TLS_READ)->offset, sym_offset(one, "peek", NULL));
	assert_int_equal(site(&r, AGT_TLS_READ)->conv, AGT_TLS_CONV_INT);
	assert_int_equal(agt_locate_tls_flags(one, AGT_LOCATE_NO_FDE, &r, err, sizeof(err)), 0);
	assert_int_equal(site(&r, AGT_TLS_WRITE)->offset, sym_offset(one, "write_one", NULL));
	assert_int_equal(site(&r, AGT_TLS_READ)->offset, sym_offset(one, "peek", NULL));

	assert_int_equal(agt_locate_tls(two, &r, err, sizeof(err)), -EINVAL);
	assert_int_equal(r.nsites, 0);
	assert_string_equal(r.why_not, "write: 2 functions carry SSL_write's error sites (reasons "
				       "66 then 226, and 215) where exactly one must. ");
}

/* Each Bun release: one write (SSL_write) and one read (SSL_peek) site from the call graph, at
 * 16-byte aligned entries after int3 padding; a `bun build --compile` executable made by that
 * release has the very same sites at the same offsets (the runtime's code is not moved). */
static void bun_runtimes_and_compiled(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bun_versions) / sizeof(bun_versions[0]); i++) {
		char rt[128], app[128], cmd[512], err[768];
		struct agt_tls_located r, c;
		const struct agt_tls_site *w, *rd;
		uint8_t before;
		double t0, c0;
		int fd;

		snprintf(rt, sizeof(rt), BUN("%s"), bun_versions[i]);
		snprintf(app, sizeof(app), WORK "/bun_app_%s", bun_versions[i]);
		t0 = now();
		c0 = cpu();
		assert_int_equal(agt_locate_tls(rt, &r, err, sizeof(err)), 0);
		c0 = cpu() - c0;
		print_message("bun-%s: first scan %.3f s (%.3f s CPU)\n", bun_versions[i],
			      now() - t0, c0);
		assert_true(c0 < 2.0);
		assert_string_equal(r.library, "boringssl");
		assert_string_equal(r.bounds, "callgraph");
		assert_int_equal(r.nsites, 2);
		w = site(&r, AGT_TLS_WRITE);
		rd = site(&r, AGT_TLS_READ);
		assert_string_equal(w->name, "SSL_write");
		assert_string_equal(rd->name, "SSL_peek");
		assert_int_equal(w->conv, AGT_TLS_CONV_INT);
		assert_int_equal(rd->conv, AGT_TLS_CONV_INT);
		assert_true(w->offset != rd->offset);
		assert_int_equal(w->vaddr % 16, 0);
		assert_int_equal(rd->vaddr % 16, 0);
		assert_non_null(strstr(w->evidence, ", 111 (BAD_LENGTH); "));
		assert_non_null(strstr(rd->evidence, ", calls ssl_read_impl at 0x"));
		fd = open(rt, O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &before, 1, w->offset - 1), 1);
		assert_int_equal(before, 0xcc);
		assert_int_equal(pread(fd, &before, 1, rd->offset - 1), 1);
		assert_int_equal(before, 0xcc);
		close(fd);

		snprintf(cmd, sizeof(cmd),
			 "%s build --compile tests/bun/fetch_app.js --outfile %s >/dev/null 2>&1",
			 rt, app);
		run(cmd);
		assert_int_equal(agt_locate_tls(app, &c, err, sizeof(err)), 0);
		assert_int_equal(c.nsites, 2);
		for (int k = 0; k < 2; k++) {
			assert_int_equal(c.sites[k].role, r.sites[k].role);
			assert_string_equal(c.sites[k].name, r.sites[k].name);
			assert_int_equal(c.sites[k].offset, r.sites[k].offset);
			assert_int_equal(c.sites[k].vaddr, r.sites[k].vaddr);
			assert_int_equal(c.sites[k].size, r.sites[k].size);
		}
	}
}

/* The aws-lc stand-in (aead.c's error sites, symbols kept): seal and open at their symbols,
 * with .eh_frame bounds and from the call graph alone; two seal-like functions refused. */
static void awslc_standin(void **state)
{
	const char *one = "build/tests/aead_sites", *two = "build/tests/aead_two";
	struct agt_tls_located r;
	char err[768];

	(void)state;
	for (int flags = 0; flags <= AGT_LOCATE_NO_FDE; flags += AGT_LOCATE_NO_FDE) {
		assert_int_equal(agt_locate_tls_flags(one, flags, &r, err, sizeof(err)), 0);
		assert_string_equal(r.library, "aws-lc");
		assert_string_equal(r.bounds, flags ? "callgraph" : "eh_frame");
		assert_int_equal(r.nsites, 2);
		assert_string_equal(site(&r, AGT_TLS_SEAL)->name, "EVP_AEAD_CTX_seal");
		assert_int_equal(site(&r, AGT_TLS_SEAL)->offset, sym_offset(one, "seal", NULL));
		assert_int_equal(site(&r, AGT_TLS_SEAL)->conv, AGT_TLS_CONV_AEAD);
		assert_string_equal(site(&r, AGT_TLS_OPEN)->name, "EVP_AEAD_CTX_open");
		assert_int_equal(site(&r, AGT_TLS_OPEN)->offset, sym_offset(one, "open", NULL));
		assert_non_null(strstr(site(&r, AGT_TLS_SEAL)->evidence,
				       "error sites: reasons 117@166, 103@171, 115 "
				       "(OUTPUT_ALIASES_INPUT); 1 direct call"));
		assert_non_null(strstr(site(&r, AGT_TLS_OPEN)->evidence,
				       "error sites: reasons 101@261, 103@267, 115"));
	}
	assert_int_equal(agt_locate_tls(two, &r, err, sizeof(err)), -EINVAL);
	assert_int_equal(r.nsites, 0);
	assert_string_equal(r.why_not, "seal: 2 functions carry EVP_AEAD_CTX_seal's error sites "
				       "(reasons 117 and 103, no 101) where exactly one must. ");
	assert_string_equal(err, "build/tests/aead_two: aws-lc found but refused: seal: 2 "
				 "functions carry EVP_AEAD_CTX_seal's error sites (reasons 117 and "
				 "103, no 101) where exactly one must. ");
}

/* Deno (rustls over aws-lc-rs, stripped, no .eh_frame, its error calls load constants with
 * push/pop): aws-lc's seal and open from the call graph, each with direct callers, and no SSL
 * layer. Their offsets are checked end to end by the integration test (the plaintext captured
 * there is exactly the requests and responses). */
static void deno_awslc(void **state)
{
	const char *deno = "tests/deno/node_modules/deno-a/deno";
	struct agt_tls_located r;
	char err[768];
	double c0 = cpu();

	(void)state;
	assert_int_equal(agt_locate_tls(deno, &r, err, sizeof(err)), 0);
	c0 = cpu() - c0;
	print_message("deno: first scan %.3f s CPU\n", c0);
	assert_true(c0 < 2.0);
	assert_string_equal(r.library, "aws-lc");
	assert_string_equal(r.bounds, "callgraph");
	assert_int_equal(r.nsites, 2);
	assert_string_equal(site(&r, AGT_TLS_SEAL)->name, "EVP_AEAD_CTX_seal");
	assert_string_equal(site(&r, AGT_TLS_OPEN)->name, "EVP_AEAD_CTX_open");
	assert_true(site(&r, AGT_TLS_SEAL)->offset != site(&r, AGT_TLS_OPEN)->offset);
	assert_non_null(strstr(site(&r, AGT_TLS_SEAL)->evidence, ", 115 (OUTPUT_ALIASES_INPUT); "));
	assert_non_null(strstr(site(&r, AGT_TLS_OPEN)->evidence, ", 115 (OUTPUT_ALIASES_INPUT); "));
}

static int located(const char *path, const char *dir, struct agt_tls_located *r);
static void same_sites(const struct agt_tls_located *a, const struct agt_tls_located *b);

/* The time limit: a 300 MB stripped binary (the static OpenSSL client with 150 MB of
 * pseudo-random code and 150 MB of read-only data linked in) is located in under 2 s of CPU,
 * at the unstripped build's symbols, with either source of function bounds; a second lookup
 * through the cache costs no scan. */
static void padded_300mb(void **state)
{
	const char *full = "build/tests/tls_padded", *stripped = "build/tests/tls_padded_stripped";
	uint64_t woff = sym_offset(full, "ssl_write_internal", NULL),
		 roff = sym_offset(full, "ssl_read_internal", NULL);
	struct agt_tls_located r, c;
	struct stat st;
	char err[768];
	double t0, c0, t1;

	(void)state;
	assert_int_equal(stat(stripped, &st), 0);
	assert_true(st.st_size >= 300000000);
	for (int flags = 0; flags <= AGT_LOCATE_NO_FDE; flags += AGT_LOCATE_NO_FDE) {
		t0 = now();
		c0 = cpu();
		assert_int_equal(agt_locate_tls_flags(stripped, flags, &r, err, sizeof(err)), 0);
		c0 = cpu() - c0;
		print_message("300 MB (%s bounds): first scan %.3f s (%.3f s CPU)\n",
			      flags ? "call graph" : "eh_frame", now() - t0, c0);
		assert_true(c0 < 2.0);
		assert_string_equal(r.library, "openssl3");
		assert_int_equal(site(&r, AGT_TLS_WRITE)->offset, woff);
		assert_int_equal(site(&r, AGT_TLS_READ)->offset, roff);
	}
	assert_int_equal(located(stripped, WORK "/cache5", &r), 0);
	assert_int_equal(r.from_cache, 0);
	t1 = now();
	assert_int_equal(located(stripped, WORK "/cache5", &c), 0);
	print_message("300 MB: cached lookup %.6f s\n", now() - t1);
	assert_int_equal(c.from_cache, 1);
	assert_true(now() - t1 < 0.1);
	same_sites(&r, &c);
}

static int located(const char *path, const char *dir, struct agt_tls_located *r)
{
	char err[768];

	return agt_locate_tls_cached(path, dir, r, err, sizeof(err));
}

static void same_sites(const struct agt_tls_located *a, const struct agt_tls_located *b)
{
	assert_string_equal(a->library, b->library);
	assert_int_equal(a->nsites, b->nsites);
	for (int k = 0; k < a->nsites; k++) {
		assert_int_equal(a->sites[k].role, b->sites[k].role);
		assert_int_equal(a->sites[k].conv, b->sites[k].conv);
		assert_int_equal(a->sites[k].outlen_arg, b->sites[k].outlen_arg);
		assert_int_equal(a->sites[k].offset, b->sites[k].offset);
		assert_int_equal(a->sites[k].vaddr, b->sites[k].vaddr);
		assert_int_equal(a->sites[k].size, b->sites[k].size);
		assert_string_equal(a->sites[k].name, b->sites[k].name);
		assert_string_equal(a->sites[k].evidence, b->sites[k].evidence);
	}
}

static char *only_entry(const char *dir, const char *prefix)
{
	char cmd[512], *line = NULL;
	size_t n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls %s | grep '^%s' | grep -v tmp", dir, prefix);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_true(getline(&line, &n, p) > 0);
	line[strcspn(line, "\n")] = 0;
	pclose(p);
	return line;
}

/* Build-id keys: the second call is answered from the cache; a corrupt entry, an entry for
 * another key, and an entry whose recorded code no longer matches are not used. */
static void cache_build_id(void **state)
{
	const char *dir = WORK "/cache1", *bin = BUN("c");
	struct agt_tls_located a, b;
	char path[512], *name;
	double t0, t1;
	FILE *f;

	(void)state;
	t0 = now();
	assert_int_equal(located(bin, dir, &a), 0);
	t1 = now();
	assert_int_equal(a.from_cache, 0);
	assert_int_equal(located(bin, dir, &b), 0);
	print_message("bun-c: scan and store %.3f s, cached lookup %.6f s\n", t1 - t0, now() - t1);
	assert_int_equal(b.from_cache, 1);
	same_sites(&a, &b);

	/* corrupt: garbage in the entry */
	name = only_entry(dir, "b-");
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	fputs("agtrace-locate 1\nkey nonsense\n", f);
	fclose(f);
	assert_int_equal(located(bin, dir, &b), 0);
	assert_int_equal(b.from_cache, 0);
	same_sites(&a, &b);
	assert_int_equal(located(bin, dir, &b), 0);
	assert_int_equal(b.from_cache, 1);

	/* foreign: another binary's (well-formed) entry under this one's name */
	assert_int_equal(located("build/tests/tls_static_stripped", dir, &b), 0);
	{
		char *other = only_entry(dir, "b-"), cmd[1200];

		/* two b- entries now; take the one that is not bun-c's */
		snprintf(cmd, sizeof(cmd),
			 "cd %s && for e in b-*; do [ \"$e\" = %s ] || cp \"$e\" %s; done", dir,
			 name, name);
		run(cmd);
		free(other);
	}
	assert_int_equal(located(bin, dir, &b), 0);
	assert_int_equal(b.from_cache, 0);
	same_sites(&a, &b);
	free(name);

	/* stale: same build id and size, different code at a found site */
	{
		const char *copy = WORK "/tls_patched";
		struct agt_tls_located p;
		uint8_t cc = 0xcc;
		int fd;

		copy_file("build/tests/tls_static_stripped", copy);
		assert_int_equal(located(copy, dir, &p), 0);
		assert_int_equal(located(copy, dir, &p), 0);
		assert_int_equal(p.from_cache, 1);
		fd = open(copy, O_WRONLY);
		assert_int_equal(pwrite(fd, &cc, 1, site(&p, AGT_TLS_WRITE)->offset + 8), 1);
		close(fd);
		assert_int_equal(located(copy, dir, &b), 0);
		assert_int_equal(b.from_cache, 0);
	}
}

/* No build id: keyed by the content's SHA-256, found again through (dev, inode, size, mtime,
 * ctime) without hashing; the same content rewritten in place is still found, other content
 * is not. */
static void cache_content_hash(void **state)
{
	const char *dir = WORK "/cache2", *bin = WORK "/nobid";
	struct agt_tls_located a, b;
	char *name;
	FILE *f;

	(void)state;
	run("objcopy --remove-section .note.gnu.build-id build/tests/tls_static_stripped " WORK
	    "/nobid");
	assert_int_equal(located(bin, dir, &a), 0);
	assert_int_equal(a.from_cache, 0);
	name = only_entry(dir, "s-");
	assert_int_equal(strncmp(name, "s-", 2), 0);
	assert_int_equal(name[2 + 64], '-');
	free(name);
	name = only_entry(dir, "i-");
	free(name);
	assert_int_equal(located(bin, dir, &b), 0);
	assert_int_equal(b.from_cache, 1);
	same_sites(&a, &b);
	/* rewritten in place with the same bytes: a new ctime, hashed again, same entry */
	copy_file(bin, WORK "/nobid.tmp");
	run("cat " WORK "/nobid.tmp > " WORK "/nobid");
	assert_int_equal(located(bin, dir, &b), 0);
	assert_int_equal(b.from_cache, 1);
	/* different content (one more byte): not the cached entry */
	f = fopen(bin, "a");
	fputc(0, f);
	fclose(f);
	assert_int_equal(located(bin, dir, &b), 0);
	assert_int_equal(b.from_cache, 0);
	same_sites(&a, &b);
}

/* Refusals are cached too, and binaries with nothing of TLS are -ENOENT. */
static void no_tls(void **state)
{
	const char *paths[] = {"/bin/true", "build/tests/tls_dynamic", "build/tests/nested"};
	struct agt_tls_located r;
	char err[768];

	(void)state;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		assert_int_equal(agt_locate_tls(paths[i], &r, err, sizeof(err)), -ENOENT);
		assert_int_equal(r.nsites, 0);
		assert_string_equal(r.library, "");
	}
	assert_int_equal(agt_locate_tls("/bin/true", &r, err, sizeof(err)), -ENOENT);
	assert_string_equal(err,
			    "/bin/true has no TLS library's error-site strings (ssl/ssl_lib.cc, "
			    "ssl/ssl_lib.c, SSL_write, SSL_read, cipher/aead.c)");
	/* a dynamic OpenSSL client names SSL_write and SSL_read only as imports */
	assert_int_equal(agt_locate_tls("build/tests/tls_dynamic", &r, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "build/tests/tls_dynamic has TLS-like strings but no code raises "
				 "errors with them, so no TLS library is linked in");
	assert_int_equal(located("/bin/true", WORK "/cache3", &r), -ENOENT);
	assert_int_equal(located("/bin/true", WORK "/cache3", &r), -ENOENT);
	assert_int_equal(r.from_cache, 1);
	assert_int_equal(agt_locate_tls("tests/unit/test_locate.c", &r, err, sizeof(err)),
			 -ENOEXEC);
	assert_int_equal(agt_locate_tls(WORK "/missing", &r, err, sizeof(err)), -ENOENT);
}

/* Untrusted input: truncated files, headers pointing outside the file, and random damage to a
 * real binary give an error or a result, never a crash or a read out of bounds. */
static void corrupted_elf(void **state)
{
	const char *src = "build/tests/tls_static_stripped", *bad = WORK "/bad";
	struct agt_rng rng = {0x2545f4914f6cdd1dull};
	size_t len;
	uint8_t *orig = (uint8_t *)agt_read_file(src, 64u << 20, &len);
	struct agt_tls_located r;
	char err[768];

	(void)state;
	assert_non_null(orig);
	/* the header only, and a program header table past the end of the file */
	{
		FILE *f = fopen(bad, "w");
		uint8_t h[64];

		memcpy(h, orig, 64);
		fwrite(h, 1, 64, f);
		fclose(f);
		assert_int_equal(agt_locate_tls(bad, &r, err, sizeof(err)), -ENOEXEC);
		assert_string_equal(err, WORK "/bad has a program header table outside the file");
	}
	for (int round = 0; round < 48; round++) {
		uint8_t *buf = malloc(len);
		size_t n = len;
		FILE *f;
		int rc;

		memcpy(buf, orig, len);
		switch (round / 2 % 4) {
		case 0: /* truncated */ n = agt_rng_next(&rng) % len; break;
		case 1: /* headers scrambled */
			for (int k = 0; k < 16; k++)
				buf[agt_rng_next(&rng) % 4096] = agt_rng_next(&rng);
			break;
		case 2: /* bytes anywhere, code and tables included */
			for (int k = 0; k < 4096; k++)
				buf[agt_rng_next(&rng) % len] = agt_rng_next(&rng);
			break;
		default: /* a block of garbage over the middle */
			for (size_t k = len / 3; k < len / 3 + 65536 && k < len; k++)
				buf[k] = agt_rng_next(&rng);
		}
		f = fopen(bad, "w");
		fwrite(buf, 1, n, f);
		fclose(f);
		free(buf);
		/* odd rounds bound functions from the call graph only */
		rc = agt_locate_tls_flags(bad, round & 1 ? AGT_LOCATE_NO_FDE : 0, &r, err,
					  sizeof(err));
		assert_true(rc == 0 || rc == -ENOENT || rc == -EINVAL || rc == -ENOTSUP ||
			    rc == -ENOEXEC);
		assert_true(strlen(err) > 0 || rc == 0);
	}
	free(orig);
}

/* Where an entry probe goes: past a leading endbr64 unless something jumps right after it. */
static void probe_site_past_endbr64(void **state)
{
	/* at 16: endbr64; push rbp; mov rbp, rsp; xor eax, eax; pop rbp; ret */
	static const uint8_t plain[] = {0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5,
					0x31, 0xc0, 0x5d, 0xc3};
	/* endbr64; push rbp; dec edi; jne -> +4 (a loop to the top of the body); pop rbp; ret */
	static const uint8_t loop[] = {0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0xff, 0xcf,
				       0x75, 0xfb, 0x5d, 0xc3};
	/* push rbp; pop rbp; ret: no endbr64 */
	static const uint8_t bare[] = {0x55, 0x5d, 0xc3};
	char path[] = "/tmp/agt-site-XXXXXX";
	uint8_t file[64] = {0};
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	memcpy(file + 16, plain, sizeof(plain));
	assert_int_equal(write(fd, file, sizeof(file)), sizeof(file));
	assert_int_equal(agt_elf_probe_site(path, 16, sizeof(plain)), 20);
	memcpy(file + 16, loop, sizeof(loop));
	assert_int_equal(pwrite(fd, file, sizeof(file), 0), sizeof(file));
	assert_int_equal(agt_elf_probe_site(path, 16, sizeof(loop)), 16);
	memcpy(file + 16, bare, sizeof(bare));
	assert_int_equal(pwrite(fd, file, sizeof(file), 0), sizeof(file));
	assert_int_equal(agt_elf_probe_site(path, 16, sizeof(bare)), 16);
	assert_int_equal(agt_elf_probe_site("/nonexistent", 16, 12), 16);
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(openssl_stripped_equals_symbols),
	    cmocka_unit_test(openssl_ambiguous_refused),
	    cmocka_unit_test(boringssl_standin),
	    cmocka_unit_test(bun_runtimes_and_compiled),
	    cmocka_unit_test(awslc_standin),
	    cmocka_unit_test(deno_awslc),
	    cmocka_unit_test(padded_300mb),
	    cmocka_unit_test(cache_build_id),
	    cmocka_unit_test(cache_content_hash),
	    cmocka_unit_test(no_tls),
	    cmocka_unit_test(corrupted_elf),
	    cmocka_unit_test(probe_site_past_endbr64),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
