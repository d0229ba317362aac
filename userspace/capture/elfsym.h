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
#endif
