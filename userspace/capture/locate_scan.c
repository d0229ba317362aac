/* The locator's machine-code side: one linear pass over the executable segments finds the
 * references to the strings searched for (RIP-relative lea in PIE code, mov r32/r/m64 imm32 in
 * non-PIE code); a second one collects the direct calls (e8) whose targets lie within
 * AGT_MAX_FUNC of a followed reference, which give the candidate function starts and their
 * callers. Capstone then decodes only the candidate functions: their bounds (from .eh_frame,
 * else from the call graph and their own control flow), their calls, and the constant or
 * stack-address values in the argument registers on the way from each reference to its call.
 * Both passes are a SIMD compare or memchr over the code and touch little else: 327 MB of
 * code take about half a CPU second here. */
#include "capture/locate_int.h"
#include "base/log.h"
#include <capstone/capstone.h>
#include <emmintrin.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

int agt_scan_init(struct agt_scan *s, const struct agt_img *img, char *err, size_t errlen)
{
	csh h = 0, hd = 0;

	memset(s, 0, sizeof(*s));
	s->img = img;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK ||
	    cs_open(CS_ARCH_X86, CS_MODE_64, &hd) != CS_ERR_OK) {
		if (h)
			cs_close(&h);
		return agt_seterr(err, errlen, -ENOMEM, "cannot open the x86-64 disassembler");
	}
	cs_option(hd, CS_OPT_DETAIL, CS_OPT_ON);
	s->cs = (void *)(uintptr_t)h;
	s->cs_detail = (void *)(uintptr_t)hd;
	s->insn = cs_malloc(h);
	s->insn_detail = cs_malloc(hd);
	if (!s->insn || !s->insn_detail) {
		agt_scan_free(s);
		return agt_seterr(err, errlen, -ENOMEM, "out of memory for the disassembler");
	}
	return 0;
}

void agt_scan_free(struct agt_scan *s)
{
	csh h = (csh)(uintptr_t)s->cs, hd = (csh)(uintptr_t)s->cs_detail;

	if (s->insn)
		cs_free(s->insn, 1);
	if (s->insn_detail)
		cs_free(s->insn_detail, 1);
	if (h)
		cs_close(&h);
	if (hd)
		cs_close(&hd);
	for (int i = 0; i < AGT_IMG_MAX_SEGS; i++) {
		free(s->callmap[i]);
		free(s->window[i]);
	}
	free(s->calls);
	free(s->refs);
	free(s->starts);
	memset(s, 0, sizeof(*s));
}

int agt_scan_add_needle(struct agt_scan *s, uint64_t va, int follow)
{
	for (int i = 0; i < s->nneedles; i++)
		if (s->needles[i] == va)
			return i;
	if (s->nneedles == AGT_MAX_NEEDLES)
		return -1;
	s->follow[s->nneedles] = follow;
	s->filter[(va & 0xffff) >> 3] |= 1u << (va & 7);
	s->needles[s->nneedles] = va;
	return s->nneedles++;
}

static void add_ref(struct agt_scan *s, uint64_t at, uint64_t target)
{
	if (!(s->filter[(target & 0xffff) >> 3] & (1u << (target & 7))))
		return;
	for (int k = 0; k < s->nneedles; k++) {
		if (s->needles[k] != target)
			continue;
		if (s->nrefs == s->caprefs) {
			int cap = s->caprefs ? s->caprefs * 2 : 64;
			struct agt_ref *n = realloc(s->refs, cap * sizeof(*n));

			if (!n) {
				s->oom = 1;
				return;
			}
			s->refs = n;
			s->caprefs = cap;
		}
		s->refs[s->nrefs++] = (struct agt_ref){at, k};
		return;
	}
}

static int exec_seg_of(const struct agt_img *img, uint64_t va)
{
	for (int i = 0; i < img->nsegs; i++)
		if ((img->segs[i].flags & PF_X) && va >= img->segs[i].vaddr &&
		    va - img->segs[i].vaddr < img->segs[i].filesz)
			return i;
	return -1;
}

int agt_scan_is_call_target(const struct agt_scan *s, uint64_t va)
{
	int g = exec_seg_of(s->img, va);
	uint64_t b;

	if (g < 0 || !s->callmap[g])
		return 0;
	b = va - s->img->segs[g].vaddr;
	return s->window[g] && s->window[g][b >> 12] && ((s->callmap[g][b >> 3] >> (b & 7)) & 1);
}

static int in_window(const struct agt_scan *s, int g, uint64_t off)
{
	return s->window[g] && s->window[g][off >> 12];
}

static inline void mark_call(uint16_t *map, uint64_t o)
{
	uint16_t w = map[o >> 3], bit = 1u << (o & 7);

	map[o >> 3] = w | bit | ((w & bit) << 8);
}

/* Pass 1: references to the needles. 16 bytes at a time, the positions of the opcode bytes
 * that can start one (8d, c7, b8..bf) as a bit mask; only those are looked at. */
static void scan_refs(struct agt_scan *s, const uint8_t *p, uint64_t n, uint64_t va)
{
	for (uint64_t base = 0; base + 6 <= n; base += 16) {
		unsigned mask;

		if (base + 16 <= n) {
			__m128i v = _mm_loadu_si128((const __m128i *)(p + base));
			__m128i m =
			    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)0x8d)),
						      _mm_cmpeq_epi8(v, _mm_set1_epi8((char)0xc7))),
					 _mm_cmpeq_epi8(_mm_and_si128(v, _mm_set1_epi8((char)0xf8)),
							_mm_set1_epi8((char)0xb8)));

			mask = (unsigned)_mm_movemask_epi8(m);
		} else {
			mask = 0xffff;
		}
		while (mask) {
			uint64_t i = base + (unsigned)__builtin_ctz(mask);
			uint8_t b;

			mask &= mask - 1;
			if (i + 6 > n)
				break;
			b = p[i];
			if (b == 0x8d) { /* lea reg, [rip + disp32] */
				if ((p[i + 1] & 0xc7) == 0x05)
					add_ref(s, va + i,
						va + i + 6 + (int64_t)(int32_t)rd32(p + i + 2));
			} else if ((b & 0xf8) == 0xb8) { /* mov r32, imm32 */
				add_ref(s, va + i, rd32(p + i + 1));
			} else if (b == 0xc7) { /* mov r/m64 or r/m32, imm32 (register form) */
				if ((p[i + 1] & 0xf8) == 0xc0)
					add_ref(s, va + i, rd32(p + i + 2));
			}
		}
	}
}

static void add_call_pair(struct agt_scan *s, uint64_t at, uint64_t t)
{
	if (s->ncalls == s->capcalls) {
		size_t cap = s->capcalls ? s->capcalls * 2 : 4096;
		uint64_t(*n)[2] = realloc(s->calls, cap * sizeof(*n));

		if (!n) {
			s->oom = 1;
			return;
		}
		s->calls = n;
		s->capcalls = cap;
	}
	s->calls[s->ncalls][0] = at;
	s->calls[s->ncalls][1] = t;
	s->ncalls++;
}

int agt_scan_run(struct agt_scan *s)
{
	const struct agt_img *img = s->img;
	int any = 0;

	for (int g = 0; g < img->nsegs; g++) {
		if (!(img->segs[g].flags & PF_X))
			continue;
		s->scanned_bytes += img->segs[g].filesz;
		scan_refs(s, img->data + img->segs[g].off, img->segs[g].filesz, img->segs[g].vaddr);
	}
	if (s->oom)
		return -ENOMEM;
	/* the windows around the references that will be followed */
	for (int i = 0; i < s->nrefs; i++) {
		uint64_t at = s->refs[i].at, lo, hi, base;
		int g = exec_seg_of(img, at);

		if (g < 0 || !s->follow[s->refs[i].needle])
			continue;
		if (!s->window[g] &&
		    (!(s->window[g] = calloc((img->segs[g].filesz >> 12) + 1, 1)) ||
		     !(s->callmap[g] = calloc(img->segs[g].filesz / 8 + 1, sizeof(uint16_t)))))
			return -ENOMEM;
		base = img->segs[g].vaddr;
		lo = at - base > AGT_MAX_FUNC ? at - base - AGT_MAX_FUNC : 0;
		hi = at - base + AGT_MAX_FUNC;
		if (hi > img->segs[g].filesz)
			hi = img->segs[g].filesz;
		memset(s->window[g] + (lo >> 12), 1, (hi >> 12) - (lo >> 12) + 1);
		any = 1;
	}
	if (!any)
		return 0;
	/* Pass 2: direct calls into the windows. */
	for (int g = 0; g < img->nsegs; g++) {
		const struct agt_seg *sg = &img->segs[g];
		const uint8_t *p = img->data + sg->off, *q = p, *end = p + sg->filesz;

		if (!(sg->flags & PF_X))
			continue;
		while (end - q >= 5 && (q = memchr(q, 0xe8, end - q - 4)) != NULL) {
			uint64_t at = sg->vaddr + (q - p);
			uint64_t t = at + 5 + (int64_t)(int32_t)rd32(q + 1);
			int h = t - sg->vaddr < sg->filesz ? g : exec_seg_of(img, t);

			q++;
			if (h < 0 || !in_window(s, h, t - img->segs[h].vaddr))
				continue;
			mark_call(s->callmap[h], t - img->segs[h].vaddr);
			add_call_pair(s, at, t);
		}
	}
	return s->oom ? -ENOMEM : 0;
}

/* Is at an instruction boundary of the code around it? Decoding from 16 different bytes
 * before it, x86 code falls into step with the real instruction stream within a few
 * instructions; a byte inside another instruction is passed over by most of them. */
static int on_boundary(struct agt_scan *s, uint64_t at)
{
	csh h = (csh)(uintptr_t)s->cs;
	cs_insn *insn = s->insn;
	int hits = 0, tries = 0;

	for (uint64_t back = 40; back > 24; back--) {
		uint64_t addr = at - back;
		const uint8_t *code = agt_img_ptr(s->img, addr, back);
		size_t size = back + 15;

		if (!code || !agt_img_ptr(s->img, addr, size))
			continue;
		tries++;
		while (addr < at && size > 0) {
			if (!cs_disasm_iter(h, &code, &size, &addr, insn)) {
				code++; /* undecodable byte: step over it */
				size--;
				addr++;
			}
		}
		hits += addr == at;
	}
	return tries >= 8 && hits * 4 >= tries * 3;
}

static struct agt_start *find_start(const struct agt_scan *s, uint64_t va);

/* Another function's entry, for decoding that follows the control flow: a direct-call target
 * called from two places or more, or a candidate start with a confirmed caller. A target
 * called once and unconfirmed is likely bytes inside an instruction that look like a call. */
static int is_other_entry(const struct agt_scan *s, uint64_t va)
{
	int g = exec_seg_of(s->img, va);
	const struct agt_start *st;
	uint64_t b;

	if (g < 0 || !s->callmap[g])
		return 0;
	b = va - s->img->segs[g].vaddr;
	if (!in_window(s, g, b) || !((s->callmap[g][b >> 3] >> (b & 7)) & 1))
		return 0;
	if ((s->callmap[g][b >> 3] >> (8 + (b & 7))) & 1)
		return 1;
	st = find_start(s, va);
	return st && st->nverified > 0;
}

static struct agt_start *find_start(const struct agt_scan *s, uint64_t va)
{
	for (int i = 0; i < s->nstarts; i++)
		if (s->starts[i].va == va)
			return &s->starts[i];
	return NULL;
}

const struct agt_start *agt_scan_start(const struct agt_scan *s, uint64_t va)
{
	return find_start(s, va);
}

static void add_start(struct agt_scan *s, uint64_t va)
{
	if (find_start(s, va))
		return;
	if (s->nstarts == s->capstarts) {
		int cap = s->capstarts ? s->capstarts * 2 : 32;
		struct agt_start *n = realloc(s->starts, cap * sizeof(*n));

		if (!n) {
			s->oom = 1;
			return;
		}
		s->starts = n;
		s->capstarts = cap;
	}
	s->starts[s->nstarts++] = (struct agt_start){va, 0, 0, 0};
}

/* Up to this many direct-call targets below an address are candidates for its function. */
#define NEAREST_STARTS 4

void agt_scan_add_starts_for(struct agt_scan *s, uint64_t va)
{
	uint64_t fs, fe;
	int g = exec_seg_of(s->img, va), found = 0;

	if (s->use_fde) {
		if (!agt_ehf_lookup(s->img, va, &fs, &fe))
			add_start(s, fs);
		return;
	}
	if (g < 0 || !s->callmap[g])
		return;
	for (uint64_t o = va - s->img->segs[g].vaddr + 1; o-- > 0 && found < NEAREST_STARTS;) {
		if (va - (s->img->segs[g].vaddr + o) > AGT_MAX_FUNC)
			break;
		if (in_window(s, g, o) && ((s->callmap[g][o >> 3] >> (o & 7)) & 1)) {
			add_start(s, s->img->segs[g].vaddr + o);
			found++;
		}
	}
}

static int cmp_pair(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[1] != y[1] ? (x[1] < y[1] ? -1 : 1) : (x[0] < y[0] ? -1 : x[0] > y[0]);
}

int agt_scan_callers(struct agt_scan *s)
{
	if (!s->nstarts || !s->ncalls)
		return 0;
	qsort(s->calls, s->ncalls, sizeof(*s->calls), cmp_pair);
	for (int i = 0; i < s->nstarts; i++) {
		struct agt_start *st = &s->starts[i];
		size_t lo = 0, hi = s->ncalls;

		while (lo < hi) { /* the first call to st->va */
			size_t mid = lo + (hi - lo) / 2;

			if (s->calls[mid][1] < st->va)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < s->ncalls && s->calls[lo][1] == st->va; lo++) {
			st->ncallers++;
			if (st->ncallers <= AGT_VERIFY_CALLERS && on_boundary(s, s->calls[lo][0]) &&
			    !st->nverified++)
				st->caller = s->calls[lo][0];
		}
	}
	return 0;
}

/* Register numbers as the hardware has them (rax 0 ... r15 15) and the width written. */
static int reg_index(unsigned r, int *bits)
{
	static const struct {
		unsigned short r;
		signed char idx, bits;
	} map[] = {
	    {X86_REG_RAX, 0, 64},   {X86_REG_EAX, 0, 32},   {X86_REG_RCX, 1, 64},
	    {X86_REG_ECX, 1, 32},   {X86_REG_RDX, 2, 64},   {X86_REG_EDX, 2, 32},
	    {X86_REG_RBX, 3, 64},   {X86_REG_EBX, 3, 32},   {X86_REG_RSP, 4, 64},
	    {X86_REG_ESP, 4, 32},   {X86_REG_RBP, 5, 64},   {X86_REG_EBP, 5, 32},
	    {X86_REG_RSI, 6, 64},   {X86_REG_ESI, 6, 32},   {X86_REG_RDI, 7, 64},
	    {X86_REG_EDI, 7, 32},   {X86_REG_R8, 8, 64},    {X86_REG_R8D, 8, 32},
	    {X86_REG_R9, 9, 64},    {X86_REG_R9D, 9, 32},   {X86_REG_R10, 10, 64},
	    {X86_REG_R10D, 10, 32}, {X86_REG_R11, 11, 64},  {X86_REG_R11D, 11, 32},
	    {X86_REG_R12, 12, 64},  {X86_REG_R12D, 12, 32}, {X86_REG_R13, 13, 64},
	    {X86_REG_R13D, 13, 32}, {X86_REG_R14, 14, 64},  {X86_REG_R14D, 14, 32},
	    {X86_REG_R15, 15, 64},  {X86_REG_R15D, 15, 32}, {X86_REG_AX, 0, 16},
	    {X86_REG_CX, 1, 16},    {X86_REG_DX, 2, 16},    {X86_REG_BX, 3, 16},
	    {X86_REG_SI, 6, 16},    {X86_REG_DI, 7, 16},    {X86_REG_AL, 0, 8},
	    {X86_REG_CL, 1, 8},	    {X86_REG_DL, 2, 8},	    {X86_REG_BL, 3, 8},
	    {X86_REG_SIL, 6, 8},    {X86_REG_DIL, 7, 8},    {X86_REG_AH, 0, 8},
	    {X86_REG_CH, 1, 8},	    {X86_REG_DH, 2, 8},	    {X86_REG_BH, 3, 8},
	    {X86_REG_R8W, 8, 16},   {X86_REG_R9W, 9, 16},   {X86_REG_R8B, 8, 8},
	    {X86_REG_R9B, 9, 8},    {X86_REG_R10W, 10, 16}, {X86_REG_R11W, 11, 16},
	    {X86_REG_R10B, 10, 8},  {X86_REG_R11B, 11, 8},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (map[i].r == r) {
			*bits = map[i].bits;
			return map[i].idx;
		}
	return -1;
}

/* SysV argument registers: rdi, rsi, rdx, rcx, r8, r9. */
static const int arg_regs[6] = {7, 6, 2, 1, 8, 9};

static int is_stop(const cs_insn *in)
{
	return in->id == X86_INS_RET || in->id == X86_INS_INT3 || in->id == X86_INS_UD2 ||
	       in->id == X86_INS_HLT || in->id == X86_INS_RETF;
}

static int is_jump(csh h, const cs_insn *in)
{
	return cs_insn_group(h, in, X86_GRP_JUMP);
}

/* The direct target of a jump or call, 0 when indirect. */
static uint64_t direct_target(const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;

	return x->op_count == 1 && x->operands[0].type == X86_OP_IMM ? (uint64_t)x->operands[0].imm
								     : 0;
}

/* Mark the instructions of [lo, hi): 1 = instruction start, 2 = also the target of a jump
 * (or a start after code that does not fall through). Linear over an FDE's whole range, else
 * following the control flow from lo (not into other functions' call targets). */
static void mark_code(struct agt_scan *s, uint64_t lo, uint64_t hi, int linear, uint8_t *seen,
		      struct agt_func *f)
{
	csh h = (csh)(uintptr_t)s->cs_detail;
	cs_insn *in = s->insn_detail;
	uint64_t stack[512];
	int sp = 0;

	stack[sp++] = lo;
	while (sp > 0) {
		uint64_t addr = stack[--sp];
		const uint8_t *code;
		size_t size;

		if (addr < lo || addr >= hi)
			continue;
		if (seen[addr - lo] & 1) {
			seen[addr - lo] |= 2;
			continue;
		}
		seen[addr - lo] |= 2;
		size = hi - addr;
		code = agt_img_ptr(s->img, addr, size);
		if (!code) {
			f->bad++;
			continue;
		}
		int pad = 0; /* in nops right after a call */

		for (;;) {
			uint64_t at = addr, t;

			if (at >= hi)
				break;
			if (at != lo && !linear && is_other_entry(s, at))
				break; /* ran into another function */
			if (seen[at - lo] & 1)
				break;
			if (!cs_disasm_iter(h, &code, &size, &addr, in)) {
				f->bad++;
				break;
			}
			/* Padding up to a 16-byte boundary right after a call: the call did not
			 * return (abort, __stack_chk_fail) and the next function follows. */
			if (!linear && in->id == X86_INS_NOP &&
			    (pad || (at > lo && (seen[at - lo - 1] & 4)))) {
				pad = 1;
				if (!(addr & 15))
					break;
			} else {
				pad = 0;
			}
			seen[at - lo] |= 1;
			if (in->id == X86_INS_CALL && addr > lo && addr - 1 < hi)
				seen[addr - 1 - lo] |= 4; /* last byte of a call */
			if (addr > f->end)
				f->end = addr;
			if (is_jump(h, in)) {
				t = direct_target(in);
				if (t >= lo && t < hi &&
				    sp < (int)(sizeof(stack) / sizeof(stack[0])) &&
				    (t == lo || linear || !is_other_entry(s, t)))
					stack[sp++] = t;
				if (in->id == X86_INS_JMP) {
					if (linear)
						continue;
					break;
				}
			} else if (is_stop(in) && !linear) {
				break;
			}
		}
	}
}

static void add_call(struct agt_func *f, uint64_t at, uint64_t target, const struct agt_rv *regs,
		     int *cap)
{
	if (f->ncalls == *cap) {
		int ncap = *cap ? *cap * 2 : 16;
		struct agt_call *n = realloc(f->calls, ncap * sizeof(*n));

		if (!n)
			return;
		f->calls = n;
		*cap = ncap;
	}
	f->calls[f->ncalls].at = at;
	f->calls[f->ncalls].target = target;
	for (int i = 0; i < 6; i++)
		f->calls[f->ncalls].args[i] = regs[arg_regs[i]];
	f->ncalls++;
}

/* Tracked values: the 16 registers, then the value a push left on top of the stack (one deep:
 * code optimised for size loads small constants as `push imm; pop reg`). */
#define NRV 17
#define PUSHED 16

/* What one instruction does to the known register values: a constant, a stack address, or
 * nothing known. Calls are handled by the callers. */
static void step(csh h, const cs_insn *in, uint64_t next, struct agt_rv *r)
{
	const cs_x86 *x = &in->detail->x86;
	cs_regs rd, wr;
	uint8_t nrd = 0, nwr = 0;
	int bits, d;

	if (in->id == X86_INS_PUSH && x->op_count == 1) {
		const cs_x86_op *o = &x->operands[0];

		if (o->type == X86_OP_IMM)
			r[PUSHED] = (struct agt_rv){AGT_RV_IMM, (uint64_t)o->imm};
		else if (o->type == X86_OP_REG && (d = reg_index(o->reg, &bits)) >= 0 && bits == 64)
			r[PUSHED] = r[d];
		else
			r[PUSHED].kind = AGT_RV_UNK;
		return;
	}
	if (in->id == X86_INS_POP && x->op_count == 1 && x->operands[0].type == X86_OP_REG &&
	    (d = reg_index(x->operands[0].reg, &bits)) >= 0 && bits == 64 && d != 4) {
		r[d] = r[PUSHED];
		r[PUSHED].kind = AGT_RV_UNK;
		return;
	}
	if (cs_insn_group(h, in, X86_GRP_CALL) || in->id == X86_INS_POP ||
	    in->id == X86_INS_PUSHFQ || in->id == X86_INS_POPFQ)
		r[PUSHED].kind = AGT_RV_UNK;

	if (x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
	    (d = reg_index(x->operands[0].reg, &bits)) >= 0 && bits >= 32 && d != 4) {
		const cs_x86_op *o = &x->operands[1];
		uint64_t mask = bits == 32 ? 0xffffffffull : ~0ull;
		int srcbits, src;

		if (in->id == X86_INS_MOV && o->type == X86_OP_IMM) {
			r[d] = (struct agt_rv){AGT_RV_IMM, (uint64_t)o->imm & mask};
			return;
		}
		if (in->id == X86_INS_MOV && o->type == X86_OP_REG &&
		    (src = reg_index(o->reg, &srcbits)) >= 0 && srcbits == bits) {
			r[d] = r[src];
			if (bits == 32 && r[d].kind == AGT_RV_STACK)
				r[d].kind = AGT_RV_UNK;
			r[d].v &= mask;
			return;
		}
		if (in->id == X86_INS_XOR && o->type == X86_OP_REG &&
		    o->reg == x->operands[0].reg) {
			r[d] = (struct agt_rv){AGT_RV_IMM, 0};
			return;
		}
		if (in->id == X86_INS_LEA && o->type == X86_OP_MEM &&
		    o->mem.index == X86_REG_INVALID) {
			if (o->mem.base == X86_REG_RIP)
				r[d] = (struct agt_rv){AGT_RV_IMM,
						       (next + (uint64_t)o->mem.disp) & mask};
			else if ((o->mem.base == X86_REG_RSP || o->mem.base == X86_REG_RBP) &&
				 bits == 64)
				r[d] = (struct agt_rv){AGT_RV_STACK, 0};
			else
				r[d].kind = AGT_RV_UNK;
			return;
		}
	}
	if (cs_regs_access(h, in, rd, &nrd, wr, &nwr) != CS_ERR_OK) {
		for (int i = 0; i < 16; i++)
			if (i != 4)
				r[i].kind = AGT_RV_UNK;
		return;
	}
	for (int i = 0; i < nwr; i++)
		if ((d = reg_index(wr[i], &bits)) >= 0 && d != 4)
			r[d].kind = AGT_RV_UNK;
}

static void reset_regs(struct agt_rv *r)
{
	memset(r, 0, NRV * sizeof(*r));
	r[4].kind = AGT_RV_STACK; /* rsp */
}

static void after_call(struct agt_rv *r)
{
	for (int i = 0; i < 12; i++)
		if (i != 3 && i != 4 && i != 5) /* rbx, rsp, rbp are callee-saved */
			r[i].kind = AGT_RV_UNK;
	r[PUSHED].kind = AGT_RV_UNK;
}

/* Walk the marked instructions in address order, keeping what is known of each register
 * within straight-line code, and record each call with its argument registers. */
static void track(struct agt_scan *s, uint64_t lo, uint64_t hi, const uint8_t *seen,
		  struct agt_func *f)
{
	csh h = (csh)(uintptr_t)s->cs_detail;
	cs_insn *in = s->insn_detail;
	struct agt_rv r[NRV];
	uint64_t expect = 0;
	int cap = 0;

	for (uint64_t a = lo; a < hi; a++) {
		uint64_t addr = a;
		const uint8_t *code;
		size_t size = hi - a;

		if (!(seen[a - lo] & 1))
			continue;
		if ((seen[a - lo] & 2) || a != expect)
			reset_regs(r);
		code = agt_img_ptr(s->img, a, size);
		if (!code || !cs_disasm_iter(h, &code, &size, &addr, in))
			continue;
		expect = addr;
		if (in->id == X86_INS_CALL) {
			add_call(f, a, direct_target(in), r, &cap);
			after_call(r);
			continue;
		}
		step(h, in, addr, r);
	}
}

int agt_trace_call(struct agt_scan *s, const struct agt_func *f, uint64_t ref, struct agt_call *out)
{
	csh h = (csh)(uintptr_t)s->cs_detail;
	cs_insn *in = s->insn_detail;
	struct agt_rv r[NRV];
	uint64_t a = ref + 1, pc;
	int passed = 0;

	if (!f->seen || ref < f->start || ref - f->start >= f->seen_len)
		return -1;
	/* the instruction holding the reference, then back to its block's first instruction */
	while (a-- > f->start && ref - a < 15 && !(f->seen[a - f->start] & 1))
		;
	if (a < f->start || !(f->seen[a - f->start] & 1))
		return -1;
	for (int n = 0; n < 64 && !(f->seen[a - f->start] & 2); n++) {
		uint64_t b = a;

		while (b-- > f->start && a - b < 15 && !(f->seen[b - f->start] & 1))
			;
		if (b < f->start || !(f->seen[b - f->start] & 1))
			break;
		a = b;
	}
	reset_regs(r);
	pc = a;
	for (int n = 0; n < 96; n++) {
		uint64_t addr = pc;
		size_t size = 16;
		const uint8_t *code = agt_img_ptr(s->img, pc, size);

		if (!code) {
			size = 1;
			while (size < 16 && agt_img_ptr(s->img, pc, size + 1))
				size++;
			code = agt_img_ptr(s->img, pc, size);
		}
		if (!code || !cs_disasm_iter(h, &code, &size, &addr, in))
			return -1;
		if (pc <= ref && ref < addr)
			passed = 1;
		if (in->id == X86_INS_CALL) {
			if (passed) {
				out->at = pc;
				out->target = direct_target(in);
				for (int i = 0; i < 6; i++)
					out->args[i] = r[arg_regs[i]];
				return 0;
			}
			after_call(r);
		} else if (in->id == X86_INS_JMP) {
			uint64_t t = direct_target(in);

			if (!t || t < f->start || t >= f->end)
				return -1;
			addr = t;
		} else if (is_jump(h, in)) {
			if (passed)
				return -1; /* a branch between the load and its call */
		} else if (is_stop(in)) {
			return -1;
		} else {
			step(h, in, addr, r);
		}
		pc = addr;
	}
	return -1;
}

/* Decode [lo, hi) (an FDE's range when linear, else the control flow from lo). */
static int decode(struct agt_scan *s, uint64_t lo, uint64_t hi, int linear, struct agt_func *f)
{
	uint8_t *seen;

	memset(f, 0, sizeof(*f));
	f->start = lo;
	f->end = lo;
	f->from_fde = linear;
	if (hi <= lo || hi - lo > AGT_MAX_FUNC || !(seen = calloc(hi - lo, 1)))
		return -1;
	mark_code(s, lo, hi, linear, seen, f);
	track(s, lo, hi, seen, f);
	if (linear)
		f->end = hi;
	f->seen = seen;
	f->seen_len = hi - lo;
	return 0;
}

void agt_func_free(struct agt_func *f)
{
	free(f->calls);
	free(f->seen);
	f->calls = NULL;
	f->seen = NULL;
	f->ncalls = 0;
}

static uint64_t seg_end_of(const struct agt_img *img, uint64_t va)
{
	int g = exec_seg_of(img, va);

	return g < 0 ? va : img->segs[g].vaddr + img->segs[g].filesz;
}

/* Does decoding from lo (control flow) reach an instruction containing va? */
static int reaches(struct agt_scan *s, uint64_t lo, uint64_t va, struct agt_func *f)
{
	uint64_t hi = seg_end_of(s->img, lo);
	uint8_t *seen;
	int hit = 0;

	if (hi - lo > AGT_MAX_FUNC)
		hi = lo + AGT_MAX_FUNC;
	if (va < lo || va >= hi)
		return 0;
	memset(f, 0, sizeof(*f));
	f->start = f->end = lo;
	seen = calloc(hi - lo, 1);
	if (!seen)
		return 0;
	mark_code(s, lo, hi, 0, seen, f);
	/* va is the byte where a reference's encoding was found: inside some instruction whose
	 * start is at most 14 bytes before it */
	for (uint64_t a = va + 1; a-- > lo && va - a < 15 && !hit;)
		hit = seen[a - lo] & 1;
	if (hit)
		track(s, lo, hi, seen, f);
	f->seen = seen;
	f->seen_len = hi - lo;
	return hit;
}

int agt_func_at(struct agt_scan *s, uint64_t va, struct agt_func *f, char *why, size_t whylen)
{
	uint64_t fs, fe, best = 0;

	memset(f, 0, sizeof(*f));
	if (s->use_fde) {
		if (agt_ehf_lookup(s->img, va, &fs, &fe)) {
			agt_seterr(why, whylen, -1, "no .eh_frame entry covers 0x%lx",
				   (unsigned long)va);
			return -1;
		}
		if (decode(s, fs, fe, 1, f)) {
			agt_seterr(why, whylen, -1, "the .eh_frame entry at 0x%lx is not decodable",
				   (unsigned long)fs);
			return -1;
		}
		return 0;
	}
	/* The nearest candidate start below va with a caller confirmed by decoding. */
	for (int i = 0; i < s->nstarts; i++) {
		const struct agt_start *st = &s->starts[i];

		if (st->va <= va && va - st->va <= AGT_MAX_FUNC && st->nverified && st->va > best)
			best = st->va;
	}
	if (!best) {
		agt_seterr(why, whylen, -1,
			   "no directly called function starts within %u KiB below 0x%lx",
			   AGT_MAX_FUNC >> 10, (unsigned long)va);
		return -1;
	}
	if (!on_boundary(s, best) || !reaches(s, best, va, f) || f->bad) {
		agt_func_free(f);
		agt_seterr(why, whylen, -1,
			   "0x%lx is not reached by decoding from the nearest called function "
			   "start below it (0x%lx)",
			   (unsigned long)va, (unsigned long)best);
		return -1;
	}
	return 0;
}
