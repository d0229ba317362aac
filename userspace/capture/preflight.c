#include "capture/preflight.h"
#include "base/log.h"
#include "base/util.h"
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/capability.h>
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
		return AGT_EXIT_USAGE;
	}
	if (!btf_present()) {
		agt_err("this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing); agtrace "
			"needs a "
			"kernel built with CONFIG_DEBUG_INFO_BTF=y");
		return AGT_EXIT_USAGE;
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

enum { OK, INFO, BLOCK };
static const char *const tag[] = {"ok     ", "note   ", "BLOCKER"};

static int line(int level, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int line(int level, const char *what, const char *fmt, ...)
{
	va_list ap;

	printf("%s  %-16s ", tag[level], what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return level == BLOCK;
}

int cmd_check(int argc, char **argv)
{
	struct utsname u;
	unsigned maj = 0, min = 0;
	int blockers = 0, caps;
	char *ld;
	const char *first = NULL;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf(
		    "Usage: agtrace check\n\nPreflight: one line per requirement (kernel, BTF, "
		    "privileges, uprobe PMU, ring buffer, attach cookies, tracefs, bpffs, "
		    "lockdown).\n"
		    "Exits 0 when agtrace can run here, 2 with a sentence naming the blocker.\n");
		return 0;
	}
	if (argc > 1) {
		agt_err("check takes no arguments, got \"%s\"; see `agtrace check --help`",
			argv[1]);
		return AGT_EXIT_USAGE;
	}
	libbpf_set_print(agt_libbpf_print);
	uname(&u);
	sscanf(u.release, "%u.%u", &maj, &min);
	if (line(maj > 5 || (maj == 5 && min >= 15) ? OK : BLOCK, "kernel",
		 "%s %s (5.15 or newer needed for ring buffers and attach cookies)", u.sysname,
		 u.release))
		blockers++,
		    first = first ? first
				  : "the kernel is older than 5.15; run agtrace on a newer kernel";
	if (line(btf_present() ? OK : BLOCK, "btf",
		 btf_present() ? "/sys/kernel/btf/vmlinux present (CO-RE relocations work)"
			       : "/sys/kernel/btf/vmlinux missing"))
		blockers++, first = first ? first
					  : "the kernel has no BTF; use a kernel built with "
					    "CONFIG_DEBUG_INFO_BTF=y";
	caps = have_cap(CAP_SYS_ADMIN) || (have_cap(CAP_BPF) && have_cap(CAP_PERFMON));
	if (line(caps ? OK : BLOCK, "privileges",
		 "euid %u, CAP_BPF %s, CAP_PERFMON %s, CAP_SYS_ADMIN %s", geteuid(),
		 have_cap(CAP_BPF) ? "yes" : "no", have_cap(CAP_PERFMON) ? "yes" : "no",
		 have_cap(CAP_SYS_ADMIN) ? "yes" : "no"))
		blockers++,
		    first =
			first ? first : "agtrace lacks the privileges to load BPF; run it as root";
	if (line(access("/sys/bus/event_source/devices/uprobe/type", R_OK) == 0 ? OK : BLOCK,
		 "uprobe pmu",
		 access("/sys/bus/event_source/devices/uprobe/type", R_OK) == 0
		     ? "/sys/bus/event_source/devices/uprobe present"
		     : "no uprobe PMU (CONFIG_UPROBE_EVENTS off?)"))
		blockers++,
		    first = first ? first
				  : "the kernel has no uprobe support; enable CONFIG_UPROBE_EVENTS";
	if (caps) {
		int rb = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 1;
		int ck = libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_get_attach_cookie,
						 NULL) == 1;

		if (line(rb ? OK : BLOCK, "ring buffer",
			 rb ? "BPF ring buffer supported" : "no BPF ring buffer"))
			blockers++,
			    first = first ? first
					  : "the kernel lacks BPF ring buffers; use 5.8 or newer";
		if (line(ck ? OK : BLOCK, "attach cookies",
			 ck ? "bpf_get_attach_cookie available"
			    : "bpf_get_attach_cookie unavailable"))
			blockers++,
			    first = first
					? first
					: "the kernel lacks BPF attach cookies; use 5.15 or newer";
	} else {
		line(INFO, "ring buffer", "not probed without privileges");
	}
	line(INFO, "kprobes", "%s (not needed: agtrace uses uprobes, USDT and BTF tracepoints)",
	     access("/sys/bus/event_source/devices/kprobe/type", R_OK) == 0 ? "available"
									    : "unavailable");
	line(mounted("tracefs", "/sys/kernel/tracing") ||
		     mounted("tracefs", "/sys/kernel/debug/tracing")
		 ? OK
		 : INFO,
	     "tracefs", "%s",
	     mounted("tracefs", "/sys/kernel/tracing")
		 ? "mounted at /sys/kernel/tracing"
		 : "not mounted (not needed: agtrace attaches tp_btf; mount -t tracefs none "
		   "/sys/kernel/tracing for other tools)");
	line(mounted("bpf", "/sys/fs/bpf") ? OK : INFO, "bpffs", "%s",
	     mounted("bpf", "/sys/fs/bpf")
		 ? "mounted at /sys/fs/bpf"
		 : "not mounted (needed only for pinning: mount -t bpf bpf /sys/fs/bpf)");
	ld = agt_read_file("/sys/kernel/security/lockdown", 256, NULL);
	if (ld) {
		int conf = strstr(ld, "[confidentiality]") != NULL;

		ld[strcspn(ld, "\n")] = 0;
		if (line(conf ? BLOCK : OK, "lockdown", "%s%s", ld,
			 conf ? ""
			      : " (agtrace only reads user memory; bpf_probe_write_user is not "
				"used)"))
			blockers++,
			    first = first
					? first
					: "kernel lockdown is in confidentiality mode, which "
					  "forbids BPF reads; boot with lockdown=integrity or none";
		free(ld);
	} else {
		line(INFO, "lockdown",
		     "unknown (securityfs not mounted); integrity mode is fine, confidentiality "
		     "blocks BPF reads");
	}
	if (blockers) {
		agt_err("%s", first);
		return AGT_EXIT_USAGE;
	}
	printf("agtrace can run here.\n");
	return 0;
}
