#include "capture/elfsym.h"
#include "base/log.h"
#include "capture/gopclntab.h"
#include <capstone/capstone.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int open_elf(const char *path, int *fd, Elf **elf, char *err, size_t errlen)
{
	elf_version(EV_CURRENT);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return agt_seterr(err, errlen, -errno, "cannot open %s: %s", path, strerror(errno));
	*elf = elf_begin(*fd, ELF_C_READ_MMAP, NULL);
	if (!*elf || elf_kind(*elf) != ELF_K_ELF) {
		if (*elf)
			elf_end(*elf);
		close(*fd);
		return agt_seterr(err, errlen, -ENOEXEC, "%s is not an ELF file", path);
	}
	return 0;
}

/* Virtual address -> file offset through the PT_LOAD segment that contains it. */
static int vaddr_to_offset(Elf *elf, uint64_t addr, uint64_t *off)
{
	size_t n;

	if (elf_getphdrnum(elf, &n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (addr >= ph.p_vaddr && addr < ph.p_vaddr + ph.p_filesz) {
			*off = addr - ph.p_vaddr + ph.p_offset;
			return 0;
		}
	}
	return -1;
}

static int cmp_sym(const void *a, const void *b)
{
	const struct agt_sym *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int agt_elf_find_funcs(const char *path, const char *glob, struct agt_sym **out, int *n, char *err,
		       size_t errlen)
{
	struct agt_sym *v = NULL;
	int cnt = 0, cap = 0, fd, rc;
	Elf_Scn *scn = NULL;
	Elf *elf = NULL;

	*out = NULL;
	*n = 0;
	if ((rc = open_elf(path, &fd, &elf, err, errlen)))
		return rc;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) ||
		    (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
			continue;
		data = elf_getdata(scn, NULL);
		for (size_t i = 0; data && sh.sh_entsize && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *name;
			uint64_t off;
			int dup = 0;

			if (!gelf_getsym(data, i, &sym) || sym.st_shndx == SHN_UNDEF ||
			    !sym.st_value)
				continue;
			if (GELF_ST_TYPE(sym.st_info) != STT_FUNC &&
			    GELF_ST_TYPE(sym.st_info) != STT_GNU_IFUNC)
				continue;
			name = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (!name || fnmatch(glob, name, 0))
				continue;
			for (int j = 0; j < cnt && !dup; j++)
				dup = v[j].addr == sym.st_value && !strcmp(v[j].name, name);
			if (dup || vaddr_to_offset(elf, sym.st_value, &off))
				continue;
			if (cnt == cap) {
				struct agt_sym *nv =
				    realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));

				if (!nv) {
					rc = -ENOMEM;
					goto out;
				}
				v = nv;
			}
			v[cnt++] = (struct agt_sym){strdup(name), sym.st_value, sym.st_size, off};
		}
	}
	if (!cnt) {
		/* A Go binary built with -ldflags=-s has no .symtab: its own function table names
		 * its functions. Any other file (-ENOEXEC) gets the sentence below. */
		rc = agt_go_find_funcs(path, glob, out, n, err, errlen);
		if (rc != -ENOEXEC)
			goto out;
		rc = agt_seterr(
		    err, errlen, -ENOENT,
		    "no function named like \"%s\" in %s; list its functions with `nm -D "
		    "--defined-only %s` (or `nm` when it is not stripped)",
		    glob, path, path);
		goto out;
	}
	qsort(v, cnt, sizeof(*v), cmp_sym);
	*out = v;
	*n = cnt;
	v = NULL;
	cnt = 0;
	rc = 0;
out:
	agt_syms_free(v, cnt);
	elf_end(elf);
	close(fd);
	return rc;
}

/* The bytes of a function, read from the file at its offset. */
static int read_code(const char *path, const struct agt_sym *s, uint8_t **code, char *err,
		     size_t errlen)
{
	int fd;

	*code = NULL;
	if (!s->size || s->size > (16u << 20))
		return agt_seterr(
		    err, errlen, -EINVAL,
		    "%s in %s has no usable size in its symbol table, so its code cannot "
		    "be decoded; use \"return\": \"uretprobe\"",
		    s->name, path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return agt_seterr(err, errlen, -errno, "cannot open %s: %s", path, strerror(errno));
	*code = malloc(s->size);
	if (!*code || pread(fd, *code, s->size, (off_t)s->offset) != (ssize_t)s->size) {
		close(fd);
		free(*code);
		*code = NULL;
		return agt_seterr(err, errlen, -EIO, "cannot read the code of %s from %s", s->name,
				  path);
	}
	close(fd);
	return 0;
}

int agt_elf_ret_offsets(const char *path, const struct agt_sym *s, uint64_t **offs, int *n,
			char *err, size_t errlen)
{
	uint8_t *code;
	const uint8_t *p;
	size_t left;
	uint64_t addr;
	uint64_t *v = NULL;
	int cnt = 0, rc;
	csh cs;
	cs_insn *insn;

	*offs = NULL;
	*n = 0;
	if ((rc = read_code(path, s, &code, err, errlen)))
		return rc;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) {
		free(code);
		return agt_seterr(err, errlen, -ENOSYS, "capstone cannot decode x86-64 here");
	}
	insn = cs_malloc(cs);
	v = calloc(s->size, sizeof(*v)); /* at most one return per byte */
	p = code;
	left = s->size;
	addr = s->offset;
	while (v && insn && cs_disasm_iter(cs, &p, &left, &addr, insn))
		if (insn->id == X86_INS_RET)
			v[cnt++] = insn->address;
	if (left)
		agt_warn(
		    "%s: decoding stopped %zu bytes before the end of %s; returns after it are not "
		    "probed",
		    path, left, s->name);
	cs_free(insn, 1);
	cs_close(&cs);
	free(code);
	if (!v)
		return agt_seterr(err, errlen, -ENOMEM, "out of memory");
	if (!cnt) {
		free(v);
		return agt_seterr(
		    err, errlen, -ENOENT,
		    "%s in %s has no return instruction (it never returns, or ends in a "
		    "tail call); use \"return\": \"uretprobe\" or \"none\"",
		    s->name, path);
	}
	*offs = v;
	*n = cnt;
	return 0;
}

uint64_t agt_elf_go_entry_offset(const char *path, const struct agt_sym *s)
{
	uint64_t addr = s->offset, found = s->offset;
	const uint8_t *p;
	size_t left;
	uint8_t *code;
	int after_check = 0;
	csh cs;
	cs_insn *insn;

	if (read_code(path, s, &code, NULL, 0))
		return s->offset;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) {
		free(code);
		return s->offset;
	}
	insn = cs_malloc(cs);
	p = code;
	left = s->size < 32 ? s->size : 32;
	/* Go's prologue: [lea r12, [rsp-N];] cmp rsp|r12, [r14+16]; jbe morestack. */
	for (int i = 0; insn && i < 4 && cs_disasm_iter(cs, &p, &left, &addr, insn); i++) {
		if (after_check) {
			if (insn->mnemonic[0] == 'j' && strcmp(insn->mnemonic, "jmp"))
				found = addr; /* the instruction after the conditional jump */
			break;
		}
		if (!strcmp(insn->mnemonic, "cmp") && strstr(insn->op_str, "[r14"))
			after_check = 1;
	}
	cs_free(insn, 1);
	cs_close(&cs);
	free(code);
	return found;
}

uint64_t agt_elf_probe_site(const char *path, uint64_t off, uint64_t size)
{
	static const uint8_t endbr64[4] = {0xf3, 0x0f, 0x1e, 0xfa};
	struct agt_sym s = {.name = (char *)"", .size = size, .offset = off};
	uint8_t *code;
	const uint8_t *p;
	uint64_t addr = off, at = off + sizeof(endbr64);
	int into = 0;
	size_t left;
	csh cs;
	cs_insn *insn;

	if (size <= sizeof(endbr64) || read_code(path, &s, &code, NULL, 0))
		return off;
	if (memcmp(code, endbr64, sizeof(endbr64)) ||
	    cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) {
		free(code);
		return off;
	}
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	insn = cs_malloc(cs);
	p = code;
	left = size;
	/* A direct jump or call to the instruction after endbr64 would enter the probe without
	 * passing the entry (a loop back to the top of the body): stay at the entry then. */
	while (insn && !into && cs_disasm_iter(cs, &p, &left, &addr, insn)) {
		const cs_x86 *x = &insn->detail->x86;

		if ((cs_insn_group(cs, insn, X86_GRP_JUMP) || cs_insn_group(cs, insn, X86_GRP_CALL)) &&
		    x->op_count == 1 && x->operands[0].type == X86_OP_IMM)
			into = (uint64_t)x->operands[0].imm == at;
	}
	if (left)
		into = 1; /* not decoded to its end: no proof */
	cs_free(insn, 1);
	cs_close(&cs);
	free(code);
	return into ? off : at;
}
