/* TLS plaintext entry points inside stripped, statically linked executables, found from the
 * binary's own structure: the error-site strings and reason codes the TLS library compiles in,
 * function bounds (.eh_frame_hdr, else the direct-call graph), and the calls between functions.
 * No per-release offsets, hashes or byte patterns: a release nobody has seen works the day it
 * ships, and anything short of exactly one candidate per role is refused, never guessed.
 *
 * BoringSSL (Bun): SSL_write (write) and SSL_peek (read: SSL_read is SSL_peek plus consuming
 * what it returned, so SSL_peek's successful returns carry exactly SSL_read's bytes).
 * OpenSSL 3: ssl_write_internal and ssl_read_internal, which SSL_write/SSL_write_ex(2) and
 * SSL_read/SSL_read_ex all go through (one probe per direction whichever API the program uses).
 * Results are cached per binary (see agt_locate_tls_cached). */
#ifndef AGT_LOCATE_H
#define AGT_LOCATE_H
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

/* WRITE/READ: plaintext API calls (SSL_write, SSL_peek, ssl_*_internal). SEAL/OPEN: one TLS
 * record's AEAD protection (aws-lc's EVP_AEAD_CTX_seal/open under rustls). */
enum agt_tls_role { AGT_TLS_WRITE = 1, AGT_TLS_READ = 2, AGT_TLS_SEAL = 3, AGT_TLS_OPEN = 4 };

/* How the probe reads a call. Both: ssl in rdi, the plaintext buffer in rsi.
 * INT: int num in edx; returns int in eax, > 0 the bytes written/read (SSL_write, SSL_peek).
 * EX: size_t num in rdx; a size_t * out-length in argument register outlen_arg (3 = rcx,
 * 4 = r8); returns > 0 on success, when *out-length holds the bytes (read it at return, with
 * the pointer saved at entry). */
/* AEAD: EVP_AEAD_CTX_seal/open(ctx, out, size_t *out_len, max_out_len, nonce, nonce_len, in,
 * in_len, ad, ad_len): the last four on the stack; returns 1 on success. Seal reads the
 * plaintext in/in_len at entry, open reads out and the length out_len points to at return;
 * ad is the record header. */
enum agt_tls_conv { AGT_TLS_CONV_INT = 1, AGT_TLS_CONV_EX = 2, AGT_TLS_CONV_AEAD = 3 };

struct agt_tls_site {
	int role;	    /* enum agt_tls_role */
	int conv;	    /* enum agt_tls_conv */
	int outlen_arg;	    /* EX: argument index of the size_t * out-length; else -1 */
	uint64_t offset;    /* file offset of the entry: what a uprobe attaches to */
	uint64_t vaddr;	    /* its virtual address in the ELF */
	uint64_t size;	    /* bytes of the function (from .eh_frame or its decoded extent) */
	char name[32];	    /* the library function this is (e.g. SSL_write) */
	char evidence[256]; /* why this is that function */
};

struct agt_tls_located {
	char library[32];      /* boringssl, openssl3, openssl1.1, aws-lc; "" when none */
	char version_hint[64]; /* e.g. "OpenSSL 3.0.19 27 Jan 2026"; "" when the binary has none */
	struct agt_tls_site sites[4];
	int nsites;
	char why_not[512]; /* refusals: one sentence per role */
	int from_cache;	   /* 1: answered from the cache without scanning */
	char bounds[16];   /* where function bounds came from: eh_frame or callgraph */
};

/* Locate in the ELF at path. 0: found (one write and one read site, or for aws-lc with no
 * TLS layer of its own one seal and one open site);
 * -ENOENT: no TLS library recognised there; -EINVAL: a library was recognised but its
 * functions could not be told apart with certainty (out->why_not says why, per role);
 * -ENOTSUP: a library it cannot locate (OpenSSL 1.1); -ENOEXEC and other -errno: not a
 * readable x86-64 ELF. err gets one sentence on every failure. No cache. */
int agt_locate_tls(const char *path, struct agt_tls_located *out, char *err, size_t errlen);

/* The same with a cache in cache_dir (NULL: $AGTRACE_LOCATE_CACHE, else AGT_LOCATE_CACHE_DIR),
 * created when missing.
 * Keyed by the GNU build id and file size when there is a build id, else by the file's
 * SHA-256 (found through (dev, inode, size, mtime, ctime) so an unchanged file is not hashed
 * again); a cached answer is used only when the code bytes recorded at each site still match.
 * Refusals are cached too. Corrupt or foreign cache files are ignored and rewritten. A cache
 * that cannot be written is not an error. */
#define AGT_LOCATE_CACHE_DIR "/var/cache/agtrace/locate"
int agt_locate_tls_cached(const char *path, const char *cache_dir, struct agt_tls_located *out,
			  char *err, size_t errlen);

/* Print what was found in path, where, and why (or why not), through the cache in
 * AGT_LOCATE_CACHE_DIR (or cache_dir). Returns what agt_locate_tls_cached returned. */
int agt_locate_report(const char *path, FILE *out);
int agt_locate_report_dir(const char *path, const char *cache_dir, FILE *out);

const char *agt_tls_role_name(int role);
#endif
