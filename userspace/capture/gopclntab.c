/* Go's function table (.gopclntab) and build information (.go.buildinfo), read straight from
 * the file so that stripped Go binaries can be probed by function name. The binary is untrusted
 * input: every read is bounds-checked against the file and the table it belongs to.
 *
 * Layout (Go runtime, symtab.go), all little-endian, "word" = pointer size:
 *   pcHeader: magic u32, pad u8, pad u8, minLC u8 (pc quantum), ptrSize u8, then words:
 *     nfunc, nfiles, [textStart: 1.18+], funcnameOffset, cuOffset, filetabOffset,
 *     pctabOffset, pclnOffset (offsets from the pcHeader). The tables follow in that order.
 *   functab (at pclnOffset): nfunc+1 pairs {entry, funcoff}, the last entry being the end of the
 *     text. 1.16/1.17: two words, entry absolute. 1.18+: two u32, entry = textStart + entryoff.
 *     funcoff is from the functab start, where a _func begins:
 *   _func: 1.16/1.17: entry word, nameoff i32, args i32, deferreturn u32, pcsp u32, pcfile u32,
 *     pcln u32, ...; 1.18+: entryoff u32, nameoff i32, args, deferreturn, pcsp, pcfile, pcln, ...
 *     nameoff is into funcnametab (NUL-terminated names); pcsp/pcfile/pcln into pctab.
 *   A pc-value table is pairs of varints (zigzag value delta, pc delta / quantum) ended by a
 *     zero value delta; its pcs run to the end of the function's own code, so decoding one gives
 *     the size .symtab would (the functab's next entry also counts the padding to alignment).
 *   moduledata (1.18+ where textStart is 0, as Go 1.26 writes it): words pcHeader,
 *     funcnametab{ptr,len,cap}, cutab{3}, filetab{3}, pctab{3}, pclntable{3}, ftab{ptr,len,cap},
 *     findfunctab, minpc, maxpc, text, ... so word 0 points at the pcHeader and word 22 is text.
 *   .go.buildinfo: "\xff Go buildinf:", ptrSize u8, flags u8; flags&2 (1.18+): at 32 a varint
 *     length and the version string; before: at 16 a pointer to the version's Go string
 *     header {data, len}. */
#include "capture/gopclntab.h"
#include "base/log.h"
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <gelf.h>
#include <libelf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LOADS 32

enum {
	MAGIC_GO12 = 0xfffffffb, /* Go 1.2 - 1.15: not read */
	MAGIC_GO116 = 0xfffffffa,
	MAGIC_GO118 = 0xfffffff0,
	MAGIC_GO120 = 0xfffffff1,
};

static const char buildinfo_magic[14] = "\xff Go buildinf:";

struct load {
	uint64_t vaddr, off, filesz;
	uint32_t flags;
};

/* The file, mapped by libelf, and its PT_LOAD segments. */
struct goimg {
	const char *path;
	int fd;
	Elf *elf;
	const uint8_t *data;
	size_t size;
	unsigned ptr; /* 4 or 8, from the ELF class */
	int nload;
	struct load load[MAX_LOADS];
};

/* A pclntab whose header passed the sanity checks; offsets are from hdr. */
struct pcln {
	const uint8_t *hdr;
	uint64_t len; /* bytes from hdr that belong to the table */
	uint64_t vaddr;
	uint32_t magic;
	unsigned ptr, quantum;
	uint64_t nfunc, text;
	uint64_t names_off, names_end, pctab_off, pctab_end, ftab_off;
};

static uint64_t rd(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = size; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

/* n bytes of the file at off, or NULL when they are not all in it. */
static const uint8_t *file_at(const struct goimg *im, uint64_t off, uint64_t n)
{
	if (off > im->size || n > im->size - off)
		return NULL;
	return im->data + off;
}

/* n bytes at a virtual address, through the PT_LOAD whose file part holds all of them (what a
 * process maps there); their file offset in *off. */
static const uint8_t *vaddr_at(const struct goimg *im, uint64_t va, uint64_t n, uint64_t *off)
{
	for (int i = 0; i < im->nload; i++) {
		const struct load *l = &im->load[i];
		uint64_t rel = va - l->vaddr;

		if (va < l->vaddr || rel >= l->filesz || n > l->filesz - rel)
			continue;
		if (off)
			*off = l->off + rel;
		return file_at(im, l->off + rel, n);
	}
	return NULL;
}

static int in_exec_load(const struct goimg *im, uint64_t va)
{
	for (int i = 0; i < im->nload; i++)
		if ((im->load[i].flags & PF_X) && va >= im->load[i].vaddr &&
		    va - im->load[i].vaddr < im->load[i].filesz)
			return 1;
	return 0;
}

static void img_close(struct goimg *im)
{
	if (im->elf)
		elf_end(im->elf);
	if (im->fd >= 0)
		close(im->fd);
	im->elf = NULL;
	im->fd = -1;
}

static int img_open(struct goimg *im, const char *path, char *err, size_t errlen)
{
	GElf_Ehdr eh;
	size_t nph;
	int e;

	memset(im, 0, sizeof(*im));
	im->path = path;
	elf_version(EV_CURRENT);
	im->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (im->fd < 0) {
		e = errno;
		return agt_seterr(err, errlen, -e, "cannot open %s: %s", path, strerror(e));
	}
	im->elf = elf_begin(im->fd, ELF_C_READ_MMAP, NULL);
	if (!im->elf || elf_kind(im->elf) != ELF_K_ELF || !gelf_getehdr(im->elf, &eh) ||
	    !(im->data = (const uint8_t *)elf_rawfile(im->elf, &im->size)) ||
	    elf_getphdrnum(im->elf, &nph)) {
		img_close(im);
		return agt_seterr(err, errlen, -ENOEXEC, "%s is not an ELF file", path);
	}
	if (eh.e_ident[EI_DATA] != ELFDATA2LSB) {
		img_close(im);
		return agt_seterr(
		    err, errlen, -ENOEXEC,
		    "%s is a big-endian ELF file; agtrace reads the Go function table "
		    "of little-endian binaries only",
		    path);
	}
	im->ptr = eh.e_ident[EI_CLASS] == ELFCLASS64 ? 8 : 4;
	for (size_t i = 0; i < nph && im->nload < MAX_LOADS; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(im->elf, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		im->load[im->nload++] =
		    (struct load){ph.p_vaddr, ph.p_offset, ph.p_filesz, ph.p_flags};
	}
	return 0;
}

/* The bytes of the first section named one of names (NULL-terminated list), with its address
 * and size; read through the segment that loads it when there is one. */
static const uint8_t *find_section(const struct goimg *im, const char *const *names, uint64_t *len,
				   uint64_t *vaddr, const char **found)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(im->elf, &shstrndx))
		return NULL;
	while ((scn = elf_nextscn(im->elf, scn))) {
		const uint8_t *p;
		const char *name;
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS)
			continue;
		if (!(name = elf_strptr(im->elf, shstrndx, sh.sh_name)))
			continue;
		for (int i = 0; names[i]; i++) {
			if (strcmp(name, names[i]))
				continue;
			p = vaddr_at(im, sh.sh_addr, sh.sh_size, NULL);
			if (!p)
				p = file_at(im, sh.sh_offset, sh.sh_size);
			if (!p)
				return NULL;
			*len = sh.sh_size;
			*vaddr = sh.sh_addr;
			*found = names[i];
			return p;
		}
	}
	return NULL;
}

/* Whether a scan of the segments for Go's tables is worth it: the file has no section headers
 * (nothing else tells), a section only the Go linker makes, or the Go build ID note. Other ELF
 * files (C programs and libraries, where a name lookup falls back to this) are not scanned. */
static int looks_go(const struct goimg *im)
{
	static const char *const go_sections[] = {
	    ".gopclntab", ".data.rel.ro.gopclntab", ".gosymtab", ".go.buildinfo", ".go.module",
	    ".noptrdata", ".note.go.buildid"};
	Elf_Scn *scn = NULL;
	size_t shnum, shstrndx, nph;

	if (elf_getshdrnum(im->elf, &shnum) || !shnum || elf_getshdrstrndx(im->elf, &shstrndx))
		return 1;
	while ((scn = elf_nextscn(im->elf, scn))) {
		const char *name;
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || !(name = elf_strptr(im->elf, shstrndx, sh.sh_name)))
			continue;
		for (size_t i = 0; i < sizeof(go_sections) / sizeof(go_sections[0]); i++)
			if (!strcmp(name, go_sections[i]))
				return 1;
	}
	if (elf_getphdrnum(im->elf, &nph))
		return 0;
	for (size_t i = 0; i < nph; i++) {
		const uint8_t *p;
		GElf_Phdr ph;

		if (!gelf_getphdr(im->elf, i, &ph) || ph.p_type != PT_NOTE ||
		    !(p = file_at(im, ph.p_offset, ph.p_filesz)))
			continue;
		/* notes: namesz, descsz, type, name (4-aligned), desc (4-aligned) */
		for (uint64_t o = 0; ph.p_filesz >= 12 && o <= ph.p_filesz - 12;) {
			uint64_t nsz = rd(p + o, 4), dsz = rd(p + o + 4, 4);
			uint64_t next = o + 12 + ((nsz + 3) & ~3ull) + ((dsz + 3) & ~3ull);

			if (nsz == 3 && rd(p + o + 8, 4) == 4 && next <= ph.p_filesz &&
			    !memcmp(p + o + 12, "Go", 3))
				return 1;
			if (next <= o || next > ph.p_filesz)
				break;
			o = next;
		}
	}
	return 0;
}

static int known_magic(uint32_t m)
{
	return m == MAGIC_GO116 || m == MAGIC_GO118 || m == MAGIC_GO120;
}

static int old_go(const struct goimg *im, char *err, size_t errlen)
{
	return agt_seterr(err, errlen, -ENOTSUP,
			  "%s was built by Go 1.2-1.15 (its function table has magic 0xfffffffb); "
			  "agtrace reads those of Go 1.16 and later only, so keep its .symtab "
			  "(build without -ldflags=-s) or rebuild it",
			  im->path);
}

/* Checks the pcHeader at p (len bytes of table available) and fills t. 0, -ENOTSUP (a format
 * not read here) or -EINVAL, with a sentence. */
static int pcln_parse(const struct goimg *im, const uint8_t *p, uint64_t len, uint64_t vaddr,
		      struct pcln *t, char *err, size_t errlen)
{
	uint64_t w[8], fsz;
	unsigned words, ptr;
	uint32_t magic;
	int k = 2;

	if (len < 8)
		return agt_seterr(err, errlen, -EINVAL, "the Go function table of %s is truncated",
				  im->path);
	magic = (uint32_t)rd(p, 4);
	if (magic == MAGIC_GO12)
		return old_go(im, err, errlen);
	if (!known_magic(magic))
		return agt_seterr(
		    err, errlen, -ENOTSUP,
		    "the Go function table of %s has magic 0x%08x, a format agtrace "
		    "does not know (it reads Go 1.16 to 1.2x: 0xfffffffa, 0xfffffff0, "
		    "0xfffffff1); keep its .symtab (build without -ldflags=-s)",
		    im->path, magic);
	ptr = p[7];
	if (p[4] || p[5] || (p[6] != 1 && p[6] != 2 && p[6] != 4) || ptr != im->ptr)
		goto bad;
	words = magic == MAGIC_GO116 ? 7 : 8;
	if (len < 8 + (uint64_t)words * ptr)
		goto bad;
	for (unsigned i = 0; i < words; i++)
		w[i] = rd(p + 8 + i * ptr, ptr);
	*t = (struct pcln){.hdr = p, .len = len, .vaddr = vaddr, .magic = magic, .ptr = ptr};
	t->quantum = p[6];
	t->nfunc = w[0];
	if (magic != MAGIC_GO116)
		t->text = w[k++];
	t->names_off = w[k];
	t->names_end = w[k + 1]; /* cutab follows the names, then filetab, then pctab */
	t->pctab_off = w[k + 3];
	t->pctab_end = t->ftab_off = w[k + 4];
	if (t->names_off < 8 + (uint64_t)words * ptr || t->names_off >= t->names_end ||
	    t->names_end > w[k + 2] || w[k + 2] > t->pctab_off || t->pctab_off >= t->ftab_off ||
	    t->ftab_off >= len)
		goto bad;
	fsz = magic == MAGIC_GO116 ? 2 * ptr : 8;
	if (!t->nfunc || t->nfunc >= (len - t->ftab_off) / fsz) /* nfunc + 1 entries */
		goto bad;
	return 0;
bad:
	return agt_seterr(err, errlen, -EINVAL,
			  "the Go function table of %s has an inconsistent header (at address "
			  "0x%llx); the file is damaged or not what it seems",
			  im->path, (unsigned long long)vaddr);
}

/* Entry address of a functab slot. */
static uint64_t slot_entry(const struct pcln *t, const uint8_t *slot)
{
	if (t->magic == MAGIC_GO116)
		return rd(slot, t->ptr);
	return t->text + rd(slot, 4);
}

/* The i-th function of the table: its entry, the next one's (the end of the text for the
 * last), and its _func. -1 when the table is inconsistent there. */
static int pcln_func(const struct pcln *t, uint64_t i, uint64_t *entry, uint64_t *next,
		     const uint8_t **fn)
{
	uint64_t fsz = t->magic == MAGIC_GO116 ? 2 * t->ptr : 8, avail = t->len - t->ftab_off;
	const uint8_t *slot = t->hdr + t->ftab_off + i * fsz; /* nfunc+1 slots checked in parse */
	uint64_t funcoff = rd(slot + fsz / 2, (unsigned)(fsz / 2));
	uint64_t need = t->magic == MAGIC_GO116 ? t->ptr + 24 : 28; /* through pcln */
	const uint8_t *f;

	*entry = slot_entry(t, slot);
	*next = slot_entry(t, slot + fsz);
	if (*next < *entry || funcoff > avail || need > avail - funcoff)
		return -1;
	f = t->hdr + t->ftab_off + funcoff;
	if ((t->magic == MAGIC_GO116 ? rd(f, t->ptr) : t->text + rd(f, 4)) != *entry)
		return -1;
	*fn = f;
	return 0;
}

static const char *func_name(const struct pcln *t, const uint8_t *f)
{
	uint64_t off = rd(f + (t->magic == MAGIC_GO116 ? t->ptr : 4), 4);
	uint64_t size = t->names_end - t->names_off;
	const char *s;

	if (off >= size)
		return NULL;
	s = (const char *)t->hdr + t->names_off + off;
	return memchr(s, 0, size - off) ? s : NULL;
}

static int uvarint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

/* How many bytes of code the pc-value table at pctab offset off covers, at most limit. */
static int pcvalue_span(const struct pcln *t, uint64_t off, uint64_t limit, uint64_t *span)
{
	const uint8_t *p, *end = t->hdr + t->pctab_end;
	uint64_t pc = 0, uv, pcd;

	if (!off || off >= t->pctab_end - t->pctab_off)
		return -1;
	p = t->hdr + t->pctab_off + off;
	for (int first = 1;; first = 0) {
		if (uvarint(&p, end, &uv))
			return -1;
		if (!uv && !first)
			break;
		if (uvarint(&p, end, &pcd) || pcd > limit / t->quantum ||
		    pcd * t->quantum > limit - pc)
			return -1;
		pc += pcd * t->quantum;
	}
	*span = pc;
	return pc ? 0 : -1;
}

/* The function's own size: the span of its pcsp table (else pcfile, pcln); the distance to
 * the next function when none decodes. */
static uint64_t func_size(const struct pcln *t, const uint8_t *f, uint64_t limit)
{
	unsigned base = t->magic == MAGIC_GO116 ? t->ptr + 12 : 16;
	uint64_t span;

	for (unsigned k = 0; k < 3; k++)
		if (!pcvalue_span(t, rd(f + base + 4 * k, 4), limit, &span))
			return span;
	return limit;
}

/* Where the text starts when the header does not say (Go 1.26 writes textStart 0): the
 * moduledata that points at this pcHeader, found in a writable segment. */
static int moduledata_text(const struct goimg *im, const struct pcln *t, uint64_t *text)
{
	unsigned P = t->ptr;

	for (int i = 0; i < im->nload; i++) {
		const struct load *l = &im->load[i];
		uint64_t n = l->filesz;
		const uint8_t *p = file_at(im, l->off, 0);

		if (!(l->flags & PF_W) || !p)
			continue;
		if (n > im->size - l->off)
			n = im->size - l->off;
		for (uint64_t o = (P - l->vaddr % P) % P; n >= 24 * P && o <= n - 24 * P; o += P) {
			if (rd(p + o, P) != t->vaddr ||
			    rd(p + o + P, P) != t->vaddr + t->names_off ||
			    rd(p + o + 17 * P, P) != t->nfunc + 1)
				continue;
			*text = rd(p + o + 22 * P, P);
			return 0;
		}
	}
	return -1;
}

/* Settles textStart and checks the first and last functions: a table that passes is taken. */
static int pcln_finish(const struct goimg *im, struct pcln *t)
{
	uint64_t entry, next;
	const uint8_t *f;

	if (t->magic != MAGIC_GO116 && !t->text && moduledata_text(im, t, &t->text))
		return -1;
	if (pcln_func(t, 0, &entry, &next, &f) || !func_name(t, f) || !in_exec_load(im, entry))
		return -1;
	if (pcln_func(t, t->nfunc - 1, &entry, &next, &f) || !func_name(t, f))
		return -1;
	return 0;
}

/* The table without a section naming it: a pcHeader anywhere in the loaded file parts, at a
 * 4-byte aligned address, that passes pcln_parse and pcln_finish. *old is set when only a
 * Go 1.2-1.15 header was seen. */
static int pcln_scan(const struct goimg *im, struct pcln *t, int *old)
{
	for (int i = 0; i < im->nload; i++) {
		const struct load *l = &im->load[i];
		const uint8_t *p = file_at(im, l->off, 0);
		uint64_t n = l->filesz;

		if (!p)
			continue;
		if (n > im->size - l->off)
			n = im->size - l->off;
		for (uint64_t o = (4 - l->vaddr % 4) % 4; n >= 16 && o <= n - 16; o += 4) {
			uint32_t m = (uint32_t)rd(p + o, 4);

			if ((m | 0xf) != 0xffffffff || p[o + 4] || p[o + 5] || p[o + 7] != im->ptr)
				continue;
			if (m == MAGIC_GO12)
				*old = 1;
			if (!known_magic(m) ||
			    pcln_parse(im, p + o, n - o, l->vaddr + o, t, NULL, 0))
				continue;
			if (!pcln_finish(im, t))
				return 0;
		}
	}
	return -1;
}

static int pcln_locate(const struct goimg *im, struct pcln *t, char *err, size_t errlen)
{
	static const char *const names[] = {".gopclntab", ".data.rel.ro.gopclntab", NULL};
	const char *name = NULL;
	uint64_t len, vaddr;
	const uint8_t *p = find_section(im, names, &len, &vaddr, &name);
	int rc, old = 0;

	if (p) {
		if ((rc = pcln_parse(im, p, len, vaddr, t, err, errlen)))
			return rc;
		if (pcln_finish(im, t))
			return agt_seterr(err, errlen, -EINVAL,
					  "the %s section of %s does not hold a usable Go function "
					  "table (its entries or its text start do not check out)",
					  name, im->path);
		return 0;
	}
	if (looks_go(im) && !pcln_scan(im, t, &old))
		return 0;
	if (old)
		return old_go(im, err, errlen);
	return agt_seterr(err, errlen, -ENOEXEC,
			  "%s is not a Go binary: it has no .gopclntab section and no Go function "
			  "table in its loaded segments",
			  im->path);
}

static int cmp_sym(const void *a, const void *b)
{
	const struct agt_sym *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int collect(const struct goimg *im, const struct pcln *t, const char *glob,
		   struct agt_sym **out, int *n, char *err, size_t errlen)
{
	size_t plen = strcspn(glob, "*?[\\");
	int literal = !glob[plen], cnt = 0, cap = 0, rc = 0;
	uint64_t prev = 0, entry, next, off;
	struct agt_sym *v = NULL;
	const uint8_t *f;
	const char *name;

	for (uint64_t i = 0; i < t->nfunc; i++) {
		if (pcln_func(t, i, &entry, &next, &f) || entry < prev ||
		    !(name = func_name(t, f))) {
			rc = agt_seterr(err, errlen, -EINVAL,
					"the Go function table of %s is inconsistent at function "
					"%llu of %llu; the file is damaged or not what it seems",
					im->path, (unsigned long long)i,
					(unsigned long long)t->nfunc);
			goto out;
		}
		prev = entry;
		if (strncmp(name, glob, plen) ||
		    (literal ? strcmp(name, glob) : fnmatch(glob, name, 0)))
			continue;
		if (!vaddr_at(im, entry, 1, &off))
			continue;
		if (cnt == cap) {
			struct agt_sym *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));

			if (!nv)
				goto oom;
			v = nv;
		}
		v[cnt] = (struct agt_sym){strdup(name), entry, func_size(t, f, next - entry), off};
		if (!v[cnt++].name)
			goto oom;
	}
	if (!cnt) {
		rc = agt_seterr(
		    err, errlen, -ENOENT,
		    "no Go function named like \"%s\" in %s (searched the %llu functions "
		    "of its Go function table; Go names look like "
		    "crypto/tls.(*Conn).Write or main.main)",
		    glob, im->path, (unsigned long long)t->nfunc);
		goto out;
	}
	qsort(v, cnt, sizeof(*v), cmp_sym);
	*out = v;
	*n = cnt;
	return 0;
oom:
	rc = agt_seterr(err, errlen, -ENOMEM, "out of memory");
out:
	agt_syms_free(v, cnt);
	return rc;
}

int agt_go_find_funcs(const char *path, const char *glob, struct agt_sym **out, int *n, char *err,
		      size_t errlen)
{
	struct goimg im;
	struct pcln t;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = img_open(&im, path, err, errlen)))
		return rc;
	rc = pcln_locate(&im, &t, err, errlen);
	if (!rc)
		rc = collect(&im, &t, glob, out, n, err, errlen);
	img_close(&im);
	return rc;
}

/* The build information block: the .go.buildinfo section, else a 16-byte aligned header in a
 * loaded segment. */
static const uint8_t *find_buildinfo(const struct goimg *im, uint64_t *len)
{
	static const char *const names[] = {".go.buildinfo", NULL};
	const char *name;
	uint64_t vaddr;
	const uint8_t *p = find_section(im, names, len, &vaddr, &name);

	if (p)
		return *len >= 32 && !memcmp(p, buildinfo_magic, sizeof(buildinfo_magic)) ? p
											  : NULL;
	if (!looks_go(im))
		return NULL;
	for (int i = 0; i < im->nload; i++) {
		const struct load *l = &im->load[i];
		const uint8_t *s = file_at(im, l->off, 0);
		uint64_t n = l->filesz;

		if (!s)
			continue;
		if (n > im->size - l->off)
			n = im->size - l->off;
		for (uint64_t o = (16 - l->vaddr % 16) % 16; n >= 32 && o <= n - 32; o += 16)
			if (s[o] == 0xff &&
			    !memcmp(s + o, buildinfo_magic, sizeof(buildinfo_magic))) {
				*len = n - o;
				return s + o;
			}
	}
	return NULL;
}

int agt_go_version(const char *path, char *buf, size_t n)
{
	const uint8_t *p, *s, *hdr;
	uint64_t len, slen = 0;
	struct goimg im;
	int rc = 0;

	if ((rc = img_open(&im, path, NULL, 0)))
		return rc;
	if (!(p = find_buildinfo(&im, &len))) {
		rc = -ENOENT;
		goto out;
	}
	if (p[15] & 2) { /* Go 1.18+: the version inline, after a varint length */
		s = p + 32;
		if (uvarint(&s, p + len, &slen) || slen > (uint64_t)(p + len - s))
			rc = -EINVAL;
	} else { /* before: a pointer to a Go string header */
		unsigned P = p[14];

		if ((P != 4 && P != 8) || (p[15] & 1) || len < 16 + (uint64_t)P ||
		    !(hdr = vaddr_at(&im, rd(p + 16, P), 2 * P, NULL)) ||
		    !(s = vaddr_at(&im, rd(hdr, P), slen = rd(hdr + P, P), NULL)))
			rc = -EINVAL;
	}
	if (rc)
		goto out;
	if (!slen || slen > 128) {
		rc = slen ? -EINVAL : -ENOENT;
		goto out;
	}
	for (uint64_t i = 0; i < slen; i++)
		if (s[i] < 0x21 || s[i] > 0x7e) {
			rc = -EINVAL;
			goto out;
		}
	if (slen >= n) {
		rc = -ERANGE;
		goto out;
	}
	memcpy(buf, s, slen);
	buf[slen] = 0;
out:
	img_close(&im);
	return rc;
}
