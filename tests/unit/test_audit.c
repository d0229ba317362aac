/* The audit trail on synthetic trails: what the mac covers (recomputed here independently),
 * checkpoints by count and by time and the anchors they hand out, verification of every kind
 * of damage, a torn tail recovered at open, write failures counted and disclosed, key files. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/util.h"
#include "export/audit.h"

static const struct agt_export_ctx ctx = {.mono_to_real = 0, .host = "unit"};

struct fixture {
	char dir[64];
	char trail[96];
	struct agt_audit_key key;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/agt-audit-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->trail, sizeof(f->trail), "%s/trail.jsonl", f->dir);
	for (size_t i = 0; i < 32; i++)
		f->key.bytes[i] = (unsigned char)(i * 7 + 1);
	f->key.len = 32;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

static struct agt_audit *open_trail(struct fixture *f, int keyed, uint64_t every, uint64_t secs)
{
	struct agt_audit_config c = {.path = f->trail,
				     .key = keyed ? &f->key : NULL,
				     .checkpoint_records = every,
				     .checkpoint_seconds = secs};
	char err[256] = "";
	struct agt_audit *a = agt_audit_open(&c, &ctx, err, sizeof(err));

	if (!a)
		fail_msg("open: %s", err);
	return a;
}

static void add(struct agt_audit *a, int i)
{
	cJSON *d = cJSON_CreateObject();

	cJSON_AddNumberToObject(d, "i", i);
	cJSON_AddStringToObject(d, "name", "tool \"x\"\n");
	assert_int_equal(agt_audit_record(a, "tool_call", d), 0);
}

/* A trail of n records, sealed or not. */
static void write_trail(struct fixture *f, int keyed, int n, int seal)
{
	struct agt_audit *a = open_trail(f, keyed, 1000, 3600);

	for (int i = 0; i < n; i++)
		add(a, i);
	if (seal)
		assert_int_equal(agt_audit_seal(a), 0);
	agt_audit_close(a);
}

static char *slurp(const char *path)
{
	char *t = agt_read_file(path, 1 << 24, NULL);

	assert_non_null(t);
	return t;
}

/* Lines of a file (each with its newline); *n of them. */
static char **lines_of(const char *path, int *n)
{
	char *t = slurp(path), **v = calloc(4096, sizeof(*v));
	char *p = t;

	*n = 0;
	while (*p) {
		char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);

		v[(*n)++] = strndup(p, len);
		p += len;
	}
	free(t);
	return v;
}

static void free_lines(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void put_lines(const char *path, char **v, int n)
{
	FILE *o = fopen(path, "w");

	for (int i = 0; i < n; i++)
		fputs(v[i], o);
	fclose(o);
}

static void verify(const char *path, const struct agt_audit_key *key,
		   const struct agt_audit_anchor_ref *an, struct agt_audit_report *r)
{
	FILE *in = fopen(path, "r");
	char err[256];

	assert_non_null(in);
	assert_int_equal(agt_audit_verify(in, key, an, r, err, sizeof(err)), 0);
	fclose(in);
}

/* Each line's digest field is HMAC-SHA256(key, prev || the line without it), or SHA-256 of the
 * same without a key; prev is the previous line's digest. Recomputed here with libcrypto. */
static void check_chain(const char *path, const struct agt_audit_key *key)
{
	const char *field = key ? ",\"mac\":\"" : ",\"hash\":\"";
	char prev[65] = "", **v;
	int n;

	v = lines_of(path, &n);
	assert_true(n > 0);
	for (int i = 0; i < n; i++) {
		char *at = strstr(v[i], field), canon[8192], want[65], *msg;
		unsigned char md[64];
		size_t mdlen = 0, clen;

		assert_non_null(at);
		clen = (size_t)(at - v[i]);
		memcpy(canon, v[i], clen);
		memcpy(canon + clen, "}", 2);
		/* the digest is the last member */
		assert_string_equal(at + strlen(field) + 64, "\"}\n");
		snprintf(want, sizeof(want), "%.64s", at + strlen(field));
		assert_non_null(strstr(v[i], "\"prev\":\""));
		assert_memory_equal(strstr(v[i], "\"prev\":\"") + 8, prev, strlen(prev));
		if (asprintf(&msg, "%s%s", prev, canon) < 0)
			fail();
		if (key)
			assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key->bytes,
						  key->len, (unsigned char *)msg, strlen(msg), md,
						  sizeof(md), &mdlen));
		else
			assert_int_equal(EVP_Digest(msg, strlen(msg), md, NULL, EVP_sha256(), NULL),
					 1);
		free(msg);
		{
			char hex[65];

			agt_hex(md, 32, hex);
			assert_string_equal(hex, want);
		}
		memcpy(prev, want, sizeof(prev));
	}
	free_lines(v, n);
}

static void mac_chain(void **state)
{
	struct fixture *f = *state;
	struct agt_audit_report r;

	write_trail(f, 1, 4, 1);
	check_chain(f->trail, &f->key);
	verify(f->trail, &f->key, NULL, &r);
	assert_true(r.intact);
	assert_int_equal(r.records, 5);
	assert_true(r.sealed && r.keyed);

	unlink(f->trail);
	write_trail(f, 0, 4, 1);
	check_chain(f->trail, NULL);
	verify(f->trail, NULL, NULL, &r);
	assert_true(r.intact);
	assert_false(r.keyed);
}

static void null_span(struct agt_sink *s, const struct agt_span *sp)
{
	(void)s;
	(void)sp;
}
static void null_op(struct agt_sink *s)
{
	(void)s;
}

/* Records of spans are written without a cJSON tree, straight into a buffer: each line must be
 * exactly what cJSON prints from its parse (the text verification digests), with quotes,
 * control characters, non-ASCII and invalid UTF-8 (replaced by U+FFFD) in the span's text. */
static void span_records_verify(void **state)
{
	struct fixture *f = *state;
	struct agt_sink null = {.span = null_span, .flush = null_op, .destroy = null_op}, *tee;
	struct agt_proc_info proc = {.pid = 42, .comm = "agent", .exe = "/usr/bin/agent"};
	struct agt_audit_report r;
	struct agt_audit *a = open_trail(f, 1, 1000, 3600);
	struct agt_span sp;
	char **v;
	int n;

	tee = agt_audit_tee(&null, a);
	memset(&sp, 0, sizeof(sp));
	sp.proc = &proc;
	sp.pid = 42;
	sp.trace_type = "state_change";
	sp.kind = AGT_SPAN_STATE;
	snprintf(sp.name, sizeof(sp.name), "attach \"agent\"\t\x01");
	snprintf(sp.message, sizeof(sp.message),
		 "caf\xc3\xa9 \xf0\x9f\x98\x80 bad\xff\xc3 end\\/\x7f");
	tee->span(tee, &sp);
	sp.kind = AGT_SPAN_TOOL;
	sp.trace_type = "tool_call";
	sp.span_id = 0x1122334455667788ull;
	memset(sp.trace_id, 0xab, sizeof(sp.trace_id));
	snprintf(sp.name, sizeof(sp.name), "execute_tool get_\"weather\"\n\xe2\x82");
	tee->span(tee, &sp);
	sp.kind = AGT_SPAN_DECISION;
	sp.trace_type = "decision";
	snprintf(sp.name, sizeof(sp.name), "decision get_weather");
	tee->span(tee, &sp);
	assert_int_equal(agt_audit_seal(a), 0);
	tee->destroy(tee);
	agt_audit_close(a);

	check_chain(f->trail, &f->key);
	verify(f->trail, &f->key, NULL, &r);
	assert_true(r.intact && r.sealed);
	assert_int_equal(r.records, 4);
	v = lines_of(f->trail, &n);
	assert_int_equal(n, 4);
	for (int i = 0; i < n; i++) {
		cJSON *o = cJSON_Parse(v[i]);
		char *again = cJSON_PrintUnformatted(o);

		assert_non_null(again);
		assert_int_equal(strlen(again) + 1, strlen(v[i]));
		assert_memory_equal(again, v[i], strlen(again));
		free(again);
		cJSON_Delete(o);
	}
	assert_non_null(
	    strstr(v[0], ",\"type\":\"attach\",\"data\":{\"pid\":42,\"name\":\"attach "
			 "\\\"agent\\\"\\t\\u0001\",\"message\":\"caf\xc3\xa9 \xf0\x9f\x98\x80 "
			 "bad\xef\xbf\xbd\xef\xbf\xbd end\\\\/\x7f\"},\"prev\":\"\""));
	assert_non_null(strstr(v[1], ",\"type\":\"tool_call\",\"data\":{\"trace_id\":\"abababab"));
	assert_non_null(strstr(v[1],
			       "\"span_id\":\"1122334455667788\",\"name\":\"execute_tool "
			       "get_\\\"weather\\\"\\n\xef\xbf\xbd\xef\xbf\xbd\",\"sha256\":\""));
	assert_non_null(strstr(v[2], ",\"type\":\"decision\",\"data\":{"));
	free_lines(v, n);
}

struct anchors {
	int n;
	struct agt_audit_anchor v[8];
};

static void keep_anchor(void *c, const struct agt_audit_anchor *an)
{
	struct anchors *s = c;

	if (s->n < 8)
		s->v[s->n++] = *an;
}

static void checkpoints(void **state)
{
	struct fixture *f = *state;
	struct anchors got = {0};
	struct agt_audit_stats st;
	struct agt_audit_report r;
	struct agt_audit_anchor_ref ref;
	struct agt_audit *a = open_trail(f, 1, 3, 3600);
	char **v;
	int n;

	agt_audit_set_anchor(a, keep_anchor, &got);
	for (int i = 0; i < 7; i++)
		add(a, i);
	/* 0 1 2 checkpoint(3) 4 5 6 checkpoint(7) 8; an anchor counts its checkpoint */
	assert_int_equal(got.n, 2);
	assert_string_equal(got.v[0].type, "checkpoint");
	assert_int_equal(got.v[0].seq, 3);
	assert_int_equal(got.v[0].records, 4);
	assert_int_equal(got.v[1].seq, 7);
	assert_int_equal(got.v[1].records, 8);
	assert_true(got.v[1].keyed);
	agt_audit_stats(a, &st);
	assert_int_equal(st.checkpoints, 2);
	assert_int_equal(st.last_checkpoint_seq, 7);
	assert_true(st.last_checkpoint_real_ns > 0);
	assert_int_equal(st.records, 9);
	assert_int_equal(st.write_failures, 0);
	assert_int_equal(agt_audit_seal(a), 0);
	assert_int_equal(got.n, 3);
	assert_string_equal(got.v[2].type, "seal");
	assert_int_equal(got.v[2].seq, 9);
	assert_int_equal(got.v[2].records, 10);
	assert_int_equal(agt_audit_record(a, "late", NULL), -EPIPE); /* nothing after the seal */
	agt_audit_close(a);

	/* The anchor's head is the checkpoint's own mac (the checkpoint's data names the record
	 * before it); its text is the argument verify takes back. */
	v = lines_of(f->trail, &n);
	assert_int_equal(n, 10);
	assert_non_null(
	    strstr(v[7], "\"type\":\"checkpoint\",\"data\":{\"records\":7,\"head\":\""));
	assert_non_null(strstr(v[7], got.v[1].head));
	assert_non_null(strstr(v[8], got.v[1].head)); /* as the next record's prev */
	assert_int_equal(agt_audit_anchor_parse(got.v[1].text, &ref), 0);
	assert_int_equal(ref.records, 8);
	verify(f->trail, &f->key, &ref, &r);
	assert_true(r.intact);
	assert_int_equal(r.checkpoints, 2);

	/* Cut right at the checkpoint (the last 3 records): no seal, and the anchor names more
	 * records than are left. */
	put_lines(f->trail, v, 7);
	verify(f->trail, &f->key, &ref, &r);
	assert_false(r.intact);
	assert_false(r.broken);
	assert_false(r.sealed);
	assert_true(r.anchor_missing);
	assert_int_equal(r.records, 7);
	free_lines(v, n);

	/* By time: a checkpoint once T seconds passed and something was recorded since. */
	unlink(f->trail);
	memset(&got, 0, sizeof(got));
	a = open_trail(f, 1, 1000, 5);
	agt_audit_set_anchor(a, keep_anchor, &got);
	add(a, 0);
	agt_audit_tick(a, agt_mono_ns() + 1000000000ull);
	assert_int_equal(got.n, 0);
	agt_audit_tick(a, agt_mono_ns() + 6000000000ull);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.v[0].records, 2);
	agt_audit_tick(a, agt_mono_ns() + 60000000000ull); /* nothing new: no checkpoint */
	assert_int_equal(got.n, 1);
	agt_audit_close(a);
}

static void damage_is_found(void **state)
{
	struct fixture *f = *state;
	struct agt_audit_report r;
	struct agt_audit_anchor_ref ref = {.records = 3};
	struct agt_audit_key other = f->key;
	char **v, *t;
	int n;

	write_trail(f, 1, 5, 1);
	v = lines_of(f->trail, &n);
	assert_int_equal(n, 6);

	/* edited */
	t = strdup(v[2]);
	memcpy(strstr(t, "tool "), "TOOL ", 5);
	{
		char *w[6] = {v[0], v[1], t, v[3], v[4], v[5]};

		put_lines(f->trail, w, 6);
	}
	verify(f->trail, &f->key, NULL, &r);
	assert_true(r.broken);
	assert_int_equal(r.break_line, 3);
	assert_int_equal(r.break_record, 2);
	assert_string_equal(r.why, "was changed or forged: its mac does not match its content "
				   "with this key");
	free(t);

	/* deleted inside */
	{
		char *w[5] = {v[0], v[1], v[3], v[4], v[5]};

		put_lines(f->trail, w, 5);
	}
	verify(f->trail, &f->key, NULL, &r);
	assert_true(r.broken);
	assert_string_equal(r.why, "follows a gap: a record before it was removed");

	/* swapped */
	{
		char *w[6] = {v[0], v[2], v[1], v[3], v[4], v[5]};

		put_lines(f->trail, w, 6);
	}
	verify(f->trail, &f->key, NULL, &r);
	assert_true(r.broken);
	assert_int_equal(r.break_line, 2);

	/* another key; no key for a keyed trail */
	put_lines(f->trail, v, 6);
	other.bytes[0] ^= 1;
	verify(f->trail, &other, NULL, &r);
	assert_true(r.broken);
	assert_int_equal(r.break_line, 1);
	verify(f->trail, NULL, NULL, &r);
	assert_true(r.key_needed);
	assert_false(r.intact);

	/* an anchor whose head is not the trail's */
	memset(ref.head, 'a', 64);
	verify(f->trail, &f->key, &ref, &r);
	assert_true(r.anchor_mismatch);
	assert_false(r.intact);

	/* torn last line */
	{
		FILE *o = fopen(f->trail, "a");

		fputs("{\"seq\":6,\"@time", o);
		fclose(o);
	}
	verify(f->trail, &f->key, NULL, &r);
	assert_int_equal(r.torn_line, 7);
	assert_int_equal(r.torn_bytes, 15);
	assert_false(r.sealed);
	assert_false(r.intact);

	/* trailing garbage on a line, a NUL inside one */
	t = strdup(v[5]);
	t[strlen(t) - 1] = 0;
	{
		char *g, *w[6] = {v[0], v[1], v[2], v[3], v[4], NULL};

		if (asprintf(&g, "%s x\n", t) < 0)
			fail();
		w[5] = g;
		put_lines(f->trail, w, 6);
		free(g);
	}
	verify(f->trail, &f->key, NULL, &r);
	assert_true(r.broken);
	assert_string_equal(r.why, "is not an audit record");
	free(t);

	/* empty */
	put_lines(f->trail, v, 0);
	verify(f->trail, &f->key, NULL, &r);
	assert_true(r.empty);
	assert_false(r.intact);
	free_lines(v, n);

	/* An unkeyed trail given a key: re-hashed without the key looks like this. */
	write_trail(f, 0, 2, 1);
	verify(f->trail, &f->key, NULL, &r);
	assert_true(r.broken);
	assert_int_equal(r.break_line, 1);
	assert_string_equal(r.why, "has no mac: the trail was written without a key, or "
				   "rewritten without it");
}

static void torn_tail_recovered(void **state)
{
	struct fixture *f = *state;
	struct agt_audit_report r;
	struct agt_audit *a;
	char **v, *text;
	int n;

	write_trail(f, 1, 3, 0); /* killed: no seal */
	{
		FILE *o = fopen(f->trail, "a");

		fputs("{\"seq\":3,\"@timestamp\":\"20", o);
		fclose(o);
	}
	a = open_trail(f, 1, 1000, 3600);
	add(a, 9);
	assert_int_equal(agt_audit_seal(a), 0);
	agt_audit_close(a);
	text = slurp(f->trail);
	assert_null(strstr(text, "\"20{"));
	free(text);
	v = lines_of(f->trail, &n);
	assert_int_equal(n, 6); /* 0 1 2, gap 3, 4, seal 5 */
	assert_non_null(strstr(v[3], "\"seq\":3,"));
	assert_non_null(strstr(v[3], "\"type\":\"gap\",\"data\":{\"reason\":\"torn_tail\","
				     "\"bytes\":25,"));
	free_lines(v, n);
	verify(f->trail, &f->key, NULL, &r);
	assert_false(r.broken);
	assert_int_equal(r.records, 6);
	assert_true(r.sealed);
	assert_int_equal(r.gaps, 1);
	assert_int_equal(r.first_gap_seq, 3);
	assert_string_equal(r.first_gap, "a torn last line of 25 bytes (a write cut short: the run "
					 "before did not end cleanly) was cut at restart; the "
					 "record it held is lost");
	assert_false(r.intact);

	/* A run that ended without a seal (and no torn line): said at the next start. */
	unlink(f->trail);
	write_trail(f, 1, 2, 0);
	a = open_trail(f, 1, 1000, 3600);
	agt_audit_close(a);
	v = lines_of(f->trail, &n);
	assert_int_equal(n, 3);
	assert_non_null(strstr(v[2], "\"reason\":\"unsealed\",\"after\":1,"));
	free_lines(v, n);

	/* A sealed trail continues without a gap. */
	unlink(f->trail);
	write_trail(f, 1, 2, 1);
	write_trail(f, 1, 1, 1);
	verify(f->trail, &f->key, NULL, &r);
	assert_true(r.intact);
	assert_int_equal(r.records, 5);
}

static void open_refuses(void **state)
{
	struct fixture *f = *state;
	struct agt_audit_config c = {.path = f->trail, .key = &f->key};
	struct agt_audit_key other = f->key;
	char err[512];
	struct agt_audit *a, *b;

	write_trail(f, 0, 1, 1);
	assert_null(agt_audit_open(&c, &ctx, err, sizeof(err)));
	assert_non_null(strstr(err, "was written without a key"));
	unlink(f->trail);
	write_trail(f, 1, 1, 1);
	c.key = NULL;
	assert_null(agt_audit_open(&c, &ctx, err, sizeof(err)));
	assert_non_null(strstr(err, "is keyed: give its key with --audit-key"));
	other.bytes[3] ^= 0x80;
	c.key = &other;
	assert_null(agt_audit_open(&c, &ctx, err, sizeof(err)));
	assert_non_null(strstr(err, "does not verify with this key"));
	c.key = &f->key;
	a = agt_audit_open(&c, &ctx, err, sizeof(err));
	assert_non_null(a);
	b = agt_audit_open(&c, &ctx, err, sizeof(err)); /* a second writer */
	assert_null(b);
	assert_non_null(strstr(err, "is being written by another agtrace"));
	agt_audit_close(a);
	{
		char link[128];

		snprintf(link, sizeof(link), "%s/link.jsonl", f->dir);
		assert_int_equal(symlink(f->trail, link), 0);
		c.path = link;
		assert_null(agt_audit_open(&c, &ctx, err, sizeof(err)));
		assert_non_null(strstr(err, "is a symbolic link"));
	}
}

/* A write that fails (here: past RLIMIT_FSIZE, cut short) is cut back out, counted, and
 * disclosed by a gap record once writing works again; /dev/full fails every write. */
static void write_failures(void **state)
{
	struct fixture *f = *state;
	struct agt_audit_config full = {.path = "/dev/full"};
	struct agt_audit_stats st;
	struct agt_audit_report r;
	struct rlimit old, lim;
	struct agt_audit *a;
	struct stat sb;
	char err[256], **v;
	int n, saved, nul, rc1, rc2;

	a = open_trail(f, 1, 1000, 3600);
	add(a, 0);
	assert_int_equal(stat(f->trail, &sb), 0);
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)sb.st_size + 20; /* the next line is cut short */
	fflush(stderr);
	saved = dup(2); /* stderr may be a file: the limit would cut the warning */
	nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
	dup2(nul, 2);
	close(nul);
	setrlimit(RLIMIT_FSIZE, &lim);
	rc1 = agt_audit_record(a, "decision", NULL);
	rc2 = agt_audit_record(a, "decision", NULL);
	setrlimit(RLIMIT_FSIZE, &old);
	dup2(saved, 2);
	close(saved);
	assert_int_equal(rc1, -EFBIG);
	assert_int_equal(rc2, -EFBIG);
	assert_true(agt_audit_failed(a));
	agt_audit_stats(a, &st);
	assert_int_equal(st.write_failures, 2);
	assert_int_equal(stat(f->trail, &sb), 0);
	add(a, 1);
	assert_int_equal(agt_audit_seal(a), 0);
	agt_audit_close(a);
	v = lines_of(f->trail, &n);
	assert_int_equal(n, 4); /* 0, gap, 1, seal */
	assert_non_null(strstr(v[1], "\"reason\":\"write_failed\",\"lost\":2,"));
	free_lines(v, n);
	verify(f->trail, &f->key, NULL, &r);
	assert_false(r.broken);
	assert_true(r.sealed);
	assert_int_equal(r.gaps, 1);
	assert_string_equal(r.first_gap, "2 records could not be written (File too large)");
	assert_false(r.intact);

	a = agt_audit_open(&full, &ctx, err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(agt_audit_record(a, "config", NULL), -ENOSPC);
	assert_int_equal(agt_audit_seal(a), -ENOSPC);
	agt_audit_stats(a, &st);
	assert_int_equal(st.records, 0);
	assert_int_equal(st.write_failures, 2);
	assert_true(agt_audit_failed(a));
	agt_audit_close(a);
}

static void write_key(const char *path, size_t n, mode_t mode)
{
	unsigned char b[64] = {1};
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, n), (ssize_t)n);
	fchmod(fd, mode);
	close(fd);
}

static void key_files(void **state)
{
	struct fixture *f = *state;
	struct agt_audit_key k;
	char path[128], err[512];

	snprintf(path, sizeof(path), "%s/key", f->dir);
	write_key(path, 32, 0644);
	assert_int_equal(agt_audit_key_load(path, 1, &k, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "can be read by group or others (mode 0644)"));
	write_key(path, 8, 0600);
	assert_int_equal(agt_audit_key_load(path, 1, &k, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "has too few bytes"));
	write_key(path, 32, 0600);
	assert_int_equal(agt_audit_key_load(path, 1, &k, err, sizeof(err)), 0);
	assert_int_equal(k.len, 32);
	if (geteuid() == 0) { /* owned by someone else, who can read it */
		assert_int_equal(chown(path, 65534, 65534), 0);
		assert_int_equal(agt_audit_key_load(path, 1, &k, err, sizeof(err)), -EPERM);
		assert_int_equal(agt_audit_key_load(path, 0, &k, err, sizeof(err)), 0);
	}
}

static void anchors_parse(void **state)
{
	(void)state;
	struct agt_audit_anchor_ref a;
	char ok[100];

	snprintf(ok, sizeof(ok), "12:%064d", 0);
	assert_int_equal(agt_audit_anchor_parse(ok, &a), 0);
	assert_int_equal(a.records, 12);
	assert_int_equal(agt_audit_anchor_parse(":", &a), -EINVAL);
	ok[0] = '0';
	ok[1] = '0';
	assert_int_equal(agt_audit_anchor_parse(ok, &a), -EINVAL); /* 0 records */
	assert_int_equal(agt_audit_anchor_parse("12:abc", &a), -EINVAL);
	snprintf(ok, sizeof(ok), "12:%064d", 0);
	ok[5] = 'G';
	assert_int_equal(agt_audit_anchor_parse(ok, &a), -EINVAL);
}

/* The files of a rotated trail, oldest first: trail.1 ... trail.N, then trail. */
static int trail_files(struct fixture *f, char names[][128], int cap)
{
	int n = 0;

	for (int i = 1; n < cap; i++) {
		snprintf(names[n], 128, "%s.%d", f->trail, i);
		if (access(names[n], F_OK))
			break;
		n++;
	}
	snprintf(names[n++], 128, "%s", f->trail);
	return n;
}

static void verify_set(char names[][128], int from, int to, const struct agt_audit_key *key,
		       struct agt_audit_report *r)
{
	FILE *fs[64] = {0};
	char err[256];

	for (int i = from; i < to; i++)
		assert_non_null(fs[i - from] = fopen(names[i], "r"));
	assert_int_equal(agt_audit_verify_files(fs, to - from, key, NULL, r, err, sizeof(err)), 0);
	for (int i = from; i < to; i++)
		fclose(fs[i - from]);
}

static cJSON *line_json(const char *path, int last)
{
	int n;
	char **v = lines_of(path, &n);
	cJSON *j = cJSON_Parse(v[last ? n - 1 : 0]);

	free_lines(v, n);
	return j;
}

static const char *jtype(cJSON *j)
{
	return cJSON_GetObjectItem(j, "type")->valuestring;
}

/* Rotation by size: every file within the limit, each rotated one ending in a rotate record
 * and the next starting with the continue record that goes on with the chain; the set verifies
 * as one, a file alone verifies from where it starts, and a missing or misplaced file is found.
 * A run killed right after a rotation (the new file still empty) goes on from the rotated
 * file; files beyond keep_bytes are removed oldest first. */
static void rotation(void **state)
{
	struct fixture *f = *state;
	struct agt_audit_config c = {.path = f->trail,
				     .key = &f->key,
				     .checkpoint_records = 1000,
				     .checkpoint_seconds = 3600,
				     .max_bytes = 4096};
	struct agt_audit_report r;
	struct agt_audit_stats st;
	char names[64][128], err[256];
	struct agt_audit *a = agt_audit_open(&c, &ctx, err, sizeof(err));
	int n;

	assert_non_null(a);
	for (int i = 0; i < 60; i++)
		add(a, i);
	assert_int_equal(agt_audit_seal(a), 0);
	agt_audit_stats(a, &st);
	agt_audit_close(a);
	n = trail_files(f, names, 64);
	assert_true(n >= 4);
	assert_int_equal(st.rotations, (uint64_t)(n - 1));
	/* 60 records, a rotate and a continue per rotation, the seal */
	assert_int_equal(st.records, 60 + 2 * (n - 1) + 1);
	for (int i = 0; i < n; i++) {
		struct stat sb;
		cJSON *first = line_json(names[i], 0), *last = line_json(names[i], 1);

		assert_int_equal(stat(names[i], &sb), 0);
		assert_true(sb.st_size <= 4096);
		if (i + 1 < n) {
			assert_string_equal(jtype(last), "rotate");
			assert_string_equal(
			    cJSON_GetObjectItem(cJSON_GetObjectItem(last, "data"), "file")
				->valuestring,
			    strrchr(names[i], '/') + 1);
		}
		if (i > 0) {
			cJSON *before = line_json(names[i - 1], 1);

			assert_string_equal(jtype(first), "continue");
			assert_string_equal(
			    cJSON_GetObjectItem(cJSON_GetObjectItem(first, "data"), "from")
				->valuestring,
			    strrchr(names[i - 1], '/') + 1);
			assert_string_equal(cJSON_GetObjectItem(first, "prev")->valuestring,
					    cJSON_GetObjectItem(before, "mac")->valuestring);
			cJSON_Delete(before);
		}
		cJSON_Delete(first);
		cJSON_Delete(last);
	}
	verify_set(names, 0, n, &f->key, &r);
	assert_true(r.intact && r.sealed);
	assert_int_equal(r.files, n);
	assert_int_equal(r.records, st.records);
	assert_int_equal(r.first_seq, 0);
	/* The current file alone: checked from its continue record on. */
	verify_set(names, n - 1, n, &f->key, &r);
	assert_true(r.intact && r.sealed);
	assert_true(r.first_seq > 0);
	assert_string_equal(r.first_from, strrchr(names[n - 2], '/') + 1);
	/* The first alone: ends in a rotate record, naming its next file. */
	verify_set(names, 0, 1, &f->key, &r);
	assert_true(r.intact && r.rotated && !r.sealed);
	assert_string_equal(r.next_file, strrchr(names[0], '/') + 1);
	/* A file left out in the middle. */
	{
		FILE *fs[2] = {fopen(names[0], "r"), fopen(names[2], "r")};

		assert_int_equal(agt_audit_verify_files(fs, 2, &f->key, NULL, &r, err, sizeof(err)),
				 0);
		fclose(fs[0]);
		fclose(fs[1]);
		assert_true(r.broken && !r.intact);
		assert_int_equal(r.break_file, 1);
		assert_int_equal(r.break_line, 1);
		assert_string_equal(r.why, "follows a gap: a record before it was removed");
		/* ... or in the wrong order */
		fs[0] = fopen(names[1], "r");
		fs[1] = fopen(names[0], "r");
		assert_int_equal(agt_audit_verify_files(fs, 2, &f->key, NULL, &r, err, sizeof(err)),
				 0);
		fclose(fs[0]);
		fclose(fs[1]);
		assert_true(r.broken);
		assert_string_equal(r.why, "does not continue the file before it: a file that "
					   "follows a rotated one starts with a continue record");
	}

	/* Killed right after a rotation: the new file is still empty. The next run goes on from
	 * the newest rotated file, without a gap (it ended in its rotate record). */
	assert_int_equal(truncate(f->trail, 0), 0);
	a = agt_audit_open(&c, &ctx, err, sizeof(err));
	assert_non_null(a);
	add(a, 100);
	assert_int_equal(agt_audit_seal(a), 0);
	agt_audit_close(a);
	{
		cJSON *first = line_json(f->trail, 0);

		assert_string_equal(jtype(first), "continue");
		cJSON_Delete(first);
	}
	verify_set(names, 0, n, &f->key, &r);
	assert_true(r.intact);
	assert_int_equal(r.gaps, 0);

	/* keep_bytes: the oldest rotated files go, the rest still verify from where they
	 * start. */
	c.keep_bytes = 10000;
	a = agt_audit_open(&c, &ctx, err, sizeof(err));
	assert_non_null(a);
	for (int i = 0; i < 40; i++)
		add(a, i);
	assert_int_equal(agt_audit_seal(a), 0);
	agt_audit_stats(a, &st);
	agt_audit_close(a);
	assert_true(st.removed > 0);
	{
		char kept[64][128];
		int k = 0, nrot = 0;
		uint64_t total = 0;
		struct stat sb;
		FILE *fs[64];

		for (int i = 1; i < 64; i++) {
			char p[128];

			snprintf(p, sizeof(p), "%s.%d", f->trail, i);
			if (!access(p, F_OK))
				snprintf(kept[k++], 128, "%s", p);
			nrot = i;
			if (access(p, F_OK) && i > n + 10)
				break;
		}
		(void)nrot;
		snprintf(kept[k++], 128, "%s", f->trail);
		for (int i = 0; i < k; i++) {
			assert_int_equal(stat(kept[i], &sb), 0);
			if (i + 1 < k)
				total += (uint64_t)sb.st_size;
			assert_non_null(fs[i] = fopen(kept[i], "r"));
		}
		assert_true(total <= 10000);
		assert_int_equal(agt_audit_verify_files(fs, k, &f->key, NULL, &r, err, sizeof(err)),
				 0);
		for (int i = 0; i < k; i++)
			fclose(fs[i]);
		assert_true(r.intact && r.first_seq > 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(mac_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(span_records_verify, setup, teardown),
	    cmocka_unit_test_setup_teardown(checkpoints, setup, teardown),
	    cmocka_unit_test_setup_teardown(damage_is_found, setup, teardown),
	    cmocka_unit_test_setup_teardown(torn_tail_recovered, setup, teardown),
	    cmocka_unit_test_setup_teardown(open_refuses, setup, teardown),
	    cmocka_unit_test_setup_teardown(write_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(key_files, setup, teardown),
	    cmocka_unit_test(anchors_parse),
	    cmocka_unit_test_setup_teardown(rotation, setup, teardown),
	};
	return cmocka_run_group_tests_name("audit", tests, NULL, NULL);
}
