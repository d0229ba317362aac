/* Probe specs: declarative JSON files (the .json files in probes/) saying where to attach and what
 * to record. */
#ifndef AGT_SPEC_H
#define AGT_SPEC_H
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include "agtrace.h"
#include "capture/handlers.h"

#define AGT_NAME_LEN 48

struct agt_value_spec {
	char name[AGT_NAME_LEN];
	enum agt_value_kind kind;
};

struct agt_probe_spec {
	char **symbols; /* function names or globs; NULL for USDT */
	int nsymbols;
	char *usdt_provider, *usdt_name;	 /* USDT entry marker */
	char *ret_usdt_provider, *ret_usdt_name; /* optional USDT marker that closes the span */
	char *span;				 /* span name template; {symbol} is replaced */
	const char *trace_type;			 /* one of agt_trace_types */
	struct agt_value_spec args[AGT_MAX_ARGS];
	int nargs;
	struct agt_value_spec ret; /* kind NONE: no return value recorded */
	enum agt_ret_mode ret_mode;
	enum agt_abi abi;
	const struct agt_handler *handler; /* NULL: a function span; else a capture program */
	int role; /* located specs: the function the locator finds (enum agt_tls_role); else 0 */
	/* A role probe of a spec with a "funnel": the symbol probes it replaces in an object
	 * where the locator finds its function (e.g. SSL_read and SSL_read_ex, which both call
	 * ssl_read_internal). */
	char **instead_of;
	int ninstead_of;
};

struct agt_spec {
	char *file;	   /* where it came from, for messages */
	char *name;	   /* short name, e.g. python-gc */
	char *description; /* one line for `probes list` */
	int auto_attach;   /* attached by `attach -p PID` alone, to targets that map it */
	char *locate;	   /* NULL, or the library the TLS locator must find in the object
			    * (capture/locate.h: boringssl, openssl3, aws-lc); its probes name
			    * roles (write, read, seal, open) instead of symbols */
	char *funnel;	   /* NULL, or the library (as for locate) whose internal functions the
			    * spec's role probes take in place of the exported ones their
			    * "instead_of" names, in each object where the locator finds them
			    * (one cheaper probe per direction for every API; tracer/probes.c) */
	char **targets;	   /* object globs in the target's maps, absolute paths, or "$exe" */
	int ntargets;
	struct agt_probe_spec *probes;
	int nprobes;
	int runtime; /* runtime metrics: attached whenever they are on, with --probes too */
};

extern const char *const agt_trace_types[7];

/* One attached probe id: a spec probe resolved to one symbol (or marker) in one object. The
 * attach cookie of its links; the decoder turns its events into spans with these names. */
struct agt_probe_info {
	uint32_t id;
	const struct agt_spec *spec;
	const struct agt_probe_spec *ps;
	char symbol[128];      /* function name, or provider:name for USDT */
	char span_name[160];   /* the spec's span template, rendered */
	char object[PATH_MAX]; /* the file as the target maps it */
};

/* Each returns 0, or a negative errno with one sentence in err naming file and JSON path. */
int agt_spec_load(const char *path, struct agt_spec *out, char *err, size_t errlen);
int agt_spec_parse(const char *json, const char *file, struct agt_spec *out, char *err,
		   size_t errlen);
/* The one-off form PATH:SYMBOL (PATH: absolute path or library name/glob; SYMBOL: name/glob). */
int agt_spec_from_uprobe(const char *arg, struct agt_spec *out, char *err, size_t errlen);
void agt_spec_free(struct agt_spec *s);

const char *agt_value_kind_name(enum agt_value_kind k);

/* The folder of shipped probe specs: $AGTRACE_PROBES_DIR, else probes/ beside the binary, else
 * /usr/share/agtrace/probes. Writes it to buf; 0 when it exists. */
int agt_probes_dir(char *buf, size_t n);
/* Path of the shipped spec whose file is NAME.json or whose "name" is NAME; 0 when found. */
int agt_spec_find_shipped(const char *name, char *path, size_t n);
/* Calls fn for every shipped spec file, sorted by name; stops when fn returns non-zero. */
int agt_spec_for_each_shipped(int (*fn)(const char *path, void *arg), void *arg);
#endif
