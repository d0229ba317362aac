/* File lineage (trace/files.c) without a kernel: file operations in, the spans a capturing sink
 * receives checked exactly: one record per path per window, renames followed (a temporary file
 * renamed over its target), what agtrace knew of a path before a window, writes that never
 * wrote, deletes of files a window created, --files-ignore, the per-window cap, unified diffs;
 * and the path joining the decoder does (base/util.c). The file system is a table here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "trace/files.h"

/* ---- a file system of a few files ---- */

static struct {
	char path[128];
	char content[256];
} fs[80];
static int nfs;

static void fs_put(const char *path, const char *content)
{
	for (int i = 0; i < nfs; i++)
		if (!strcmp(fs[i].path, path)) {
			snprintf(fs[i].content, sizeof(fs[i].content), "%s", content);
			return;
		}
	snprintf(fs[nfs].path, sizeof(fs[0].path), "%s", path);
	snprintf(fs[nfs++].content, sizeof(fs[0].content), "%s", content);
}

static void fs_del(const char *path)
{
	for (int i = 0; i < nfs; i++)
		if (!strcmp(fs[i].path, path))
			fs[i] = fs[--nfs];
}

static void sha(const char *text, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void state(void *ctx, uint32_t pid, const char *path, uint64_t hash_max, size_t cmax,
		  struct agt_file_state *st)
{
	(void)ctx, (void)pid;
	memset(st, 0, sizeof(*st));
	for (int i = 0; i < nfs; i++)
		if (!strcmp(fs[i].path, path)) {
			st->exists = 1;
			st->size = strlen(fs[i].content);
			if (st->size > hash_max) {
				snprintf(st->note, sizeof(st->note), "over %llu bytes: not hashed",
					 (unsigned long long)hash_max);
				return;
			}
			sha(fs[i].content, st->sha256);
			if (cmax && st->size <= cmax) {
				st->content = strdup(fs[i].content);
				st->content_len = st->size;
			}
		}
}

/* ---- what the sink saw ---- */

struct got {
	char name[160], op[16], ops[64], path[128], prev[128], sha[65], before[65], note[96];
	char diff[1024], tool[64];
	int64_t bytes, size;
	uint64_t parent;
	int truncated;
};
static struct got out[128];
static int nout;

static void collect(struct agt_sink *sk, const struct agt_span *s)
{
	struct got *g = &out[nout++];

	(void)sk;
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", s->name);
	snprintf(g->op, sizeof(g->op), "%s", s->file.operation);
	for (int i = 0; i < s->file.noperations; i++)
		snprintf(g->ops + strlen(g->ops), sizeof(g->ops) - strlen(g->ops), "%s%s",
			 i ? "," : "", s->file.operations[i]);
	snprintf(g->path, sizeof(g->path), "%s", s->file.path);
	snprintf(g->prev, sizeof(g->prev), "%s", s->file.previous_path ? s->file.previous_path : "");
	snprintf(g->sha, sizeof(g->sha), "%s", s->file.sha256 ? s->file.sha256 : "");
	snprintf(g->before, sizeof(g->before), "%s",
		 s->file.sha256_before ? s->file.sha256_before : "");
	snprintf(g->note, sizeof(g->note), "%s", s->file.hash_note ? s->file.hash_note : "");
	snprintf(g->diff, sizeof(g->diff), "%s", s->file.diff ? s->file.diff : "");
	snprintf(g->tool, sizeof(g->tool), "%s", s->file.tool_call_id ? s->file.tool_call_id : "");
	g->bytes = s->file.bytes;
	g->size = s->file.size;
	g->parent = s->parent_id;
	g->truncated = s->file.diff_truncated;
}

static struct agt_sink sink = {.span = collect};
static struct agt_emitter em;
static struct agt_proc_info who = {.pid = 100, .comm = "agent"};

static struct agt_files *files(int diffs, const char *const *ignore, int nignore)
{
	struct agt_files_cfg cfg = {.diffs = diffs, .hash_max = 1 << 20, .ignore = ignore,
				    .nignore = nignore, .state = state};

	nout = 0;
	nfs = 0;
	agt_emitter_init(&em, &sink, NULL, NULL);
	return agt_files_new(&em, &cfg);
}

static uint64_t next_file = 0x1000;

/* A whole write: open (created or truncating), the bytes, the last close. */
static void write_file(struct agt_files *f, struct agt_fileset **set, const char *path,
		       const char *content, int created)
{
	uint64_t file = next_file += 0x100;
	struct agt_file_call open = {.op = AGT_FILE_OPEN,
				     .flags = AGT_FILE_F_WRITE |
					      (created ? AGT_FILE_F_CREATED : AGT_FILE_F_TRUNC),
				     .file = file,
				     .path = path};
	struct agt_file_call close = {.op = AGT_FILE_CLOSE,
				      .flags = AGT_FILE_F_WRITE | AGT_FILE_F_LAST,
				      .file = file,
				      .bytes = strlen(content)};

	agt_files_op(f, set, 100, &who, 100, 100, 1, &open);
	fs_put(path, content);
	agt_files_op(f, set, 100, &who, 100, 100, 2, &close);
}

static void op(struct agt_files *f, struct agt_fileset **set, uint16_t kind, const char *path,
	       const char *path2)
{
	struct agt_file_call c = {.op = kind, .path = path, .path2 = path2};

	if (kind == AGT_FILE_RENAME) {
		for (int i = 0; i < nfs; i++)
			if (!strcmp(fs[i].path, path)) {
				char content[256];

				snprintf(content, sizeof(content), "%s", fs[i].content);
				fs_del(path);
				fs_put(path2, content);
				break;
			}
	} else if (kind == AGT_FILE_UNLINK) {
		fs_del(path);
	}
	agt_files_op(f, set, 100, &who, 100, 100, 3, &c);
}

static struct agt_span tool(const char *id)
{
	struct agt_span t;

	memset(&t, 0, sizeof(t));
	t.kind = AGT_SPAN_TOOL;
	t.span_id = 0x77;
	t.tool.id = id;
	t.tool.name = "edit";
	return t;
}

static void paths_are_joined_as_the_process_saw_them(void **state)
{
	static const char *const cases[][3] = {
	    {"/a/b", "c", "/a/b/c"},	      {"/a/b", "../c/./d", "/a/c/d"},
	    {"", "/x//y/", "/x/y"},	      {"/a", "../../..", "/"},
	    {"/a/b", "/abs", "/abs"},	      {"", "rel", "/rel"},
	    {"/w", "./.tmp-b.txt", "/w/.tmp-b.txt"}};
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(agt_path_join(cases[i][0], cases[i][1], buf, sizeof(buf)), 0);
		assert_string_equal(buf, cases[i][2]);
	}
	assert_int_equal(agt_path_join("/aaaaaaaa", "bbbbbbbb", buf, 12), -ENAMETOOLONG);
}

/* Two windows on one file: the second's before is the first's after; a temporary file renamed
 * over the target is the target's record, from what it replaced. */
static void lineage_across_windows_and_rename_over(void **state)
{
	struct agt_files *f = files(0, NULL, 0);
	struct agt_fileset *w1 = NULL, *w2 = NULL;
	struct agt_span t1 = tool("call_1"), t2 = tool("call_2");
	char h1[65], h2[65];

	(void)state;
	write_file(f, &w1, "/w/a.txt", "one\n", 1);
	agt_files_emit(f, &w1, &t1, 100, 10);
	write_file(f, &w2, "/w/.tmp", "two\n", 1);
	op(f, &w2, AGT_FILE_RENAME, "/w/.tmp", "/w/a.txt");
	agt_files_emit(f, &w2, &t2, 100, 20);
	sha("one\n", h1);
	sha("two\n", h2);
	assert_int_equal(nout, 2);
	assert_string_equal(out[0].name, "file create /w/a.txt");
	assert_string_equal(out[0].ops, "create");
	assert_string_equal(out[0].sha, h1);
	assert_string_equal(out[0].before, "");
	assert_int_equal(out[0].bytes, 4);
	assert_int_equal(out[0].parent, 0x77);
	assert_string_equal(out[0].tool, "call_1");
	assert_string_equal(out[1].name, "file rename .tmp -> /w/a.txt");
	assert_string_equal(out[1].op, "rename");
	assert_string_equal(out[1].ops, "create,rename");
	assert_string_equal(out[1].prev, "/w/.tmp");
	assert_string_equal(out[1].sha, h2);
	assert_string_equal(out[1].before, h1);
	assert_string_equal(out[1].tool, "call_2");
	agt_files_free(f);
}

/* Opened for writing but nothing written: no change. Created then deleted in one window: the
 * path's record says both, with no content after. A path matching --files-ignore: nothing. */
static void empty_writes_deletes_and_ignored_paths(void **state)
{
	static const char *const ignore[] = {"/home/*/.cache/*"};
	struct agt_files *f = files(0, ignore, 1);
	struct agt_fileset *w = NULL;
	struct agt_span t = tool("call_x");
	struct agt_file_call rw = {.op = AGT_FILE_OPEN, .flags = AGT_FILE_F_WRITE, .file = 0x9,
				   .path = "/w/db"};
	struct agt_file_call cl = {.op = AGT_FILE_CLOSE,
				   .flags = AGT_FILE_F_WRITE | AGT_FILE_F_LAST,
				   .file = 0x9};

	(void)state;
	fs_put("/w/db", "data");
	agt_files_op(f, &w, 100, &who, 100, 100, 1, &rw);
	agt_files_op(f, &w, 100, &who, 100, 100, 2, &cl);
	write_file(f, &w, "/w/tmp", "x", 1);
	op(f, &w, AGT_FILE_UNLINK, "/w/tmp", NULL);
	write_file(f, &w, "/home/u/.cache/c", "cached", 1);
	agt_files_emit(f, &w, &t, 100, 10);
	assert_int_equal(nout, 1);
	assert_string_equal(out[0].name, "file delete /w/tmp");
	assert_string_equal(out[0].ops, "create,delete");
	assert_string_equal(out[0].sha, "");
	assert_int_equal(out[0].size, -1);
	assert_int_equal(agt_files_stats(f)->ignored, 1); /* its open: its close finds nothing */
	agt_files_free(f);
}

/* Outside tool calls: the process's own window, flushed once quiet; a window holds 64 paths. */
static void own_window_and_the_cap(void **state)
{
	struct agt_files *f = files(0, NULL, 0);
	char path[32];

	(void)state;
	for (int i = 0; i < 65; i++) {
		snprintf(path, sizeof(path), "/log/%d", i);
		write_file(f, NULL, path, "l", 1);
	}
	agt_files_flush(f, 0, 1000000000ull, 1000000000ull, 0); /* not quiet long enough */
	assert_int_equal(nout, 0);
	agt_files_flush(f, 0, 3000000000ull, 1000000000ull, 0);
	assert_int_equal(nout, 64);
	assert_int_equal(out[0].parent, 0);
	assert_string_equal(out[63].name, "file create /log/63");
	assert_int_equal(agt_files_stats(f)->over_cap, 1);
	agt_files_free(f);
}

/* Diffs: against what the earlier window left, removals first, 3 lines of context; a new file
 * against /dev/null; a missing last newline said so. */
static void unified_diffs(void **state)
{
	struct agt_files *f = files(1, NULL, 0);
	struct agt_fileset *w1 = NULL, *w2 = NULL;
	struct agt_span t = tool("c");

	(void)state;
	write_file(f, &w1, "/d/f", "1\n2\n3\n4\n5\n6\n7\n8\n9\n", 1);
	agt_files_emit(f, &w1, &t, 100, 1);
	write_file(f, &w2, "/d/f", "1\n2\n3\n4\nfive\n6\n7\n8\n9", 0);
	agt_files_emit(f, &w2, &t, 100, 2);
	assert_int_equal(nout, 2);
	assert_string_equal(out[0].diff, "--- /dev/null\n+++ b/d/f\n@@ -0,0 +1,9 @@\n+1\n+2\n+3\n+4\n"
					 "+5\n+6\n+7\n+8\n+9\n");
	assert_string_equal(out[1].diff, "--- a/d/f\n+++ b/d/f\n@@ -2,8 +2,8 @@\n 2\n 3\n 4\n-5\n"
					 "+five\n 6\n 7\n 8\n-9\n+9\n\\ No newline at end of file\n");
	assert_string_equal(out[1].op, "write");
	agt_files_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(paths_are_joined_as_the_process_saw_them),
	    cmocka_unit_test(lineage_across_windows_and_rename_over),
	    cmocka_unit_test(empty_writes_deletes_and_ignored_paths),
	    cmocka_unit_test(own_window_and_the_cap),
	    cmocka_unit_test(unified_diffs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
