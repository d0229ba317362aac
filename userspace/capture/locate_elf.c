/* The locator's view of an ELF file: mapped read-only, its loadable segments, GNU build id,
 * the .eh_frame_hdr search table (function bounds of stripped binaries that keep unwind
 * tables) and a search for strings in its read-only data. Everything read from the file is
 * bounds-checked here: a truncated or hostile ELF yields an error, never a bad read. */
#define _GNU_SOURCE
#include "capture/locate_int.h"
#include "base/log.h"
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void read_build_id(struct agt_img *img, uint64_t off, uint64_t len)
{
	/* Notes: namesz, descsz, type, name (4-aligned), desc (4-aligned). */
	while (len >= 12) {
		const uint8_t *n = img->data + off;
		uint64_t namesz = rd32(n), descsz = rd32(n + 4), type = rd32(n + 8);
		uint64_t nsz = (namesz + 3) & ~3ull, dsz = (descsz + 3) & ~3ull;

		if (nsz > len - 12 || dsz > len - 12 - nsz)
			return;
		if (type == NT_GNU_BUILD_ID && namesz == 4 && !memcmp(n + 12, "GNU", 4) &&
		    descsz > 0 && descsz <= sizeof(img->build_id)) {
			memcpy(img->build_id, n + 12 + nsz, descsz);
			img->build_id_len = descsz;
			return;
		}
		off += 12 + nsz + dsz;
		len -= 12 + nsz + dsz;
	}
}

static int fde_range(const struct agt_img *img, uint64_t fde_va, uint64_t *start, uint64_t *end);

static int cmp_range(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* No .eh_frame_hdr (static executables linked by gcc get none): walk the .eh_frame section
 * itself, found by name in the section headers, and sort its FDEs. */
static void read_eh_frame_section(struct agt_img *img, const Elf64_Ehdr *eh)
{
	const uint8_t *sh, *names;
	uint64_t va = 0, size = 0, names_off, names_size, pos;
	size_t cap = 0;

	if (eh->e_shentsize != sizeof(Elf64_Shdr) || !eh->e_shnum || eh->e_shoff > img->size ||
	    (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > img->size - eh->e_shoff ||
	    eh->e_shstrndx >= eh->e_shnum)
		return;
	sh = img->data + eh->e_shoff;
	names_off = rd64(sh + eh->e_shstrndx * sizeof(Elf64_Shdr) + 24);
	names_size = rd64(sh + eh->e_shstrndx * sizeof(Elf64_Shdr) + 32);
	if (names_off > img->size || names_size > img->size - names_off)
		return;
	names = img->data + names_off;
	for (int i = 0; i < eh->e_shnum; i++) {
		const uint8_t *s = sh + (uint64_t)i * sizeof(Elf64_Shdr);
		uint32_t name = rd32(s);

		if (name < names_size && names_size - name > 9 &&
		    !memcmp(names + name, ".eh_frame", 10) && (rd64(s + 8) & SHF_ALLOC)) {
			va = rd64(s + 16);
			size = rd64(s + 32);
		}
	}
	if (!va || !size || !agt_img_ptr(img, va, size))
		return;
	for (pos = 0; pos + 8 <= size;) {
		const uint8_t *p = agt_img_ptr(img, va + pos, 8);
		uint64_t len = rd32(p), start, end;

		if (!len || len == 0xffffffff || len > size - pos - 4)
			break;
		if (rd32(p + 4) && !fde_range(img, va + pos, &start, &end)) {
			if (img->nfdes == cap) {
				size_t ncap = cap ? cap * 2 : 1024;
				uint64_t(*n)[2];

				if (ncap > (16u << 20) ||
				    !(n = realloc(img->fdes, ncap * sizeof(*n))))
					break;
				img->fdes = n;
				cap = ncap;
			}
			img->fdes[img->nfdes][0] = start;
			img->fdes[img->nfdes][1] = end;
			img->nfdes++;
		}
		pos += 4 + len;
	}
	if (img->nfdes)
		qsort(img->fdes, img->nfdes, sizeof(*img->fdes), cmp_range);
}

int agt_img_open(const char *path, struct agt_img *img, char *err, size_t errlen)
{
	const Elf64_Ehdr *eh;
	struct stat st;
	void *map;
	int fd;

	memset(img, 0, sizeof(*img));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return agt_seterr(err, errlen, -errno, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return agt_seterr(err, errlen, -EINVAL, "%s is not a regular file", path);
	}
	if ((uint64_t)st.st_size < sizeof(Elf64_Ehdr)) {
		close(fd);
		return agt_seterr(err, errlen, -ENOEXEC, "%s is too short to be an ELF file", path);
	}
	img->st = st;
	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return agt_seterr(err, errlen, -errno, "cannot map %s: %s", path, strerror(errno));
	img->data = map;
	img->size = st.st_size;
	eh = map;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64 ||
	    (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)) {
		agt_img_close(img);
		return agt_seterr(err, errlen, -ENOEXEC,
				  "%s is not an x86-64 ELF executable or shared object", path);
	}
	img->type = eh->e_type;
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > img->size ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > img->size - eh->e_phoff) {
		agt_img_close(img);
		return agt_seterr(err, errlen, -ENOEXEC,
				  "%s has a program header table outside the file", path);
	}
	for (int i = 0; i < eh->e_phnum; i++) {
		const uint8_t *ph = img->data + eh->e_phoff + (uint64_t)i * sizeof(Elf64_Phdr);
		uint32_t type = rd32(ph), flags = rd32(ph + 4);
		uint64_t off = rd64(ph + 8), vaddr = rd64(ph + 16), filesz = rd64(ph + 32),
			 memsz = rd64(ph + 40);

		/* Only the file-backed part inside the file counts: a truncated file loses what
		 * lies past its end. */
		if (off > img->size)
			filesz = 0;
		else if (filesz > img->size - off)
			filesz = img->size - off;
		if (vaddr + memsz < vaddr || vaddr + filesz < vaddr)
			continue;
		if (type == PT_LOAD && img->nsegs < AGT_IMG_MAX_SEGS && filesz)
			img->segs[img->nsegs++] =
			    (struct agt_seg){vaddr, memsz, off, filesz, flags};
		else if (type == PT_GNU_EH_FRAME && filesz) {
			img->ehf_vaddr = vaddr;
			img->ehf_size = filesz;
		} else if (type == PT_NOTE && !img->build_id_len)
			read_build_id(img, off, filesz);
	}
	if (!img->nsegs) {
		agt_img_close(img);
		return agt_seterr(err, errlen, -ENOEXEC, "%s has no loadable segment in the file",
				  path);
	}
	return 0;
}

void agt_img_prefault(const struct agt_img *img)
{
#ifdef MADV_POPULATE_READ
	/* only what is scanned: code and read-only data, not (say) a payload appended in a
	 * writable segment */
	for (int i = 0; i < img->nsegs; i++) {
		uint64_t start = img->segs[i].off & ~4095ull;

		if (!(img->segs[i].flags & PF_W))
			madvise((void *)(img->data + start),
				img->segs[i].off + img->segs[i].filesz - start, MADV_POPULATE_READ);
	}
#endif
}

void agt_img_load_fdes(struct agt_img *img)
{
	if (!img->ehf_vaddr && !img->nfdes)
		read_eh_frame_section(img, (const Elf64_Ehdr *)img->data);
}

void agt_img_close(struct agt_img *img)
{
	if (img->data)
		munmap((void *)img->data, img->size);
	free(img->fdes);
	img->fdes = NULL;
	img->data = NULL;
}

const uint8_t *agt_img_ptr(const struct agt_img *img, uint64_t vaddr, uint64_t len)
{
	for (int i = 0; i < img->nsegs; i++) {
		const struct agt_seg *g = &img->segs[i];

		if (vaddr >= g->vaddr && vaddr - g->vaddr < g->filesz &&
		    len <= g->filesz - (vaddr - g->vaddr))
			return img->data + g->off + (vaddr - g->vaddr);
	}
	return NULL;
}

int agt_img_v2o(const struct agt_img *img, uint64_t vaddr, uint64_t *off)
{
	for (int i = 0; i < img->nsegs; i++) {
		const struct agt_seg *g = &img->segs[i];

		if (vaddr >= g->vaddr && vaddr - g->vaddr < g->filesz) {
			*off = g->off + (vaddr - g->vaddr);
			return 0;
		}
	}
	return -1;
}

int agt_img_is_exec(const struct agt_img *img, uint64_t vaddr)
{
	for (int i = 0; i < img->nsegs; i++)
		if ((img->segs[i].flags & PF_X) && vaddr >= img->segs[i].vaddr &&
		    vaddr - img->segs[i].vaddr < img->segs[i].filesz)
			return 1;
	return 0;
}

/* DWARF exception-header pointer encodings (LSB Core, "DWARF Exception Header Encoding"). */
#define PE_OMIT 0xff
#define PE_FMT(e) ((e)&0x0f)
#define PE_APP(e) ((e)&0x70)
#define PE_PCREL 0x10
#define PE_DATAREL 0x30

static int pe_size(uint8_t enc)
{
	switch (PE_FMT(enc)) {
	case 0x00: return 8; /* absptr */
	case 0x02:
	case 0x0a: return 2;
	case 0x03:
	case 0x0b: return 4;
	case 0x04:
	case 0x0c: return 8;
	default: return -1;
	}
}

/* Read one encoded pointer at vaddr va (for pcrel) from p (n bytes available); base for
 * datarel. 0 on success. */
static int read_pe(uint8_t enc, const uint8_t *p, uint64_t n, uint64_t va, uint64_t base,
		   uint64_t *out, int *used)
{
	int sz = pe_size(enc);
	int64_t v;

	if (enc & 0x80 || sz < 0 || (uint64_t)sz > n)
		return -1;
	switch (PE_FMT(enc)) {
	case 0x02: v = rd16(p); break;
	case 0x0a: v = (int16_t)rd16(p); break;
	case 0x03: v = rd32(p); break;
	case 0x0b: v = (int32_t)rd32(p); break;
	default: v = (int64_t)rd64(p); break;
	}
	if (PE_APP(enc) == PE_PCREL)
		v += (int64_t)va;
	else if (PE_APP(enc) == PE_DATAREL)
		v += (int64_t)base;
	else if (PE_APP(enc))
		return -1;
	*out = (uint64_t)v;
	*used = sz;
	return 0;
}

static int uleb(const uint8_t *p, uint64_t n, uint64_t *pos, uint64_t *out)
{
	uint64_t v = 0;
	int shift = 0;

	while (*pos < n && shift < 64) {
		uint8_t b = p[(*pos)++];

		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

/* The FDE pointer encoding of the CIE at cie_va ('R' of its augmentation; absptr without). */
static int cie_fde_encoding(const struct agt_img *img, uint64_t cie_va, uint8_t *enc)
{
	const uint8_t *p = agt_img_ptr(img, cie_va, 8), *aug;
	uint64_t len, pos, x, auglen;
	size_t alen;

	if (!p || (len = rd32(p)) == 0xffffffff || len < 8 ||
	    !(p = agt_img_ptr(img, cie_va, len + 4)))
		return -1;
	if (rd32(p + 4) != 0 || (p[8] != 1 && p[8] != 3))
		return -1;
	aug = p + 9;
	alen = strnlen((const char *)aug, len - 5);
	if (alen >= len - 5)
		return -1;
	pos = 9 + alen + 1;
	*enc = 0x00;
	if (!strncmp((const char *)aug, "eh", 2))
		pos += 8;
	if (uleb(p, len + 4, &pos, &x) || uleb(p, len + 4, &pos, &x)) /* code, data align */
		return -1;
	if (p[8] == 1)
		pos++;
	else if (uleb(p, len + 4, &pos, &x))
		return -1;
	if (aug[0] != 'z')
		return 0;
	if (uleb(p, len + 4, &pos, &auglen))
		return -1;
	for (size_t i = 1; i < alen && pos < len + 4; i++) {
		int sz;

		switch (aug[i]) {
		case 'R': *enc = p[pos]; return 0;
		case 'L': pos++; break;
		case 'P':
			sz = pe_size(p[pos]);
			if (sz < 0)
				return -1;
			pos += 1 + sz;
			break;
		case 'S':
		case 'B':
		case 'G': break;
		default: return -1;
		}
	}
	return 0;
}

static int fde_range(const struct agt_img *img, uint64_t fde_va, uint64_t *start, uint64_t *end)
{
	const uint8_t *p = agt_img_ptr(img, fde_va, 8);
	uint64_t len, cie_va, begin, range;
	uint8_t enc;
	int used;

	if (!p || (len = rd32(p)) == 0xffffffff || len < 8 ||
	    !(p = agt_img_ptr(img, fde_va, len + 4)))
		return -1;
	if (rd32(p + 4) == 0) /* a CIE, not an FDE */
		return -1;
	cie_va = fde_va + 4 - rd32(p + 4);
	if (cie_fde_encoding(img, cie_va, &enc))
		return -1;
	if (read_pe(enc, p + 8, len - 4, fde_va + 8, 0, &begin, &used))
		return -1;
	if (read_pe(enc & 0x0f, p + 8 + used, len - 4 - used, 0, 0, &range, &used))
		return -1;
	if (!range || begin + range < begin)
		return -1;
	*start = begin;
	*end = begin + range;
	return 0;
}

int agt_img_has_fdes(const struct agt_img *img)
{
	return img->nfdes > 0 || (img->ehf_vaddr && img->ehf_size >= 12);
}

int agt_ehf_lookup(const struct agt_img *img, uint64_t pc, uint64_t *start, uint64_t *end)
{
	const uint8_t *h;
	uint64_t hv = img->ehf_vaddr, ptr, count, lo, hi;
	int used, pos = 4;

	if (!hv && img->nfdes) {
		lo = 0;
		hi = img->nfdes;
		while (lo < hi) {
			uint64_t mid = lo + (hi - lo) / 2;

			if (img->fdes[mid][0] <= pc)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (!lo || pc >= img->fdes[lo - 1][1])
			return -1;
		*start = img->fdes[lo - 1][0];
		*end = img->fdes[lo - 1][1];
		return 0;
	}
	if (!hv || img->ehf_size < 12 || !(h = agt_img_ptr(img, hv, img->ehf_size)))
		return -1;
	/* version 1, then eh_frame_ptr, fde_count, table; the binary-search table is usable only
	 * in its standard datarel|sdata4 form (what GNU ld, gold, lld and mold write). */
	if (h[0] != 1 || h[3] != 0x3b || h[2] == PE_OMIT)
		return -1;
	if (read_pe(h[1], h + pos, img->ehf_size - pos, hv + pos, hv, &ptr, &used))
		return -1;
	pos += used;
	if (read_pe(h[2], h + pos, img->ehf_size - pos, hv + pos, hv, &count, &used))
		return -1;
	pos += used;
	if (count > (img->ehf_size - pos) / 8)
		return -1;
	h += pos;
	lo = 0;
	hi = count;
	while (lo < hi) { /* first entry whose start is > pc */
		uint64_t mid = lo + (hi - lo) / 2;

		if (hv + (int64_t)(int32_t)rd32(h + mid * 8) <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return -1;
	if (fde_range(img, hv + (int64_t)(int32_t)rd32(h + (lo - 1) * 8 + 4), start, end))
		return -1;
	return pc >= *start && pc < *end ? 0 : -1;
}

int agt_find_strings(const struct agt_img *img, const char *suffix, int whole, uint64_t *out,
		     int max)
{
	size_t nlen = strlen(suffix) + 1; /* with its NUL */
	int n = 0, has_rodata = 0;

	for (int i = 0; i < img->nsegs; i++)
		has_rodata |= !(img->segs[i].flags & (PF_W | PF_X));

	for (int i = 0; i < img->nsegs; i++) {
		const struct agt_seg *g = &img->segs[i];
		const uint8_t *base = img->data + g->off, *p = base, *end = base + g->filesz;

		/* read-only data: not writable, and not code unless there is no other */
		if ((g->flags & PF_W) || ((g->flags & PF_X) && has_rodata))
			continue;
		while ((size_t)(end - p) >= nlen &&
		       (p = memmem(p, end - p, suffix, nlen)) != NULL) {
			const uint8_t *s = p;
			uint64_t va;
			int dup = 0;

			if (!whole) {
				/* the string's first byte: back to the NUL before it */
				if (s > base && s[-1] != '/' && s[-1] != 0) {
					p++;
					continue;
				}
				while (s > base && s[-1] != 0 && p - s < 4096)
					s--;
			}
			va = g->vaddr + (s - base);
			for (int j = 0; j < n && j < max && !dup; j++)
				dup = out[j] == va;
			if (!dup) {
				if (n < max)
					out[n] = va;
				n++;
			}
			p++;
		}
	}
	return n;
}
