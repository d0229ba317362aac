/* Handlers: probes whose events go to a capture program instead of becoming function spans. One
 * row per handler says everything agtrace must know to use it: the name a probe spec gives in
 * "handler", the attach-cookie flags the BPF program reads (bpf/agtrace.h), how the call's return
 * is caught, where its arguments are, and what an entry and its return are matched by. Spec
 * parsing (capture/spec.c) and attaching (the probes code) both read this table: a TLS library
 * whose functions look like one of these is a probe spec and nothing else; one whose do not is
 * a row here (and, if the BPF program cannot read it yet, a flag it learns). */
#ifndef AGT_HANDLERS_H
#define AGT_HANDLERS_H
#include <stddef.h>
#include <stdint.h>
#include "agtrace.h"

enum agt_ret_mode {
	AGT_RET_URETPROBE = 0, /* uretprobe (default for C/C++) */
	AGT_RET_INSN = 1,      /* uprobe on every return instruction: safe for Go */
	AGT_RET_NONE = 2,      /* entry only: an instant event */
};

enum agt_handler_kind {
	AGT_HK_TLS = 0,	      /* plaintext of a TLS library: the TLS capture program */
	AGT_HK_PY_AUDIT = 1,  /* USDT python:audit: events on the tool call they happen in */
	AGT_HK_RUNTIME = 2,   /* a runtime's GC or event loop: counted for metrics (bpf/rt.bpf.c) */
	AGT_HK_AEAD = 3,      /* one TLS record's AEAD seal/open: the AEAD capture program */
	AGT_HK_TLS_CLOSE = 4, /* a TLS library frees or shuts down a connection: it is over */
	AGT_HK_LOADER = 5,    /* the dynamic loader's list of objects changed: libraries loaded */
};

/* What matches a call's return to its entry. */
enum agt_call_key {
	AGT_KEY_THREAD = 0,    /* the thread (C libraries: a call returns on its thread) */
	AGT_KEY_GOROUTINE = 1, /* the goroutine (Go: a call may return on another thread) */
};

struct agt_handler {
	const char *name; /* the probe spec's "handler" value */
	enum agt_handler_kind kind;
	uint32_t cookie;	/* AGT_TLS_COOKIE_* flags, or'ed into the attach cookie */
	enum agt_ret_mode ret;	/* how the return is caught */
	enum agt_abi abi;	/* where the arguments are */
	enum agt_call_key key;	/* what an entry and its return are matched by */
	const char *does;	/* one line: what it captures, for messages and `probes list` */
	const char *stack;	/* the TLS stack it belongs to, for the attach report ("OpenSSL") */
	int marker;		/* goes with a USDT marker ("usdt"), not with "symbols" */
};

/* The handler of this name, or NULL. */
const struct agt_handler *agt_handler_find(const char *name);
/* "ssl_write, ssl_read, ..." (every name, for messages). */
void agt_handler_list(char *buf, size_t n);
#endif
