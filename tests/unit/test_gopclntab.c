/* Go function table (.gopclntab) lookup on the two builds of tests/targets/gotls: the stripped
 * build (-ldflags='-s -w', no .symtab) must give exactly the names, addresses, sizes, file
 * offsets and return instructions that .symtab of the normal build gives (same code, same
 * layout of the text); copies of the stripped build with no section headers, a renamed section,
 * or textStart zeroed (as Go 1.26 writes it) give the same; other formats and non-Go files are
 * refused with a sentence; damaged tables never crash. The binaries sit beside this test in
 * build/tests (Makefile prerequisites). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "capture/gopclntab.h"
#include "capture/elfsym.h"

static const char *const probed[] = {"crypto/tls.(*Conn).Write", "crypto/tls.(*Conn).Read"};

struct env {
	char normal[PATH_MAX + 32], stripped[PATH_MAX + 32], tmp[64];
	uint8_t *img; /* the stripped build, read whole */
	size_t size;
	uint64_t pcln_off, shstr_name_off; /* .gopclntab's file offset; its name in .shstrtab */
};

static int read_whole(const char *path, uint8_t **buf, size_t *size)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*size = (size_t)st.st_size;
	*buf = malloc(*size);
	if (!*buf || read(fd, *buf, *size) != (ssize_t)*size) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int write_whole(const char *path, const uint8_t *buf, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	int ok = fd >= 0 && write(fd, buf, size) == (ssize_t)size;

	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/* Where .gopclntab is in the stripped build, from its section headers. */
static int locate_section(struct env *e)
{
	int fd = open(e->stripped, O_RDONLY | O_CLOEXEC), found = -1;
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	Elf *elf;

	elf_version(EV_CURRENT);
	if (fd < 0)
		return -1;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && !elf_getshdrstrndx(elf, &shstrndx)) {
		GElf_Shdr str;

		if (gelf_getshdr(elf_getscn(elf, shstrndx), &str))
			while ((scn = elf_nextscn(elf, scn))) {
				GElf_Shdr sh;
				const char *name;

				if (!gelf_getshdr(scn, &sh) ||
				    !(name = elf_strptr(elf, shstrndx, sh.sh_name)) ||
				    strcmp(name, ".gopclntab"))
					continue;
				e->pcln_off = sh.sh_offset;
				e->shstr_name_off = str.sh_offset + sh.sh_name;
				found = 0;
			}
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return found;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (!e || n <= 0)
		return -1;
	self[n] = 0;
	if (!(slash = strrchr(self, '/')))
		return -1;
	*slash = 0;
	snprintf(e->normal, sizeof(e->normal), "%s/gotls", self);
	snprintf(e->stripped, sizeof(e->stripped), "%s/gotls-stripped", self);
	snprintf(e->tmp, sizeof(e->tmp), "/tmp/agt-gopclntab-XXXXXX");
	if (!mkdtemp(e->tmp) || read_whole(e->stripped, &e->img, &e->size) || locate_section(e))
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", e->tmp);
	if (system(cmd))
		return -1;
	free(e->img);
	free(e);
	return 0;
}

struct patch {
	uint64_t off;
	const void *bytes;
	size_t len;
};

/* A copy of the stripped build with the patches applied; its path in out. */
static void patched(struct env *e, const char *name, const struct patch *p, int np, char *out,
		    size_t outlen)
{
	uint8_t *copy = malloc(e->size);

	assert_non_null(copy);
	memcpy(copy, e->img, e->size);
	for (int i = 0; i < np; i++) {
		assert_true(p[i].off + p[i].len <= e->size);
		memcpy(copy + p[i].off, p[i].bytes, p[i].len);
	}
	snprintf(out, outlen, "%s/%s", e->tmp, name);
	assert_int_equal(write_whole(out, copy, e->size), 0);
	free(copy);
}

/* The single function named exactly name, through fn. */
static struct agt_sym one(int (*fn)(const char *, const char *, struct agt_sym **, int *, char *,
				    size_t),
			  const char *path, const char *name)
{
	struct agt_sym *s, r;
	char err[512] = "";
	int n;

	assert_int_equal(fn(path, name, &s, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(s[0].name, name);
	r = s[0];
	r.name = NULL;
	agt_syms_free(s, n);
	return r;
}

static void assert_same_sym(struct agt_sym a, struct agt_sym b)
{
	assert_int_equal(a.addr, b.addr);
	assert_int_equal(a.size, b.size);
	assert_int_equal(a.offset, b.offset);
}

/* The pclntab of every build and variant gives what .symtab of the normal build gives. */
static void assert_like_symtab(struct env *e, const char *path)
{
	for (size_t i = 0; i < sizeof(probed) / sizeof(probed[0]); i++)
		assert_same_sym(one(agt_go_find_funcs, path, probed[i]),
				one(agt_elf_find_funcs, e->normal, probed[i]));
}

static void finds_probed_functions_as_symtab_gives_them(void **state)
{
	struct env *e = *state;

	for (size_t i = 0; i < sizeof(probed) / sizeof(probed[0]); i++) {
		struct agt_sym sym = one(agt_elf_find_funcs, e->normal, probed[i]);

		assert_true(sym.size > 0x100); /* the method's own code, not padding */
		assert_true(sym.offset > 0 && sym.offset < sym.addr);
		/* pclntab of both builds, and elfsym's fallback on the stripped one */
		assert_same_sym(one(agt_go_find_funcs, e->normal, probed[i]), sym);
		assert_same_sym(one(agt_go_find_funcs, e->stripped, probed[i]), sym);
		assert_same_sym(one(agt_elf_find_funcs, e->stripped, probed[i]), sym);
	}
	/* "\\*" matches only a star */
	{
		struct agt_sym *s;
		char err[512] = "";
		int n;

		assert_int_equal(agt_go_find_funcs(e->stripped, "crypto/tls.(\\*Conn).Write", &s,
						   &n, err, sizeof(err)),
				 0);
		assert_int_equal(n, 1);
		assert_string_equal(s[0].name, "crypto/tls.(*Conn).Write");
		agt_syms_free(s, n);
	}
}

static void assert_same_list(const char *a_path, const char *b_path, const char *glob,
			     int (*a_fn)(const char *, const char *, struct agt_sym **, int *,
					 char *, size_t),
			     int min)
{
	struct agt_sym *a, *b;
	char err[512] = "";
	int na, nb;

	assert_int_equal(a_fn(a_path, glob, &a, &na, err, sizeof(err)), 0);
	assert_int_equal(agt_elf_find_funcs(b_path, glob, &b, &nb, err, sizeof(err)), 0);
	assert_true(na >= min);
	assert_int_equal(na, nb);
	for (int i = 0; i < na; i++) {
		assert_string_equal(a[i].name, b[i].name);
		assert_same_sym(a[i], b[i]);
		if (i)
			assert_true(strcmp(a[i - 1].name, a[i].name) < 0);
	}
	agt_syms_free(a, na);
	agt_syms_free(b, nb);
}

static void glob_gives_sorted_list_like_symtab(void **state)
{
	struct env *e = *state;
	struct agt_sym *s;
	char err[512] = "";
	int n;

	assert_int_equal(
	    agt_go_find_funcs(e->stripped, "crypto/tls.(*Conn).[RW]*", &s, &n, err, sizeof(err)),
	    0);
	assert_int_equal(n, 6);
	assert_string_equal(s[0].name, "crypto/tls.(*Conn).Read");
	assert_string_equal(s[1].name, "crypto/tls.(*Conn).Read.func1");
	assert_string_equal(s[2].name, "crypto/tls.(*Conn).RemoteAddr");
	assert_string_equal(s[3].name, "crypto/tls.(*Conn).Write");
	assert_string_equal(s[4].name, "crypto/tls.(*Conn).Write.func1");
	assert_string_equal(s[5].name, "crypto/tls.(*Conn).Write.func2");
	agt_syms_free(s, n);
	assert_same_list(e->stripped, e->normal, "crypto/tls.(*Conn).[RW]*", agt_go_find_funcs, 6);
	/* every function of crypto/tls and net/http: names, addresses, sizes and offsets */
	assert_same_list(e->stripped, e->normal, "crypto/tls.*", agt_go_find_funcs, 200);
	assert_same_list(e->stripped, e->normal, "net/http.*", agt_go_find_funcs, 400);
	assert_same_list(e->stripped, e->normal, "crypto/tls.*", agt_elf_find_funcs, 200);
}

static void return_instructions_match(void **state)
{
	struct env *e = *state;

	for (size_t i = 0; i < sizeof(probed) / sizeof(probed[0]); i++) {
		struct agt_sym a = one(agt_go_find_funcs, e->stripped, probed[i]);
		struct agt_sym b = one(agt_elf_find_funcs, e->normal, probed[i]);
		uint64_t *ra, *rb;
		char err[512] = "";
		int na, nb;

		a.name = b.name = (char *)probed[i];
		assert_int_equal(agt_elf_ret_offsets(e->stripped, &a, &ra, &na, err, sizeof(err)),
				 0);
		assert_int_equal(agt_elf_ret_offsets(e->normal, &b, &rb, &nb, err, sizeof(err)), 0);
		assert_true(na >= 1);
		assert_int_equal(na, nb);
		for (int k = 0; k < na; k++) {
			assert_int_equal(ra[k], rb[k]);
			assert_true(ra[k] >= a.offset && ra[k] < a.offset + a.size);
		}
		/* the entry past the stack check too */
		assert_int_equal(agt_elf_go_entry_offset(e->stripped, &a),
				 agt_elf_go_entry_offset(e->normal, &b));
		assert_true(agt_elf_go_entry_offset(e->stripped, &a) > a.offset);
		free(ra);
		free(rb);
	}
}

static void refuses_what_is_not_go(void **state)
{
	struct env *e = *state;
	char err[512] = "", want[PATH_MAX + 1024], path[PATH_MAX];
	struct agt_sym *s;
	int n;

	assert_int_equal(agt_go_find_funcs("/bin/true", "main.main", &s, &n, err, sizeof(err)),
			 -ENOEXEC);
	assert_null(s);
	assert_int_equal(n, 0);
	assert_string_equal(err, "/bin/true is not a Go binary: it has no .gopclntab section and "
				 "no Go function table in its loaded segments");
	/* a C binary keeps elfsym's own sentence */
	assert_int_equal(agt_elf_find_funcs("/bin/true", "no_such_fn", &s, &n, err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "no function named like \"no_such_fn\" in /bin/true; list its "
				 "functions with `nm -D --defined-only /bin/true` (or `nm` when it "
				 "is not stripped)");
	snprintf(path, sizeof(path), "%s/text", e->tmp);
	assert_int_equal(write_whole(path, (const uint8_t *)"hello\n", 6), 0);
	assert_int_equal(agt_go_find_funcs(path, "*", &s, &n, err, sizeof(err)), -ENOEXEC);
	snprintf(want, sizeof(want), "%s is not an ELF file", path);
	assert_string_equal(err, want);
	snprintf(path, sizeof(path), "%s/missing", e->tmp);
	assert_int_equal(agt_go_find_funcs(path, "*", &s, &n, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "cannot open %s: No such file or directory", path);
	assert_string_equal(err, want);
	/* a Go binary without the function */
	assert_int_equal(agt_go_find_funcs(e->stripped, "main.nope*", &s, &n, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "no Go function named like \"main.nope*\" in "));
	assert_int_equal(agt_elf_find_funcs(e->stripped, "main.nope*", &s, &n, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "no Go function named like \"main.nope*\" in "));
}

static void reads_go_version(void **state)
{
	struct env *e = *state;
	char a[64], b[64], want[64] = "", small[4];
	FILE *go = popen("go env GOVERSION 2>/dev/null", "r");

	assert_int_equal(agt_go_version(e->normal, a, sizeof(a)), 0);
	assert_int_equal(agt_go_version(e->stripped, b, sizeof(b)), 0);
	assert_string_equal(a, b);
	assert_int_equal(strncmp(a, "go1.", 4), 0);
	/* the toolchain that built them */
	if (go && fgets(want, sizeof(want), go))
		want[strcspn(want, "\n")] = 0;
	if (go)
		pclose(go);
	if (want[0])
		assert_string_equal(a, want);
	assert_int_equal(agt_go_version(e->stripped, small, sizeof(small)), -ERANGE);
	assert_int_equal(agt_go_version("/bin/true", a, sizeof(a)), -ENOENT);
}

/* No section headers at all, or the section renamed: found by scanning the segments. */
static void finds_table_without_its_section(void **state)
{
	struct env *e = *state;
	static const uint8_t zero[8];
	/* ELF64 header: e_shoff at 0x28; e_shentsize, e_shnum, e_shstrndx at 0x3a */
	const struct patch noshdr[] = {{0x28, zero, 8}, {0x3a, zero, 6}};
	const struct patch renamed[] = {{e->shstr_name_off, ".xopclntab", 10}};
	char path[PATH_MAX], ver[64];

	patched(e, "noshdr", noshdr, 2, path, sizeof(path));
	assert_like_symtab(e, path);
	assert_int_equal(agt_go_version(path, ver, sizeof(ver)), 0);
	assert_int_equal(strncmp(ver, "go1.", 4), 0);
	patched(e, "renamed", renamed, 1, path, sizeof(path));
	assert_like_symtab(e, path);
}

/* textStart 0 (Go 1.26 writes it so): the text start comes from the moduledata. */
static void text_start_from_moduledata(void **state)
{
	struct env *e = *state;
	static const uint8_t zero[8];
	const struct patch notext[] = {{e->pcln_off + 8 + 2 * 8, zero, 8}};
	char path[PATH_MAX];

	patched(e, "notext", notext, 1, path, sizeof(path));
	assert_like_symtab(e, path);
}

static void refuses_other_formats(void **state)
{
	struct env *e = *state;
	char err[512] = "", want[PATH_MAX + 1024], path[PATH_MAX];
	static const uint8_t go115[4] = {0xfb, 0xff, 0xff, 0xff},
			     future[4] = {0xf7, 0xff, 0xff, 0xff};
	static const uint8_t ptr4 = 4, huge[8] = {0xff, 0xff, 0xff, 0x7f};
	const struct patch p115[] = {{e->pcln_off, go115, 4}}, pfut[] = {{e->pcln_off, future, 4}};
	const struct patch pptr[] = {{e->pcln_off + 7, &ptr4, 1}},
			   pn[] = {{e->pcln_off + 8, huge, 8}};
	struct agt_sym *s;
	int n;

	patched(e, "go115", p115, 1, path, sizeof(path));
	assert_int_equal(agt_go_find_funcs(path, "*", &s, &n, err, sizeof(err)), -ENOTSUP);
	snprintf(want, sizeof(want),
		 "%s was built by Go 1.2-1.15 (its function table has magic 0xfffffffb); agtrace "
		 "reads those of Go 1.16 and later only, so keep its .symtab (build without "
		 "-ldflags=-s) or rebuild it",
		 path);
	assert_string_equal(err, want);
	patched(e, "future", pfut, 1, path, sizeof(path));
	assert_int_equal(agt_go_find_funcs(path, "*", &s, &n, err, sizeof(err)), -ENOTSUP);
	snprintf(want, sizeof(want),
		 "the Go function table of %s has magic 0xfffffff7, a format agtrace does not "
		 "know (it reads Go 1.16 to 1.2x: 0xfffffffa, 0xfffffff0, 0xfffffff1); keep its "
		 ".symtab (build without -ldflags=-s)",
		 path);
	assert_string_equal(err, want);
	patched(e, "ptr4", pptr, 1, path, sizeof(path));
	assert_int_equal(agt_go_find_funcs(path, "*", &s, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "has an inconsistent header"));
	patched(e, "nfunc", pn, 1, path, sizeof(path));
	assert_int_equal(agt_go_find_funcs(path, "*", &s, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "has an inconsistent header"));
}

/* Damaged tables: bytes of the header and of the first part of the function table changed at
 * random (a fixed seed) give an answer or an error with a sentence, never a crash or a function
 * outside the file. */
static void damaged_tables_are_refused_or_read_safely(void **state)
{
	struct env *e = *state;
	uint64_t span = 64 << 10, seed = 0x9e3779b97f4a7c15ull;
	char path[PATH_MAX], err[512];
	int fd, answered = 0, refused = 0;

	snprintf(path, sizeof(path), "%s/damaged", e->tmp);
	assert_int_equal(write_whole(path, e->img, e->size), 0);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (int i = 0; i < 300; i++) {
		uint64_t off;
		uint8_t b;
		struct agt_sym *s;
		int n, rc;

		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		off = e->pcln_off + (i < 100 ? seed % 96 : seed % span);
		b = (uint8_t)(seed >> 32);
		assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
		err[0] = 0;
		rc = agt_go_find_funcs(path, "crypto/tls.*", &s, &n, err, sizeof(err));
		if (rc) {
			assert_true(rc < 0);
			assert_true(strlen(err) > 10);
			refused++;
		} else {
			for (int k = 0; k < n; k++)
				assert_true(s[k].offset < e->size);
			agt_syms_free(s, n);
			answered++;
		}
		assert_int_equal(pwrite(fd, e->img + off, 1, (off_t)off), 1);
	}
	close(fd);
	assert_true(refused > 0);
	assert_true(answered > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(finds_probed_functions_as_symtab_gives_them),
	    cmocka_unit_test(glob_gives_sorted_list_like_symtab),
	    cmocka_unit_test(return_instructions_match),
	    cmocka_unit_test(refuses_what_is_not_go),
	    cmocka_unit_test(reads_go_version),
	    cmocka_unit_test(finds_table_without_its_section),
	    cmocka_unit_test(text_start_from_moduledata),
	    cmocka_unit_test(refuses_other_formats),
	    cmocka_unit_test(damaged_tables_are_refused_or_read_safely),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
