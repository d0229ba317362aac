/* The delivery core's write-ahead log with a fake transport: documents are delivered in order
 * and the log empties; a SIGKILL (of a forked run) loses nothing that was accepted, and what
 * survives is a prefix of what was handed over; a run killed in the middle of a replay is
 * finished by the next one; a torn tail is cut off and reported once; the overflow policies
 * count exactly what they shed; older versions' spool files are taken over and stale .tmp
 * files removed; a second run on the same folder is refused; the oldest age is current. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "export/delivery.h"

/* The fake backend: up (records what it is sent) or down (unreachable). */
struct fake {
	atomic_int down;
	int send_delay_ms;
	int pad;    /* bytes of padding per document */
	int log_fd; /* when >= 0: every delivered id is also written here (a forked run) */
	pthread_mutex_t lock;
	long *got;
	size_t ngot, cap;
};

static void fake_encode(void *t, const struct agt_span *sp, const struct agt_export_ctx *c,
			struct agt_jw *w)
{
	struct fake *f = t;
	char buf[64];
	int n =
	    snprintf(buf, sizeof(buf), "{\"id\":%llu,\"pad\":\"", (unsigned long long)sp->span_id);

	(void)c;
	agt_jw_raw(w, buf, (size_t)n);
	for (int i = 0; i < f->pad; i++)
		agt_jw_raw(w, "x", 1);
	agt_jw_raw(w, "\"}\n", 3);
}

static int fake_send(void *t, const struct agt_doc *docs, size_t n, struct agt_send_result *r)
{
	struct fake *f = t;

	if (f->send_delay_ms)
		usleep((useconds_t)f->send_delay_ms * 1000);
	if (f->down)
		return -1;
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < n; i++) {
		long id = strtol(docs[i].bytes + 6, NULL, 10);

		if (f->ngot == f->cap) {
			f->cap = f->cap ? f->cap * 2 : 1024;
			f->got = realloc(f->got, f->cap * sizeof(*f->got));
		}
		f->got[f->ngot++] = id;
		if (f->log_fd >= 0)
			assert_int_equal(write(f->log_fd, &id, sizeof(id)), sizeof(id));
		r->outcome[i] = AGT_DELIVERED;
	}
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static void fake_free(void *t)
{
	(void)t; /* the test owns its fake */
}

static const struct agt_transport_ops fake_ops = {
    .name = "fake",
    .doc_lines = 1,
    .encode = fake_encode,
    .send = fake_send,
    .free = fake_free,
};

static void null_span(struct agt_sink *s, const struct agt_span *sp)
{
	(void)s;
	(void)sp;
}

static void null_flush(struct agt_sink *s)
{
	(void)s;
}

static void null_destroy(struct agt_sink *s)
{
	(void)s;
}

static struct agt_sink null_sink = {
    .span = null_span, .flush = null_flush, .destroy = null_destroy};

struct run {
	struct fake f;
	struct agt_delivery *d;
	struct agt_sink *tee;
};

/* Start a run on dir; the fake's delay and log file come from delay_ms and log_fd. */
static void run_start_with(struct run *r, const char *dir, int down, uint64_t spool_max,
			   int overflow, int delay_ms, int log_fd)
{
	struct agt_delivery_config cfg = {.spool_dir = dir,
					  .spool_max = spool_max,
					  .drain_seconds = 1,
					  .overflow = overflow,
					  .sync_ms = 10};
	struct agt_export_ctx c = {0};
	char err[256];

	memset(&r->f, 0, sizeof(r->f));
	r->f.down = down;
	r->f.send_delay_ms = delay_ms;
	r->f.log_fd = log_fd;
	pthread_mutex_init(&r->f.lock, NULL);
	r->d = agt_delivery_start(&fake_ops, &r->f, &cfg, &c, err, sizeof(err));
	assert_non_null(r->d);
	r->tee = agt_delivery_tee(&null_sink, r->d);
}

static void run_start(struct run *r, const char *dir, int down, uint64_t spool_max, int overflow)
{
	run_start_with(r, dir, down, spool_max, overflow, 0, -1);
}

static void hand_over(struct run *r, long from, long n)
{
	struct agt_span sp;

	memset(&sp, 0, sizeof(sp));
	for (long i = from; i < from + n; i++) {
		sp.span_id = (uint64_t)i;
		r->tee->span(r->tee, &sp);
	}
}

static void run_stop(struct run *r, struct agt_delivery_stats *st)
{
	agt_delivery_stop(r->d);
	agt_delivery_stats(r->d, st);
	agt_delivery_free(r->d);
	free(r->tee); /* the tee alone: its next is the static null sink */
}

static void run_free(struct run *r)
{
	free(r->f.got);
	pthread_mutex_destroy(&r->f.lock);
}

static char *tmpdir(void)
{
	char *d = strdup("/tmp/agtrace-delivery-XXXXXX");

	assert_non_null(mkdtemp(d));
	return d;
}

static void rmdir_all(char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	char p[512];

	while (dp && (e = readdir(dp))) {
		if (e->d_name[0] == '.' && (!e->d_name[1] || e->d_name[1] == '.'))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (dp)
		closedir(dp);
	rmdir(dir);
	free(dir);
}

/* Files in dir whose names start with prefix, and their bytes. */
static int count_files(const char *dir, const char *prefix, long *bytes)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (bytes)
		*bytes = 0;
	while (dp && (e = readdir(dp))) {
		char p[512];
		struct stat st;

		if (strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		n++;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (bytes && !stat(p, &st))
			*bytes += st.st_size;
	}
	if (dp)
		closedir(dp);
	return n;
}

static void assert_range(const struct fake *f, long from, long n)
{
	assert_int_equal(f->ngot, n);
	for (long i = 0; i < n; i++)
		assert_int_equal(f->got[i], from + i);
}

static void delivers_in_order_and_empties_the_log(void **state)
{
	char *dir = tmpdir();
	struct agt_delivery_stats st;
	struct run r;

	(void)state;
	run_start(&r, dir, 0, 0, AGT_OVERFLOW_NEWEST);
	hand_over(&r, 0, 3000);
	run_stop(&r, &st);
	assert_range(&r.f, 0, 3000);
	assert_int_equal(st.queued, 3000);
	assert_int_equal(st.delivered, 3000);
	assert_int_equal(st.spooled, 3000);
	assert_int_equal(st.spool_dropped, 0);
	assert_int_equal(st.spool_bytes, 0);
	assert_int_equal(st.unsynced, 0);
	assert_true(st.fsyncs >= 1);
	assert_int_equal(count_files(dir, "spool-", NULL), 0);
	run_free(&r);
	rmdir_all(dir);
}

/* A child process hands over n documents with the backend down, waits wait_ms, then SIGKILLs
 * itself. */
static void killed_run(const char *dir, long n, int wait_ms)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct run r;

		run_start(&r, dir, 1, 0, AGT_OVERFLOW_NEWEST);
		hand_over(&r, 0, n);
		usleep((useconds_t)wait_ms * 1000);
		raise(SIGKILL);
		_exit(1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void sigkill_loses_nothing_accepted(void **state)
{
	char *dir = tmpdir();
	struct agt_delivery_stats st;
	struct run r;

	(void)state;
	killed_run(dir, 5000, 300); /* 30 sync intervals after the last hand-over */
	run_start(&r, dir, 0, 0, AGT_OVERFLOW_NEWEST);
	run_stop(&r, &st);
	assert_range(&r.f, 0, 5000);
	assert_int_equal(st.replayed, 5000);
	assert_int_equal(st.torn, 0);
	assert_int_equal(count_files(dir, "spool-", NULL), 0);
	run_free(&r);
	rmdir_all(dir);
}

static void sigkill_while_handing_over_keeps_a_prefix(void **state)
{
	char *dir = tmpdir();
	struct agt_delivery_stats st;
	struct run r;

	(void)state;
	killed_run(dir, 20000, 0); /* killed at once: part of it was not accepted yet */
	run_start(&r, dir, 0, 0, AGT_OVERFLOW_NEWEST);
	run_stop(&r, &st);
	/* What a run accepted is everything handed over up to some point, in order. */
	for (size_t i = 0; i < r.f.ngot; i++)
		assert_int_equal(r.f.got[i], (long)i);
	assert_int_equal(st.replayed, r.f.ngot);
	run_free(&r);
	rmdir_all(dir);
}

static void killed_in_the_middle_of_a_replay(void **state)
{
	char *dir = tmpdir(), path[512];
	struct agt_delivery_stats st;
	int fd, status;
	long id, dups = 0;
	struct run r;
	char *seen = calloc(5000, 1);
	pid_t pid;

	(void)state;
	killed_run(dir, 5000, 300);
	snprintf(path, sizeof(path), "%s.delivered", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	pid = fork();
	if (pid == 0) { /* a slow replay, killed part of the way through */
		struct run k;

		run_start_with(&k, dir, 0, 0, AGT_OVERFLOW_NEWEST, 30, fd);
		for (;;)
			pause();
	}
	usleep(250 * 1000);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	lseek(fd, 0, SEEK_SET);
	while (read(fd, &id, sizeof(id)) == sizeof(id))
		seen[id] = 1;
	close(fd);
	unlink(path);
	run_start(&r, dir, 0, 0, AGT_OVERFLOW_NEWEST);
	run_stop(&r, &st);
	/* The second replay starts where the first was acknowledged: in order, no gap. */
	assert_true(r.f.ngot > 0 && r.f.ngot < 5000);
	for (size_t i = 0; i < r.f.ngot; i++) {
		assert_int_equal(r.f.got[i], 5000 - (long)r.f.ngot + (long)i);
		dups += seen[r.f.got[i]];
		seen[r.f.got[i]] = 1;
	}
	for (int i = 0; i < 5000; i++)
		assert_true(seen[i]);
	print_message("replay killed after %ld documents, %ld sent again\n",
		      5000 - (long)r.f.ngot + dups, dups);
	assert_true(dups <= 2 * 500); /* the batch in flight and the one before, at most */
	free(seen);
	run_free(&r);
	rmdir_all(dir);
}

/* The newest segment file in dir. */
static void last_segment(const char *dir, char *out, size_t n)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	char best[256] = "";

	while (dp && (e = readdir(dp)))
		if (!strncmp(e->d_name, "spool-", 6) && strcmp(e->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", e->d_name);
	closedir(dp);
	snprintf(out, n, "%s/%s", dir, best);
}

static void torn_tail_is_cut_and_reported_once(void **state)
{
	char *dir = tmpdir(), seg[512];
	struct agt_delivery_stats st;
	struct stat sb;
	struct run r;
	int fd;

	(void)state;
	killed_run(dir, 100, 300);
	last_segment(dir, seg, sizeof(seg));
	assert_int_equal(stat(seg, &sb), 0);
	/* The last record loses its end, as if the run died in the middle of writing it. */
	assert_int_equal(truncate(seg, sb.st_size - 5), 0);
	run_start(&r, dir, 1, 0, AGT_OVERFLOW_NEWEST); /* down: the log stays */
	run_stop(&r, &st);
	assert_int_equal(st.torn, 1);
	/* The record of {"id":99,"pad":""}\n (16 + 19 bytes), less the 5 cut off. */
	assert_int_equal(st.torn_bytes, 16 + 19 - 5);
	run_free(&r);
	/* A second tear: a record header alone. */
	fd = open(seg, O_WRONLY | O_APPEND);
	assert_int_equal(write(fd, "\x12\x34\x56\x78\x40\0\0\0", 8), 8);
	close(fd);
	run_start(&r, dir, 0, 0, AGT_OVERFLOW_NEWEST);
	run_stop(&r, &st);
	assert_int_equal(st.torn, 1); /* the first tear was cut off: reported once */
	assert_int_equal(st.torn_bytes, 8);
	assert_range(&r.f, 0, 99);
	run_free(&r);
	rmdir_all(dir);
}

static void overflow_newest_refuses_and_counts(void **state)
{
	char *dir = tmpdir();
	struct agt_delivery_stats st, st2;
	struct run r;
	long bytes;

	(void)state;
	run_start(&r, dir, 1, 65536, AGT_OVERFLOW_NEWEST);
	r.f.pad = 200;
	hand_over(&r, 0, 2000);
	run_stop(&r, &st);
	assert_int_equal(count_files(dir, "spool-", &bytes) > 0, 1);
	assert_true(bytes <= 65536);
	assert_int_equal(st.spooled + st.lost[AGT_LOST_SPOOL_FULL], 2000);
	assert_int_equal(st.lost[AGT_LOST_SPOOL_FULL], st.spool_dropped);
	assert_true(st.spooled > 100);
	run_free(&r);
	run_start(&r, dir, 0, 65536, AGT_OVERFLOW_NEWEST);
	run_stop(&r, &st2);
	assert_range(&r.f, 0, (long)st.spooled); /* the oldest, every one of them */
	run_free(&r);
	rmdir_all(dir);
}

static void overflow_oldest_evicts_and_counts(void **state)
{
	char *dir = tmpdir();
	struct agt_delivery_stats st, st2;
	struct run r;
	long bytes;

	(void)state;
	run_start(&r, dir, 1, 65536, AGT_OVERFLOW_OLDEST);
	r.f.pad = 200;
	hand_over(&r, 0, 2000);
	run_stop(&r, &st);
	count_files(dir, "spool-", &bytes);
	assert_true(bytes <= 65536);
	assert_int_equal(st.spooled, 2000); /* every document was accepted... */
	assert_int_equal(st.lost[AGT_LOST_SPOOL_FULL], 0);
	assert_true(st.lost[AGT_LOST_EVICTED] > 1000); /* ...and the oldest deleted for newer */
	run_free(&r);
	run_start(&r, dir, 0, 65536, AGT_OVERFLOW_OLDEST);
	run_stop(&r, &st2);
	/* What is left is the newest, every one of them: exactly what was not counted lost. */
	assert_range(&r.f, (long)st.lost[AGT_LOST_EVICTED], 2000 - (long)st.lost[AGT_LOST_EVICTED]);
	run_free(&r);
	rmdir_all(dir);
}

static void older_spool_files_are_taken_over(void **state)
{
	char *dir = tmpdir(), p[512];
	struct agt_delivery_stats st;
	struct run r;
	FILE *f;

	(void)state;
	snprintf(p, sizeof(p), "%s/spool-000000000001.ndjson", dir);
	f = fopen(p, "w");
	fputs("{\"id\":7}\n{\"id\":8}\n", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/spool-000000000002.ndjson", dir);
	f = fopen(p, "w");
	fputs("{\"id\":9}\n", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/spool-000000000003.ndjson.tmp", dir);
	f = fopen(p, "w");
	fputs("{\"id\":10}\n{\"i", f);
	fclose(f);
	run_start(&r, dir, 0, 0, AGT_OVERFLOW_NEWEST);
	hand_over(&r, 11, 2);
	run_stop(&r, &st);
	/* The older files first, in their order, then this run's. */
	assert_int_equal(r.f.ngot, 5);
	assert_int_equal(r.f.got[0], 7);
	assert_int_equal(r.f.got[1], 8);
	assert_int_equal(r.f.got[2], 9);
	assert_int_equal(r.f.got[3], 11);
	assert_int_equal(r.f.got[4], 12);
	assert_int_equal(st.replayed, 3);
	assert_int_equal(st.spooled, 2);
	assert_int_equal(st.tmp_removed, 1);
	assert_int_equal(count_files(dir, "spool-", NULL), 0);
	run_free(&r);
	rmdir_all(dir);
}

/* An older version under overload wrote a file per document: many files, one batched log. */
static void many_older_files_are_taken_over_in_batches(void **state)
{
	char *dir = tmpdir(), p[512];
	struct agt_delivery_stats st;
	struct run r;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		FILE *f;

		snprintf(p, sizeof(p), "%s/spool-%012d.ndjson", dir, i + 1);
		f = fopen(p, "w");
		fprintf(f, "{\"id\":%d}\n", i);
		fclose(f);
	}
	run_start(&r, dir, 0, 0, AGT_OVERFLOW_NEWEST);
	/* Taken over and delivered before the stop (whose drain is 1 s: reading 20,000 files on
	 * a busy machine takes longer; what a stop leaves stays spooled, which is not this test). */
	agt_delivery_stats(r.d, &st);
	for (int i = 0; i < 600 && st.delivered < 20000; i++) {
		usleep(100 * 1000);
		agt_delivery_stats(r.d, &st);
	}
	run_stop(&r, &st);
	assert_range(&r.f, 0, 20000);
	assert_int_equal(st.replayed, 20000);
	assert_true(st.fsyncs < 20); /* not one per file */
	assert_int_equal(count_files(dir, "spool-", NULL), 0);
	run_free(&r);
	rmdir_all(dir);
}

static void a_second_run_on_the_folder_is_refused(void **state)
{
	char *dir = tmpdir(), err[256];
	struct agt_delivery_config cfg = {.spool_dir = dir};
	struct agt_export_ctx c = {0};
	struct agt_delivery_stats st;
	struct fake f2 = {0};
	struct run r;

	(void)state;
	run_start(&r, dir, 0, 0, AGT_OVERFLOW_NEWEST);
	assert_null(agt_delivery_start(&fake_ops, &f2, &cfg, &c, err, sizeof(err)));
	assert_non_null(strstr(err, "is in use by another agtrace"));
	run_stop(&r, &st);
	run_free(&r);
	rmdir_all(dir);
}

static void the_oldest_age_is_current(void **state)
{
	char *dir = tmpdir();
	struct agt_delivery_stats st;
	struct run r;

	(void)state;
	run_start(&r, dir, 1, 0, AGT_OVERFLOW_NEWEST);
	hand_over(&r, 0, 10);
	usleep(2200 * 1000);
	agt_delivery_stats(r.d, &st);
	assert_true(st.spool_oldest_age_s >= 2);
	assert_true(st.spool_bytes > 0);
	r.f.down = 0;
	for (int i = 0; i < 100 && st.delivered < 10; i++) { /* the backoff ends within 5 s */
		usleep(100 * 1000);
		agt_delivery_stats(r.d, &st);
	}
	assert_int_equal(st.spool_oldest_age_s, 0);
	assert_int_equal(st.delivered, 10);
	run_stop(&r, &st);
	run_free(&r);
	rmdir_all(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(delivers_in_order_and_empties_the_log),
	    cmocka_unit_test(sigkill_loses_nothing_accepted),
	    cmocka_unit_test(sigkill_while_handing_over_keeps_a_prefix),
	    cmocka_unit_test(killed_in_the_middle_of_a_replay),
	    cmocka_unit_test(torn_tail_is_cut_and_reported_once),
	    cmocka_unit_test(overflow_newest_refuses_and_counts),
	    cmocka_unit_test(overflow_oldest_evicts_and_counts),
	    cmocka_unit_test(older_spool_files_are_taken_over),
	    cmocka_unit_test(many_older_files_are_taken_over_in_batches),
	    cmocka_unit_test(a_second_run_on_the_folder_is_refused),
	    cmocka_unit_test(the_oldest_age_is_current),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
