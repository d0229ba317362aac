/* Probe specs onto target processes: the specs to use, resolving each spec's objects in a target
 * (mapped files through /proc/PID/map_files, or found in its filesystem), and the uprobes, TLS
 * probes and USDT probes attached to them.
 *
 * Uprobes are attached once per file (device and inode), for every process that maps it: the
 * BPF programs decide from the target table whether a hit counts (bpf/common.bpf.h,
 * agt_traced). So a target's children, at any depth, are captured through the same links, a
 * process caught at exec is captured from its first call on a file already probed, and a
 * hundred targets using one libssl cost one set of links, not a hundred. What untraced processes
 * that use a probed file pay for it is the uprobe's trap and an early return (`make bench`
 * measures it). USDT markers stay per process: attaching one for every process would raise its
 * semaphore in all of them; so do runtime metrics probes (a runtime's GC and event loop, counted
 * per process) and located TLS functions in static binaries (one process's executable). Each
 * new file-wide object is planned whole (functions, return instructions,
 * probe ids, links, file descriptors) and refused before any link is made when it would pass a
 * limit. */
#include "tracer/run.h"
#include "base/log.h"
#include "base/util.h"
#include "capture/elfsym.h"
#include "capture/locate.h"
#include "capture/reaper.h"
#include "capture/spec.h"
#include "capture/runtime.h"
#include "capture/procstat.h"
#include "rt.skel.h"
#include "func.skel.h"
#include "proc.skel.h"
#include "tls.skel.h"
#include "trace/agent.h"
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* The internal spec of library loads: the dynamic loader's _dl_debug_state. */
static char *loader_targets[] = {"ld-linux*.so*", "ld-musl*.so*"};
static char *loader_symbols[] = {"_dl_debug_state"};
static char loader_span[] = "";

static void init_loader(struct attach_run *r)
{
	static struct agt_probe_spec ps;

	ps.symbols = loader_symbols;
	ps.nsymbols = 1;
	ps.span = loader_span;
	ps.trace_type = "state_change";
	ps.handler = agt_handler_find("loader");
	ps.ret_mode = AGT_RET_NONE;
	r->loader = (struct agt_spec){.file = loader_span,
				      .name = (char *)"dynamic loader",
				      .targets = loader_targets,
				      .ntargets = 2,
				      .probes = &ps,
				      .nprobes = 1};
	r->loader_ok = ps.handler != NULL;
}

/* Links are file descriptors: the soft limit is raised to the hard one, and what is left of it
 * bounds what a new object may attach. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int agt_attach_load_specs(struct attach_run *r)
{
	char err[512], path[4096];
	int rc;

	raise_nofile();
	init_loader(r);
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

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* ---- probe ids ---- */

static struct agt_probe_info *probe_id_find(struct attach_run *r, const struct agt_probe_spec *ps,
					    const char *symbol, const char *object)
{
	for (uint32_t i = 0; i < r->nprobes; i++) {
		struct agt_probe_info *pi = r->probes[i];

		if (pi->ps == ps && !strcmp(pi->symbol, symbol) && !strcmp(pi->object, object))
			return pi;
	}
	return NULL;
}

/* The probe id for (probe spec, symbol, object); shared by every target mapping that object. */
struct agt_probe_info *agt_probe_id_for(struct attach_run *r, const struct agt_spec *spec,
					const struct agt_probe_spec *ps, const char *symbol,
					const char *object)
{
	struct agt_probe_info *pi = probe_id_find(r, ps, symbol, object), **np;
	const char *tpl;
	size_t used = 0;

	if (pi)
		return pi;
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

/* ---- the registry of probed objects ---- */

static struct agt_obj *obj_find(struct attach_run *r, const struct agt_spec *spec, uint64_t dev,
				uint64_t ino, int pid)
{
	for (int i = 0; i < r->nobjs; i++) {
		struct agt_obj *o = r->objs[i];

		if (o->spec == spec && o->dev == dev && o->ino == ino && o->pid == pid)
			return o;
	}
	return NULL;
}

static struct agt_obj *obj_add(struct attach_run *r, const struct agt_spec *spec, uint64_t dev,
			       uint64_t ino, int pid, const char *object)
{
	struct agt_obj **no = realloc(r->objs, (r->nobjs + 1) * sizeof(*no)), *o;

	if (!no)
		return NULL;
	r->objs = no;
	if (!(o = calloc(1, sizeof(*o))))
		return NULL;
	o->spec = spec;
	o->dev = dev;
	o->ino = ino;
	o->pid = pid;
	snprintf(o->object, sizeof(o->object), "%s", object);
	r->objs[r->nobjs++] = o;
	return o;
}

/* A located spec captured at the AEAD layer (rustls over aws-lc): its process is watched. */
static int is_aead_spec(const struct agt_spec *spec)
{
	return spec && spec->locate && spec->nprobes && spec->probes[0].handler &&
	       spec->probes[0].handler->kind == AGT_HK_AEAD;
}

static void obj_free(struct attach_run *r, struct agt_obj *o)
{
	int aead = o->pid && o->nlinks && is_aead_spec(o->spec);

	for (int i = 0; i < r->nobjs; i++)
		if (r->objs[i] == o) {
			memmove(r->objs + i, r->objs + i + 1, (r->nobjs - i - 1) * sizeof(*r->objs));
			r->nobjs--;
			break;
		}
	/* Its process's socket calls are looked at no more, unless it has other AEAD probes. */
	for (int i = 0; aead && i < r->nobjs; i++)
		aead = !(r->objs[i]->pid == o->pid && r->objs[i]->nlinks &&
			 is_aead_spec(r->objs[i]->spec));
	if (aead)
		agt_capture_aead_unwatch(&r->cap, o->pid);
	r->nlinks -= o->nlinks;
	if (o->spec != &r->loader)
		agt_exe_forget(r, o->dev, o->ino); /* its next exec is looked at again */
	free(o->links);
	free(o);
}

/* An object whose attach failed: its links destroyed, the object gone (its links leave
 * r->nlinks with it). */
static void obj_discard(struct attach_run *r, struct agt_obj *o)
{
	for (int i = 0; i < o->nlinks; i++)
		bpf_link__destroy(o->links[i]);
	obj_free(r, o);
}

/* holder (NULL: held for the whole run) holds o; mapped: it maps the file itself. */
static void obj_hold(struct attach_run *r, struct agt_proc *holder, struct agt_obj *o, int mapped)
{
	int counted = o->spec != &r->loader; /* library-load probes are agtrace's own */

	o->idle_since = 0;
	if (!holder) {
		o->refs++;
		return;
	}
	for (int i = 0; i < holder->nuses; i++) {
		if (holder->uses[i].obj != o)
			continue;
		if (mapped && !holder->uses[i].mapped) {
			holder->uses[i].mapped = 1;
			holder->nlinks += counted ? o->nlinks : 0;
		}
		return;
	}
	if (holder->nuses == (int)AGT_ARRAY_SIZE(holder->uses)) {
		/* Not held by it: held for the run instead, so it is never taken from under it. */
		o->refs++;
		return;
	}
	holder->uses[holder->nuses].obj = o;
	holder->uses[holder->nuses++].mapped = mapped;
	o->refs++;
	if (mapped && counted)
		holder->nlinks += o->nlinks;
}

/* ---- planning an object's probes, and attaching them ---- */

/* One function to probe: its entry and how its return is caught. */
struct plan_fn {
	const struct agt_probe_spec *ps;
	struct agt_sym sym;
	uint32_t cookie; /* added to the handler's: how a located function's arguments read */
	uint64_t entry;
	uint64_t *rets; /* return instructions (AGT_RET_INSN) */
	int nrets;
	int links;
	int new_id; /* its probe id does not exist yet */
};

struct plan {
	struct plan_fn *v;
	int n, links, new_ids;
};

static void plan_free(struct plan *p)
{
	for (int i = 0; i < p->n; i++) {
		free(p->v[i].sym.name);
		free(p->v[i].rets);
	}
	free(p->v);
}

static const char *user_path(char *msg, const char *host, int pid, const char *mapped);

static struct plan_fn *plan_add(struct plan *p)
{
	struct plan_fn *nv = realloc(p->v, (p->n + 1) * sizeof(*nv));

	if (!nv)
		return NULL;
	p->v = nv;
	memset(&nv[p->n], 0, sizeof(*nv));
	return &nv[p->n++];
}

/* Whether the file names any of the functions (a stripped executable names none: its
 * located spec probes it, per process). */
static int names_any(const char *host, char *const *names, int n)
{
	char err[256];

	for (int i = 0; i < n; i++) {
		struct agt_sym *syms;
		int cnt;

		if (!agt_elf_find_funcs(host, names[i], &syms, &cnt, err, sizeof(err))) {
			agt_syms_free(syms, cnt);
			return 1;
		}
	}
	return 0;
}

/* A funnel spec's role probes (capture/spec.h) in the file: in a file that names at least one
 * of the exported functions a role probe stands for, and where the locator finds the library's
 * internal function of its role, the role probe goes there and those exported functions are
 * not probed. OpenSSL 3's SSL_read and SSL_read_ex both call ssl_read_internal (likewise for
 * writes), whose prologue the kernel runs without single-stepping (pushes), where
 * SSL_read_ex's (sub rsp) is stepped out of line: one probe per direction for every API, and a
 * uprobe hit about 3x cheaper on these machines. The symbols replaced go into *skip (at most
 * 8 names). */
static int plan_funnel(struct attach_run *r, const struct agt_spec *spec, const char *host,
		       const char *mapped, struct plan *p, const char **skip, int *nskip)
{
	struct agt_tls_located res;
	char err[512];
	int located = 0;

	*nskip = 0;
	for (int i = 0; spec->funnel && i < spec->nprobes; i++) {
		const struct agt_probe_spec *ps = &spec->probes[i];
		const struct agt_tls_site *site = NULL;
		struct plan_fn *f;

		/* An executable a command runs, say, names none: no locator run for it. */
		if (!ps->role || !names_any(host, ps->instead_of, ps->ninstead_of))
			continue;
		if (!located++) {
			int rc = agt_locate_tls_cached(host, NULL, &res, err, sizeof(err));

			if (rc || strcmp(res.library, spec->funnel)) {
				agt_dbg("%s: %s: no %s funnel (%s); its exported functions are probed",
					spec->name, mapped, spec->funnel, rc ? err : res.library);
				return 0;
			}
		}
		for (int k = 0; k < res.nsites && !site; k++)
			if (res.sites[k].role == ps->role)
				site = &res.sites[k];
		if (!site || !ps->handler ||
		    !!(ps->handler->cookie & AGT_TLS_COOKIE_EX) != (site->conv == AGT_TLS_CONV_EX))
			continue;
		if (!(f = plan_add(p)))
			return -ENOMEM;
		f->ps = ps;
		f->sym = (struct agt_sym){.name = strdup(site->name), .addr = site->vaddr,
					  .size = site->size, .offset = site->offset};
		if (!f->sym.name)
			return -ENOMEM;
		f->cookie = site->conv == AGT_TLS_CONV_EX && site->outlen_arg == 4
				? AGT_TLS_COOKIE_OUTLEN_R8
				: 0;
		f->entry = agt_elf_probe_site(host, site->offset, site->size);
		f->links = 1 + (ps->ret_mode != AGT_RET_NONE);
		f->new_id = !probe_id_find(r, ps, f->sym.name, mapped);
		p->links += f->links;
		p->new_ids += f->new_id;
		agt_dbg("%s: %s: %s at 0x%llx in place of %d exported functions (%s)", spec->name,
			mapped, site->name, (unsigned long long)site->offset, ps->ninstead_of,
			site->evidence);
		for (int k = 0; k < ps->ninstead_of && *nskip < 8; k++)
			skip[(*nskip)++] = ps->instead_of[k];
	}
	return 0;
}

static int skipped(const char *sym, const char *const *skip, int nskip)
{
	for (int i = 0; i < nskip; i++)
		if (!strcmp(sym, skip[i]))
			return 1;
	return 0;
}

/* The functions of spec's symbol probes in the file, their entries and return instructions. 0;
 * -errno after one sentence (hard), or with the missing ones skipped (soft). */
static int plan_object(struct attach_run *r, struct agt_proc *proc, const struct agt_spec *spec,
		       int soft, const char *host, const char *mapped, struct plan *p)
{
	const char *skip[8];
	char err[768];
	int nskip, rc;

	if ((rc = plan_funnel(r, spec, host, mapped, p, skip, &nskip)))
		return rc;
	for (int i = 0; i < spec->nprobes; i++) {
		const struct agt_probe_spec *ps = &spec->probes[i];
		int ret_none = ps->ret_mode == AGT_RET_NONE;

		for (int s = 0; s < ps->nsymbols; s++) {
			struct agt_sym *syms;
			int n;

			if (skipped(ps->symbols[s], skip, nskip))
				continue;
			if (agt_elf_find_funcs(host, ps->symbols[s], &syms, &n, err, sizeof(err))) {
				if (soft) {
					agt_dbg("%s: PID %d: %s", spec->name, proc->info.pid, err);
					continue;
				}
				agt_err("PID %d (%s): %s", proc->info.pid, proc->info.comm,
					user_path(err, host, proc->info.pid, mapped));
				return -EINVAL;
			}
			for (int k = 0; k < n; k++) {
				struct plan_fn *f = plan_add(p);

				if (!f) {
					agt_syms_free(syms + k, n - k);
					free(syms);
					return -ENOMEM;
				}
				f->ps = ps;
				f->sym = syms[k];
				syms[k].name = NULL;
				f->entry = ps->abi == AGT_ABI_GO
					       ? agt_elf_go_entry_offset(host, &f->sym)
					       : agt_elf_probe_site(host, f->sym.offset, f->sym.size);
				if (ps->ret_mode == AGT_RET_INSN &&
				    agt_elf_ret_offsets(host, &f->sym, &f->rets, &f->nrets, err,
							sizeof(err))) {
					agt_syms_free(syms, n);
					agt_err("%s", err);
					return -EINVAL;
				}
				f->links = 1 + (ret_none ? 0
						: ps->ret_mode == AGT_RET_INSN ? f->nrets
									       : 1);
				f->new_id = spec != &r->loader &&
					    !probe_id_find(r, ps, f->sym.name, mapped);
				/* The same (probe, symbol) twice in one plan: one new id. */
				for (int j = 0; j < p->n - 1 && f->new_id; j++)
					f->new_id = !(p->v[j].ps == ps &&
						      !strcmp(p->v[j].sym.name, f->sym.name));
				p->links += f->links;
				p->new_ids += f->new_id;
			}
			agt_syms_free(syms, n);
		}
	}
	return 0;
}

/* File descriptors this process may still open, keeping some for everything else. */
static long fd_headroom(void)
{
	struct rlimit rl;
	long open = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	while (d && (de = readdir(d)))
		open += de->d_name[0] != '.';
	if (d)
		closedir(d);
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return 1L << 30;
	return (long)rl.rlim_cur - open - 256;
}

/* How the user named a spec: its file, or the --uprobe argument it came from. */
static void spec_label(const struct agt_spec *spec, char *buf, size_t n)
{
	if (!strcmp(spec->file, "--uprobe"))
		snprintf(buf, n, "--uprobe %s", spec->name);
	else
		snprintf(buf, n, "%s", spec->file);
}

/* Refused before any link is made: a plan that would pass a limit. */
static int check_limits(struct attach_run *r, struct agt_proc *proc, const struct agt_spec *spec,
			const char *mapped, const struct plan *p)
{
	long fds = fd_headroom();
	char label[600];

	if (r->nprobes + p->new_ids <= AGT_MAX_PROBES && r->nlinks + p->links <= MAX_LINKS &&
	    p->links <= fds)
		return 0;
	spec_label(spec, label, sizeof(label));
	agt_err("%s on %s (PID %d) would need %d probe links for %d functions (%d new probes), "
		"over agtrace's limits: %d probes (%u in use), %d links (%d in use), %ld more open "
		"files (ulimit -n); nothing of it was attached: narrow its symbol globs",
		label, mapped, proc->info.pid, p->links, p->n, p->new_ids, AGT_MAX_PROBES,
		r->nprobes, MAX_LINKS, r->nlinks, fds > 0 ? fds : 0);
	return -E2BIG;
}

static int obj_add_link(struct agt_obj *o, struct bpf_link *l)
{
	struct bpf_link **nl = realloc(o->links, (o->nlinks + 1) * sizeof(*nl));

	if (!nl) {
		bpf_link__destroy(l);
		return -ENOMEM;
	}
	o->links = nl;
	o->links[o->nlinks++] = l;
	return 0;
}

static int attach_fail(struct agt_proc *proc, const char *what, const char *mapped, int e);

int agt_obj_link(struct agt_obj *o, struct agt_proc *proc, struct bpf_link *l, const char *what,
		 const char *mapped)
{
	if (!l)
		return attach_fail(proc, what, mapped, errno);
	return obj_add_link(o, l);
}

/* ---- runtime metrics probes: per process ---- */

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

/* One process's runtime probes on one file are one set: every link is checked against
 * agtrace's limits first (links, and the open files left when the set began, as other objects
 * are planned against them), and a link over a limit or one the kernel refuses makes the whole
 * set go, said once and counted by process_object; the process keeps its other probes. */
struct rt_attach {
	long headroom; /* file descriptors left when the set began */
	int refused;   /* AGT_RT_REFUSED_*, or -1 */
	int err;       /* errno of the attach that failed */
	char what[200];
};

static int rt_link(struct attach_run *r, struct agt_obj *o, struct rt_attach *ra,
		   struct bpf_program *prog, int pid, const char *host, uint64_t off,
		   struct bpf_uprobe_opts *uo, const char *what)
{
	struct bpf_link *l;

	snprintf(ra->what, sizeof(ra->what), "%s", what);
	if (r->nlinks + o->nlinks + 1 > MAX_LINKS || o->nlinks + 1 > ra->headroom) {
		ra->refused = AGT_RT_REFUSED_LIMIT;
		return -E2BIG;
	}
	if (!(l = bpf_program__attach_uprobe_opts(prog, pid, host, off, uo))) {
		ra->refused = AGT_RT_REFUSED_ATTACH;
		ra->err = errno;
		return -EINVAL;
	}
	return obj_add_link(o, l);
}

static int rt_usdt_link(struct attach_run *r, struct agt_obj *o, struct rt_attach *ra,
			struct bpf_program *prog, int pid, const char *host, const char *provider,
			const char *name)
{
	struct bpf_link *l;

	snprintf(ra->what, sizeof(ra->what), "USDT %s:%s", provider, name);
	if (r->nlinks + o->nlinks + 1 > MAX_LINKS || o->nlinks + 1 > ra->headroom) {
		ra->refused = AGT_RT_REFUSED_LIMIT;
		return -E2BIG;
	}
	if (!(l = bpf_program__attach_usdt(prog, pid, host, provider, name, NULL))) {
		ra->refused = AGT_RT_REFUSED_ATTACH;
		ra->err = errno;
		return -EINVAL;
	}
	return obj_add_link(o, l);
}

/* A runtime metrics probe (bpf/rt.bpf.c) on one function of proc: the event is the cookie. Go
 * binaries of versions whose runtime agtrace does not know are refused (said once per binary);
 * the poll probes go only to processes whose executable runs libuv's loop. */
static int attach_runtime(struct attach_run *r, struct agt_proc *proc, struct agt_obj *o,
			  const struct agt_probe_spec *ps, const char *host,
			  const struct agt_sym *sym, struct rt_attach *ra)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo);
	const struct agt_handler *h = ps->handler;
	int pid = proc->info.pid, rc = 0;
	char what[200], err[512], ver[64];
	uint32_t kind = h->abi == AGT_ABI_GO ? AGT_RT_GO : AGT_RT_NODE;
	struct bpf_program *entry = r->cap.rt ? r->cap.rt->progs.rt_uprobe : NULL;

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
		uint64_t off =
		    h->abi == AGT_ABI_GO ? agt_elf_go_entry_offset(host, sym) : sym->offset;

		snprintf(what, sizeof(what), "runtime uprobe on %s", sym->name);
		rc = rt_link(r, o, ra, entry, pid, host, off, &uo, what);
	}
	if (!rc && h->ret == AGT_RET_URETPROBE) {
		uo.retprobe = true;
		uo.bpf_cookie = h->cookie + 1; /* the event's return */
		snprintf(what, sizeof(what), "runtime uretprobe on %s", sym->name);
		rc = rt_link(r, o, ra, r->cap.rt->progs.rt_uretprobe, pid, host, sym->offset, &uo,
			     what);
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
			rc = rt_link(r, o, ra, entry, pid, host, offs[i], &uo, what);
		}
		free(offs);
	}
	return rc;
}

/* Which program catches a function's entry, and which its return (NULL: none). */
static void progs_for(struct attach_run *r, const struct agt_probe_spec *ps,
		      struct bpf_program **entry, struct bpf_program **ret)
{
	enum agt_handler_kind k = ps->handler ? ps->handler->kind : (enum agt_handler_kind)-1;

	*ret = NULL;
	if (k == AGT_HK_TLS) {
		*entry = r->cap.tls->progs.tls_entry;
		*ret = r->cap.tls->progs.tls_return;
	} else if (k == AGT_HK_TLS_CLOSE) {
		*entry = r->cap.tls->progs.tls_close;
	} else if (k == AGT_HK_LOADER) {
		*entry = r->cap.proc->progs.ld_debug_state;
	} else {
		*entry = r->cap.func->progs.func_entry;
		if (ps->ret_mode != AGT_RET_NONE)
			*ret = r->cap.func->progs.func_return;
	}
}

static int attach_fail(struct agt_proc *proc, const char *what, const char *mapped, int e)
{
	agt_err("cannot attach %s in %s (PID %d): %s; run `agtrace check` and retry with -v for "
		"libbpf's log",
		what, mapped, proc->info.pid, strerror(e));
	return -EINVAL;
}

/* Every planned link onto the file, for every process that maps it. */
static int attach_plan(struct attach_run *r, struct agt_proc *proc, struct agt_obj *o,
		       const char *host, const char *mapped, const struct plan *p)
{
	int rc = 0;

	for (int i = 0; i < p->n && !rc; i++) {
		const struct plan_fn *f = &p->v[i];
		LIBBPF_OPTS(bpf_uprobe_opts, uo);
		struct bpf_program *entry, *ret;
		struct agt_probe_info *pi = NULL;
		struct bpf_link *l;
		char what[200];

		if (o->spec != &r->loader) {
			if (!(pi = agt_probe_id_for(r, o->spec, f->ps, f->sym.name, mapped)))
				return -ENOMEM;
			if (!f->ps->handler && (rc = write_cfg(r, pi)))
				return rc;
			uo.bpf_cookie =
			    pi->id | (f->ps->handler ? f->ps->handler->cookie : 0) | f->cookie;
		}
		progs_for(r, f->ps, &entry, &ret);
		if (f->entry != f->sym.offset)
			agt_dbg("%s: entry probe at +0x%llx, past the %s", f->sym.name,
				(unsigned long long)(f->entry - f->sym.offset),
				f->ps->abi == AGT_ABI_GO ? "stack check" : "endbr64");
		snprintf(what, sizeof(what), "uprobe on %s", f->sym.name);
		l = bpf_program__attach_uprobe_opts(entry, -1, host, f->entry, &uo);
		if (!l)
			return attach_fail(proc, what, mapped, errno);
		if ((rc = obj_add_link(o, l)) || !ret || f->ps->ret_mode == AGT_RET_NONE)
			continue;
		if (f->ps->ret_mode == AGT_RET_URETPROBE) {
			uo.retprobe = true;
			snprintf(what, sizeof(what), "uretprobe on %s", f->sym.name);
			/* past an endbr64 too: the return address is still at the stack top */
			if (!(l = bpf_program__attach_uprobe_opts(ret, -1, host, f->entry, &uo)))
				return attach_fail(proc, what, mapped, errno);
			rc = obj_add_link(o, l);
			continue;
		}
		agt_dbg("%s: %d return instructions", f->sym.name, f->nrets);
		for (int k = 0; k < f->nrets && !rc; k++) {
			snprintf(what, sizeof(what), "return-instruction uprobe on %s+0x%llx",
				 f->sym.name, (unsigned long long)(f->rets[k] - f->sym.offset));
			if (!(l = bpf_program__attach_uprobe_opts(ret, -1, host, f->rets[k], &uo)))
				return attach_fail(proc, what, mapped, errno);
			rc = obj_add_link(o, l);
		}
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

static int attach_usdt(struct attach_run *r, struct agt_proc *proc, struct agt_obj *o,
		       const struct agt_probe_spec *ps, const char *host, const char *mapped,
		       int soft)
{
	LIBBPF_OPTS(bpf_usdt_opts, uo);
	char sym[128], what[200], root[4200];
	struct agt_probe_info *pi;
	int pid = proc->info.pid, rc;
	struct bpf_link *l;

	/* libbpf finds a USDT object's load address by matching the realpath of the path it is
	 * given against /proc/PID/maps: give it the /proc/PID/root path, not the map_files one. */
	host = root_view(host, pid, mapped, root, sizeof(root));
	snprintf(sym, sizeof(sym), "%s:%s", ps->usdt_provider, ps->usdt_name);
	if (r->nlinks + o->nlinks + 2 > MAX_LINKS || fd_headroom() < 2) {
		agt_err("%s: USDT %s in %s (PID %d) would pass agtrace's limit of %d links or the "
			"open-file limit (ulimit -n); not attached",
			o->spec->file, sym, mapped, pid, MAX_LINKS);
		return -E2BIG;
	}
	if (!(pi = agt_probe_id_for(r, o->spec, ps, sym, mapped)))
		return -EINVAL;
	if ((rc = write_cfg(r, pi)))
		return rc;
	uo.usdt_cookie = pi->id;
	snprintf(what, sizeof(what), "USDT %s", sym);
	l = bpf_program__attach_usdt(r->cap.func->progs.usdt_entry, pid, host, ps->usdt_provider,
				     ps->usdt_name, &uo);
	if (!l && soft) {
		/* A chroot in another mount namespace: libbpf cannot match the object's path
		 * to its mapping. An auto spec goes without it. */
		agt_warn("PID %d (%s): USDT %s in %s not attached (%s); its events are not "
			 "captured",
			 pid, proc->info.comm, sym, mapped, strerror(errno));
		return 0;
	}
	if (!l)
		return attach_fail(proc, what, mapped, errno);
	if ((rc = obj_add_link(o, l)) || !ps->ret_usdt_name)
		return rc;
	snprintf(what, sizeof(what), "USDT %s:%s", ps->ret_usdt_provider, ps->ret_usdt_name);
	l = bpf_program__attach_usdt(r->cap.func->progs.usdt_return, pid, host,
				     ps->ret_usdt_provider, ps->ret_usdt_name, &uo);
	if (!l)
		return attach_fail(proc, what, mapped, errno);
	return obj_add_link(o, l);
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

static int has_symbols(const struct agt_spec *spec)
{
	for (int i = 0; i < spec->nprobes; i++)
		if (spec->probes[i].nsymbols)
			return 1;
	return 0;
}

/* The file-wide object of spec's symbol probes on a file: found, or planned and attached. */
static int file_object(struct attach_run *r, struct agt_proc *proc, const struct agt_spec *spec,
		       int soft, const char *host, const char *mapped, const struct stat *st,
		       struct agt_obj **out)
{
	struct plan p = {0};
	struct agt_obj *o;
	int rc;

	if ((*out = obj_find(r, spec, st->st_dev, st->st_ino, 0)))
		return 0;
	if ((rc = plan_object(r, proc, spec, soft, host, mapped, &p)) ||
	    (rc = check_limits(r, proc, spec, mapped, &p))) {
		plan_free(&p);
		return rc;
	}
	if (!(o = obj_add(r, spec, st->st_dev, st->st_ino, 0, mapped))) {
		plan_free(&p);
		return -ENOMEM;
	}
	agt_dbg("%s: PID %d: %s -> %s: %d functions, %d links", spec->name, proc->info.pid, mapped,
		host, p.n, p.links);
	rc = attach_plan(r, proc, o, host, mapped, &p);
	plan_free(&p);
	r->nlinks += o->nlinks;
	if (rc) { /* nothing of it stays */
		obj_discard(r, o);
		return rc;
	}
	*out = o;
	return 0;
}

/* CPython's GC markers (USDT) on one process's file: the start and the end of a collection. */
static int attach_runtime_usdt(struct attach_run *r, struct agt_proc *proc, struct agt_obj *o,
			       const struct agt_probe_spec *ps, const char *host,
			       const char *mapped, struct rt_attach *ra)
{
	char root[4200];
	int pid = proc->info.pid, rc;

	if (!r->cap.rt)
		return 0;
	/* libbpf matches the realpath of the path it is given against /proc/PID/maps */
	host = root_view(host, pid, mapped, root, sizeof(root));
	rt_mark(r, (uint32_t)pid, AGT_RT_PYTHON); /* before the first marker can fire */
	rc = rt_usdt_link(r, o, ra, r->cap.rt->progs.rt_py_gc_start, pid, host, ps->usdt_provider,
			  ps->usdt_name);
	if (!rc && ps->ret_usdt_name)
		rc = rt_usdt_link(r, o, ra, r->cap.rt->progs.rt_py_gc_done, pid, host,
				  ps->ret_usdt_provider, ps->ret_usdt_name);
	return rc;
}

/* spec's probes of a runtime spec onto one process's file (its own links). */
static int attach_runtime_spec(struct attach_run *r, struct agt_proc *proc, struct agt_obj *o,
			       const struct agt_spec *spec, const char *host, const char *mapped,
			       struct rt_attach *ra)
{
	char err[768];
	int rc = 0;

	for (int i = 0; i < spec->nprobes && !rc; i++) {
		const struct agt_probe_spec *ps = &spec->probes[i];

		if (ps->usdt_name) {
			rc = attach_runtime_usdt(r, proc, o, ps, host, mapped, ra);
			continue;
		}
		for (int s = 0; s < ps->nsymbols && !rc; s++) {
			struct agt_sym *syms;
			int n;

			if (agt_elf_find_funcs(host, ps->symbols[s], &syms, &n, err, sizeof(err))) {
				agt_dbg("%s: PID %d: %s", spec->name, proc->info.pid, err);
				continue;
			}
			for (int k = 0; k < n && !rc; k++)
				rc = attach_runtime(r, proc, o, ps, host, &syms[k], ra);
			agt_syms_free(syms, n);
		}
	}
	return rc;
}

static int is_runtime_spec(const struct agt_spec *spec)
{
	for (int i = 0; i < spec->nprobes; i++)
		if (spec->probes[i].handler && spec->probes[i].handler->kind == AGT_HK_RUNTIME)
			return 1;
	return 0;
}

/* A runtime probe set of pid that did not attach: unless another of its sets did, pid is no
 * runtime process (no series of a runtime it does not measure). */
static void rt_unmark(struct attach_run *r, int pid)
{
	uint32_t key = (uint32_t)pid;

	for (int i = 0; i < r->nobjs; i++)
		if (r->objs[i]->pid == pid && r->objs[i]->nlinks && r->objs[i]->spec &&
		    !r->objs[i]->spec->locate && is_runtime_spec(r->objs[i]->spec))
			return;
	if (r->cap.rt)
		bpf_map__delete_elem(r->cap.rt->maps.rt_stats, &key, sizeof(key), 0);
}

/* A spec whose probes are per process (runtime metrics, located TLS): its object for proc's
 * file, attached the first time; the number of its links, or -errno after one sentence. */
static int process_object(struct attach_run *r, struct agt_proc *holder, struct agt_proc *proc,
			  const struct agt_spec *spec, int soft, const char *host,
			  const char *mapped, const struct stat *st)
{
	struct agt_obj *o = obj_find(r, spec, st->st_dev, st->st_ino, proc->info.pid);
	int rc;

	if (!o) {
		struct rt_attach ra = {.refused = -1};

		if (!(o = obj_add(r, spec, st->st_dev, st->st_ino, proc->info.pid, mapped)))
			return -ENOMEM;
		if (!spec->locate)
			ra.headroom = fd_headroom();
		rc = spec->locate ? agt_attach_located(r, proc, o, spec, soft, host, mapped)
				  : attach_runtime_spec(r, proc, o, spec, host, mapped, &ra);
		if (rc && ra.refused >= 0) {
			/* Runtime metrics are soft: the set goes, said and counted, and the object
			 * stays (empty) so the file is not tried again for this process. */
			for (int k = 0; k < o->nlinks; k++)
				bpf_link__destroy(o->links[k]);
			o->nlinks = 0;
			rt_unmark(r, proc->info.pid);
			r->rt_refused[ra.refused]++;
			if (ra.refused == AGT_RT_REFUSED_LIMIT)
				agt_warn(
				    "PID %d (%s): the %s probes on %s would pass agtrace's limits "
				    "(%d links, %d in use; %ld more open files, ulimit -n); not "
				    "attached: its runtime is not measured",
				    proc->info.pid, proc->info.comm, spec->name, mapped, MAX_LINKS,
				    r->nlinks, ra.headroom > 0 ? ra.headroom : 0);
			else
				agt_warn("PID %d (%s): cannot attach the %s probe %s in %s (%s); "
					 "not attached: its runtime is not measured",
					 proc->info.pid, proc->info.comm, spec->name, ra.what,
					 mapped, strerror(ra.err));
			rc = 0;
		}
		r->nlinks += o->nlinks;
		if (rc) { /* nothing of it stays */
			obj_discard(r, o);
			return rc;
		}
	}
	obj_hold(r, holder, o, 1);
	return o->nlinks;
}

/* Attach every probe of spec to one object (host: its path from here) that proc maps (or, with
 * AGT_OBJ_AHEAD, that it may load), held by holder (proc itself, or the target proc descends
 * from). Returns the number of links the object has (0: nothing of the spec is in it), or
 * -errno after one sentence. */
int agt_attach_object(struct attach_run *r, struct agt_proc *holder, struct agt_proc *proc,
		      const struct agt_spec *spec, int soft, const char *host, const char *mapped,
		      int flags)
{
	int mapped_here = !(flags & AGT_OBJ_AHEAD) && holder == proc, got = 0, rc;
	struct agt_obj *o;
	struct stat st;

	if (stat(host, &st)) {
		if (soft)
			return 0;
		agt_err("PID %d (%s): cannot open %s: %s", proc->info.pid, proc->info.comm, mapped,
			strerror(errno));
		return -ENOENT;
	}
	if (spec->locate || is_runtime_spec(spec)) /* per process: a target's own mapped files only */
		return mapped_here ? process_object(r, holder, proc, spec, soft, host, mapped, &st)
				   : 0;
	if (has_symbols(spec)) {
		if ((rc = file_object(r, proc, spec, soft, host, mapped, &st, &o)))
			return rc;
		obj_hold(r, holder, o, mapped_here);
		got += o->nlinks;
	}
	/* USDT markers: per process, for a target's own mapped files only. */
	for (int i = 0; i < spec->nprobes && mapped_here; i++) {
		const struct agt_probe_spec *ps = &spec->probes[i];

		if (!ps->usdt_name)
			continue;
		if (!(o = obj_find(r, spec, st.st_dev, st.st_ino, proc->info.pid))) {
			if (!(o = obj_add(r, spec, st.st_dev, st.st_ino, proc->info.pid, mapped)))
				return -ENOMEM;
			rc = 0;
			for (int k = 0; k < spec->nprobes && !rc; k++)
				if (spec->probes[k].usdt_name)
					rc = attach_usdt(r, proc, o, &spec->probes[k], host, mapped,
							 soft);
			r->nlinks += o->nlinks;
			if (rc) {
				obj_discard(r, o);
				return rc;
			}
		}
		obj_hold(r, holder, o, 1);
		got += o->nlinks;
		break;
	}
	return got;
}

static int is_library_glob(const char *target)
{
	return target[0] != '$' && target[0] != '/';
}

/* Resolve one spec against one target and attach every probe it names. soft (auto-attached
 * specs, discovered targets): a target that maps none of the spec's objects, or lacks a probe's
 * symbols, is skipped quietly; returns AGT_SPEC_SKIPPED when nothing of the spec applied. The
 * first of the spec's objects the target maps that yields probes is used. Libraries it does not
 * map are attached ahead, from its own filesystem's library folders, where it (or a child) would
 * load them from: with the built-in specs always (a shell agent's curl, python importing ssl),
 * with a user's spec when a discovered process maps none of its objects yet. */
int agt_attach_spec(struct attach_run *r, int t, const struct agt_spec *spec, int soft)
{
	struct agt_proc *proc = r->tg.v[t];
	char host[4096 + 64], mapped[4096], err[768], first_err[768] = "";
	int rc = 0, resolved = 0, yielded = 0, ahead = 0;

	for (int ti = 0; ti < spec->ntargets && !yielded; ti++) {
		if (agt_proc_resolve(proc, spec->targets[ti], host, sizeof(host), mapped,
				     sizeof(mapped), err, sizeof(err))) {
			if (!first_err[0])
				snprintf(first_err, sizeof(first_err), "%s", err);
			continue;
		}
		resolved = 1;
		if ((rc = agt_attach_object(r, proc, proc, spec, soft, host, mapped, 0)) < 0)
			return rc;
		yielded = rc > 0;
		if (!soft)
			break; /* a spec given by the user names the object it means first */
	}
	for (int ti = 0; ti < spec->ntargets && (r->auto_mode || (proc->discovered && !yielded));
	     ti++) {
		if (!is_library_glob(spec->targets[ti]) ||
		    !agt_proc_resolve(proc, spec->targets[ti], host, sizeof(host), mapped,
				      sizeof(mapped), err, sizeof(err)) ||
		    agt_proc_resolve_libdir(proc, spec->targets[ti], host, sizeof(host), mapped,
					    sizeof(mapped)))
			continue;
		if ((rc = agt_attach_object(r, proc, proc, spec, 1, host, mapped, AGT_OBJ_AHEAD)) < 0)
			return rc;
		ahead += rc;
	}
	if (!resolved && !ahead) {
		if (soft)
			return AGT_SPEC_SKIPPED;
		agt_err("%s: %s", spec->file, first_err);
		return -ENOENT;
	}
	if (soft && !yielded)
		return ahead ? AGT_SPEC_AHEAD : AGT_SPEC_SKIPPED;
	return 0;
}

void agt_attach_loader(struct attach_run *r, struct agt_proc *holder, struct agt_proc *proc)
{
	char host[4096 + 64], mapped[4096], err[512];

	if (!r->loader_ok)
		return;
	for (int i = 0; i < r->loader.ntargets; i++)
		if (!agt_proc_resolve(proc, r->loader.targets[i], host, sizeof(host), mapped,
				      sizeof(mapped), err, sizeof(err))) {
			if (agt_attach_object(r, holder, proc, &r->loader, 1, host, mapped, 0) < 0)
				agt_warn("PID %d (%s): libraries it loads later are not looked at",
					 proc->info.pid, proc->info.comm);
			return;
		}
}

/* The target pid descends from (the agent model follows forks), or NULL. */
static struct agt_proc *root_of(struct attach_run *r, uint32_t pid)
{
	const struct agt_proc_info *root = agt_agent_root_proc(r->pl.trace.agent, pid);

	for (int t = r->tg.n - 1; root && t >= 0; t--)
		if (&r->tg.v[t]->info == root)
			return r->tg.v[t]->gone ? NULL : r->tg.v[t];
	return NULL;
}

void agt_attach_descendant(struct attach_run *r, uint32_t pid)
{
	struct agt_proc *holder = root_of(r, pid), d;
	char path[64], host[4096 + 64], mapped[4096], err[768];
	ssize_t n;

	if (!holder)
		return;
	memset(&d, 0, sizeof(d));
	d.pidfd = -1;
	d.info.pid = (int)pid;
	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	if ((n = readlink(path, d.info.exe, sizeof(d.info.exe) - 1)) < 0)
		return; /* gone already */
	d.info.exe[n] = 0;
	snprintf(d.info.comm, sizeof(d.info.comm), "%.15s", base(d.info.exe));
	agt_maps_hold((int)pid); /* one read of its maps for every spec's targets below */
	agt_desc_track(r, pid, 1); /* its runtime metrics: probes of its own, held by itself */
	agt_desc_located(r, pid);  /* its located TLS (not stopped at exec: --no-exec-stop) */
	for (int s = 0; s < r->nspecs; s++) {
		const struct agt_spec *spec = &r->specs[s];

		if (is_runtime_spec(spec) || spec->locate)
			continue;

		for (int ti = 0; ti < spec->ntargets; ti++) {
			if (agt_proc_resolve(&d, spec->targets[ti], host, sizeof(host), mapped,
					     sizeof(mapped), err, sizeof(err)))
				continue;
			if (agt_attach_object(r, holder, &d, spec, 1, host, mapped, 0) > 0)
				break;
		}
	}
	agt_attach_loader(r, holder, &d);
	agt_maps_release((int)pid);
}

/* ---- followed descendants: their own per-process objects (runtime metrics, located TLS) ---- */

#define MAX_DESC 16384 /* the kernel's table of traced processes holds no more */

/* The slot of pid in r->desc (sorted by pid): its index, or where it would go (*found: 0). */
static int desc_slot(struct attach_run *r, int pid, int *found)
{
	int lo = 0, hi = r->ndesc;

	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (r->desc[mid].pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < r->ndesc && r->desc[lo].pid == pid;
	return lo;
}

/* The process that holds descendant d's own objects (made the first time), named by the
 * executable it runs now; NULL when it cannot be made. */
static struct agt_proc *desc_own(struct agt_desc *d)
{
	struct agt_proc *own = d->own;
	char path[64];
	ssize_t n;

	if (!own) {
		if (!(own = calloc(1, sizeof(*own))))
			return NULL;
		own->pidfd = -1;
		own->info.pid = d->pid;
		own->info.start_ticks = d->start_ticks;
		d->own = own;
	}
	snprintf(path, sizeof(path), "/proc/%d/exe", d->pid);
	if ((n = readlink(path, own->info.exe, sizeof(own->info.exe) - 1)) < 0)
		n = 0; /* gone: nothing resolves */
	own->info.exe[n] = 0;
	snprintf(own->info.comm, sizeof(own->info.comm), "%.15s", base(own->info.exe));
	return own;
}

/* A record that holds nothing keeps no process. */
static void desc_own_trim(struct agt_desc *d)
{
	if (d->own && !d->own->nuses) {
		free(d->own);
		d->own = NULL;
	}
}

/* The specs of one kind (located TLS, or runtime metrics) onto what own maps now. */
static void desc_attach_specs(struct attach_run *r, struct agt_proc *own, int located)
{
	char host[4096 + 64], mapped[4096], err[768];

	for (int s = 0; own->info.exe[0] && s < r->nspecs; s++) {
		const struct agt_spec *spec = &r->specs[s];

		if (located ? !spec->locate : !is_runtime_spec(spec) || spec->locate)
			continue;
		for (int ti = 0; ti < spec->ntargets; ti++) {
			if (agt_proc_resolve(own, spec->targets[ti], host, sizeof(host), mapped,
					     sizeof(mapped), err, sizeof(err)) ||
			    (located && !agt_located_found(r, spec, host)))
				continue;
			if (agt_attach_object(r, own, own, spec, 1, host, mapped, 0) > 0)
				break;
		}
	}
}

/* Whether a located spec finds its library in a file proc maps (its executable). */
static int maps_located(struct attach_run *r, struct agt_proc *proc)
{
	char host[4096 + 64], mapped[4096], err[768];

	for (int s = 0; s < r->nspecs; s++)
		for (int ti = 0; r->specs[s].locate && ti < r->specs[s].ntargets; ti++)
			if (!agt_proc_resolve(proc, r->specs[s].targets[ti], host, sizeof(host),
					      mapped, sizeof(mapped), err, sizeof(err)) &&
			    agt_located_found(r, &r->specs[s], host))
				return 1;
	return 0;
}

/* The runtime specs onto what descendant d maps now, held by its own record (released when it
 * is gone, whatever its target does meanwhile). */
static void desc_attach_runtime(struct attach_run *r, struct agt_desc *d)
{
	struct agt_proc *own = desc_own(d);
	char path[64];
	int before;
	ssize_t n;

	if (!own)
		return;
	snprintf(path, sizeof(path), "/proc/%d/exe", d->pid);
	before = own->nlinks;
	desc_attach_specs(r, own, 0);
	if (own->nlinks > before) {
		/* named as it is now: it may have exec'd since its maps were read */
		if ((n = readlink(path, own->info.exe, sizeof(own->info.exe) - 1)) >= 0) {
			own->info.exe[n] = 0;
			snprintf(own->info.comm, sizeof(own->info.comm), "%.15s",
				 base(own->info.exe));
		}
		agt_info("PID %d (%s), a descendant counted under workload %s: %d runtime metrics "
			 "probe links",
			 d->pid, own->info.comm, d->workload, own->nlinks);
	}
	desc_own_trim(d);
}

static void desc_release(struct attach_run *r, struct agt_desc *d, uint64_t now);

/* The record of followed descendant pid: found, or made for a descendant of a live target;
 * NULL otherwise. A record whose PID was reused by another process (its start differs) lets go
 * of the objects of the one before. */
static struct agt_desc *desc_get(struct attach_run *r, uint32_t pid)
{
	struct agt_proc *root;
	struct agt_procstat ps;
	struct agt_desc *d;
	int found, at;

	at = desc_slot(r, (int)pid, &found);
	if (found) {
		d = &r->desc[at];
		if (d->gone)
			return NULL;
		if (!agt_procstat_read((int)pid, &ps) && ps.start_ticks != d->start_ticks) {
			desc_release(r, d, agt_mono_ns());
			d->start_ticks = ps.start_ticks;
		}
		return d;
	}
	if (r->ndesc >= MAX_DESC || !(root = root_of(r, pid)) || agt_procstat_read((int)pid, &ps))
		return NULL;
	if (r->ndesc == r->desc_cap) {
		int cap = r->desc_cap ? 2 * r->desc_cap : 64;
		struct agt_desc *nd = realloc(r->desc, cap * sizeof(*nd));

		if (!nd)
			return NULL;
		r->desc = nd;
		r->desc_cap = cap;
	}
	memmove(r->desc + at + 1, r->desc + at, (r->ndesc - at) * sizeof(*r->desc));
	r->ndesc++;
	d = &r->desc[at];
	memset(d, 0, sizeof(*d));
	d->pid = (int)pid;
	d->start_ticks = ps.start_ticks;
	agt_workload_name(&root->info, d->workload, sizeof(d->workload));
	return d;
}

struct agt_desc *agt_desc_track(struct attach_run *r, uint32_t pid, int attach)
{
	struct agt_desc *d;

	if (!r->rt || !r->cap.rt || r->o.runtime_metrics <= 0 || !(d = desc_get(r, pid)))
		return NULL;
	if (attach)
		desc_attach_runtime(r, d);
	return d;
}

void agt_desc_located(struct attach_run *r, uint32_t pid)
{
	struct agt_proc *t = agt_targets_find(&r->tg, pid), *own, p;
	char path[64];
	struct agt_desc *d;
	ssize_t n;

	if (t && !t->gone)
		return; /* a target's are its own (agt_attach_spec) */
	memset(&p, 0, sizeof(p));
	p.pidfd = -1;
	p.info.pid = (int)pid;
	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	if ((n = readlink(path, p.info.exe, sizeof(p.info.exe) - 1)) < 0)
		return; /* gone */
	p.info.exe[n] = 0;
	/* Most descendants (a shell's curl, sed, git) have none: no record is made for them. */
	if (!maps_located(r, &p) || !(d = desc_get(r, pid)))
		return;
	if ((own = desc_own(d)))
		desc_attach_specs(r, own, 1);
	desc_own_trim(d);
}

static void desc_release(struct attach_run *r, struct agt_desc *d, uint64_t now)
{
	if (!d->own)
		return;
	agt_probes_release(r, d->own, now); /* one process's objects: reaped at once */
	free(d->own);
	d->own = NULL;
}

void agt_desc_sweep(struct attach_run *r, uint64_t now)
{
	struct bpf_map *m = r->cap.func->maps.targets;
	uint32_t key, next, kind;
	int found, more;

	for (int i = 0; i < r->ndesc; i++) { /* the kernel forgets a process as it exits */
		struct agt_desc *d = &r->desc[i];

		key = (uint32_t)d->pid;
		if (d->gone ||
		    (!bpf_map__lookup_elem(m, &key, sizeof(key), &kind, sizeof(kind), 0) &&
		     kind == AGT_TK_FOLLOWED))
			continue;
		d->gone = 1;
		desc_release(r, d, now);
	}
	if (!r->rt || !r->cap.rt || r->o.runtime_metrics <= 0)
		return; /* the rest is for runtime metrics only */
	/* Descendants not seen yet: forked and not exec'd (a worker of a Python agent), or
	 * exec'd before the last look. */
	for (more = !bpf_map__get_next_key(m, NULL, &next, sizeof(next)); more;) {
		key = next;
		more = !bpf_map__get_next_key(m, &key, &next, sizeof(next));
		if (bpf_map__lookup_elem(m, &key, sizeof(key), &kind, sizeof(kind), 0) ||
		    kind != AGT_TK_FOLLOWED)
			continue;
		desc_slot(r, (int)key, &found);
		if (!found)
			agt_desc_track(r, key, 1);
	}
}

void agt_desc_drop_gone(struct attach_run *r)
{
	int w = 0;

	for (int i = 0; i < r->ndesc; i++)
		if (!r->desc[i].gone)
			r->desc[w++] = r->desc[i];
	r->ndesc = w;
}

void agt_desc_free_all(struct attach_run *r)
{
	for (int i = 0; i < r->ndesc; i++)
		free(r->desc[i].own); /* their links went with every object (detach_all) */
	free(r->desc);
	r->desc = NULL;
	r->ndesc = r->desc_cap = 0;
}

int agt_probes_runtime_links(struct attach_run *r)
{
	int n = 0;

	for (int i = 0; i < r->nobjs; i++)
		if (r->objs[i]->spec && r->objs[i]->spec != &r->loader &&
		    !r->objs[i]->spec->locate && is_runtime_spec(r->objs[i]->spec))
			n += r->objs[i]->nlinks;
	return n;
}

void agt_attach_ahead_for_discovery(struct attach_run *r)
{
	struct agt_proc self;
	char host[4096 + 64], mapped[4096];

	if (r->ahead_done)
		return;
	r->ahead_done = 1;
	memset(&self, 0, sizeof(self));
	self.pidfd = -1;
	self.info.pid = (int)getpid(); /* its root is the host's */
	snprintf(self.info.comm, sizeof(self.info.comm), "agtrace");
	for (int s = 0; s < r->nspecs; s++)
		for (int ti = 0; ti < r->specs[s].ntargets; ti++) {
			const char *glob = r->specs[s].targets[ti];

			if (!is_library_glob(glob) ||
			    agt_proc_resolve_libdir(&self, glob, host, sizeof(host), mapped,
						    sizeof(mapped)))
				continue;
			agt_attach_object(r, NULL, &self, &r->specs[s], 1, host, mapped,
					  AGT_OBJ_AHEAD);
		}
}

static int names_exe(const struct agt_spec *spec)
{
	for (int i = 0; i < spec->ntargets; i++)
		if (!strcmp(spec->targets[i], "$exe"))
			return 1;
	return 0;
}

int agt_exe_examine(struct attach_run *r, uint32_t pid, struct stat *st)
{
	char path[64], host[4096 + 64], mapped[4096], err[768];
	struct agt_proc d;
	int known = 1;
	int located = 0;
	ssize_t n;

	memset(&d, 0, sizeof(d));
	d.pidfd = -1;
	d.info.pid = (int)pid;
	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	if ((n = readlink(path, d.info.exe, sizeof(d.info.exe) - 1)) < 0)
		return -errno;
	d.info.exe[n] = 0;
	snprintf(d.info.comm, sizeof(d.info.comm), "%.15s", base(d.info.exe));
	if (agt_proc_resolve(&d, "$exe", host, sizeof(host), mapped, sizeof(mapped), err,
			     sizeof(err)))
		return -ENOENT;
	if (stat(host, st))
		return -errno;
	for (int s = 0; s < r->nspecs; s++) {
		const struct agt_spec *spec = &r->specs[s];
		struct agt_obj *o;

		if (spec->locate) {
			/* Located TLS is probed per process: a file the locator finds it in (asked
			 * once per file and run, whoever runs it first) is never known, so each
			 * traced process that runs it stays stopped until it has its own probes.
			 * Nor is a file a target runs (it has the spec's object for that target,
			 * with or without links): the next process that runs it is held until
			 * discovery has decided on it. */
			located |= agt_located_found(r, spec, host);
			for (int i = 0; i < r->nobjs && known; i++)
				known = !(r->objs[i]->spec == spec && r->objs[i]->dev == st->st_dev &&
					  r->objs[i]->ino == st->st_ino);
			continue;
		}
		if (is_runtime_spec(spec) || !has_symbols(spec) || !names_exe(spec))
			continue;
		if (file_object(r, &d, spec, 1, host, mapped, st, &o)) {
			known = 0; /* tried again at its next exec */
			continue;
		}
		/* Probes nobody holds yet (a target or a descendant's target takes them once it
		 * has looked): they linger as the objects of targets that exited do. An object
		 * with no links (nothing of the spec in the file) is kept for the run. */
		if (o->nlinks && !o->refs && !o->idle_since)
			o->idle_since = agt_mono_ns();
	}
	if (located) {
		known = 0;
		/* A followed descendant's, held by its own record; a target's were attached as it
		 * was discovered or relaunched, before this. */
		agt_desc_located(r, pid);
	}
	return known;
}

/* ---- references, the end of a target, the end of the run ---- */

void agt_probes_release(struct attach_run *r, struct agt_proc *proc, uint64_t now)
{
	(void)r;
	for (int i = 0; i < proc->nuses; i++) {
		struct agt_obj *o = (struct agt_obj *)proc->uses[i].obj;

		if (--o->refs <= 0) {
			o->refs = 0;
			o->idle_since = now ? now : 1;
		}
	}
	proc->nuses = 0;
	proc->nlinks = 0;
}

void agt_probes_reap(struct attach_run *r, uint64_t now, uint64_t linger_ns)
{
	for (int i = 0; i < r->nobjs;) {
		struct agt_obj *o = r->objs[i];

		/* One process's USDT links have nobody else to serve. */
		if (o->refs || !o->idle_since || (!o->pid && now - o->idle_since < linger_ns)) {
			i++;
			continue;
		}
		for (int k = 0; k < o->nlinks; k++)
			agt_reaper_push(r->reaper, o->links[k]);
		obj_free(r, o); /* the rest moved down into slot i */
	}
}

int agt_probes_mapped_links(struct attach_run *r, int *all)
{
	int n = 0;

	*all = 0;
	for (int i = 0; i < r->nobjs; i++) {
		struct agt_obj *o = r->objs[i];
		int mapped = 0;

		if (o->spec == &r->loader)
			continue;
		*all += o->nlinks;
		for (int t = 0; t < r->tg.n && !mapped; t++)
			for (int u = 0; u < r->tg.v[t]->nuses && !mapped; u++)
				mapped = !r->tg.v[t]->gone && r->tg.v[t]->uses[u].obj == o &&
					 r->tg.v[t]->uses[u].mapped;
		n += mapped ? o->nlinks : 0;
	}
	return n;
}

/* The TLS stack a spec's probes capture ("OpenSSL"), or NULL for other specs. */
static const char *stack_of(const struct agt_spec *spec)
{
	/* A located spec names the library the locator recognised. */
	if (spec && spec->locate)
		return !strcmp(spec->locate, "boringssl")  ? "BoringSSL"
		       : !strcmp(spec->locate, "openssl3") ? "OpenSSL 3"
							   : spec->locate;
	for (int i = 0; spec && i < spec->nprobes; i++)
		if (spec->probes[i].handler && spec->probes[i].handler->stack)
			return spec->probes[i].handler->stack;
	return NULL;
}

void agt_probes_describe(struct attach_run *r, const struct agt_proc *proc, char *buf, size_t n,
			 int brief)
{
	char found[2048] = "", ready[1024] = "";
	size_t fu = 0, ru = 0;
	int tls_specs = 0;

	for (int s = 0; s < r->nspecs; s++)
		tls_specs += stack_of(&r->specs[s]) != NULL;
	buf[0] = 0;
	if (!tls_specs)
		return; /* the user's own probes only: no TLS to speak of */

	for (int i = 0; i < proc->nuses; i++) {
		const struct agt_obj *o = proc->uses[i].obj;
		const char *stack = stack_of(o->spec), *where;

		if (!stack || !o->nlinks)
			continue;
		if (proc->uses[i].mapped && fu < sizeof(found)) {
			where = strcmp(o->object, proc->info.exe) ? "library"
				: o->spec->probes[0].abi == AGT_ABI_GO ? "Go binary"
								       : "in the executable";
			fu += snprintf(found + fu, sizeof(found) - fu, "%s%s in %s (%s)",
				       fu ? ", " : "", stack, o->object, where);
		} else if (!proc->uses[i].mapped && ru < sizeof(ready)) {
			ru += snprintf(ready + ru, sizeof(ready) - ru, "%s%s", ru ? ", " : "",
				       base(o->object));
		}
	}
	if (found[0])
		snprintf(buf, n, "TLS: %s%s%s", found, ready[0] ? "; ready in " : "", ready);
	else
		snprintf(buf, n, "no TLS stack %s: %s%s%s",
			 brief ? "loaded"
			       : "agtrace knows is loaded (libssl, libgnutls, Go crypto/tls, "
				 "OpenSSL in the executable)",
			 r->o.tcp ? "plaintext HTTP over TCP only" : "its processes only",
			 ready[0] ? "; probes ready in " : "", ready);
}

void agt_probes_detach_all(struct attach_run *r)
{
	struct bpf_link **all = calloc(r->nlinks ? r->nlinks : 1, sizeof(*all));
	int n = 0;

	for (int i = 0; i < r->nobjs; i++) {
		struct agt_obj *o = r->objs[i];

		for (int k = 0; k < o->nlinks; k++) {
			if (all)
				all[n++] = o->links[k];
			else
				bpf_link__destroy(o->links[k]);
		}
		o->nlinks = 0;
		free(o->links);
		free(o);
	}
	r->nobjs = 0;
	r->nlinks = 0;
	free(r->objs);
	r->objs = NULL;
	agt_links_destroy(all, n);
	free(all);
}
