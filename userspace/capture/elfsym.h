/* Function symbols of an ELF file, their file offsets, and their return instructions. */
#ifndef AGT_ELFSYM_H
#define AGT_ELFSYM_H
#include <stddef.h>
#include <stdint.h>

#include "capture/sym.h"

/* All defined functions (symtab and dynsym) whose name matches glob, sorted by name, one per
 * address; for a Go binary where none matches (stripped of .symtab), those of its Go function
 * table (capture/gopclntab.h). -ENOENT with a sentence when none matches. Free with
 * agt_syms_free. */
int agt_elf_find_funcs(const char *path, const char *glob, struct agt_sym **out, int *n, char *err,
		       size_t errlen);

/* File offsets of every return instruction of a function (x86-64, decoded with capstone). */
int agt_elf_ret_offsets(const char *path, const struct agt_sym *s, uint64_t **offs, int *n,
			char *err, size_t errlen);
/* Where a Go function's body starts: past the stack-bound check of its prologue, whose
 * morestack path re-enters the function from the top (an entry probe there would fire twice).
 * The function's own offset when there is no such check (leaf functions, non-Go code). */
uint64_t agt_elf_go_entry_offset(const char *path, const struct agt_sym *s);
/* Where to put a C function's entry probe (and uretprobe) whose code starts at file offset
 * off and is size bytes long: past a leading endbr64 (CET builds: Ubuntu, Fedora), which the
 * kernel single-steps out of line at about 20 us a hit on these machines, where what follows
 * (usually a push) it emulates at about 5.5 us. endbr64 changes no register and not the stack,
 * so the arguments and the return address a uretprobe takes over are the entry's. off itself
 * when the code does not start so, or when a direct jump or call in the function targets the
 * instruction after it (the probe would fire on a path that did not enter). */
uint64_t agt_elf_probe_site(const char *path, uint64_t off, uint64_t size);
#endif
