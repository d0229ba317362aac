#include "capture/target.h"
#include "base/log.h"
#include "base/util.h"
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int agt_proc_open(int pid, struct agt_proc *p, char *err, size_t errlen)
{
	char path[64], *stat, *boot, *rp;
	ssize_t n;
	uint64_t h;

	memset(p, 0, sizeof(*p));
	p->info.pid = pid;
	p->pidfd = -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	stat = agt_read_file(path, 1 << 16, NULL);
	if (!stat)
		return agt_seterr(
		    err, errlen, -ESRCH,
		    "no process with PID %d; check it with `ps -p %d` or find it with "
		    "`pidof NAME`",
		    pid, pid);
	/* comm is between the first '(' and the last ')'; fields after it are space separated. */
	rp = strrchr(stat, ')');
	if (rp) {
		char *lp = strchr(stat, '(');
		int field = 2;

		snprintf(p->info.comm, sizeof(p->info.comm), "%.*s", (int)(rp - lp - 1), lp + 1);
		for (char *s = rp + 1; *s; s++)
			if (*s == ' ' && ++field == 22) {
				p->info.start_ticks = strtoull(s + 1, NULL, 10);
				break;
			}
	}
	free(stat);
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, p->info.exe, sizeof(p->info.exe) - 1);
	if (n < 0) {
		int e = errno;
		return agt_seterr(
		    err, errlen, -e,
		    "cannot read the executable of PID %d (%s): %s; agtrace must run as root, "
		    "and the process must not be a kernel thread or shielded by a security module",
		    pid, p->info.comm, strerror(e));
	}
	p->info.exe[n] = 0;
	/* Read once: discovery opens a process for every exec on the node. */
	static uint64_t boot_hash;
	static int have_boot;

	if (!have_boot) {
		boot = agt_read_file("/proc/sys/kernel/random/boot_id", 128, NULL);
		boot_hash = agt_fnv1a(boot ? boot : "", boot ? strlen(boot) : 0, 0);
		have_boot = boot != NULL;
		free(boot);
	}
	h = boot_hash;
	h = agt_fnv1a(&pid, sizeof(pid), h);
	h = agt_fnv1a(&p->info.start_ticks, sizeof(p->info.start_ticks), h);
	snprintf(p->info.session_id, sizeof(p->info.session_id), "%016llx", (unsigned long long)h);
	agt_identity_read(pid, &p->info.id); /* no cgroup file: no container identity */
	p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	return 0;
}

void agt_proc_close(struct agt_proc *p)
{
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* One process's maps, read once for a pass that resolves many targets in it (see
 * agt_maps_hold): each resolve otherwise reads the whole of /proc/PID/maps again. */
static struct {
	int pid, depth;
	char *text;
	size_t len;
} snap;

void agt_maps_hold(int pid)
{
	char path[64];
	size_t len;
	char *text;

	if (snap.depth) {
		snap.depth += snap.pid == pid; /* another process's pass inside: not held */
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	if (!(text = agt_read_file(path, 64 << 20, &len)))
		return; /* each resolve reads it then, and says why it cannot */
	snap.pid = pid;
	snap.depth = 1;
	snap.text = text;
	snap.len = len;
}

void agt_maps_release(int pid)
{
	if (!snap.depth || snap.pid != pid || --snap.depth)
		return;
	free(snap.text);
	snap.text = NULL;
}

int agt_proc_resolve(const struct agt_proc *p, const char *target, char *host_path, size_t n,
		     char *mapped, size_t mn, char *err, size_t errlen)
{
	char path[64], line[PATH_MAX + 256], range[64] = "";
	const char *want = target;
	FILE *f;
	int found = 0;
	struct stat st;

	if (!strcmp(target, "$exe"))
		want = p->info.exe;
	snprintf(path, sizeof(path), "/proc/%d/maps", p->info.pid);
	f = snap.depth && snap.pid == p->info.pid && snap.len ? fmemopen(snap.text, snap.len, "r")
							       : fopen(path, "re");
	if (!f) {
		int e = errno;
		return agt_seterr(err, errlen, -e, "cannot read %s: %s; run agtrace as root", path,
				  strerror(e));
	}
	while (!found && fgets(line, sizeof(line), f)) {
		char *file = strchr(line, '/');
		size_t len;

		if (!file)
			continue;
		len = strcspn(file, "\n");
		file[len] = 0;
		if (len > 10 && !strcmp(file + len - 10, " (deleted)"))
			continue;
		if (want[0] == '/' ? !strcmp(file, want) : !fnmatch(want, base_name(file), 0)) {
			snprintf(mapped, mn, "%s", file);
			/* map_files names are "%lx-%lx": maps pads to 8 digits. */
			unsigned long lo = 0, hi = 0;

			if (sscanf(line, "%lx-%lx", &lo, &hi) == 2)
				snprintf(range, sizeof(range), "%lx-%lx", lo, hi);
			found = 1;
		}
	}
	fclose(f);
	if (!found && want[0] == '/') {
		/* Not mapped yet: accept a file that exists in the process's filesystem. */
		snprintf(host_path, n, "/proc/%d/root%s", p->info.pid, want);
		if (stat(host_path, &st) == 0 && S_ISREG(st.st_mode)) {
			snprintf(mapped, mn, "%s", want);
			return 0;
		}
		return agt_seterr(
		    err, errlen, -ENOENT,
		    "%s is neither mapped by PID %d (%s) nor a file in its filesystem; "
		    "check the path in `cat /proc/%d/maps`",
		    want, p->info.pid, p->info.comm, p->info.pid);
	}
	if (!found)
		return agt_seterr(
		    err, errlen, -ENOENT,
		    "PID %d (%s) maps no file named like \"%s\"; see what it maps with "
		    "`cat /proc/%d/maps`",
		    p->info.pid, p->info.comm, want, p->info.pid);
	/* The mapped file itself, whatever mount namespace or chroot it was opened in: the path
	 * maps shows is relative to our root, which need not be the process's. */
	snprintf(host_path, n, "/proc/%d/map_files/%s", p->info.pid, range);
	if (stat(host_path, &st) == 0 && S_ISREG(st.st_mode))
		return 0;
	snprintf(host_path, n, "/proc/%d/root%s", p->info.pid, mapped);
	return 0;
}

#if defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#else
#define MULTIARCH "x86_64-linux-gnu"
#endif

int agt_proc_resolve_libdir(const struct agt_proc *p, const char *glob, char *host_path, size_t n,
			    char *mapped, size_t mn)
{
	static const char *const dirs[] = {
	    "/usr/lib/" MULTIARCH, "/lib/" MULTIARCH, "/usr/lib64", "/lib64", "/usr/lib", "/lib",
	    "/usr/local/lib"};

	if (strchr(glob, '/') || glob[0] == '$')
		return -EINVAL;
	for (size_t i = 0; i < AGT_ARRAY_SIZE(dirs); i++) {
		char dir[PATH_MAX];
		struct dirent *de;
		DIR *d;
		int found = 0;

		snprintf(dir, sizeof(dir), "/proc/%d/root%s", p->info.pid, dirs[i]);
		if (!(d = opendir(dir)))
			continue;
		while (!found && (de = readdir(d))) {
			struct stat st;

			if (fnmatch(glob, de->d_name, 0))
				continue;
			snprintf(host_path, n, "%s/%s", dir, de->d_name);
			/* Symlinks (libssl.so -> libssl.so.3) name the same file: take the file. */
			if (lstat(host_path, &st) == 0 && S_ISREG(st.st_mode)) {
				snprintf(mapped, mn, "%s/%s", dirs[i], de->d_name);
				found = 1;
			}
		}
		closedir(d);
		if (found)
			return 0;
	}
	return -ENOENT;
}
