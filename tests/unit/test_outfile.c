/* Output files (export/outfile.c): a day's file chosen for each line by the time it carries,
 * rotation by size and by age with whole lines in every file, the bytes kept bounded, a torn
 * last line cut at open, and write failures (a full device, a write cut short) counted line by
 * line: handed over = written + lost, and the file holds whole lines only. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/util.h"
#include "export/outfile.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/agt-outfile-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) ? -1 : 0;
}

static char *slurp(const char *path)
{
	char *t = agt_read_file(path, 1 << 24, NULL);

	if (!t)
		fail_msg("cannot read %s", path);
	return t;
}

static struct agt_outfile *open_out(struct agt_outfile_config *c)
{
	char err[512] = "";
	struct agt_outfile *o = agt_outfile_open(c, err, sizeof(err));

	if (!o)
		fail_msg("open: %s", err);
	return o;
}

/* Stderr to /dev/null while fn's warnings would clutter the output. */
static int quiet_fd = -1;
static void quiet(void)
{
	int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);

	fflush(stderr);
	quiet_fd = dup(2);
	dup2(nul, 2);
	close(nul);
}
static void loud(void)
{
	fflush(stderr);
	dup2(quiet_fd, 2);
	close(quiet_fd);
}

#define SEC 1000000000ull
/* 2025-01-01T23:59:59Z and two seconds later, on 2025-01-02. */
#define LATE (1735775999ull * SEC)
#define EARLY (1735776001ull * SEC)

/* The day's file of a line is the day of the time it comes with, not of the first line. */
static void day_per_line(void **state)
{
	char pat[128], a[160], b[160], *t;
	struct agt_outfile_config c = {.path = pat};
	struct agt_outfile *o;
	struct agt_outfile_stats st;

	(void)state;
	snprintf(pat, sizeof(pat), "%s/spans-%%Y-%%m-%%d.jsonl", dir);
	o = open_out(&c); /* today's file is opened (and created) at once */
	agt_outfile_put(o, "{\"n\":1}\n", 8, LATE);
	agt_outfile_put(o, "{\"n\":2}\n", 8, EARLY);
	agt_outfile_put(o, "{\"n\":3}\n", 8, LATE + SEC / 2); /* started before midnight */
	agt_outfile_put(o, "{\"n\":4}\n", 8, EARLY + SEC);
	agt_outfile_flush(o);
	agt_outfile_stats(o, &st);
	agt_outfile_close(o);
	assert_int_equal(st.records, 4);
	assert_int_equal(st.written, 4);
	snprintf(a, sizeof(a), "%s/spans-2025-01-01.jsonl", dir);
	snprintf(b, sizeof(b), "%s/spans-2025-01-02.jsonl", dir);
	t = slurp(a);
	assert_string_equal(t, "{\"n\":1}\n{\"n\":3}\n");
	free(t);
	t = slurp(b);
	assert_string_equal(t, "{\"n\":2}\n{\"n\":4}\n");
	free(t);
}

static void put_line(struct agt_outfile *o, int i)
{
	char l[64];
	int n = snprintf(l, sizeof(l), "{\"line\":%04d,\"pad\":\"xxxxxxxxxxxxxx\"}\n", i); /* 37 */

	agt_outfile_put(o, l, (size_t)n, LATE);
}

/* Every file within max_bytes, whole lines only, every line once and in order across
 * FILE.1 ... FILE.N, FILE. */
static void rotation_by_size_and_keep(void **state)
{
	char path[128], p[160], *t, all[8192] = "";
	struct agt_outfile_config c = {.path = path, .max_bytes = 100};
	struct agt_outfile *o;
	struct agt_outfile_stats st;
	int files = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/out.jsonl", dir);
	o = open_out(&c);
	for (int i = 0; i < 10; i++) {
		put_line(o, i);
		agt_outfile_flush(o);
	}
	agt_outfile_stats(o, &st);
	agt_outfile_close(o);
	assert_int_equal(st.written, 10);
	assert_int_equal(st.rotations, 4); /* two 37-byte lines a file */
	for (int i = 1; i <= 4; i++) {
		struct stat sb;

		snprintf(p, sizeof(p), "%s.%d", path, i);
		assert_int_equal(stat(p, &sb), 0);
		assert_int_equal(sb.st_size, 74);
		t = slurp(p);
		strcat(all, t);
		free(t);
		files++;
	}
	t = slurp(path);
	strcat(all, t);
	free(t);
	for (int i = 0; i < 10; i++) {
		char l[64];

		snprintf(l, sizeof(l), "{\"line\":%04d,", i);
		assert_ptr_equal(strstr(all, l), all + 37 * i);
	}
	/* Held lines written at once are split between files too. */
	unlink(path);
	for (int i = 1; i <= 4; i++) {
		snprintf(p, sizeof(p), "%s.%d", path, i);
		unlink(p);
	}
	c.keep_bytes = 200; /* with the current one: the newest rotated files that fit */
	o = open_out(&c);
	for (int i = 0; i < 20; i++)
		put_line(o, i);
	agt_outfile_flush(o);
	agt_outfile_stats(o, &st);
	agt_outfile_close(o);
	assert_int_equal(st.written, 20);
	assert_int_equal(st.rotations, 9);
	assert_int_equal(st.removed, 7); /* 74 + 74 + the current 74 <= 200 */
	for (int i = 1; i <= 9; i++) {
		snprintf(p, sizeof(p), "%s.%d", path, i);
		assert_int_equal(access(p, F_OK) == 0, i >= 8);
	}
	(void)files;
}

/* A file older than max_age is rotated at the next tick once it holds something. */
static void rotation_by_age(void **state)
{
	char path[128], p[160];
	struct agt_outfile_config c = {.path = path, .max_age_s = 60};
	struct agt_outfile *o;
	struct agt_outfile_stats st;
	uint64_t now = (uint64_t)time(NULL) * SEC;

	(void)state;
	snprintf(path, sizeof(path), "%s/age.jsonl", dir);
	o = open_out(&c);
	agt_outfile_tick(o, now + 61 * SEC); /* empty: nothing to rotate */
	put_line(o, 1);
	agt_outfile_tick(o, now + 30 * SEC);
	agt_outfile_stats(o, &st);
	assert_int_equal(st.rotations, 0);
	agt_outfile_tick(o, now + 61 * SEC);
	put_line(o, 2);
	agt_outfile_stats(o, &st);
	agt_outfile_close(o);
	assert_int_equal(st.rotations, 1);
	snprintf(p, sizeof(p), "%s.1", path);
	char *t = slurp(p);
	assert_non_null(strstr(t, "\"line\":0001"));
	free(t);
	t = slurp(path);
	assert_non_null(strstr(t, "\"line\":0002"));
	free(t);
}

/* A line a killed run left without its newline is cut off when the file is opened again. */
static void torn_tail_cut(void **state)
{
	char path[128], *t;
	struct agt_outfile_config c = {.path = path};
	struct agt_outfile *o;
	struct agt_outfile_stats st;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/torn.jsonl", dir);
	f = fopen(path, "w");
	fputs("{\"a\":1}\n{\"b\":2}\n{\"c\":", f);
	fclose(f);
	quiet();
	o = open_out(&c);
	loud();
	agt_outfile_put(o, "{\"d\":4}\n", 8, LATE);
	agt_outfile_stats(o, &st);
	agt_outfile_close(o);
	assert_int_equal(st.torn, 1);
	assert_int_equal(st.torn_bytes, 5);
	t = slurp(path);
	assert_string_equal(t, "{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n");
	free(t);
}

/* Write failures: lines lost are counted (written + lost = handed over), a line cut short is
 * cut back out, and the output says it failed. */
static void write_failures(void **state)
{
	char path[128], *t;
	struct agt_outfile_config full = {.path = "/dev/full"}, c = {.path = path};
	struct agt_outfile *o;
	struct agt_outfile_stats st;
	struct rlimit old, lim;

	(void)state;
	o = open_out(&full);
	quiet();
	for (int i = 0; i < 5; i++)
		put_line(o, i);
	agt_outfile_flush(o);
	put_line(o, 5);
	agt_outfile_flush(o);
	loud();
	agt_outfile_stats(o, &st);
	assert_true(agt_outfile_failed(o));
	agt_outfile_close(o);
	assert_int_equal(st.records, 6);
	assert_int_equal(st.written, 0);
	assert_int_equal(st.lost[AGT_OUT_DISK_FULL], 6);
	assert_int_equal(st.write_failures, 2);

	/* A file size limit cuts the third line short. */
	snprintf(path, sizeof(path), "%s/cut.jsonl", dir);
	o = open_out(&c);
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 37 * 2 + 10;
	quiet();
	setrlimit(RLIMIT_FSIZE, &lim);
	for (int i = 0; i < 4; i++)
		put_line(o, i);
	agt_outfile_flush(o);
	setrlimit(RLIMIT_FSIZE, &old);
	put_line(o, 4); /* written again once it can be */
	agt_outfile_flush(o);
	loud();
	agt_outfile_stats(o, &st);
	agt_outfile_close(o);
	assert_int_equal(st.records, 5);
	assert_int_equal(st.written, 3);
	assert_int_equal(st.lost[AGT_OUT_DISK_FULL], 2); /* EFBIG */
	t = slurp(path);
	assert_int_equal(strlen(t), 3 * 37);
	assert_non_null(strstr(t, "\"line\":0001"));
	assert_non_null(strstr(t, "\"line\":0004"));
	assert_null(strstr(t, "\"line\":0002"));
	free(t);
}

/* Lines through the stdio face are counted by their newlines, whatever the chunks. */
static void stream_lines(void **state)
{
	char path[128], *t;
	struct agt_outfile_config c = {.path = path};
	struct agt_outfile *o;
	struct agt_outfile_stats st;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/tree.txt", dir);
	o = open_out(&c);
	f = agt_outfile_stream(o);
	fprintf(f, "root 1 ms\n  └─ child");
	fflush(f);
	fprintf(f, " 0.5 ms\n");
	fflush(f);
	agt_outfile_flush(o);
	agt_outfile_stats(o, &st);
	agt_outfile_close(o);
	assert_int_equal(st.records, 2);
	assert_int_equal(st.written, 2);
	t = slurp(path);
	assert_string_equal(t, "root 1 ms\n  └─ child 0.5 ms\n");
	free(t);
}

static void bad_paths(void **state)
{
	char err[512];
	struct agt_outfile_config c = {.path = "/tmp/%Y/spans.jsonl"};

	(void)state;
	assert_int_equal(agt_outfile_check(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "/tmp/%Y/spans.jsonl: strftime conversions (%Y, %m, %d, ...) may "
				 "only be in the file name, not in its folder");
	c.path = "/tmp/spans-%D.jsonl";
	assert_int_equal(agt_outfile_check(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "/tmp/spans-%D.jsonl: its strftime conversions make no file name "
				 "(empty, or with a '/' such as %D gives); use %Y-%m-%d");
	c.path = NULL;
	c.max_bytes = 4096;
	assert_null(agt_outfile_open(&c, err, sizeof(err)));
	assert_string_equal(err, "standard output cannot be rotated; give the output a file");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(day_per_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(rotation_by_size_and_keep, setup, teardown),
	    cmocka_unit_test_setup_teardown(rotation_by_age, setup, teardown),
	    cmocka_unit_test_setup_teardown(torn_tail_cut, setup, teardown),
	    cmocka_unit_test_setup_teardown(write_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(stream_lines, setup, teardown),
	    cmocka_unit_test(bad_paths),
	};
	return cmocka_run_group_tests_name("outfile", tests, NULL, NULL);
}
