/* Functions of Go binaries found through Go's own function table (.gopclntab), which the Go
 * linker keeps when -ldflags='-s -w' drops .symtab: name, entry, size and file offset of each,
 * so stripped Go programs (crypto/tls.(*Conn).Write, ...) can be probed like any other. Also the
 * Go version a binary was built with, from its .go.buildinfo. */
#ifndef AGT_GOPCLNTAB_H
#define AGT_GOPCLNTAB_H
#include <stddef.h>
#include "capture/sym.h"

/* Every function of the Go binary at path whose Go name (e.g. "crypto/tls.(*Conn).Write")
 * matches glob (fnmatch, no flags: '*' in a name such as "(*Conn)" is matched by '*', "\\*"
 * matches only itself), sorted by name then address. size is the function's own code, as .symtab
 * gives it (alignment padding after it excluded); offset is the file offset of the entry.
 * Reads the pclntab formats of Go 1.16/1.17 (magic 0xfffffffa), 1.18/1.19 (0xfffffff0) and
 * 1.20 and later (0xfffffff1). The table is taken from the .gopclntab (or PIE's
 * .data.rel.ro.gopclntab) section, or, when there is no such section (no section headers, or a
 * renamed section), found by scanning the loaded segments for its header. Errors, with a sentence
 * in err: -ENOEXEC not an ELF file (or a big-endian one) or not a Go binary, -ENOTSUP a pclntab
 * older (Go 1.2-1.15) or newer than those, -EINVAL a malformed table, -ENOENT no function matches,
 * -ENOMEM, or -errno of open. Free the result with agt_syms_free. */
int agt_go_find_funcs(const char *path, const char *glob, struct agt_sym **out, int *n, char *err,
		      size_t errlen);

/* The Go version recorded in the binary's build information (.go.buildinfo), e.g. "go1.19.8",
 * NUL-terminated in buf. 0, or -ENOEXEC (not an ELF file), -ENOENT (no build information: not
 * Go, or Go older than 1.13), -EINVAL (malformed), -ERANGE (buf too small), -errno of open. */
int agt_go_version(const char *path, char *buf, size_t n);
#endif
