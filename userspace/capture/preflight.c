#include "capture/preflight.h"
#include "base/log.h"
#include "base/util.h"
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static int have_cap(int cap)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return 0;
	return !!(d[cap / 32].effective & (1u << (cap % 32)));
}

static int btf_present(void)
{
	return access("/sys/kernel/btf/vmlinux", R_OK) == 0;
}

int agt_require_bpf_privileges(void)
{
	if (!(have_cap(CAP_SYS_ADMIN) || (have_cap(CAP_BPF) && have_cap(CAP_PERFMON)))) {
		agt_err(
		    "agtrace must run as root (or with CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN) to "
		    "load BPF programs; run it with sudo");
		return -EPERM;
	}
	if (!btf_present()) {
		agt_err("this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing); agtrace "
			"needs a "
			"kernel built with CONFIG_DEBUG_INFO_BTF=y");
		return -ENOTSUP;
	}
	return 0;
}

static int mounted(const char *fstype, const char *where)
{
	char *m = agt_read_file("/proc/self/mounts", 1 << 20, NULL);
	char pat[256];
	int found;

	if (!m)
		return 0;
	snprintf(pat, sizeof(pat), " %s %s ", where, fstype);
	found = strstr(m, pat) != NULL;
	free(m);
	return found;
}

/* One finding. */
static void add(struct agt_preflight *pf, enum agt_check_level level, const char *what,
		const char *fix, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add(struct agt_preflight *pf, enum agt_check_level level, const char *what,
		const char *fix, const char *fmt, ...)
{
	struct agt_check *c;
	va_list ap;

	if (pf->n == AGT_ARRAY_SIZE(pf->v))
		return;
	c = &pf->v[pf->n++];
	c->level = level;
	c->what = what;
	c->fix = level == AGT_CHECK_BLOCKER ? fix : NULL;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
	if (level == AGT_CHECK_BLOCKER && !pf->first_fix)
		pf->first_fix = fix;
}

void agt_preflight_run(struct agt_preflight *pf)
{
	struct utsname u;
	unsigned maj = 0, min = 0;
	int caps, up, rb, ck;
	char *ld;

	memset(pf, 0, sizeof(*pf));
	libbpf_set_print(agt_libbpf_print);
	uname(&u);
	sscanf(u.release, "%u.%u", &maj, &min);
	add(pf, maj > 5 || (maj == 5 && min >= 15) ? AGT_CHECK_OK : AGT_CHECK_BLOCKER, "kernel",
	    "the kernel is older than 5.15; run agtrace on a newer kernel",
	    "%s %s (5.15 or newer needed for ring buffers and attach cookies)", u.sysname,
	    u.release);
	add(pf, btf_present() ? AGT_CHECK_OK : AGT_CHECK_BLOCKER, "btf",
	    "the kernel has no BTF; use a kernel built with CONFIG_DEBUG_INFO_BTF=y", "%s",
	    btf_present() ? "/sys/kernel/btf/vmlinux present (CO-RE relocations work)"
			  : "/sys/kernel/btf/vmlinux missing");
	caps = have_cap(CAP_SYS_ADMIN) || (have_cap(CAP_BPF) && have_cap(CAP_PERFMON));
	add(pf, caps ? AGT_CHECK_OK : AGT_CHECK_BLOCKER, "privileges",
	    "agtrace lacks the privileges to load BPF; run it as root",
	    "euid %u, CAP_BPF %s, CAP_PERFMON %s, CAP_SYS_ADMIN %s", geteuid(),
	    have_cap(CAP_BPF) ? "yes" : "no", have_cap(CAP_PERFMON) ? "yes" : "no",
	    have_cap(CAP_SYS_ADMIN) ? "yes" : "no");
	up = access("/sys/bus/event_source/devices/uprobe/type", R_OK) == 0;
	add(pf, up ? AGT_CHECK_OK : AGT_CHECK_BLOCKER, "uprobe pmu",
	    "the kernel has no uprobe support; enable CONFIG_UPROBE_EVENTS", "%s",
	    up ? "/sys/bus/event_source/devices/uprobe present"
	       : "no uprobe PMU (CONFIG_UPROBE_EVENTS off?)");
	if (caps) {
		rb = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 1;
		ck = libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_get_attach_cookie,
					     NULL) == 1;
		add(pf, rb ? AGT_CHECK_OK : AGT_CHECK_BLOCKER, "ring buffer",
		    "the kernel lacks BPF ring buffers; use 5.8 or newer", "%s",
		    rb ? "BPF ring buffer supported" : "no BPF ring buffer");
		add(pf, ck ? AGT_CHECK_OK : AGT_CHECK_BLOCKER, "attach cookies",
		    "the kernel lacks BPF attach cookies; use 5.15 or newer", "%s",
		    ck ? "bpf_get_attach_cookie available" : "bpf_get_attach_cookie unavailable");
	} else {
		add(pf, AGT_CHECK_NOTE, "ring buffer", NULL, "not probed without privileges");
	}
	add(pf, AGT_CHECK_NOTE, "kprobes", NULL,
	    "%s (not needed: agtrace uses uprobes, USDT and BTF tracepoints)",
	    access("/sys/bus/event_source/devices/kprobe/type", R_OK) == 0 ? "available"
									   : "unavailable");
	add(pf,
	    mounted("tracefs", "/sys/kernel/tracing") ||
		    mounted("tracefs", "/sys/kernel/debug/tracing")
		? AGT_CHECK_OK
		: AGT_CHECK_NOTE,
	    "tracefs", NULL, "%s",
	    mounted("tracefs", "/sys/kernel/tracing")
		? "mounted at /sys/kernel/tracing"
		: "not mounted (not needed: agtrace attaches tp_btf; mount -t tracefs none "
		  "/sys/kernel/tracing for other tools)");
	add(pf, mounted("bpf", "/sys/fs/bpf") ? AGT_CHECK_OK : AGT_CHECK_NOTE, "bpffs", NULL,
	    "%s",
	    mounted("bpf", "/sys/fs/bpf")
		? "mounted at /sys/fs/bpf"
		: "not mounted (needed only for pinning: mount -t bpf bpf /sys/fs/bpf)");
	ld = agt_read_file("/sys/kernel/security/lockdown", 256, NULL);
	if (ld) {
		int conf = strstr(ld, "[confidentiality]") != NULL;

		ld[strcspn(ld, "\n")] = 0;
		add(pf, conf ? AGT_CHECK_BLOCKER : AGT_CHECK_OK, "lockdown",
		    "kernel lockdown is in confidentiality mode, which forbids BPF reads; boot "
		    "with lockdown=integrity or none",
		    "%s%s", ld,
		    conf ? ""
			 : " (agtrace only reads user memory; bpf_probe_write_user is not used)");
		free(ld);
	} else {
		add(pf, AGT_CHECK_NOTE, "lockdown", NULL,
		    "unknown (securityfs not mounted); integrity mode is fine, confidentiality "
		    "blocks BPF reads");
	}
}
