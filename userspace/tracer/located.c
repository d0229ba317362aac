/* Probe specs with "locate": TLS functions in stripped, statically linked executables, found by
 * the TLS locator (capture/locate.h) instead of by name. Each file is located once per run
 * (and once per binary across runs, through the locator's cache); what the locator refuses is
 * never probed: it is warned about and said again in the run's summary. */
#include "tracer/run.h"
#include "base/log.h"
#include "base/util.h"
#include "capture/elfsym.h"
#include "capture/locate.h"
#include "capture/spec.h"
#include "aead.skel.h"
#include "tls.skel.h"
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct agt_located_memo {
	uint64_t dev, ino;
	int named; /* the file names SSL_write/SSL_read itself: not located (see has_ssl_symbols) */
	int rc;
	double ms; /* time the lookup (scan or cache) took */
	int said;  /* its "located in" line was written (once per file: each process is dbg) */
	struct agt_tls_located res;
	uint64_t at[4]; /* where each site's probes go (agt_elf_probe_site): once per file */
	char err[768];
};

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Whether the object names the SSL functions itself: then the symbol-based specs probe them
 * (node links OpenSSL in with its symbols), and locating would probe the same calls twice. */
static int has_ssl_symbols(const char *host)
{
	static const char *const names[] = {"SSL_write", "SSL_read"};

	for (size_t i = 0; i < AGT_ARRAY_SIZE(names); i++) {
		struct agt_sym *syms;
		int n;

		if (!agt_elf_find_funcs(host, names[i], &syms, &n, NULL, 0)) {
			agt_syms_free(syms, n);
			return 1;
		}
	}
	return 0;
}

/* The locator's answer for the file at host, asked once per file and run (a process caught
 * at exec pays a stat and a lookup here, not an ELF parse). */
static struct agt_located_memo *located(struct attach_run *r, const char *host)
{
	struct agt_located_memo *m, *nm;
	struct stat st;
	double t0;

	if (stat(host, &st))
		return NULL;
	for (int i = 0; i < r->nlocated; i++)
		if (r->located[i].dev == st.st_dev && r->located[i].ino == st.st_ino)
			return &r->located[i];
	if (!(nm = realloc(r->located, (r->nlocated + 1) * sizeof(*nm))))
		return NULL;
	r->located = nm;
	m = &r->located[r->nlocated++];
	memset(m, 0, sizeof(*m));
	m->dev = st.st_dev;
	m->ino = st.st_ino;
	if ((m->named = has_ssl_symbols(host)))
		return m;
	t0 = now_ms();
	m->rc = agt_locate_tls_cached(host, NULL, &m->res, m->err, sizeof(m->err));
	for (int i = 0; !m->rc && i < m->res.nsites; i++)
		m->at[i] = agt_elf_probe_site(host, m->res.sites[i].offset, m->res.sites[i].size);
	m->ms = now_ms() - t0;
	return m;
}

void agt_located_free(struct attach_run *r)
{
	free(r->located);
	r->located = NULL;
	r->nlocated = 0;
}

static const struct agt_tls_site *site_for(const struct agt_tls_located *res, int role)
{
	for (int i = 0; i < res->nsites; i++)
		if (res->sites[i].role == role)
			return &res->sites[i];
	return NULL;
}

/* One located function: the handler's program(s) at its entry (and return), both at "at"
 * (the entry, or past an endbr64). */
static int attach_site(struct attach_run *r, struct agt_proc *proc, struct agt_obj *o,
		       const struct agt_spec *spec, const struct agt_probe_spec *ps,
		       const struct agt_tls_site *site, uint64_t at, const char *host,
		       const char *mapped)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo);
	struct agt_probe_info *pi = agt_probe_id_for(r, spec, ps, site->name, mapped);
	int pid = proc->info.pid, rc;
	uint32_t flags = ps->handler->cookie;
	struct bpf_program *entry, *ret = NULL;
	char what[200], err[512];

	if (!pi) {
		agt_err("more than %d distinct probes requested", AGT_MAX_PROBES);
		return -EINVAL;
	}
	if (ps->handler->kind == AGT_HK_AEAD) {
		if (!r->cap.aead) {
			agt_err("%s: the AEAD capture is not loaded", spec->file);
			return -EINVAL;
		}
		if (site->role == AGT_TLS_SEAL) {
			entry = r->cap.aead->progs.aead_seal;
		} else {
			entry = r->cap.aead->progs.aead_open_entry;
			ret = r->cap.aead->progs.aead_open_return;
		}
		if ((rc = agt_capture_aead_watch(&r->cap, pid, err, sizeof(err)))) {
			agt_err("%s", err);
			return rc;
		}
	} else {
		/* The handler says how the length comes back; the site must agree. */
		if (!!(flags & AGT_TLS_COOKIE_EX) != (site->conv == AGT_TLS_CONV_EX)) {
			agt_err("%s: handler \"%s\" does not read %s's arguments as the locator "
				"found them; use a handler for %s",
				spec->file, ps->handler->name, site->name,
				site->conv == AGT_TLS_CONV_EX ? "an out-length (ssl_write_internal)"
							      : "an int length (ssl_write)");
			return -EINVAL;
		}
		if (site->conv == AGT_TLS_CONV_EX && site->outlen_arg == 4)
			flags |= AGT_TLS_COOKIE_OUTLEN_R8;
		entry = r->cap.tls->progs.tls_entry;
		ret = r->cap.tls->progs.tls_return;
	}
	uo.bpf_cookie = pi->id | flags;
	snprintf(what, sizeof(what), "uprobe on %s (located at offset 0x%llx)", site->name,
		 (unsigned long long)at);
	rc = agt_obj_link(o, proc, bpf_program__attach_uprobe_opts(entry, pid, host, at, &uo), what,
			  mapped);
	if (rc || !ret)
		return rc;
	uo.retprobe = true;
	snprintf(what, sizeof(what), "uretprobe on %s (located at offset 0x%llx)", site->name,
		 (unsigned long long)at);
	return agt_obj_link(o, proc, bpf_program__attach_uprobe_opts(ret, pid, host, at, &uo), what,
			    mapped);
}

static void refuse(struct attach_run *r, const struct agt_proc *proc, const char *mapped,
		   const struct agt_located_memo *m)
{
	char line[sizeof(r->refused[0])];

	snprintf(line, sizeof(line), "%s in %.200s: %.400s", m->res.library, mapped,
		 m->res.why_not[0] ? m->res.why_not : m->err);
	for (int i = 0; i < r->nrefused; i++)
		if (!strcmp(r->refused[i], line))
			return;
	agt_warn("PID %d (%s): %s found but not probed (a wrong offset is never probed): %s; "
		 "`agtrace probes locate %s` tells more",
		 proc->info.pid, proc->info.comm, m->res.library, line, mapped);
	if (r->nrefused < (int)AGT_ARRAY_SIZE(r->refused))
		snprintf(r->refused[r->nrefused++], sizeof(r->refused[0]), "%s", line);
}

/* Whether the library the locator found in the file is the one spec names. */
static int spec_takes(const struct agt_spec *spec, const struct agt_located_memo *m)
{
	return !strcmp(m->res.library, spec->locate) ||
	       (!strcmp(spec->locate, "openssl3") && !strncmp(m->res.library, "openssl", 7));
}

int agt_located_found(struct attach_run *r, const struct agt_spec *spec, const char *host)
{
	const struct agt_located_memo *m = located(r, host);

	return m && !m->named && !m->rc && spec_takes(spec, m);
}

int agt_attach_located(struct attach_run *r, struct agt_proc *proc, struct agt_obj *o,
		       const struct agt_spec *spec, int soft, const char *host, const char *mapped)
{
	struct agt_located_memo *m;
	int rc = 0, before = o->nlinks;

	if (!(m = located(r, host))) {
		agt_warn("PID %d (%s): cannot look for TLS in %s: %s", proc->info.pid,
			 proc->info.comm, mapped, strerror(errno));
		return 0;
	}
	if (m->named) {
		agt_dbg("%s: PID %d: %s names SSL_write/SSL_read: the symbol specs probe it",
			spec->name, proc->info.pid, mapped);
		return 0;
	}
	if (!spec_takes(spec, m)) {
		if (soft) {
			agt_dbg("%s: PID %d: %s", spec->name, proc->info.pid,
				m->rc ? m->err : "another library located there");
			return 0;
		}
		agt_err("PID %d (%s): %s: no %s located in %s%s%s", proc->info.pid, proc->info.comm,
			spec->file, spec->locate, mapped, m->rc ? ": " : "", m->rc ? m->err : "");
		return -ENOENT;
	}
	if (m->rc) {
		refuse(r, proc, mapped, m);
		return soft ? 0 : -EINVAL;
	}
	for (int i = 0; i < spec->nprobes && !rc; i++) {
		const struct agt_probe_spec *ps = &spec->probes[i];
		const struct agt_tls_site *site = site_for(&m->res, ps->role);

		if (!site) {
			agt_err("%s: $.probes[%d]: the locator finds no %s function in %s (%s)",
				spec->file, i, agt_tls_role_name(ps->role), m->res.library, mapped);
			return -EINVAL;
		}
		rc = attach_site(r, proc, o, spec, ps, site, m->at[site - m->res.sites], host,
				 mapped);
	}
	if (!rc && o->nlinks > before) {
		char where[400] = "";
		size_t n = 0;

		for (int i = 0; i < m->res.nsites && n < sizeof(where); i++)
			n += snprintf(where + n, sizeof(where) - n, "%s%s at 0x%llx", i ? ", " : "",
				      m->res.sites[i].name,
				      (unsigned long long)m->res.sites[i].offset);
		/* Said once per file: a shell running Bun a hundred times says it once. */
		agt_log(m->said ? AGT_LOG_DEBUG : AGT_LOG_INFO,
			"PID %d (%s): %s located in %s (%s, %.0f ms): %s", proc->info.pid,
			proc->info.comm, m->res.library, mapped,
			m->res.from_cache ? "from the cache" : "scanned", m->ms, where);
		m->said = 1;
	}
	return rc;
}
