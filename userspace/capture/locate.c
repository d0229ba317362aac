/* The TLS locator's library rules: which strings mark a library, which error sites and calls
 * make a function its SSL_write or its read entry point, and the check that refuses unless
 * exactly one function per role meets every rule. See locate.h for what is returned.
 *
 * BoringSSL. OPENSSL_PUT_ERROR(SSL, reason) is ERR_put_error(ERR_LIB_SSL, 0, reason, __FILE__,
 * __LINE__) (include/openssl/err.h): the library (16), the reason, the file and the line are
 * immediates at every error site, and the file string ends in "ssl/ssl_lib.cc". Link-time
 * optimisation may drop the unused argument (Bun 1.1/1.2 call it with the file in the third
 * register, 1.4 in the fourth), so the layout is read from where the file string sits: the
 * reason is the argument before it, the line the one after. Reason codes are part of the
 * library's ABI (include/openssl/ssl.h, err.h) and never renumbered; ssl/ssl_lib.cc's
 * functions have carried these checks since 2019 (verified against every year's source):
 *   SSL_write:     ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED (66, the QUIC check), then
 *                  SSL_R_UNINITIALIZED (226), SSL_R_SSL_HANDSHAKE_FAILURE (215), and since
 *                  2023 SSL_R_BAD_LENGTH (111);
 *   ssl_read_impl: 226 and 215 (static; called by SSL_peek and SSL_shutdown);
 *   SSL_peek:      66, then ssl_read_impl (a call, or its 226/215 sites inlined: those come
 *                  from lines above SSL_peek's own 66, while SSL_write's 66 precedes its 226).
 * SSL_read is `ret = SSL_peek(ssl, buf, num); if (ret > 0) consume ret bytes`, so SSL_peek's
 * returns are exactly SSL_read's: the read probe sits on SSL_peek, which stays a function of
 * its own when SSL_read is inlined into its callers (as in Bun).
 *
 * OpenSSL 3. ERR_raise(ERR_LIB_SSL, reason) is ERR_new(); ERR_set_debug(OPENSSL_FILE,
 * OPENSSL_LINE, OPENSSL_FUNC); ERR_set_error(...) (include/openssl/err.h): every error site
 * passes its function's own name (__func__) as the third argument. "SSL_write",
 * "ssl_write_internal", "SSL_read" and "ssl_read_internal" are each referenced from exactly
 * the function they name. SSL_write, SSL_write_ex (through SSL_write_ex2 since 3.3) and
 * SSL_read, SSL_read_ex all go through ssl_write_internal / ssl_read_internal, so those are
 * the probes: one per direction whichever API the program uses (Rust's openssl crate uses the
 * _ex ones), none counted twice. Their out-length is a size_t * whose register is read from
 * the binary: SSL_write passes &written (a stack address) to ssl_write_internal, in rcx up to
 * 3.2 and in r8 since 3.3 added a flags argument. A partial write (16 KiB records with
 * SSL_MODE_ENABLE_PARTIAL_WRITE) is reported there with its real length.
 *
 * aws-lc under rustls (aws-lc-rs). rustls keeps the TLS layer itself; aws-lc only protects
 * records, through EVP_AEAD_CTX_seal and EVP_AEAD_CTX_open (crypto/fipsmodule/cipher/aead.c;
 * aws-lc-rs's seal_in_place_append_tag and open_in_place, which rustls's TLS 1.3 record layer
 * uses). aws-lc is a BoringSSL fork: OPENSSL_PUT_ERROR(CIPHER, reason) passes the library (30),
 * the reason, aead.c and the line as immediates. aead.c's functions carry these reasons
 * (include/openssl/cipher.h; the checks have been there since aws-lc forked):
 *   EVP_AEAD_CTX_seal:         CIPHER_R_TOO_LARGE (117), CIPHER_R_BUFFER_TOO_SMALL (103),
 *                              CIPHER_R_OUTPUT_ALIASES_INPUT (115);
 *   EVP_AEAD_CTX_open:         115, CIPHER_R_BAD_DECRYPT (101), 103 (and 104 when
 *                              EVP_AEAD_CTX_open_gather is inlined into it);
 *   EVP_AEAD_CTX_seal_scatter: 115, CIPHER_R_INVALID_OPERATION (112);
 *   EVP_AEAD_CTX_open_gather:  115, CIPHER_R_CTRL_NOT_IMPLEMENTED (104).
 * Seal is the one function with 117 and 103, open the one with 101 and 103. Only a binary
 * with no SSL layer located (no ssl_lib error sites) is given AEAD sites. */
#define _GNU_SOURCE
#include "capture/locate.h"
#include "capture/locate_int.h"
#include "base/log.h"
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* BoringSSL reason codes (include/openssl/err.h, include/openssl/ssl.h). */
#define B_LIB_SSL 16
#define B_SHOULD_NOT_HAVE_BEEN_CALLED 66 /* ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED, 2 | ERR_R_FATAL */
#define B_UNINITIALIZED 226		 /* SSL_R_UNINITIALIZED */
#define B_HANDSHAKE_FAILURE 215		 /* SSL_R_SSL_HANDSHAKE_FAILURE */
#define B_BAD_LENGTH 111		 /* SSL_R_BAD_LENGTH */
/* aws-lc: include/openssl/err.h, cipher.h. */
#define A_LIB_CIPHER 30
#define A_BAD_DECRYPT 101
#define A_BUFFER_TOO_SMALL 103
#define A_CTRL_NOT_IMPLEMENTED 104
#define A_INVALID_OPERATION 112
#define A_OUTPUT_ALIASES_INPUT 115
#define A_TOO_LARGE 117
#define NREASONS 10

#define MAX_STR 8
#define MAX_FNS 256

enum { N_BFILE, N_OFILE, N_SSL_WRITE, N_SSL_READ, N_WINT, N_RINT, N_AEAD, N_KINDS };
static const char *const kind_text[N_KINDS] = {"ssl/ssl_lib.cc",
					       "ssl/ssl_lib.c",
					       "SSL_write",
					       "SSL_read",
					       "ssl_write_internal",
					       "ssl_read_internal",
					       "crypto/fipsmodule/cipher/aead.c"};
/* Strings matched whole (function names) rather than as a path's end. */
#define KIND_WHOLE(k) ((k) >= N_SSL_WRITE && (k) <= N_RINT)

struct lfn {
	struct agt_func f;
	int nb;		       /* BoringSSL error sites in it */
	int bmask;	       /* which reasons it raises: reason_bit() */
	long line[NREASONS];   /* smallest line of each */
	int oname[N_KINDS];    /* OpenSSL error sites naming each function */
	uint64_t str[N_KINDS]; /* the string (needle) its sites pass, per kind */
};

struct loc {
	struct agt_img img;
	struct agt_scan scan;
	int kind_of_needle[AGT_MAX_NEEDLES];
	int nstr[N_KINDS];
	struct lfn fns[MAX_FNS];
	int nfns;
	int unattributed[N_KINDS]; /* references not placed in any function */
	char unattr_why[N_KINDS][160];
	int bsites, osites, ofile_refs, asites;
	int unreadable[N_KINDS]; /* references whose call or arguments could not be read */
};

static int reason_bit(long r)
{
	switch (r) {
	case B_SHOULD_NOT_HAVE_BEEN_CALLED: return 0;
	case B_UNINITIALIZED: return 1;
	case B_HANDSHAKE_FAILURE: return 2;
	case B_BAD_LENGTH: return 3;
	case A_BAD_DECRYPT: return 4;
	case A_BUFFER_TOO_SMALL: return 5;
	case A_CTRL_NOT_IMPLEMENTED: return 6;
	case A_INVALID_OPERATION: return 7;
	case A_OUTPUT_ALIASES_INPUT: return 8;
	case A_TOO_LARGE: return 9;
	default: return -1;
	}
}

static void appendf(char *buf, size_t n, const char *fmt, ...)
{
	size_t len = strnlen(buf, n);
	va_list ap;

	if (len + 1 >= n)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, n - len, fmt, ap);
	va_end(ap);
}

/* Is va inside an instruction of f that its decoding reached? */
static int covers(const struct agt_func *f, uint64_t va)
{
	if (va < f->start || va >= f->end || !f->seen || va - f->start >= f->seen_len)
		return 0;
	for (uint64_t a = va + 1; a-- > f->start && va - a < 15;)
		if (f->seen[a - f->start] & 1)
			return 1;
	return 0;
}

static struct lfn *fn_for(struct loc *L, uint64_t va, int kind)
{
	struct agt_func f;
	char why[160];

	for (int i = 0; i < L->nfns; i++)
		if (covers(&L->fns[i].f, va))
			return &L->fns[i];
	if (L->nfns == MAX_FNS || agt_func_at(&L->scan, va, &f, why, sizeof(why))) {
		if (L->nfns == MAX_FNS)
			snprintf(why, sizeof(why), "more than %d functions reference the strings",
				 MAX_FNS);
		if (!L->unattributed[kind]++)
			snprintf(L->unattr_why[kind], sizeof(L->unattr_why[kind]), "%s", why);
		return NULL;
	}
	for (int i = 0; i < L->nfns; i++) /* decoded again from a nearer start: same function */
		if (L->fns[i].f.start == f.start) {
			agt_func_free(&f);
			return &L->fns[i];
		}
	memset(&L->fns[L->nfns], 0, sizeof(L->fns[0]));
	L->fns[L->nfns].f = f;
	return &L->fns[L->nfns++];
}

static int needle_kind_at(const struct loc *L, const struct agt_rv *v)
{
	if (v->kind != AGT_RV_IMM)
		return -1;
	for (int k = 0; k < L->scan.nneedles; k++)
		if (L->scan.needles[k] == v->v)
			return L->kind_of_needle[k];
	return -1;
}

/* Read the error sites of one function: for each reference to a needle inside it, the call
 * its code leads to and the argument registers there. */
static void read_sites(struct loc *L, struct lfn *fn)
{
	for (int i = 0; i < L->scan.nrefs; i++) {
		const struct agt_ref *ref = &L->scan.refs[i];
		int kind = L->kind_of_needle[ref->needle], fi = -1, okind[6];
		struct agt_call call;

		if (kind == N_OFILE || ref->at < fn->f.start || ref->at >= fn->f.end)
			continue;
		if (agt_trace_call(&L->scan, &fn->f, ref->at, &call)) {
			L->unreadable[kind]++;
			continue;
		}
		for (int a = 0; a < 6; a++) {
			okind[a] = needle_kind_at(L, &call.args[a]);
			if (okind[a] == kind && fi < 0)
				fi = a;
		}
		if (fi < 0) { /* the string is not an argument of that call */
			L->unreadable[kind]++;
			continue;
		}
		if (kind == N_BFILE || kind == N_AEAD) {
			/* ERR_put_error(library, [unused,] reason, file, line) */
			const struct agt_rv *rs, *ln;
			int b;
			uint64_t lib = kind == N_BFILE ? B_LIB_SSL : A_LIB_CIPHER;

			if (kind == N_BFILE)
				L->bsites++;
			else
				L->asites++;
			fn->nb++;
			fn->str[kind] = call.args[fi].v;
			if (fi < 1 || fi > 4) {
				L->unreadable[kind]++;
				continue;
			}
			rs = &call.args[fi - 1];
			ln = &call.args[fi + 1];
			if (fi >= 2 && (call.args[0].kind != AGT_RV_IMM || call.args[0].v != lib))
				continue; /* not libssl's (libcrypto's cipher) error */
			if (rs->kind != AGT_RV_IMM || ln->kind != AGT_RV_IMM) {
				L->unreadable[kind]++;
				continue;
			}
			b = reason_bit((long)rs->v);
			if (b < 0 || (kind == N_BFILE) != (b < 4))
				continue;
			if (!(fn->bmask & (1 << b)) || (long)ln->v < fn->line[b])
				fn->line[b] = (long)ln->v;
			fn->bmask |= 1 << b;
		} else if (fi == 2 && (!L->nstr[N_OFILE] || okind[0] == N_OFILE)) {
			/* ERR_set_debug(file, line, func): the function's own name third */
			fn->oname[kind]++;
			fn->str[kind] = call.args[fi].v;
			L->osites++;
		}
	}
}

static void site_fill(struct loc *L, struct agt_tls_site *st, int role, const struct lfn *fn,
		      const char *name, int conv, int outlen_arg)
{
	uint64_t off = 0;

	memset(st, 0, sizeof(*st));
	st->role = role;
	st->conv = conv;
	st->outlen_arg = outlen_arg;
	st->vaddr = fn->f.start;
	agt_img_v2o(&L->img, fn->f.start, &off);
	st->offset = off;
	st->size = fn->f.end - fn->f.start;
	snprintf(st->name, sizeof(st->name), "%s", name);
}

static const char *callers_text(const struct loc *L, uint64_t va, char *buf, size_t n)
{
	const struct agt_start *s = agt_scan_start(&L->scan, va);

	if (!s || !s->ncallers)
		snprintf(buf, n, "no direct caller");
	else
		snprintf(buf, n, "%d direct call%s (first confirmed at 0x%lx)", s->ncallers,
			 s->ncallers == 1 ? "" : "s", (unsigned long)s->caller);
	return buf;
}

static int has_caller(const struct loc *L, uint64_t va)
{
	const struct agt_start *s = agt_scan_start(&L->scan, va);

	return s && s->nverified > 0;
}

static int calls(const struct lfn *from, const struct lfn *to, const struct agt_call **at)
{
	for (int c = 0; c < from->f.ncalls; c++)
		if (from->f.calls[c].target == to->f.start) {
			if (at)
				*at = &from->f.calls[c];
			return 1;
		}
	return 0;
}

#define HAS(fn, r) (((fn)->bmask >> reason_bit(r)) & 1)
#define LINE(fn, r) ((fn)->line[reason_bit(r)])

static int boringssl(struct loc *L, struct agt_tls_located *out)
{
	struct lfn *w = NULL, *r = NULL;
	int nw = 0, nr = 0, core = 0;
	char cb[96];

	snprintf(out->library, sizeof(out->library), "boringssl");
	if (L->unattributed[N_BFILE] || L->unreadable[N_BFILE]) {
		snprintf(out->why_not, sizeof(out->why_not),
			 "write and read: %d reference%s to ssl_lib.cc could not be placed in a "
			 "function%s%s%s and %d error site%s could not be read, so an unseen "
			 "candidate cannot be ruled out.",
			 L->unattributed[N_BFILE], L->unattributed[N_BFILE] == 1 ? "" : "s",
			 L->unattr_why[N_BFILE][0] ? " (" : "", L->unattr_why[N_BFILE],
			 L->unattr_why[N_BFILE][0] ? ")" : "", L->unreadable[N_BFILE],
			 L->unreadable[N_BFILE] == 1 ? "" : "s");
		return -EINVAL;
	}
	for (int i = 0; i < L->nfns; i++) {
		struct lfn *f = &L->fns[i];

		/* SSL_write: 66 before 226, and 215 */
		if (HAS(f, 66) && HAS(f, 226) && HAS(f, 215) && LINE(f, 66) < LINE(f, 226)) {
			w = f;
			nw++;
		}
	}
	for (int i = 0; i < L->nfns; i++) {
		struct lfn *f = &L->fns[i];
		int reads = 0;

		if (!HAS(f, 66) || HAS(f, 111) || (w && f == w))
			continue;
		if (HAS(f, 226) && HAS(f, 215) && LINE(f, 66) > LINE(f, 226))
			reads = 1; /* ssl_read_impl inlined */
		for (int j = 0; j < L->nfns && !reads; j++) {
			struct lfn *c = &L->fns[j];

			if (c != f && HAS(c, 226) && HAS(c, 215) && !HAS(c, 66) && !HAS(c, 111) &&
			    calls(f, c, NULL))
				reads = 1;
		}
		if (reads) {
			r = f;
			nr++;
		}
	}
	for (int j = 0; j < L->nfns; j++)
		core += HAS(&L->fns[j], 226) && HAS(&L->fns[j], 215) && !HAS(&L->fns[j], 66);
	if (nw == 1 && !has_caller(L, w->f.start)) {
		appendf(out->why_not, sizeof(out->why_not),
			"write: the only function with SSL_write's error sites (0x%lx) has no "
			"confirmed direct caller. ",
			(unsigned long)w->f.start);
		nw = -1;
	} else if (nw != 1) {
		appendf(out->why_not, sizeof(out->why_not),
			"write: %d functions carry SSL_write's error sites (reasons 66 then 226, "
			"and 215) where exactly one must. ",
			nw);
	}
	if (nr == 1 && !has_caller(L, r->f.start)) {
		appendf(out->why_not, sizeof(out->why_not),
			"read: the only SSL_peek candidate (0x%lx) has no confirmed direct "
			"caller. ",
			(unsigned long)r->f.start);
		nr = -1;
	} else if (nr != 1) {
		appendf(out->why_not, sizeof(out->why_not),
			"read: %d functions look like SSL_peek (reason 66, no 111, and a call to "
			"ssl_read_impl, the function with reasons 226 and 215 only; %d such) "
			"where exactly one must. ",
			nr, core);
	}
	if (nw != 1 || nr != 1)
		return -EINVAL;
	site_fill(L, &out->sites[0], AGT_TLS_WRITE, w, "SSL_write", AGT_TLS_CONV_INT, -1);
	snprintf(out->sites[0].evidence, sizeof(out->sites[0].evidence),
		 "ssl_lib.cc (0x%lx) error sites: reasons 66@%ld < 226@%ld, 215@%ld%s; %s",
		 (unsigned long)w->str[N_BFILE], LINE(w, 66), LINE(w, 226), LINE(w, 215),
		 HAS(w, 111) ? ", 111 (BAD_LENGTH)" : "",
		 callers_text(L, w->f.start, cb, sizeof(cb)));
	site_fill(L, &out->sites[1], AGT_TLS_READ, r, "SSL_peek", AGT_TLS_CONV_INT, -1);
	if (HAS(r, 226) && HAS(r, 215) && LINE(r, 66) > LINE(r, 226))
		snprintf(out->sites[1].evidence, sizeof(out->sites[1].evidence),
			 "ssl_lib.cc (0x%lx) error sites: 66@%ld after ssl_read_impl's inlined "
			 "226@%ld, 215@%ld; %s",
			 (unsigned long)r->str[N_BFILE], LINE(r, 66), LINE(r, 226), LINE(r, 215),
			 callers_text(L, r->f.start, cb, sizeof(cb)));
	else {
		const struct lfn *c = NULL;

		for (int j = 0; j < L->nfns && !c; j++)
			if (HAS(&L->fns[j], 226) && HAS(&L->fns[j], 215) && !HAS(&L->fns[j], 66) &&
			    !HAS(&L->fns[j], 111) && calls(r, &L->fns[j], NULL))
				c = &L->fns[j];
		snprintf(out->sites[1].evidence, sizeof(out->sites[1].evidence),
			 "ssl_lib.cc (0x%lx) error site 66@%ld, calls ssl_read_impl at 0x%lx "
			 "(226@%ld, 215@%ld); %s",
			 (unsigned long)r->str[N_BFILE], LINE(r, 66), (unsigned long)c->f.start,
			 LINE(c, 226), LINE(c, 215), callers_text(L, r->f.start, cb, sizeof(cb)));
	}
	out->nsites = 2;
	return 0;
}

/* The function whose error sites name kind; NULL (and *n the count) unless exactly one. */
static struct lfn *named(struct loc *L, int kind, int *n)
{
	struct lfn *f = NULL;

	*n = 0;
	for (int i = 0; i < L->nfns; i++)
		if (L->fns[i].oname[kind]) {
			f = &L->fns[i];
			(*n)++;
		}
	return *n == 1 ? f : NULL;
}

/* One direction of OpenSSL 3: api (SSL_write/SSL_read) calls internal, passing the address
 * of its local out-length in exactly one of rcx (3) or r8 (4). */
static int openssl_role(struct loc *L, struct agt_tls_located *out, int role, int api_kind,
			int int_kind)
{
	const char *rn = role == AGT_TLS_WRITE ? "write" : "read";
	int na, ni, arg = -1;
	struct lfn *api = named(L, api_kind, &na), *in = named(L, int_kind, &ni);
	const struct agt_call *call = NULL;
	struct agt_tls_site *st = &out->sites[out->nsites];
	char cb[96];

	if (L->unreadable[api_kind] || L->unreadable[int_kind]) {
		appendf(out->why_not, sizeof(out->why_not),
			"%s: a reference to \"%s\" does not lead to an error call whose arguments "
			"can be read. ",
			rn, kind_text[L->unreadable[api_kind] ? api_kind : int_kind]);
		return -EINVAL;
	}
	if (L->unattributed[api_kind] || L->unattributed[int_kind]) {
		appendf(out->why_not, sizeof(out->why_not),
			"%s: a reference to \"%s\" could not be placed in a function (%s). ", rn,
			kind_text[L->unattributed[api_kind] ? api_kind : int_kind],
			L->unattr_why[L->unattributed[api_kind] ? api_kind : int_kind]);
		return -EINVAL;
	}
	if (!api || !in) {
		appendf(
		    out->why_not, sizeof(out->why_not),
		    "%s: %d functions raise errors as \"%s\" and %d as \"%s\" where exactly one "
		    "each must. ",
		    rn, na, kind_text[api_kind], ni, kind_text[int_kind]);
		return -EINVAL;
	}
	if (api == in || !calls(api, in, &call)) {
		appendf(out->why_not, sizeof(out->why_not),
			"%s: %s (0x%lx) does not call %s (0x%lx). ", rn, kind_text[api_kind],
			(unsigned long)api->f.start, kind_text[int_kind],
			(unsigned long)in->f.start);
		return -EINVAL;
	}
	for (int i = 3; i <= 4; i++)
		if (call->args[i].kind == AGT_RV_STACK)
			arg = arg < 0 ? i : 99;
	if (arg < 0 || arg == 99) {
		appendf(out->why_not, sizeof(out->why_not),
			"%s: %s's call to %s at 0x%lx passes %s stack address in rcx/r8, so the "
			"out-length argument is unknown. ",
			rn, kind_text[api_kind], kind_text[int_kind], (unsigned long)call->at,
			arg < 0 ? "no" : "more than one");
		return -EINVAL;
	}
	site_fill(L, st, role, in, kind_text[int_kind], AGT_TLS_CONV_EX, arg);
	snprintf(st->evidence, sizeof(st->evidence),
		 "raises errors as \"%s\" (0x%lx); called by %s (0x%lx, raises as \"%s\") at 0x%lx "
		 "with &%s in %s; %s",
		 kind_text[int_kind], (unsigned long)in->str[int_kind], kind_text[api_kind],
		 (unsigned long)api->f.start, kind_text[api_kind], (unsigned long)call->at,
		 role == AGT_TLS_WRITE ? "written" : "readbytes", arg == 3 ? "rcx" : "r8",
		 callers_text(L, in->f.start, cb, sizeof(cb)));
	out->nsites++;
	return 0;
}

/* aws-lc's AEAD layer (see the top of this file): EVP_AEAD_CTX_seal and EVP_AEAD_CTX_open. */
static int awslc(struct loc *L, struct agt_tls_located *out, char *err, size_t errlen,
		 const char *path)
{
	struct lfn *seal = NULL, *open = NULL;
	int ns = 0, no = 0;
	char cb[96];

	snprintf(out->library, sizeof(out->library), "aws-lc");
	if (L->unattributed[N_AEAD] || L->unreadable[N_AEAD]) {
		snprintf(out->why_not, sizeof(out->why_not),
			 "seal and open: %d reference%s to aead.c could not be placed in a "
			 "function%s%s%s and %d error site%s could not be read, so an unseen "
			 "candidate cannot be ruled out.",
			 L->unattributed[N_AEAD], L->unattributed[N_AEAD] == 1 ? "" : "s",
			 L->unattr_why[N_AEAD][0] ? " (" : "", L->unattr_why[N_AEAD],
			 L->unattr_why[N_AEAD][0] ? ")" : "", L->unreadable[N_AEAD],
			 L->unreadable[N_AEAD] == 1 ? "" : "s");
		return agt_seterr(err, errlen, -EINVAL, "%s: aws-lc found but refused: %s", path,
				  out->why_not);
	}
	for (int i = 0; i < L->nfns; i++) {
		struct lfn *f = &L->fns[i];

		if (HAS(f, A_TOO_LARGE) && HAS(f, A_BUFFER_TOO_SMALL) && !HAS(f, A_BAD_DECRYPT)) {
			seal = f;
			ns++;
		}
		if (HAS(f, A_BAD_DECRYPT) && HAS(f, A_BUFFER_TOO_SMALL) && !HAS(f, A_TOO_LARGE)) {
			open = f;
			no++;
		}
	}
	if (ns == 1 && !has_caller(L, seal->f.start)) {
		appendf(out->why_not, sizeof(out->why_not),
			"seal: the only function with EVP_AEAD_CTX_seal's error sites (0x%lx) has "
			"no confirmed direct caller. ",
			(unsigned long)seal->f.start);
		ns = -1;
	} else if (ns != 1) {
		appendf(out->why_not, sizeof(out->why_not),
			"seal: %d functions carry EVP_AEAD_CTX_seal's error sites (reasons 117 and "
			"103, no 101) where exactly one must. ",
			ns);
	}
	if (no == 1 && !has_caller(L, open->f.start)) {
		appendf(out->why_not, sizeof(out->why_not),
			"open: the only function with EVP_AEAD_CTX_open's error sites (0x%lx) has "
			"no confirmed direct caller. ",
			(unsigned long)open->f.start);
		no = -1;
	} else if (no != 1) {
		appendf(out->why_not, sizeof(out->why_not),
			"open: %d functions carry EVP_AEAD_CTX_open's error sites (reasons 101 and "
			"103, no 117) where exactly one must. ",
			no);
	}
	if (ns != 1 || no != 1)
		return agt_seterr(err, errlen, -EINVAL, "%s: aws-lc found but refused: %s", path,
				  out->why_not);
	site_fill(L, &out->sites[0], AGT_TLS_SEAL, seal, "EVP_AEAD_CTX_seal", AGT_TLS_CONV_AEAD,
		  -1);
	snprintf(out->sites[0].evidence, sizeof(out->sites[0].evidence),
		 "aead.c (0x%lx) error sites: reasons 117@%ld, 103@%ld%s; %s",
		 (unsigned long)seal->str[N_AEAD], LINE(seal, A_TOO_LARGE),
		 LINE(seal, A_BUFFER_TOO_SMALL),
		 HAS(seal, A_OUTPUT_ALIASES_INPUT) ? ", 115 (OUTPUT_ALIASES_INPUT)" : "",
		 callers_text(L, seal->f.start, cb, sizeof(cb)));
	site_fill(L, &out->sites[1], AGT_TLS_OPEN, open, "EVP_AEAD_CTX_open", AGT_TLS_CONV_AEAD,
		  -1);
	snprintf(out->sites[1].evidence, sizeof(out->sites[1].evidence),
		 "aead.c (0x%lx) error sites: reasons 101@%ld, 103@%ld%s; %s",
		 (unsigned long)open->str[N_AEAD], LINE(open, A_BAD_DECRYPT),
		 LINE(open, A_BUFFER_TOO_SMALL),
		 HAS(open, A_OUTPUT_ALIASES_INPUT) ? ", 115 (OUTPUT_ALIASES_INPUT)" : "",
		 callers_text(L, open->f.start, cb, sizeof(cb)));
	out->nsites = 2;
	return 0;
}

static void version_hint(const struct agt_img *img, char *out, size_t n)
{
	static const char *const pre[] = {"OpenSSL 3.", "OpenSSL 1.1."};

	for (size_t k = 0; k < 2; k++)
		for (int i = 0; i < img->nsegs; i++) {
			const struct agt_seg *g = &img->segs[i];
			const uint8_t *b = img->data + g->off, *p = b, *e = b + g->filesz;
			size_t pl = strlen(pre[k]);

			if (g->flags & 2 /* PF_W */)
				continue;
			while ((p = memmem(p, e - p, pre[k], pl)) != NULL) {
				size_t len = 0;

				if (p > b && p[-1] == 0) {
					while (p + len < e && p[len] >= 0x20 && p[len] < 0x7f &&
					       len + 1 < n)
						len++;
					if (p + len < e && p[len] == 0 && len > pl) {
						memcpy(out, p, len);
						out[len] = 0;
						return;
					}
				}
				p++;
			}
		}
}

static int openssl(struct loc *L, struct agt_tls_located *out, char *err, size_t errlen,
		   const char *path)
{
	int rc;

	version_hint(&L->img, out->version_hint, sizeof(out->version_hint));
	if (!L->osites) {
		snprintf(out->library, sizeof(out->library), "%s",
			 !strncmp(out->version_hint, "OpenSSL 1.1", 11) ? "openssl1.1" : "openssl");
		snprintf(
		    out->why_not, sizeof(out->why_not),
		    "write and read: OpenSSL's ssl_lib.c error sites are there but none names "
		    "its function (OpenSSL 1.1 records numeric function codes instead), and this "
		    "locator does not tell such functions apart.");
		return agt_seterr(err, errlen, -ENOTSUP, "%s: %s", path, out->why_not);
	}
	snprintf(out->library, sizeof(out->library), "openssl3");
	rc = openssl_role(L, out, AGT_TLS_WRITE, N_SSL_WRITE, N_WINT);
	rc |= openssl_role(L, out, AGT_TLS_READ, N_SSL_READ, N_RINT);
	if (rc) {
		out->nsites = 0;
		return agt_seterr(err, errlen, -EINVAL, "%s: OpenSSL 3 found but refused: %s", path,
				  out->why_not);
	}
	return 0;
}

static int locate(struct loc *L, const char *path, int flags, struct agt_tls_located *out,
		  char *err, size_t errlen)
{
	uint64_t addrs[MAX_STR];
	int rc;

	if ((rc = agt_img_open(path, &L->img, err, errlen)))
		return rc;
	if ((rc = agt_scan_init(&L->scan, &L->img, err, errlen)))
		return rc;
	agt_img_prefault(&L->img);
	for (int k = 0; k < N_KINDS; k++) {
		int n = agt_find_strings(&L->img, kind_text[k], KIND_WHOLE(k), addrs, MAX_STR);

		if (n > MAX_STR) {
			/* a copy left out could hide a second candidate: such a kind decides
			 * nothing */
			L->unattributed[k] = n;
			snprintf(L->unattr_why[k], sizeof(L->unattr_why[k]),
				 "%d copies of the string, more than the %d followed", n, MAX_STR);
			n = MAX_STR;
		}
		for (int i = 0; i < n; i++) {
			int idx = agt_scan_add_needle(&L->scan, addrs[i], k != N_OFILE);

			if (idx >= 0) {
				L->kind_of_needle[idx] = k;
				L->nstr[k]++;
			}
		}
	}
	if (!L->nstr[N_BFILE] && !L->nstr[N_OFILE] && !L->nstr[N_SSL_WRITE] &&
	    !L->nstr[N_SSL_READ] && !L->nstr[N_AEAD])
		return agt_seterr(err, errlen, -ENOENT,
				  "%s has no TLS library's error-site strings (ssl/ssl_lib.cc, "
				  "ssl/ssl_lib.c, SSL_write, SSL_read, cipher/aead.c)",
				  path);
	if (!(flags & AGT_LOCATE_NO_FDE))
		agt_img_load_fdes(&L->img);
	L->scan.use_fde = !(flags & AGT_LOCATE_NO_FDE) && agt_img_has_fdes(&L->img);
	snprintf(out->bounds, sizeof(out->bounds), "%s",
		 L->scan.use_fde ? "eh_frame" : "callgraph");
	if ((rc = agt_scan_run(&L->scan)))
		return agt_seterr(err, errlen, rc, "out of memory scanning %s", path);
	/* Only the references that can decide a role are followed to their functions:
	 * BoringSSL's file and OpenSSL's function names (its file is referenced from every
	 * error site of ssl_lib.c, hundreds). */
	for (int i = 0; i < L->scan.nrefs; i++) {
		int k = L->kind_of_needle[L->scan.refs[i].needle];

		if (k == N_OFILE)
			L->ofile_refs++;
		else
			agt_scan_add_starts_for(&L->scan, L->scan.refs[i].at);
	}
	if ((rc = agt_scan_callers(&L->scan)))
		return agt_seterr(err, errlen, rc, "out of memory scanning %s", path);
	for (int i = 0; i < L->scan.nrefs; i++) {
		int k = L->kind_of_needle[L->scan.refs[i].needle];
		int had = L->nfns;
		struct lfn *fn;

		if (k == N_OFILE)
			continue;
		fn = fn_for(L, L->scan.refs[i].at, k);
		if (fn && L->nfns > had)
			read_sites(L, fn);
	}
	if (L->bsites)
		rc = boringssl(L, out);
	else if (L->osites || L->ofile_refs)
		return openssl(L, out, err, errlen, path);
	else if (L->asites)
		return awslc(L, out, err, errlen, path);
	else
		return agt_seterr(err, errlen, -ENOENT,
				  "%s has TLS-like strings but no code raises errors with them, so "
				  "no TLS library is linked in",
				  path);
	if (rc)
		return agt_seterr(err, errlen, rc, "%s: BoringSSL found but refused: %s", path,
				  out->why_not);
	return 0;
}

int agt_locate_tls(const char *path, struct agt_tls_located *out, char *err, size_t errlen)
{
	return agt_locate_tls_flags(path, 0, out, err, errlen);
}

int agt_locate_tls_flags(const char *path, int flags, struct agt_tls_located *out, char *err,
			 size_t errlen)
{
	struct loc *L = calloc(1, sizeof(*L));
	int rc;

	memset(out, 0, sizeof(*out));
	if (!L)
		return agt_seterr(err, errlen, -ENOMEM, "out of memory locating TLS in %s", path);
	rc = locate(L, path, flags, out, err, errlen);
	for (int i = 0; i < L->nfns; i++)
		agt_func_free(&L->fns[i].f);
	agt_scan_free(&L->scan);
	agt_img_close(&L->img);
	free(L);
	if (rc)
		out->nsites = 0;
	return rc;
}

const char *agt_tls_role_name(int role)
{
	switch (role) {
	case AGT_TLS_WRITE: return "write";
	case AGT_TLS_READ: return "read";
	case AGT_TLS_SEAL: return "seal";
	case AGT_TLS_OPEN: return "open";
	default: return "?";
	}
}
