/* Probe specs onto target processes: the specs to use, resolving each spec's objects in a target
 * (mapped files through /proc/PID/map_files, or found in its filesystem), and the uprobes, TLS
 * probes and USDT probes attached to them. */
#include "tracer/run.h"
#include "base/log.h"
#include "base/util.h"
#include "capture/elfsym.h"
#include "capture/spec.h"
#include "capture/runtime.h"
#include "rt.skel.h"
#include "func.skel.h"
#include "tls.skel.h"
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int load_auto_one(const char *path, void *arg)
{
	struct attach_run *r = arg;
	char err[512];

	if (r->nspecs == (int)AGT_ARRAY_SIZE(r->specs))
		return 1;
	if (agt_spec_load(path, &r->specs[r->nspecs], err, sizeof(err))) {
		agt_warn("skipping a broken shipped spec: %s", err);
		return 0;
	}
	if (r->specs[r->nspecs].auto_attach)
		r->nspecs++;
	else
		agt_spec_free(&r->specs[r->nspecs]);
	return 0;
}

/* No --probes and no --uprobe: the shipped specs marked "auto", on whatever each target maps. */
static int load_auto_specs(struct attach_run *r)
{
	r->auto_mode = 1;
	agt_spec_for_each_shipped(load_auto_one, r);
	if (!r->nspecs) {
		agt_err(
		    "no built-in probe specs found (see `agtrace probes list`); give --probes FILE "
		    "or --uprobe PATH:SYMBOL");
		return -EINVAL;
	}
	return 0;
}

static int load_runtime_one(const char *path, void *arg)
{
	struct attach_run *r = arg;
	struct agt_spec *sp = &r->specs[r->nspecs];
	char err[512];

	if (r->nspecs == (int)AGT_ARRAY_SIZE(r->specs))
		return 1;
	if (agt_spec_load(path, sp, err, sizeof(err)))
		return 0; /* load_auto_one says so */
	for (int i = 0; sp->runtime && i < r->nspecs; i++)
		if (!strcmp(r->specs[i].name, sp->name))
			sp->runtime = 0; /* given with --probes already */
	if (sp->runtime)
		r->nspecs++;
	else
		agt_spec_free(sp);
	return 0;
}

/* Runtime metrics on: the shipped specs marked "runtime" too, whatever else is given. */
static void load_runtime_specs(struct attach_run *r)
{
	if (r->o.runtime_metrics > 0)
		agt_spec_for_each_shipped(load_runtime_one, r);
}

int agt_attach_load_specs(struct attach_run *r)
{
	char err[512], path[4096];
	int rc;

	if (!r->o.nspec_args && !r->o.nuprobe_args) {
		if (!(rc = load_auto_specs(r)))
			load_runtime_specs(r);
		return rc;
	}

	for (int i = 0; i < r->o.nspec_args; i++) {
		const char *arg = r->o.spec_args[i];

		if (!strchr(arg, '/') && access(arg, F_OK) &&
		    !agt_spec_find_shipped(arg, path, sizeof(path)))
			arg = path;
		if (agt_spec_load(arg, &r->specs[r->nspecs], err, sizeof(err))) {
			agt_err("%s", err);
			return -EINVAL;
		}
		r->nspecs++;
	}
	for (int i = 0; i < r->o.nuprobe_args; i++) {
		if (agt_spec_from_uprobe(r->o.uprobe_args[i], &r->specs[r->nspecs], err,
					 sizeof(err))) {
			agt_err("%s", err);
			return -EINVAL;
		}
		r->nspecs++;
	}
	load_runtime_specs(r);
	return 0;
}

/* The probe id for (probe spec, symbol, object); shared by every target mapping that object. */
static struct agt_probe_info *probe_id_for(struct attach_run *r, const struct agt_spec *spec,
					   const struct agt_probe_spec *ps, const char *symbol,
					   const char *object)
{
	struct agt_probe_info *pi, **np;
	const char *tpl;
	size_t used = 0;

	for (uint32_t i = 0; i < r->nprobes; i++) {
		pi = r->probes[i];
		if (pi->ps == ps && !strcmp(pi->symbol, symbol) && !strcmp(pi->object, object))
			return pi;
	}
	if (r->nprobes >= AGT_MAX_PROBES)
		return NULL;
	np = realloc(r->probes, (r->nprobes + 1) * sizeof(*np));
	if (!np || !(pi = calloc(1, sizeof(*pi))))
		return NULL;
	r->probes = np;
	pi->id = r->nprobes;
	pi->spec = spec;
	pi->ps = ps;
	snprintf(pi->symbol, sizeof(pi->symbol), "%s", symbol);
	snprintf(pi->object, sizeof(pi->object), "%s", object);
	/* Render the span template: {symbol} becomes the function (or marker) name. */
	for (tpl = ps->span; *tpl && used + 1 < sizeof(pi->span_name);) {
		if (!strncmp(tpl, "{symbol}", 8)) {
			used += snprintf(pi->span_name + used, sizeof(pi->span_name) - used, "%s",
					 symbol);
			if (used >= sizeof(pi->span_name))
				used = sizeof(pi->span_name) - 1;
			tpl += 8;
		} else {
			pi->span_name[used++] = *tpl++;
		}
	}
	pi->span_name[used] = 0;
	r->probes[r->nprobes++] = pi;
	return pi;
}

static int add_link(struct attach_run *r, struct bpf_link *l, int target, const char *what,
		    const char *path)
{
	struct bpf_link **nl;
	struct agt_proc **no;
	int e = errno;

	if (!l) {
		agt_err("cannot attach %s in %s (PID %d): %s; run `agtrace check` and retry with "
			"-v for "
			"libbpf's log",
			what, path, r->tg.v[target]->info.pid, strerror(e));
		return -EINVAL;
	}
	if (r->nlinks == MAX_LINKS) {
		bpf_link__destroy(l);
		agt_err("more than %d probe links requested; narrow the symbol globs", MAX_LINKS);
		return -EINVAL;
	}
	nl = realloc(r->links, (r->nlinks + 1) * sizeof(*nl));
	if (nl)
		r->links = nl;
	no = realloc(r->link_owner, (r->nlinks + 1) * sizeof(*no));
	if (no)
		r->link_owner = no;
	if (!nl || !no) {
		bpf_link__destroy(l);
		return -EINVAL;
	}
	r->link_owner[r->nlinks] = r->tg.v[target];
	r->links[r->nlinks++] = l;
	r->tg.v[target]->nlinks++;
	return 0;
}

static int write_cfg(struct attach_run *r, const struct agt_probe_info *pi)
{
	struct agt_probe_cfg cfg = {
	    .nargs = pi->ps->nargs,
	    .ret_kind = pi->ps->ret.kind,
	    .abi = pi->ps->abi,
	    .valid = 1,
	    .source = pi->ps->handler && pi->ps->handler->kind == AGT_HK_PY_AUDIT ? AGT_SS_PYTHON
										  : AGT_SS_FUNC};
	uint32_t key = pi->id;

	for (int i = 0; i < pi->ps->nargs; i++)
		cfg.arg_kind[i] = pi->ps->args[i].kind;
	if (bpf_map__update_elem(r->cap.func->maps.probe_cfg, &key, sizeof(key), &cfg, sizeof(cfg),
				 0)) {
		agt_err("cannot write the probe configuration map: %s", strerror(errno));
		return -EINVAL;
	}
	return 0;
}

/* Runtime metrics: the kind of runtime process pid is, in the counters' map (created when it
 * is not there yet). */
static void rt_mark(struct attach_run *r, uint32_t pid, uint32_t kind)
{
	struct bpf_map *m = r->cap.rt->maps.rt_stats;
	struct agt_rt_stats st;

	if (bpf_map__lookup_elem(m, &pid, sizeof(pid), &st, sizeof(st), 0))
		memset(&st, 0, sizeof(st));
	if (st.kind == kind)
		return;
	st.kind = kind;
	bpf_map__update_elem(m, &pid, sizeof(pid), &st, sizeof(st), 0);
}

/* A runtime metrics probe (bpf/rt.bpf.c) on one function: the event is the cookie. Go binaries
 * of versions whose runtime agtrace does not know are refused (said once per binary); the poll
 * probes go only to processes whose executable runs libuv's loop. */
static int attach_runtime(struct attach_run *r, int t, const struct agt_probe_spec *ps,
			  const char *host, const char *mapped, const struct agt_sym *sym)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo);
	const struct agt_handler *h = ps->handler;
	struct agt_proc *proc = r->tg.v[t];
	int pid = proc->info.pid, rc = 0;
	char what[200], err[512], ver[64];
	uint32_t kind = h->abi == AGT_ABI_GO ? AGT_RT_GO : AGT_RT_NODE;

	if (!r->cap.rt)
		return 0;
	if (h->abi == AGT_ABI_GO) {
		int cov = agt_rt_go_covered(host, ver, sizeof(ver));

		if (cov < 0)
			return 0;
		if (!cov) {
			if (h->cookie == AGT_RT_GO_GC_CYCLE)
				agt_warn("PID %d (%s): built by Go %s; agtrace's Go runtime metrics "
					 "cover Go 1.%d to 1.%d (the runtime functions they probe), so "
					 "its GC and goroutines are not measured",
					 pid, proc->info.comm, ver, AGT_RT_GO_MIN_MINOR,
					 AGT_RT_GO_MAX_MINOR);
			return 0;
		}
	}
	if (h->cookie == AGT_RT_NODE_POLL) {
		char exe[4096 + 64], exe_mapped[4096];

		if (agt_proc_resolve(proc, "$exe", exe, sizeof(exe), exe_mapped, sizeof(exe_mapped),
				     err, sizeof(err)) ||
		    !agt_rt_has_libuv(exe))
			return 0;
	}
	rt_mark(r, (uint32_t)pid, kind);
	uo.bpf_cookie = h->cookie;
	if (h->ret != AGT_RET_INSN) {
		uint64_t entry = h->abi == AGT_ABI_GO ? agt_elf_go_entry_offset(host, sym)
						      : sym->offset;

		snprintf(what, sizeof(what), "runtime uprobe on %s", sym->name);
		rc = add_link(r,
			      bpf_program__attach_uprobe_opts(r->cap.rt->progs.rt_uprobe, pid, host,
							      entry, &uo),
			      t, what, mapped);
	}
	if (!rc && h->ret == AGT_RET_URETPROBE) {
		uo.retprobe = true;
		uo.bpf_cookie = h->cookie + 1; /* the event's return */
		snprintf(what, sizeof(what), "runtime uretprobe on %s", sym->name);
		rc = add_link(r,
			      bpf_program__attach_uprobe_opts(r->cap.rt->progs.rt_uretprobe, pid,
							      host, sym->offset, &uo),
			      t, what, mapped);
	}
	if (!rc && h->ret == AGT_RET_INSN) {
		uint64_t *offs;
		int n;

		if (agt_elf_ret_offsets(host, sym, &offs, &n, err, sizeof(err))) {
			agt_warn("PID %d (%s): %s", pid, proc->info.comm, err);
			return 0;
		}
		for (int i = 0; i < n && !rc; i++) {
			snprintf(what, sizeof(what), "runtime return probe on %s+0x%llx",
				 sym->name, (unsigned long long)(offs[i] - sym->offset));
			rc = add_link(r,
				      bpf_program__attach_uprobe_opts(r->cap.rt->progs.rt_uprobe, pid,
								      host, offs[i], &uo),
				      t, what, mapped);
		}
		free(offs);
	}
	return rc;
}

static int attach_function(struct attach_run *r, int t, const struct agt_spec *spec,
			   const struct agt_probe_spec *ps, const char *host, const char *mapped,
			   const struct agt_sym *sym)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo);
	struct agt_probe_info *pi = probe_id_for(r, spec, ps, sym->name, mapped);
	int pid = r->tg.v[t]->info.pid, rc;
	char what[200], err[512];
	uint64_t entry;

	if (!pi) {
		agt_err("more than %d distinct probes requested; narrow the symbol globs",
			AGT_MAX_PROBES);
		return -EINVAL;
	}
	if (ps->handler && ps->handler->kind == AGT_HK_RUNTIME)
		return attach_runtime(r, t, ps, host, mapped, sym);
	if (ps->handler && ps->handler->kind == AGT_HK_TLS) {
		uo.bpf_cookie = pi->id | ps->handler->cookie;
		snprintf(what, sizeof(what), "TLS uprobe on %s", sym->name);
		rc = add_link(r,
			      bpf_program__attach_uprobe_opts(r->cap.tls->progs.tls_entry, pid, host,
							      sym->offset, &uo),
			      t, what, mapped);
		if (rc || ps->handler->ret == AGT_RET_NONE) /* copied at the entry */
			return rc;
		uo.retprobe = true;
		snprintf(what, sizeof(what), "TLS uretprobe on %s", sym->name);
		return add_link(r,
				bpf_program__attach_uprobe_opts(r->cap.tls->progs.tls_return, pid, host,
								sym->offset, &uo),
				t, what, mapped);
	}
	if ((rc = write_cfg(r, pi)))
		return rc;
	uo.bpf_cookie = pi->id;
	snprintf(what, sizeof(what), "uprobe on %s", sym->name);
	entry = ps->abi == AGT_ABI_GO ? agt_elf_go_entry_offset(host, sym) : sym->offset;
	if (entry != sym->offset)
		agt_dbg("%s: entry probe past the stack check, at +0x%llx", sym->name,
			(unsigned long long)(entry - sym->offset));
	rc = add_link(
	    r, bpf_program__attach_uprobe_opts(r->cap.func->progs.func_entry, pid, host, entry, &uo), t,
	    what, mapped);
	if (rc)
		return rc;
	if (ps->ret_mode == AGT_RET_URETPROBE) {
		uo.retprobe = true;
		snprintf(what, sizeof(what), "uretprobe on %s", sym->name);
		return add_link(r,
				bpf_program__attach_uprobe_opts(r->cap.func->progs.func_return, pid,
								host, sym->offset, &uo),
				t, what, mapped);
	}
	if (ps->ret_mode == AGT_RET_INSN) {
		uint64_t *offs;
		int n;

		if (agt_elf_ret_offsets(host, sym, &offs, &n, err, sizeof(err))) {
			agt_err("%s", err);
			return -EINVAL;
		}
		agt_dbg("%s: %d return instructions", sym->name, n);
		for (int i = 0; i < n && !rc; i++) {
			snprintf(what, sizeof(what), "return-instruction uprobe on %s+0x%llx",
				 sym->name, (unsigned long long)(offs[i] - sym->offset));
			rc = add_link(r,
				      bpf_program__attach_uprobe_opts(r->cap.func->progs.func_return,
								      pid, host, offs[i], &uo),
				      t, what, mapped);
		}
		free(offs);
	}
	return rc;
}

/* The /proc/PID/root path of an object opened through /proc/PID/map_files (what libbpf's USDT
 * code and users can work with), written to buf; any other path is returned as it is. */
static const char *root_view(const char *host, int pid, const char *mapped, char *buf, size_t n)
{
	if (!strstr(host, "/map_files/"))
		return host;
	snprintf(buf, n, "/proc/%d/root%s", pid, mapped);
	return buf;
}

static int attach_usdt(struct attach_run *r, int t, const struct agt_spec *spec,
		       const struct agt_probe_spec *ps, const char *host, const char *mapped,
		       int soft)
{
	LIBBPF_OPTS(bpf_usdt_opts, uo);
	char sym[128], what[200], root[4200];
	struct agt_probe_info *pi;
	int pid = r->tg.v[t]->info.pid, rc;
	struct bpf_link *l;

	/* libbpf finds a USDT object's load address by matching the realpath of the path it is
	 * given against /proc/PID/maps: give it the /proc/PID/root path, not the map_files one. */
	host = root_view(host, pid, mapped, root, sizeof(root));
	if (ps->handler && ps->handler->kind == AGT_HK_RUNTIME) { /* CPython's GC markers */
		if (!r->cap.rt)
			return 0;
		snprintf(what, sizeof(what), "USDT %s:%s", ps->usdt_provider, ps->usdt_name);
		l = bpf_program__attach_usdt(r->cap.rt->progs.rt_py_gc_start, pid, host,
					     ps->usdt_provider, ps->usdt_name, &uo);
		if (!l)
			return soft ? 0 : add_link(r, l, t, what, mapped);
		if ((rc = add_link(r, l, t, what, mapped)) || !ps->ret_usdt_name)
			return rc;
		rt_mark(r, (uint32_t)pid, AGT_RT_PYTHON);
		snprintf(what, sizeof(what), "USDT %s:%s", ps->ret_usdt_provider, ps->ret_usdt_name);
		return add_link(r,
				bpf_program__attach_usdt(r->cap.rt->progs.rt_py_gc_done, pid, host,
							 ps->ret_usdt_provider, ps->ret_usdt_name,
							 &uo),
				t, what, mapped);
	}
	snprintf(sym, sizeof(sym), "%s:%s", ps->usdt_provider, ps->usdt_name);
	if (!(pi = probe_id_for(r, spec, ps, sym, mapped)))
		return -EINVAL;
	if ((rc = write_cfg(r, pi)))
		return rc;
	uo.usdt_cookie = pi->id;
	snprintf(what, sizeof(what), "USDT %s", sym);
	l = bpf_program__attach_usdt(r->cap.func->progs.usdt_entry, pid, host, ps->usdt_provider,
				     ps->usdt_name, &uo);
	if (!l && soft) {
		/* A chroot in another mount namespace: libbpf cannot match the object's path
		 * to its mapping. An auto spec goes without it; counted in the links shown. */
		agt_warn("PID %d (%s): USDT %s in %s not attached (%s); its events are not "
			 "captured",
			 pid, r->tg.v[t]->info.comm, sym, mapped, strerror(errno));
		return 0;
	}
	rc = add_link(r, l, t, what, mapped);
	if (rc || !ps->ret_usdt_name)
		return rc;
	snprintf(what, sizeof(what), "USDT %s:%s", ps->ret_usdt_provider, ps->ret_usdt_name);
	return add_link(r,
			bpf_program__attach_usdt(r->cap.func->progs.usdt_return, pid, host,
						 ps->ret_usdt_provider, ps->ret_usdt_name, &uo),
			t, what, mapped);
}

/* A message naming a /proc/PID/map_files/... path, with the path a user can run tools on in its
 * place: /proc/PID/root and the file as the process maps it. */
static const char *user_path(char *msg, const char *host, int pid, const char *mapped)
{
	static char out[2048];
	char buf[4200];
	const char *root = root_view(host, pid, mapped, buf, sizeof(buf));
	size_t hl = strlen(host), o = 0;

	if (root == host)
		return msg;
	for (const char *m = msg; *m && o + 1 < sizeof(out);) {
		if (!strncmp(m, host, hl)) {
			o += snprintf(out + o, sizeof(out) - o, "%s", root);
			m += hl;
		} else {
			out[o++] = *m++;
		}
		if (o >= sizeof(out))
			o = sizeof(out) - 1;
	}
	out[o] = 0;
	return out;
}

/* Whether (spec, file) was tried on proc already; records it when not. */
static int tried_before(struct agt_proc *proc, const struct agt_spec *spec, const char *host)
{
	struct stat st;

	if (stat(host, &st))
		return 0;
	for (int i = 0; i < proc->ntried; i++)
		if (proc->tried[i].spec == spec && proc->tried[i].dev == st.st_dev &&
		    proc->tried[i].ino == st.st_ino)
			return 1;
	if (proc->ntried < (int)AGT_ARRAY_SIZE(proc->tried)) {
		proc->tried[proc->ntried].spec = spec;
		proc->tried[proc->ntried].dev = st.st_dev;
		proc->tried[proc->ntried++].ino = st.st_ino;
	}
	return 0;
}

/* Attach every probe of spec to one object (host: its path from here) of target t. */
int agt_attach_object(struct attach_run *r, int t, const struct agt_spec *spec, int soft,
		      const char *host, const char *mapped)
{
	struct agt_proc *proc = r->tg.v[t];
	char err[768];
	int rc = 0;

	if (tried_before(proc, spec, host))
		return 0;
	if (spec->locate)
		return agt_attach_located(r, t, spec, soft, host, mapped);
	agt_dbg("%s: PID %d: %s -> %s", spec->name, proc->info.pid, mapped, host);
	for (int i = 0; i < spec->nprobes && !rc; i++) {
		const struct agt_probe_spec *ps = &spec->probes[i];

		if (ps->usdt_name) {
			rc = attach_usdt(r, t, spec, ps, host, mapped, soft);
			continue;
		}
		for (int s = 0; s < ps->nsymbols && !rc; s++) {
			struct agt_sym *syms;
			int n;

			if (agt_elf_find_funcs(host, ps->symbols[s], &syms, &n, err, sizeof(err))) {
				if (soft) {
					agt_dbg("%s: PID %d: %s", spec->name, proc->info.pid, err);
					continue;
				}
				agt_err("PID %d (%s): %s", proc->info.pid, proc->info.comm,
					user_path(err, host, proc->info.pid, mapped));
				return -EINVAL;
			}
			for (int k = 0; k < n && !rc; k++)
				rc = attach_function(r, t, spec, ps, host, mapped, &syms[k]);
			agt_syms_free(syms, n);
		}
	}
	return rc;
}

/* Resolve one spec against one target and attach every probe it names. soft (auto-attached
 * specs, discovered targets): a target that maps none of the spec's objects, or lacks a probe's
 * symbols, is skipped quietly; returns -1 when nothing of the spec applied. The first of the
 * spec's objects the target maps that yields probes is used. A discovered target is caught at
 * exec, before its libraries are mapped: when none of its mapped objects yields probes, the
 * spec's library globs are looked up in its filesystem (python loads libssl later; node's
 * OpenSSL is in its executable, found in the first pass). */
int agt_attach_spec(struct attach_run *r, int t, const struct agt_spec *spec, int soft)
{
	struct agt_proc *proc = r->tg.v[t];
	char host[4096 + 64], mapped[4096], err[768], first_err[768] = "";
	int rc = 0, resolved = 0, before = proc->nlinks;

	for (int pass = 0; pass < 1 + proc->discovered && !rc && proc->nlinks == before; pass++)
		for (int ti = 0; ti < spec->ntargets && !rc && proc->nlinks == before; ti++) {
			if (pass ? agt_proc_resolve_libdir(proc, spec->targets[ti], host,
							   sizeof(host), mapped, sizeof(mapped))
				 : agt_proc_resolve(proc, spec->targets[ti], host, sizeof(host),
						    mapped, sizeof(mapped), err, sizeof(err))) {
				if (!first_err[0] && !pass)
					snprintf(first_err, sizeof(first_err), "%s", err);
				continue;
			}
			resolved = 1;
			rc = agt_attach_object(r, t, spec, soft, host, mapped);
			if (!soft)
				break; /* a spec given by the user names the object it means first
					*/
		}
	if (!resolved) {
		if (soft)
			return AGT_SPEC_SKIPPED;
		agt_err("%s: %s", spec->file, first_err);
		return -ENOENT;
	}
	if (!rc && soft && proc->nlinks == before)
		return AGT_SPEC_SKIPPED;
	if (!rc)
		agt_dbg("%s: PID %d: %d links", spec->name, proc->info.pid, proc->nlinks - before);
	return rc;
}

struct agt_probe_info *agt_probe_id_for(struct attach_run *r, const struct agt_spec *spec,
					const struct agt_probe_spec *ps, const char *symbol,
					const char *object)
{
	return probe_id_for(r, spec, ps, symbol, object);
}

int agt_probe_add_link(struct attach_run *r, struct bpf_link *l, int target, const char *what,
		       const char *path)
{
	return add_link(r, l, target, what, path);
}
