/* Internals of the TLS locator shared by its files: the mapped ELF image (locate_elf.c), the
 * linear scan for string references and direct calls and the decoding of single functions
 * (locate_scan.c), the library rules (locate.c) and the cache (locate_cache.c). Every read of
 * the file goes through agt_img_ptr, which bounds-checks it: the binary is untrusted input. */
#ifndef AGT_LOCATE_INT_H
#define AGT_LOCATE_INT_H
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define AGT_IMG_MAX_SEGS 32
#define AGT_MAX_NEEDLES 64
/* Largest function the locator will bound or decode. The TLS entry points are a few hundred
 * bytes to a few KiB; anything larger is not one of them. */
#define AGT_MAX_FUNC (64u << 10)

struct agt_seg {
	uint64_t vaddr, memsz, off, filesz;
	uint32_t flags; /* PF_R/PF_W/PF_X */
};

struct agt_img {
	const uint8_t *data; /* the whole file, mapped read-only */
	size_t size;
	int type; /* ET_EXEC or ET_DYN */
	struct agt_seg segs[AGT_IMG_MAX_SEGS];
	int nsegs;
	uint64_t ehf_vaddr, ehf_size; /* PT_GNU_EH_FRAME; 0 when absent */
	uint64_t (*fdes)[2]; /* without it: [start, end) of every FDE of .eh_frame, sorted */
	size_t nfdes;
	uint8_t build_id[64];
	size_t build_id_len;
	struct stat st; /* of the file opened */
};

int agt_img_open(const char *path, struct agt_img *img, char *err, size_t errlen);
void agt_img_close(struct agt_img *img);
/* Pointer to len file-backed bytes at vaddr, or NULL when they are not all in one segment. */
const uint8_t *agt_img_ptr(const struct agt_img *img, uint64_t vaddr, uint64_t len);
int agt_img_v2o(const struct agt_img *img, uint64_t vaddr, uint64_t *off);
int agt_img_is_exec(const struct agt_img *img, uint64_t vaddr);
/* Whether function bounds can come from unwind tables: .eh_frame_hdr's search table, else
 * the FDEs of the .eh_frame section (found through the section headers). */
int agt_img_has_fdes(const struct agt_img *img);
/* Read the .eh_frame section's FDEs when there is no .eh_frame_hdr (not done by open: a cache
 * lookup needs only the headers). */
void agt_img_load_fdes(struct agt_img *img);
/* Map in the whole file at once before scanning it (faulting page by page costs more). */
void agt_img_prefault(const struct agt_img *img);
/* The .eh_frame FDE covering pc: 0 with [*start, *end), -1 when there is none. */
int agt_ehf_lookup(const struct agt_img *img, uint64_t pc, uint64_t *start, uint64_t *end);

/* Every NUL-terminated string in read-only data whose text ends with suffix (when whole is 0)
 * or equals it (whole 1): the vaddr of each string's first byte, at most max of them in out;
 * returns how many there are (possibly more than max). */
int agt_find_strings(const struct agt_img *img, const char *suffix, int whole, uint64_t *out,
		     int max);

/* Register values while decoding: unknown, a constant, or an address in the stack frame. */
enum { AGT_RV_UNK, AGT_RV_IMM, AGT_RV_STACK };
struct agt_rv {
	int kind;
	uint64_t v;
};
/* One direct or indirect call inside a decoded function, with its argument registers. */
struct agt_call {
	uint64_t at;	 /* the call instruction */
	uint64_t target; /* 0: indirect */
	struct agt_rv args[6];
};

struct agt_func {
	uint64_t start, end; /* [start, end): bounds, or the decoded extent */
	int from_fde;
	struct agt_call *calls;
	int ncalls;
	int bad;       /* undecodable bytes met on a reachable path */
	uint8_t *seen; /* per byte from start: 1 instruction start, 2 jump target */
	uint64_t seen_len;
};

struct agt_ref {
	uint64_t at; /* vaddr of the byte that starts the reference's encoding */
	int needle;  /* index into the needles */
};

/* A function start the locator considered, with the direct calls made to it. */
struct agt_start {
	uint64_t va;
	int ncallers;	 /* e8 call instructions targeting it, as the linear scan sees them */
	int nverified;	 /* of those checked (at most AGT_VERIFY_CALLERS), confirmed by decoding */
	uint64_t caller; /* the first confirmed one */
};
#define AGT_VERIFY_CALLERS 8

/* The scan state: the needles (string addresses searched for), what the linear scan found,
 * the direct-call targets of the executable segments as one bitmap per segment, and the
 * function starts considered. */
struct agt_scan {
	const struct agt_img *img;
	uint64_t needles[AGT_MAX_NEEDLES];
	int nneedles;
	uint8_t filter[8192]; /* bit per low 16 bits of a needle */
	struct agt_ref *refs;
	int nrefs, caprefs;
	uint8_t follow[AGT_MAX_NEEDLES]; /* references to it are followed to their functions */
	/* Direct-call targets near the followed references (the windows: AGT_MAX_FUNC either
	 * side of each), per executable segment: one 16-bit word per 8 bytes of code, bit k for
	 * byte k called, bit 8 + k for called from two places or more. Elsewhere unknown. */
	uint16_t *callmap[AGT_IMG_MAX_SEGS];
	uint8_t *window[AGT_IMG_MAX_SEGS]; /* per 4 KiB page: inside a window */
	uint64_t (*calls)[2];		   /* [call site, target] of every call into a window */
	size_t ncalls, capcalls;
	struct agt_start *starts;
	int nstarts, capstarts;
	void *cs, *cs_detail;	  /* capstone handles (csh): without and with details */
	void *insn, *insn_detail; /* their cs_insn buffers */
	int use_fde;		  /* function bounds from .eh_frame */
	uint64_t scanned_bytes;
	int oom;
};

int agt_scan_init(struct agt_scan *s, const struct agt_img *img, char *err, size_t errlen);
void agt_scan_free(struct agt_scan *s);
int agt_scan_add_needle(struct agt_scan *s, uint64_t va, int follow);
/* The linear scans: references to the needles (RIP-relative lea, mov r32/r/m64 imm32), then
 * the direct calls (e8) whose targets are near the followed references. */
int agt_scan_run(struct agt_scan *s);
int agt_scan_is_call_target(const struct agt_scan *s, uint64_t va);
/* Candidate starts of the function containing va: its FDE's start, or (no unwind tables) the
 * nearest direct-call targets below it. Call agt_scan_callers once all are added. */
void agt_scan_add_starts_for(struct agt_scan *s, uint64_t va);
/* The direct calls to every candidate start, each call confirmed by decoding the bytes before
 * it (they must fall on an instruction boundary there). */
int agt_scan_callers(struct agt_scan *s);
const struct agt_start *agt_scan_start(const struct agt_scan *s, uint64_t va);
/* The function containing va, decoded into f (free with agt_func_free): bounds from its FDE,
 * else the nearest candidate start with a confirmed caller from which decoding the control
 * flow reaches va. 0, or -1 with a reason in why. */
int agt_func_at(struct agt_scan *s, uint64_t va, struct agt_func *f, char *why, size_t whylen);
void agt_func_free(struct agt_func *f);
/* The call that the code loading a reference at ref (inside f) leads to: from the start of
 * ref's basic block, through fallthrough and unconditional jumps, to the first call after ref;
 * out gets its argument registers. 0, or -1 when no such straight path is found. */
int agt_trace_call(struct agt_scan *s, const struct agt_func *f, uint64_t ref,
		   struct agt_call *out);

/* agt_locate_tls with flags; AGT_LOCATE_NO_FDE ignores unwind tables (bounds from the call
 * graph only), so tests can check that both ways agree. */
#define AGT_LOCATE_NO_FDE 1
struct agt_tls_located;
int agt_locate_tls_flags(const char *path, int flags, struct agt_tls_located *out, char *err,
			 size_t errlen);
#endif
