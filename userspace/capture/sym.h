/* A function found in a binary, whichever table named it (ELF symbols, capture/elfsym.h; Go's
 * function table, capture/gopclntab.h). */
#ifndef AGT_SYM_H
#define AGT_SYM_H
#include <stdint.h>

struct agt_sym {
	char *name;
	uint64_t addr;	 /* virtual address (st_value) */
	uint64_t size;	 /* bytes (st_size) */
	uint64_t offset; /* file offset: what a uprobe attaches to */
};

void agt_syms_free(struct agt_sym *s, int n);
#endif
