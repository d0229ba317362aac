/* An output file of whole lines: buffering, write failures, torn tails, rotation (outfile.h). */
#define _GNU_SOURCE /* memrchr, fopencookie, statx */
#include "export/outfile.h"
#include "base/log.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HOLD_MAX (64u << 10) /* bytes held before they are written, whatever the time */

const char *const agt_out_lost_names[AGT_OUT_LOST_REASONS] = {"disk_full", "io_error", "closed"};

struct agt_outfile {
	struct agt_outfile_config cfg;
	char *pattern;	    /* the path as given (NULL: standard output) */
	char *glob;	    /* a dated path: the file names of all its days, for fnmatch */
	char cur[PATH_MAX]; /* the file written now */
	int64_t cur_sec;    /* a dated path: the second cur was named for */
	int fd;		    /* -1: no file open (opening failed: tried again at the next write) */
	int own;	    /* a regular file we opened to append to: cut back after a failure */
	uint64_t size;	    /* bytes in cur */
	uint64_t born_ns;   /* when cur was started (CLOCK_REALTIME) */
	char *buf;
	size_t len, cap;
	size_t whole;	     /* buf[0..whole) is whole lines */
	uint64_t whole_lines; /* ... this many (counted as they were put) */
	int warned, rotate_warned, failed;
	FILE *stream;
	struct agt_outfile_stats st;
};

static uint64_t real_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t count_lines(const char *p, size_t n)
{
	uint64_t c = 0;

	for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))); p++)
		c++;
	return c;
}

static const char *base_of(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* The folder of path ("." when it has none), in out. */
static void dir_of(const char *path, char *out, size_t n)
{
	const char *s = strrchr(path, '/');

	if (!s)
		snprintf(out, n, ".");
	else if (s == path)
		snprintf(out, n, "/");
	else
		snprintf(out, n, "%.*s", (int)(s - path), path);
}

/* Paths and their days ----------------------------------------------------------------- */

static int is_dated(const char *path)
{
	return strchr(base_of(path), '%') != NULL;
}

/* The file name of pattern at real_ns (UTC). 0 or -EINVAL (empty, or a conversion made a '/'). */
static int expand(const char *pattern, uint64_t real_ns, char *out, size_t n)
{
	time_t t = (time_t)(real_ns / 1000000000ull);
	struct tm tm;
	size_t len;
	const char *base = base_of(pattern);

	gmtime_r(&t, &tm);
	len = strftime(out, n, pattern, &tm);
	if (!len || strchr(out + (size_t)(base - pattern), '/'))
		return -EINVAL;
	return 0;
}

/* The glob of every day's file name: each conversion a '*', glob characters escaped. */
static char *day_glob(const char *pattern)
{
	const char *b = base_of(pattern);
	char *g = malloc(2 * strlen(b) + 1), *o = g;

	if (!g)
		return NULL;
	for (; *b; b++) {
		if (*b == '%' && b[1] == '%') {
			*o++ = '%';
			b++;
		} else if (*b == '%' && b[1]) {
			*o++ = '*';
			b++;
			while (*b == 'E' || *b == 'O' || *b == '-' || *b == '_' || *b == '0' ||
			       *b == '^' || *b == '#')
				b++; /* modifiers and flags come before the conversion */
		} else {
			if (strchr("*?[\\", *b))
				*o++ = '\\';
			*o++ = *b;
		}
	}
	*o = 0;
	return g;
}

int agt_outfile_check(const struct agt_outfile_config *cfg, char *err, size_t errlen)
{
	char name[PATH_MAX];

	if (!cfg->path)
		return 0;
	if (!cfg->path[0])
		return agt_seterr(err, errlen, -EINVAL, "the output file name is empty");
	if (strchr(cfg->path, '%') && !is_dated(cfg->path))
		return agt_seterr(
		    err, errlen, -EINVAL,
		    "%s: strftime conversions (%%Y, %%m, %%d, ...) may only be in the "
		    "file name, not in its folder",
		    cfg->path);
	if (is_dated(cfg->path) && expand(cfg->path, real_now(), name, sizeof(name)))
		return agt_seterr(
		    err, errlen, -EINVAL,
		    "%s: its strftime conversions make no file name (empty, or with a "
		    "'/' such as %%D gives); use %%Y-%%m-%%d",
		    cfg->path);
	return 0;
}

/* Rotation helpers ---------------------------------------------------------------------- */

/* name is base followed by ".<digits>": the number, else 0. */
static unsigned long long rotated_number(const char *name, const char *base)
{
	size_t bl = strlen(base);
	unsigned long long v = 0;

	if (strncmp(name, base, bl) || name[bl] != '.' || !name[bl + 1])
		return 0;
	for (const char *p = name + bl + 1; *p; p++) {
		if (*p < '0' || *p > '9' || v > ULLONG_MAX / 10 - 1)
			return 0;
		v = v * 10 + (unsigned long long)(*p - '0');
	}
	return v;
}

int agt_rotate_name(const char *path, char *out, size_t n)
{
	char dir[PATH_MAX];
	const char *base = base_of(path);
	unsigned long long max = 0;
	DIR *d;
	struct dirent *e;

	dir_of(path, dir, sizeof(dir));
	if ((d = opendir(dir))) {
		while ((e = readdir(d))) {
			unsigned long long v = rotated_number(e->d_name, base);

			if (v > max)
				max = v;
		}
		closedir(d);
	}
	if ((size_t)snprintf(out, n, "%s.%llu", path, max + 1) >= n)
		return -ENAMETOOLONG;
	return 0;
}

struct old_file {
	char *name;
	uint64_t size;
	struct timespec mtime;
	unsigned long long num;
};

static int by_age(const void *a, const void *b)
{
	const struct old_file *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	if (x->num != y->num)
		return x->num < y->num ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* name is one of the output's files: its base.N, or (dated) a day's file or its .N. */
static int in_family(const char *name, const char *base, const char *glob, unsigned long long *num)
{
	const char *dot;

	*num = rotated_number(name, base);
	if (*num)
		return 1;
	if (!glob)
		return 0;
	if (!fnmatch(glob, name, 0))
		return 1;
	dot = strrchr(name, '.');
	if (dot && dot[1] && strspn(dot + 1, "0123456789") == strlen(dot + 1)) {
		char stem[NAME_MAX + 1];

		snprintf(stem, sizeof(stem), "%.*s", (int)(dot - name), name);
		*num = strtoull(dot + 1, NULL, 10);
		return !fnmatch(glob, stem, 0);
	}
	return 0;
}

int agt_rotate_prune(const char *path, const char *glob, const char *current, uint64_t keep,
		     uint64_t *bytes_removed)
{
	char dir[PATH_MAX];
	const char *base = base_of(path), *cur = current ? base_of(current) : NULL;
	struct old_file *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0, freed = 0;
	int removed = 0, dfd;
	DIR *d;
	struct dirent *e;

	if (bytes_removed)
		*bytes_removed = 0;
	if (!keep)
		return 0;
	dir_of(path, dir, sizeof(dir));
	if (!(d = opendir(dir)))
		return 0;
	dfd = dirfd(d);
	while ((e = readdir(d))) {
		unsigned long long num;
		struct stat st;
		int mine = cur && !strcmp(e->d_name, cur);

		if (!mine && !in_family(e->d_name, base, glob, &num))
			continue;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		total += (uint64_t)st.st_size;
		if (mine)
			continue; /* counted, never removed */
		if (n == cap) {
			struct old_file *nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));

			if (!nv)
				break;
			v = nv;
		}
		if (!(v[n].name = strdup(e->d_name)))
			break;
		v[n].size = (uint64_t)st.st_size;
		v[n].mtime = st.st_mtim;
		v[n].num = num;
		n++;
	}
	qsort(v, n, sizeof(*v), by_age);
	for (size_t i = 0; i < n && total > keep; i++) {
		if (unlinkat(dfd, v[i].name, 0))
			continue;
		total -= v[i].size;
		freed += v[i].size;
		removed++;
	}
	closedir(d);
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	if (bytes_removed)
		*bytes_removed = freed;
	return removed;
}

/* Opening, failing, rotating ------------------------------------------------------------- */

static const char *name_of(const struct agt_outfile *o)
{
	return o->pattern ? o->cur : "standard output";
}

static void cut_torn_locked(struct agt_outfile *o)
{
	char b[4096], last;
	uint64_t pos, keep = 0;
	struct stat st;

	if (fstat(o->fd, &st))
		return;
	o->size = pos = (uint64_t)st.st_size;
	if (!o->size || pread(o->fd, &last, 1, (off_t)o->size - 1) != 1 || last == '\n')
		return;
	while (pos > 0) {
		size_t n = pos > sizeof(b) ? sizeof(b) : (size_t)pos;
		char *nl;

		if (pread(o->fd, b, n, (off_t)(pos - n)) != (ssize_t)n)
			return;
		if ((nl = memrchr(b, '\n', n))) {
			keep = pos - n + (uint64_t)(nl - b) + 1;
			break;
		}
		pos -= n;
	}
	if (ftruncate(o->fd, (off_t)keep)) {
		agt_warn("%s ends in a torn line of %llu bytes (a write cut short) that cannot be "
			 "cut off: %s",
			 o->cur, (unsigned long long)(o->size - keep), strerror(errno));
		return;
	}
	o->st.torn++;
	o->st.torn_bytes += o->size - keep;
	agt_warn("%s ended in a torn line of %llu bytes (a write cut short: the run before was "
		 "killed, or its disk was full); it was cut off",
		 o->cur, (unsigned long long)(o->size - keep));
	o->size = keep;
}

/* A line cut short at the end of the file (the run before was killed in a write): cut off,
 * counted and reported. Writers of the file (another agtrace appending to the same daily file)
 * hold its lock while they write, so what is seen under it is no write in progress. */
static void cut_torn(struct agt_outfile *o)
{
	flock(o->fd, LOCK_EX);
	cut_torn_locked(o);
	flock(o->fd, LOCK_UN);
}

/* Open cur to append to. 0 or -errno (with the sentence in err when err is given). */
static int open_cur(struct agt_outfile *o, char *err, size_t errlen)
{
	struct stat st;
	struct statx sx;
	int regular = stat(o->cur, &st) ? errno == ENOENT : S_ISREG(st.st_mode);
	int fd =
	    open(o->cur, (regular ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY,
		 0644);

	if (fd < 0)
		return agt_seterr(err, errlen, -errno,
				  "cannot write %s: %s; check the folder exists and is writable",
				  o->cur, strerror(errno));
	if (fstat(fd, &st)) {
		int e = errno;

		close(fd);
		return agt_seterr(err, errlen, -e, "cannot write %s: %s", o->cur, strerror(e));
	}
	o->fd = fd;
	o->own = S_ISREG(st.st_mode);
	o->size = o->own ? (uint64_t)st.st_size : 0;
	o->born_ns = real_now();
	if (o->own && o->size && !statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &sx) &&
	    (sx.stx_mask & STATX_BTIME))
		o->born_ns = (uint64_t)sx.stx_btime.tv_sec * 1000000000ull + sx.stx_btime.tv_nsec;
	if (o->own)
		cut_torn(o);
	return 0;
}

static void close_cur(struct agt_outfile *o)
{
	if (o->fd >= 0 && o->pattern)
		close(o->fd);
	o->fd = -1;
}

static enum agt_out_lost reason_of(int e)
{
	if (e == ENOSPC || e == EDQUOT || e == EFBIG)
		return AGT_OUT_DISK_FULL;
	return e == EPIPE ? AGT_OUT_CLOSED : AGT_OUT_IO_ERROR;
}

/* A write (or an open) failed with e: lines are lost. */
static void fail(struct agt_outfile *o, int e, uint64_t lines)
{
	o->st.lost[reason_of(e)] += lines;
	o->st.write_failures++;
	o->failed = 1;
	if (o->warned)
		return;
	o->warned = 1;
	agt_warn("cannot write %s: %s; spans are lost until a write succeeds again (counted in "
		 "agtrace_output_lost_spans_total{output=\"%s\"}), and agtrace will exit non-zero",
		 name_of(o), strerror(e), agt_outfile_label(o));
}

static void prune(struct agt_outfile *o)
{
	uint64_t freed;

	if (o->own && o->cfg.keep_bytes)
		o->st.removed +=
		    (uint64_t)agt_rotate_prune(o->cur, o->glob, o->cur, o->cfg.keep_bytes, &freed);
}

/* cur becomes cur.N and a new cur is started. 0, or -1 when it could not be renamed (it
 * goes on growing; warned about once). */
static int rotate(struct agt_outfile *o)
{
	char to[PATH_MAX];

	if (agt_rotate_name(o->cur, to, sizeof(to)) || rename(o->cur, to)) {
		if (!o->rotate_warned)
			agt_warn("cannot rotate %s: %s; it grows past its limit until it can be",
				 o->cur, strerror(errno ? errno : ENAMETOOLONG));
		o->rotate_warned = 1;
		return -1;
	}
	close_cur(o);
	o->st.rotations++;
	open_cur(o, NULL, 0); /* a failure is counted at the next write */
	prune(o);
	return 0;
}

/* Writing ------------------------------------------------------------------------------- */

/* Write buf[off..off+n) (whole lines, this many) to the open file; what cannot be written is
 * lost, and a line cut short is cut back out of the file. */
static void write_lines(struct agt_outfile *o, size_t off, size_t n, uint64_t lines)
{
	const char *p = o->buf + off;
	size_t done = 0;

	if (o->own)
		flock(o->fd, LOCK_EX); /* see cut_torn */
	while (done < n) {
		ssize_t w = write(o->fd, p + done, n - done);
		int e = errno;

		if (w < 0 && e == EINTR)
			continue;
		if (w <= 0) {
			const char *nl = done ? memrchr(p, '\n', done) : NULL;
			size_t good = nl ? (size_t)(nl - p) + 1 : 0;
			uint64_t ok = count_lines(p, good);
			struct stat st;

			if (w == 0)
				e = EIO;
			/* The part of a line that went out is cut back out of the file. */
			if (good < done && o->own && !fstat(o->fd, &st) &&
			    (uint64_t)st.st_size >= done - good)
				if (ftruncate(o->fd, st.st_size - (off_t)(done - good)))
					agt_warn("cannot cut the line cut short at the end of %s: "
						 "%s",
						 o->cur, strerror(errno));
			o->size += good;
			o->st.bytes += good;
			o->st.written += ok;
			if (o->own)
				flock(o->fd, LOCK_UN);
			fail(o, e, lines - ok);
			return;
		}
		done += (size_t)w;
	}
	if (o->own)
		flock(o->fd, LOCK_UN);
	o->size += n;
	o->st.bytes += n;
	o->st.written += lines;
}

void agt_outfile_flush(struct agt_outfile *o)
{
	size_t off = 0;

	if (!o)
		return;
	while (off < o->whole) {
		size_t n = o->whole - off;

		int rc = o->fd < 0 ? open_cur(o, NULL, 0) : 0;

		if (rc) {
			fail(o, -rc, count_lines(o->buf + off, n));
			break;
		}
		if (o->own && o->cfg.max_bytes && o->size + n > o->cfg.max_bytes) {
			uint64_t room = o->size < o->cfg.max_bytes ? o->cfg.max_bytes - o->size : 0;
			const char *nl =
			    room ? memrchr(o->buf + off, '\n', room < n ? room : n) : NULL;

			if (nl) {
				n = (size_t)(nl - (o->buf + off)) +
				    1; /* the whole lines that fit */
			} else if (o->size > 0) {
				if (!rotate(o))
					continue;
			} else { /* a line longer than max_bytes: alone in its file */
				nl = memchr(o->buf + off, '\n', n);
				n = (size_t)(nl - (o->buf + off)) + 1;
			}
		}
		write_lines(o, off, n,
			    off == 0 && n == o->whole ? o->whole_lines /* all held: known */
						      : count_lines(o->buf + off, n));
		off += n;
	}
	memmove(o->buf, o->buf + o->whole, o->len - o->whole);
	o->len -= o->whole;
	o->whole = 0;
	o->whole_lines = 0;
}

/* A dated path: the file of real_ns, switched to at a line boundary. */
static void choose_day(struct agt_outfile *o, uint64_t real_ns)
{
	char name[PATH_MAX];
	int64_t sec = (int64_t)(real_ns / 1000000000ull);

	if (sec == o->cur_sec || o->len != o->whole)
		return;
	if (expand(o->pattern, real_ns, name, sizeof(name)))
		return;
	o->cur_sec = sec;
	if (!strcmp(name, o->cur))
		return;
	agt_outfile_flush(o);
	close_cur(o);
	snprintf(o->cur, sizeof(o->cur), "%s", name);
	open_cur(o, NULL, 0); /* a failure is counted at the next write */
	prune(o);
}

void agt_outfile_put(struct agt_outfile *o, const char *data, size_t len, uint64_t real_ns)
{
	const char *nl;
	uint64_t lines;

	if (!o || !len)
		return;
	if (o->glob)
		choose_day(o, real_ns);
	if (o->len + len > o->cap) {
		size_t cap = o->cap ? o->cap : HOLD_MAX;
		char *b;

		while (cap < o->len + len)
			cap *= 2;
		if (!(b = realloc(o->buf, cap))) {
			/* No memory to hold them: written now, or lost (counted) */
			agt_outfile_flush(o);
			lines = count_lines(data, len);
			o->st.records += lines;
			fail(o, ENOMEM, lines);
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, data, len);
	if ((nl = memrchr(o->buf + o->len, '\n', len))) {
		lines = count_lines(o->buf + o->len, len);
		o->st.records += lines;
		o->whole = (size_t)(nl - o->buf) + 1;
		o->whole_lines += lines;
	}
	o->len += len;
	if (o->len >= HOLD_MAX)
		agt_outfile_flush(o);
}

void agt_outfile_tick(struct agt_outfile *o, uint64_t real_ns)
{
	if (!o)
		return;
	if (o->stream)
		fflush(o->stream);
	agt_outfile_flush(o);
	if (o->own && o->cfg.max_age_s && o->size > 0 && o->len == 0 &&
	    real_ns >= o->born_ns + o->cfg.max_age_s * 1000000000ull)
		rotate(o);
}

/* The stdio face ------------------------------------------------------------------------ */

static ssize_t stream_write(void *cookie, const char *buf, size_t n)
{
	agt_outfile_put(cookie, buf, n, real_now());
	return (ssize_t)n;
}

FILE *agt_outfile_stream(struct agt_outfile *o)
{
	cookie_io_functions_t io = {.write = stream_write};

	if (!o->stream)
		o->stream = fopencookie(o, "w", io);
	return o->stream;
}

/* Life cycle ---------------------------------------------------------------------------- */

struct agt_outfile *agt_outfile_open(const struct agt_outfile_config *cfg, char *err, size_t errlen)
{
	struct agt_outfile *o;

	if (!cfg->path && (cfg->max_bytes || cfg->max_age_s || cfg->keep_bytes)) {
		agt_seterr(err, errlen, -EINVAL,
			   "standard output cannot be rotated; give the output a file");
		return NULL;
	}
	if (agt_outfile_check(cfg, err, errlen))
		return NULL;
	if (!(o = calloc(1, sizeof(*o)))) {
		agt_seterr(err, errlen, -ENOMEM, "out of memory opening the output");
		return NULL;
	}
	o->cfg = *cfg;
	o->fd = -1;
	o->cur_sec = -1;
	if (!cfg->path) {
		o->fd = 1;
		return o;
	}
	if (!(o->pattern = strdup(cfg->path)) ||
	    (is_dated(cfg->path) && !(o->glob = day_glob(cfg->path)))) {
		agt_seterr(err, errlen, -ENOMEM, "out of memory opening the output");
		agt_outfile_close(o);
		return NULL;
	}
	o->cfg.path = o->pattern;
	if (o->glob) {
		uint64_t now = real_now();

		expand(o->pattern, now, o->cur, sizeof(o->cur));
		o->cur_sec = (int64_t)(now / 1000000000ull);
	} else {
		snprintf(o->cur, sizeof(o->cur), "%s", o->pattern);
	}
	if (open_cur(o, err, errlen)) {
		agt_outfile_close(o);
		return NULL;
	}
	prune(o);
	return o;
}

void agt_outfile_stats(const struct agt_outfile *o, struct agt_outfile_stats *out)
{
	*out = o->st;
}

const char *agt_outfile_label(const struct agt_outfile *o)
{
	return o->pattern ? "file" : "stdout";
}

const char *agt_outfile_name(const struct agt_outfile *o)
{
	return name_of(o);
}

int agt_outfile_isatty(const struct agt_outfile *o)
{
	return !o->pattern && isatty(o->fd);
}

int agt_outfile_failed(const struct agt_outfile *o)
{
	return o && o->failed;
}

void agt_outfile_close(struct agt_outfile *o)
{
	if (!o)
		return;
	if (o->stream)
		fclose(o->stream); /* its bytes into the buffer */
	o->stream = NULL;
	agt_outfile_flush(o);
	close_cur(o);
	free(o->buf);
	free(o->glob);
	free(o->pattern);
	free(o);
}
