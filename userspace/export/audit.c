/* Audit trail: writing it (the keyed or unkeyed chain, checkpoints, the seal, gap records,
 * recovery of a torn tail, write failures) and verifying it. The format is in audit.h; the
 * command that prints a verification is cli/cmd_audit.c. */
#define _GNU_SOURCE /* memrchr */
#include "export/audit.h"
#include "base/log.h"
#include "base/util.h"
#include "export/outfile.h"
#include "export/schema.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES (16u << 20) /* a record line longer than this is not one */

struct agt_audit {
	int fd;
	int regular; /* a regular file: cut back after a failed write, synced */
	char *path;
	struct agt_audit_key key;
	int keyed;
	char prev[65];	    /* mac (hash) of the last record written, "" before the first */
	uint64_t seq;	    /* of the next record */
	uint64_t good_size; /* bytes of complete records: where a failed write is cut back to */
	int cut_pending;    /* a failed write could not be cut back yet */
	uint64_t ckpt_records, ckpt_ns;
	uint64_t since_ckpt;	 /* records written since the last checkpoint */
	uint64_t last_ckpt_mono; /* when the last checkpoint was attempted */
	cJSON *pending_gap;	 /* found at open, written before anything else */
	uint64_t lost;		 /* records not written since the last gap record */
	int lost_errno;		 /* why the first of them was not */
	int warned, sealed, failed;
	/* Rotation: past max_bytes or max_age the file ends in a rotate record, is renamed
	 * FILE.N, and a new FILE starts with a continue record that goes on with the chain. */
	uint64_t max_bytes, max_age_ns, keep_bytes;
	uint64_t born_mono;    /* when the current file was started */
	uint64_t file_records; /* records in the current file, a leading continue apart */
	char *cont_from;       /* the next record written starts a file: a continue record first,
				  naming this file (the one it continues) */
	int rotating;	       /* writing a rotate or continue record */
	int rotate_warned;
	struct agt_audit_stats st;
	agt_audit_anchor_fn anchor_fn;
	void *anchor_ctx;
	struct agt_export_ctx ctx;
	struct agt_jw w;    /* a record, written here */
	struct agt_jw data; /* a span record's data, and the span's ECS document */
};

/* The chain: hex HMAC-SHA256(key, prev || text) with a key, SHA-256(prev || text) without.
 * 0 or -EIO (libcrypto failed). */
static int chain_digest(const struct agt_audit_key *key, const char *prev, const char *text,
			size_t tlen, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	int ok;

	if (key) {
		char digest[] = "SHA256";
		OSSL_PARAM params[] = {
		    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		    OSSL_PARAM_construct_end()};
		EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
		size_t n = 0;

		ok = c && EVP_MAC_init(c, key->bytes, key->len, params) &&
		     EVP_MAC_update(c, (const unsigned char *)prev, strlen(prev)) &&
		     EVP_MAC_update(c, (const unsigned char *)text, tlen) &&
		     EVP_MAC_final(c, md, &n, sizeof(md)) && n == 32;
		EVP_MAC_CTX_free(c);
		EVP_MAC_free(mac);
	} else {
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		unsigned int n = 0;

		ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
		     EVP_DigestUpdate(c, prev, strlen(prev)) && EVP_DigestUpdate(c, text, tlen) &&
		     EVP_DigestFinal_ex(c, md, &n) && n == 32;
		EVP_MD_CTX_free(c);
	}
	OPENSSL_cleanse(out, 65);
	if (!ok)
		return -EIO;
	agt_hex(md, 32, out);
	return 0;
}

/* The digest of a parsed record: over prev and the record printed without field ("mac" or
 * "hash"), which is put back. */
static int record_digest(const struct agt_audit_key *key, cJSON *rec, const char *field,
			 char out[65])
{
	cJSON *d = cJSON_DetachItemFromObjectCaseSensitive(rec, field);
	char *txt = cJSON_PrintUnformatted(rec);
	const char *prev = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "prev"));
	int rc = txt ? chain_digest(key, prev ? prev : "", txt, strlen(txt), out) : -ENOMEM;

	free(txt);
	if (d)
		cJSON_AddItemToObject(rec, field, d);
	return rc;
}

static int is_hex64(const char *s)
{
	if (!s || strlen(s) != 64)
		return 0;
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Equal digests, in time independent of where they differ. */
static int digest_eq(const char *a, const char *b)
{
	return is_hex64(a) && is_hex64(b) && !CRYPTO_memcmp(a, b, 64);
}

/* Keys ----------------------------------------------------------------------------------- */

int agt_audit_key_load(const char *path, int check_owner, struct agt_audit_key *k, char *err,
		       size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	ssize_t n;
	unsigned char extra;
	int too_long;

	memset(k, 0, sizeof(*k));
	if (fd < 0)
		return agt_seterr(err, errlen, -errno, "cannot read the audit key %s: %s", path,
				  strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return agt_seterr(err, errlen, -EINVAL,
				  "the audit key %s is not a regular file; create one with `head "
				  "-c 32 /dev/urandom > KEY; chmod 600 KEY`",
				  path);
	}
	if (st.st_mode & 077) {
		close(fd);
		return agt_seterr(err, errlen, -EPERM,
				  "the audit key %s can be read by group or others (mode %04o): "
				  "the traced workload must not be able to read it; chmod 600 %s",
				  path, (unsigned)(st.st_mode & 07777), path);
	}
	if (check_owner && st.st_uid != geteuid()) {
		close(fd);
		return agt_seterr(
		    err, errlen, -EPERM,
		    "the audit key %s belongs to uid %u, not to the user agtrace runs "
		    "as (uid %u), so that user can read it; chown it",
		    path, (unsigned)st.st_uid, (unsigned)geteuid());
	}
	do
		n = read(fd, k->bytes, sizeof(k->bytes));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		int e = errno;

		close(fd);
		agt_audit_key_clear(k);
		return agt_seterr(err, errlen, -e, "cannot read the audit key %s: %s", path,
				  strerror(e));
	}
	too_long = (size_t)n == sizeof(k->bytes) && read(fd, &extra, 1) == 1;
	close(fd);
	if (too_long || n < AGT_AUDIT_KEY_MIN) {
		agt_audit_key_clear(k);
		return agt_seterr(err, errlen, -EINVAL,
				  "the audit key %s has %s bytes; a key is %d to %d random bytes: "
				  "`head -c 32 /dev/urandom > %s; chmod 600 %s`",
				  path,
				  too_long ? "too many"
				  : n	   ? "too few"
					   : "no",
				  AGT_AUDIT_KEY_MIN, AGT_AUDIT_KEY_MAX, path, path);
	}
	k->len = (size_t)n;
	return 0;
}

void agt_audit_key_clear(struct agt_audit_key *k)
{
	if (k)
		OPENSSL_cleanse(k, sizeof(*k));
}

/* Writing -------------------------------------------------------------------------------- */

/* One failed write or sync: counted; the first one warned about. */
static void write_failed(struct agt_audit *a, int rc)
{
	a->st.write_failures++;
	a->failed = 1;
	if (a->warned)
		return;
	a->warned = 1;
	agt_warn("cannot write the audit trail %s: %s; audit records are lost until a write "
		 "succeeds again (counted in agtrace_audit_write_failures_total, and then "
		 "disclosed in the trail by a gap record), and agtrace will exit non-zero",
		 a->path, strerror(-rc));
}

/* Append len bytes with write(2); a write cut short is cut back out of the file. */
static int append(struct agt_audit *a, const char *buf, size_t len)
{
	size_t done = 0;

	if (a->fd < 0)
		return -EBADF;
	if (a->cut_pending) {
		if (ftruncate(a->fd, (off_t)a->good_size))
			return -errno;
		a->cut_pending = 0;
	}
	while (done < len) {
		ssize_t w = write(a->fd, buf + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;

			if (done && a->regular && ftruncate(a->fd, (off_t)a->good_size))
				a->cut_pending = 1;
			return -e;
		}
		done += (size_t)w;
	}
	a->good_size += len;
	return 0;
}

/* The record whose data is the JSON text data[0..dlen), newline-terminated, into a->w, and its
 * digest. It is written straight into a reused buffer exactly as cJSON prints it (members in
 * this order, unformatted: the text verification prints from a parse), then its digest is added
 * as the last member. */
static int build_line(struct agt_audit *a, const char *type, const char *data, size_t dlen,
		      char digest[65])
{
	struct agt_jw *w = &a->w;
	char ts[40];
	size_t body;
	int rc;

	agt_format_time(agt_mono_ns() + a->ctx.mono_to_real, ts, sizeof(ts));
	agt_jw_reset(w);
	agt_jw_obj(w, NULL);
	agt_jw_f64(w, "seq", (double)a->seq); /* cJSON numbers are doubles: printed alike */
	agt_jw_str(w, "@timestamp", ts);
	agt_jw_str(w, "host", a->ctx.host);
	agt_jw_str(w, "type", type);
	agt_jw_raw(w, ",\"data\":", strlen(",\"data\":"));
	agt_jw_raw(w, data, dlen);
	agt_jw_str(w, "prev", a->prev);
	agt_jw_end_obj(w);
	if (w->failed)
		return -ENOMEM;
	body = w->len;
	if ((rc = chain_digest(a->keyed ? &a->key : NULL, a->prev, w->buf, body, digest)))
		return rc;
	w->len = body - 1; /* the digest goes in as the last member */
	{
		const char *k = a->keyed ? ",\"mac\":\"" : ",\"hash\":\"";

		agt_jw_raw(w, k, strlen(k));
	}
	agt_jw_raw(w, digest, 64);
	agt_jw_raw(w, "\"}\n", 3);
	return w->failed ? -ENOMEM : 0;
}

static int rotate(struct agt_audit *a);
static int reopen(struct agt_audit *a);
static int write_continue(struct agt_audit *a);

/* Bytes kept free at the end of a file for what ends it: a checkpoint or the seal, and the
 * rotate record. */
static uint64_t reserve(const struct agt_audit *a)
{
	return 2 * (640 + strlen(a->ctx.host) + strlen(a->path));
}

/* The current file is due to rotate before a record of len bytes is written to it. */
static int rotation_due(const struct agt_audit *a, size_t len)
{
	if (!a->file_records || !a->regular)
		return 0; /* a file holds at least one record besides its continue record; a
			     device or a pipe is never renamed */
	if (a->max_bytes && a->good_size + len + reserve(a) > a->max_bytes)
		return 1;
	return a->max_age_ns && agt_mono_ns() - a->born_mono >= a->max_age_ns;
}

/* A file to write to: after a rotation, the new file and its continue record first. */
static int ready(struct agt_audit *a)
{
	int rc;

	if (a->rotating)
		return 0;
	if (a->fd < 0 && (rc = reopen(a)))
		return rc;
	return a->cont_from ? write_continue(a) : 0;
}

/* Write one record whose data is the JSON text data[0..dlen) (never in a->w) and advance the
 * chain; nothing counted here. An ordinary record that would take the file past its limit goes
 * into the next file. */
static int write_record_text(struct agt_audit *a, const char *type, const char *data, size_t dlen)
{
	char digest[65];
	int rc, ordinary = strcmp(type, "checkpoint") && strcmp(type, "seal") &&
			   strcmp(type, "gap") && !a->rotating;

	if ((rc = ready(a)) || (rc = build_line(a, type, data, dlen, digest)))
		return rc;
	if (ordinary && rotation_due(a, a->w.len) && !rotate(a) &&
	    ((rc = ready(a)) || (rc = build_line(a, type, data, dlen, digest))))
		return rc;
	if ((rc = append(a, a->w.buf, a->w.len)))
		return rc;
	memcpy(a->prev, digest, sizeof(a->prev));
	a->seq++;
	a->st.records++;
	a->st.next_seq = a->seq;
	if (strcmp(type, "continue"))
		a->file_records++;
	return 0;
}

/* The same with data as a cJSON object (taken over; NULL: {}). */
static int write_record(struct agt_audit *a, const char *type, cJSON *data)
{
	char *text = data ? cJSON_PrintUnformatted(data) : NULL;
	int rc = !data || text
		     ? write_record_text(a, type, text ? text : "{}", text ? strlen(text) : 2)
		     : -ENOMEM;

	free(text);
	cJSON_Delete(data);
	return rc;
}

/* Before anything else is written: what is known to be missing. */
static int disclose(struct agt_audit *a)
{
	int rc;

	if (a->pending_gap) {
		if ((rc = write_record(a, "gap", cJSON_Duplicate(a->pending_gap, 1))))
			return rc;
		cJSON_Delete(a->pending_gap);
		a->pending_gap = NULL;
	}
	if (a->lost) {
		cJSON *d = cJSON_CreateObject();
		char msg[160];

		snprintf(msg, sizeof(msg), "%llu record%s could not be written (%s)",
			 (unsigned long long)a->lost, a->lost == 1 ? "" : "s",
			 strerror(a->lost_errno));
		cJSON_AddStringToObject(d, "reason", "write_failed");
		cJSON_AddNumberToObject(d, "lost", (double)a->lost);
		cJSON_AddStringToObject(d, "error", strerror(a->lost_errno));
		cJSON_AddStringToObject(d, "message", msg);
		if ((rc = write_record(a, "gap", d)))
			return rc;
		a->lost = 0;
	}
	return 0;
}

/* A record that could not be written: counted, disclosed later. */
static int lose(struct agt_audit *a, int rc)
{
	if (!a->lost)
		a->lost_errno = -rc;
	a->lost++;
	write_failed(a, rc);
	return rc;
}

/* Disclose what is missing, then write the record. */
static int put(struct agt_audit *a, const char *type, cJSON *data)
{
	int rc = disclose(a);

	if (rc) {
		cJSON_Delete(data);
		return lose(a, rc);
	}
	if ((rc = write_record(a, type, data)))
		return lose(a, rc);
	return 0;
}

/* The same with data as JSON text (the per-span records: no tree is built for them). */
static int put_text(struct agt_audit *a, const char *type, const char *data, size_t dlen)
{
	int rc = disclose(a);

	if (rc)
		return lose(a, rc);
	if ((rc = write_record_text(a, type, data, dlen)))
		return lose(a, rc);
	return 0;
}

static int sync_trail(struct agt_audit *a)
{
	if (a->regular && fdatasync(a->fd))
		return -errno;
	return 0;
}

/* A checkpoint or the seal: the count of records before it and the head of the chain, synced,
 * then handed to the anchor hook as the count up to and including it and its own mac. */
static int anchor_record(struct agt_audit *a, const char *type, uint64_t now, const char *file)
{
	struct agt_audit_anchor an = {.type = type, .path = a->path, .keyed = a->keyed};
	cJSON *d;
	int rc;

	a->since_ckpt = 0;
	a->last_ckpt_mono = now;
	if ((rc = ready(a)) || (rc = disclose(a)))
		return lose(a, rc);
	d = cJSON_CreateObject();
	cJSON_AddNumberToObject(d, "records", (double)a->seq);
	cJSON_AddStringToObject(d, "head", a->prev);
	cJSON_AddNumberToObject(d, "write_failures", (double)a->st.write_failures);
	if (file)
		cJSON_AddStringToObject(d, "file", file);
	if ((rc = write_record(a, type, d)))
		return lose(a, rc);
	if ((rc = sync_trail(a))) {
		write_failed(a, rc);
		return rc;
	}
	/* The anchor covers the checkpoint itself: a cut right before it is found too. */
	an.seq = a->seq - 1;
	an.records = a->seq;
	memcpy(an.head, a->prev, sizeof(an.head));
	an.real_ns = (uint64_t)((int64_t)agt_mono_ns() + a->ctx.mono_to_real);
	snprintf(an.text, sizeof(an.text), "%llu:%s", (unsigned long long)an.records, an.head);
	if (!strcmp(type, "checkpoint"))
		a->st.checkpoints++;
	a->st.last_checkpoint_seq = an.seq;
	a->st.last_checkpoint_real_ns = an.real_ns;
	if (a->anchor_fn)
		a->anchor_fn(a->anchor_ctx, &an);
	return 0;
}

static void maybe_checkpoint(struct agt_audit *a, uint64_t now)
{
	if (a->sealed || !a->since_ckpt)
		return;
	if (a->since_ckpt >= a->ckpt_records ||
	    (now > a->last_ckpt_mono && now - a->last_ckpt_mono >= a->ckpt_ns))
		anchor_record(a, "checkpoint", now, NULL);
}

int agt_audit_record(struct agt_audit *a, const char *type, cJSON *data)
{
	int rc;

	if (a->sealed) {
		cJSON_Delete(data);
		return -EPIPE;
	}
	if ((rc = put(a, type, data)))
		return rc;
	a->since_ckpt++;
	maybe_checkpoint(a, agt_mono_ns());
	return 0;
}

static int record_text(struct agt_audit *a, const char *type, const char *data, size_t dlen)
{
	int rc;

	if (a->sealed)
		return -EPIPE;
	if ((rc = put_text(a, type, data, dlen)))
		return rc;
	a->since_ckpt++;
	maybe_checkpoint(a, agt_mono_ns());
	return 0;
}

void agt_audit_tick(struct agt_audit *a, uint64_t now_ns)
{
	if (!a)
		return;
	maybe_checkpoint(a, now_ns);
	if (!a->sealed && a->fd >= 0 && a->regular && a->max_age_ns && a->file_records &&
	    now_ns - a->born_mono >= a->max_age_ns)
		rotate(a);
}

int agt_audit_seal(struct agt_audit *a)
{
	int rc;

	if (!a || a->sealed)
		return 0;
	rc = anchor_record(a, "seal", agt_mono_ns(), NULL);
	a->sealed = 1;
	return rc;
}

void agt_audit_set_anchor(struct agt_audit *a, agt_audit_anchor_fn fn, void *ctx)
{
	a->anchor_fn = fn;
	a->anchor_ctx = ctx;
}

void agt_audit_stats(const struct agt_audit *a, struct agt_audit_stats *out)
{
	*out = a->st;
}

int agt_audit_failed(const struct agt_audit *a)
{
	return a && a->failed;
}

/* Opening: continue the chain from the last record ---------------------------------------- */

/* Read the end of the file: at least its last complete line and whatever follows it. *buf
 * holds bytes [*start, size). 0 or -errno. */
static int read_tail(int fd, uint64_t size, char **buf, uint64_t *start)
{
	for (uint64_t want = 64 * 1024;; want *= 4) {
		uint64_t n = want < size ? want : size, got = 0;
		char *b = realloc(*buf, n + 1), *last;

		if (!b)
			return -ENOMEM;
		*buf = b;
		*start = size - n;
		while (got < n) {
			ssize_t r = pread(fd, b + got, n - got, (off_t)(*start + got));

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return r < 0 ? -errno : -EIO;
			got += (uint64_t)r;
		}
		b[n] = 0;
		/* Enough: the file's start, or two newlines (the one ending the last complete
		 * line and the one before it). */
		last = memrchr(b, '\n', n);
		if (!*start || (last && memrchr(b, '\n', (size_t)(last - b))))
			return 0;
		if (n >= 2ull * LINE_MAX_BYTES)
			return -EFBIG;
	}
}

static int resume(struct agt_audit *a, uint64_t size, char *err, size_t errlen)
{
	char *buf = NULL, *end, *line, digest[65];
	uint64_t start = 0, torn, s = 0;
	cJSON *r = NULL;
	int sealed = 0;
	const char *field = a->keyed ? "mac" : "hash", *d, *prev, *type;
	const cJSON *seq;
	int rc = read_tail(a->fd, size, &buf, &start);

	if (rc == -EFBIG) {
		rc = agt_seterr(err, errlen, rc,
				"the audit trail %s ends in more than %u MiB without a newline: "
				"that is not a record cut short; check it with `agtrace audit "
				"verify %s`",
				a->path, LINE_MAX_BYTES >> 20, a->path);
		goto out;
	}
	if (rc) {
		agt_seterr(err, errlen, rc, "cannot read the audit trail %s: %s", a->path,
			   strerror(-rc));
		goto out;
	}
	end = memrchr(buf, '\n', size - start);
	torn = end ? size - start - (uint64_t)(end - buf) - 1 : size - start;
	if (torn > LINE_MAX_BYTES) {
		rc = agt_seterr(err, errlen, -EINVAL,
				"the audit trail %s ends in %llu bytes without a newline: that is "
				"not a record cut short; check it with `agtrace audit verify %s`",
				a->path, (unsigned long long)torn, a->path);
		goto out;
	}
	if (end) { /* the last complete line */
		*end = 0;
		line = memrchr(buf, '\n', (size_t)(end - buf));
		line = line ? line + 1 : buf;
		r = cJSON_ParseWithOpts(line, NULL, 1); /* nothing after the record */
		seq = cJSON_GetObjectItemCaseSensitive(r, "seq");
		prev = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "prev"));
		type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "type"));
		d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, field));
		if (!cJSON_IsObject(r) || !cJSON_IsNumber(seq) || seq->valuedouble < 0 ||
		    seq->valuedouble >= 0x1p63 || !prev || !type) {
			rc = agt_seterr(err, errlen, -EINVAL,
					"the audit trail %s ends in a line that is not an audit "
					"record; check it with `agtrace audit verify %s`",
					a->path, a->path);
			goto out;
		}
		if (!d) {
			rc = agt_seterr(
			    err, errlen, -EINVAL,
			    a->keyed ? "the audit trail %s was written without a key: a keyed "
				       "trail starts in a new file (move this one aside)"
				     : "the audit trail %s is keyed: give its key with --audit-key",
			    a->path);
			goto out;
		}
		if ((rc = record_digest(a->keyed ? &a->key : NULL, r, field, digest)))
			goto out;
		if (!digest_eq(digest, d)) {
			rc = agt_seterr(
			    err, errlen, -EINVAL,
			    a->keyed
				? "the last record of the audit trail %s does not verify with "
				  "this key: the key is not the one the trail was written "
				  "with, or the record was changed; check it with `agtrace "
				  "audit verify --key KEY %s`"
				: "the last record of the audit trail %s was changed (its hash "
				  "does not match); check it with `agtrace audit verify %s`",
			    a->path, a->path);
			goto out;
		}
		s = (uint64_t)seq->valuedouble;
		sealed = !strcmp(type, "seal") || !strcmp(type, "rotate"); /* ended on purpose */
		a->seq = s + 1;
		memcpy(a->prev, d, sizeof(a->prev));
	}
	if (torn) {
		unsigned char md[32];
		char hex[65], msg[200];
		const char *cut = end ? end + 1 : buf;

		EVP_Digest(cut, torn, md, NULL, EVP_sha256(), NULL);
		agt_hex(md, 32, hex);
		if (ftruncate(a->fd, (off_t)(size - torn))) {
			rc = agt_seterr(err, errlen, -errno,
					"cannot cut the torn last line of the audit trail %s: %s",
					a->path, strerror(errno));
			goto out;
		}
		snprintf(msg, sizeof(msg),
			 "a torn last line of %llu bytes (a write cut short: the run before did "
			 "not end cleanly) was cut at restart; the record it held is lost",
			 (unsigned long long)torn);
		a->pending_gap = cJSON_CreateObject();
		cJSON_AddStringToObject(a->pending_gap, "reason", "torn_tail");
		cJSON_AddNumberToObject(a->pending_gap, "bytes", (double)torn);
		cJSON_AddStringToObject(a->pending_gap, "sha256", hex);
		cJSON_AddNumberToObject(a->pending_gap, "offset", (double)(size - torn));
		cJSON_AddStringToObject(a->pending_gap, "message", msg);
	} else if (!sealed) {
		char msg[200];

		snprintf(msg, sizeof(msg),
			 "the run before did not end with a seal after record %llu: it was killed "
			 "or crashed, or records after it were cut",
			 (unsigned long long)s);
		a->pending_gap = cJSON_CreateObject();
		cJSON_AddStringToObject(a->pending_gap, "reason", "unsealed");
		cJSON_AddNumberToObject(a->pending_gap, "after", (double)s);
		cJSON_AddStringToObject(a->pending_gap, "message", msg);
	}
	a->good_size = size - torn;
	rc = 0;
out:
	cJSON_Delete(r);
	free(buf);
	return rc;
}

/* A new file's name is durable once its directory is synced. */
static void sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd = copy ? open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

/* Rotation -------------------------------------------------------------------------------- */

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* When fd's file was created, on the monotonic clock (now when the file system cannot tell). */
static uint64_t born_of(int fd)
{
	struct statx sx;
	struct timespec rt;
	uint64_t now = agt_mono_ns(), real, born;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &sx) || !(sx.stx_mask & STATX_BTIME))
		return now;
	clock_gettime(CLOCK_REALTIME, &rt);
	real = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
	born = (uint64_t)sx.stx_btime.tv_sec * 1000000000ull + sx.stx_btime.tv_nsec;
	return born < real && real - born < now ? now - (real - born) : now;
}

/* Open path to append to, locked: fd, or -errno. */
static int open_locked(const char *path, int flags)
{
	int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | flags, 0600);

	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK) {
		close(fd);
		return -EBUSY;
	}
	return fd;
}

/* A new current file after a rotation (the continue record comes with the next write). */
static int reopen(struct agt_audit *a)
{
	struct stat st;
	int fd = open_locked(a->path, O_CREAT);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st)) {
		int e = errno;

		close(fd);
		return -e;
	}
	a->fd = fd;
	a->regular = S_ISREG(st.st_mode);
	a->good_size = (uint64_t)st.st_size;
	a->cut_pending = 0;
	a->born_mono = agt_mono_ns();
	a->file_records = 0;
	sync_dir(a->path);
	return 0;
}

/* The first record of a file that goes on with the chain of the file before it. */
static int write_continue(struct agt_audit *a)
{
	cJSON *d = cJSON_CreateObject();
	int rc;

	cJSON_AddStringToObject(d, "from", a->cont_from);
	cJSON_AddNumberToObject(d, "records", (double)a->seq);
	cJSON_AddStringToObject(d, "head", a->prev);
	a->rotating = 1;
	rc = write_record(a, "continue", d);
	a->rotating = 0;
	if (rc)
		return rc;
	free(a->cont_from);
	a->cont_from = NULL;
	return sync_trail(a);
}

/* The current file ends in a rotate record (synced), becomes FILE.N, and the chain goes on in a
 * new FILE. 0, or -errno when the file could not be renamed (it goes on growing; warned about
 * once). */
static int rotate(struct agt_audit *a)
{
	char to[4096];
	int rc;

	if (a->fd < 0 || a->rotating)
		return -EBUSY;
	if ((rc = agt_rotate_name(a->path, to, sizeof(to))) || rename(a->path, to)) {
		rc = rc ? rc : -errno;
		if (!a->rotate_warned)
			agt_warn("cannot rotate the audit trail %s: %s; it grows past its limit "
				 "until it can be",
				 a->path, strerror(-rc));
		a->rotate_warned = 1;
		return rc;
	}
	/* Renamed first, so FILE never ends in a rotate record; the open descriptor still writes
	 * to the renamed file. */
	a->rotating = 1;
	anchor_record(a, "rotate", agt_mono_ns(), base_name(to)); /* failures counted there */
	a->rotating = 0;
	sync_dir(a->path);
	close(a->fd);
	a->fd = -1;
	free(a->cont_from);
	a->cont_from = strdup(base_name(to));
	a->st.rotations++;
	if (!reopen(a) && a->keep_bytes)
		a->st.removed +=
		    (uint64_t)agt_rotate_prune(a->path, NULL, a->path, a->keep_bytes, NULL);
	return 0;
}

/* The newest rotated file of path (path.N with the highest N), in out: 0, or -ENOENT. */
static int newest_rotated(const char *path, char *out, size_t n)
{
	char next[4096];
	const char *dot;
	unsigned long long last;

	if (agt_rotate_name(path, next, sizeof(next)))
		return -ENOENT;
	dot = strrchr(next, '.');
	last = strtoull(dot + 1, NULL, 10) - 1;
	if (!last)
		return -ENOENT;
	snprintf(out, n, "%.*s.%llu", (int)(dot - next), next, last);
	return 0;
}

/* FILE is new or empty and FILE.N exist: the chain goes on from the newest of them (its torn
 * tail cut, a missing end disclosed, as for FILE itself). */
static int resume_rotated(struct agt_audit *a, char *err, size_t errlen)
{
	char prev_path[4096], *own_path = a->path;
	struct stat st;
	int own_fd = a->fd, fd, rc;

	if (newest_rotated(a->path, prev_path, sizeof(prev_path)))
		return 0;
	if ((fd = open(prev_path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW)) < 0)
		return agt_seterr(err, errlen, -errno,
				  "cannot read %s, the audit trail %s continues: %s", prev_path,
				  a->path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || !st.st_size) {
		close(fd);
		return 0;
	}
	a->fd = fd;
	a->path = prev_path;
	rc = resume(a, (uint64_t)st.st_size, err, errlen);
	a->fd = own_fd;
	a->path = own_path;
	close(fd);
	if (!rc && !(a->cont_from = strdup(base_name(prev_path))))
		rc = agt_seterr(err, errlen, -ENOMEM, "out of memory opening the audit trail");
	return rc;
}

struct agt_audit *agt_audit_open(const struct agt_audit_config *cfg, const struct agt_export_ctx *c,
				 char *err, size_t errlen)
{
	struct agt_audit *a = calloc(1, sizeof(*a));
	struct stat st;

	if (!a || !(a->path = strdup(cfg->path))) {
		free(a);
		agt_seterr(err, errlen, -ENOMEM, "out of memory opening the audit trail");
		return NULL;
	}
	a->ctx = *c;
	a->fd = -1;
	if (cfg->key) {
		a->key = *cfg->key;
		a->keyed = 1;
	} else if (cfg->key_file) {
		if (agt_audit_key_load(cfg->key_file, 1, &a->key, err, errlen))
			goto fail;
		a->keyed = 1;
	}
	a->ckpt_records =
	    cfg->checkpoint_records ? cfg->checkpoint_records : AGT_AUDIT_CHECKPOINT_RECORDS;
	a->ckpt_ns =
	    (cfg->checkpoint_seconds ? cfg->checkpoint_seconds : AGT_AUDIT_CHECKPOINT_SECONDS) *
	    1000000000ull;
	a->max_bytes = cfg->max_bytes;
	a->max_age_ns = cfg->max_age_s * 1000000000ull;
	a->keep_bytes = cfg->keep_bytes;
	/* Not through a symbolic link: agtrace runs as root, and whoever can write the trail's
	 * folder could point the link elsewhere. */
	a->fd =
	    open(cfg->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
	if (a->fd < 0 && errno == ELOOP) {
		agt_seterr(err, errlen, -ELOOP,
			   "the audit trail %s is a symbolic link; give the file it points to",
			   cfg->path);
		goto fail;
	}
	if (a->fd < 0) {
		agt_seterr(err, errlen, -errno, "cannot append to the audit trail %s: %s",
			   cfg->path, strerror(errno));
		goto fail;
	}
	if (flock(a->fd, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK) {
		agt_seterr(err, errlen, -EBUSY,
			   "the audit trail %s is being written by another agtrace; give each "
			   "run its own trail",
			   cfg->path);
		goto fail;
	}
	if (fstat(a->fd, &st)) {
		agt_seterr(err, errlen, -errno, "cannot stat the audit trail %s: %s", cfg->path,
			   strerror(errno));
		goto fail;
	}
	a->regular = S_ISREG(st.st_mode);
	if (a->regular && st.st_size > 0 && resume(a, (uint64_t)st.st_size, err, errlen))
		goto fail;
	if (a->regular && !st.st_size && resume_rotated(a, err, errlen))
		goto fail;
	if (a->regular && !st.st_size)
		a->good_size = 0; /* the rotated file's size, from its resume */
	if (a->regular && !st.st_size)
		sync_dir(cfg->path);
	a->born_mono = a->regular && st.st_size ? born_of(a->fd) : agt_mono_ns();
	a->file_records = a->good_size > 0;
	if (a->keep_bytes)
		a->st.removed +=
		    (uint64_t)agt_rotate_prune(a->path, NULL, a->path, a->keep_bytes, NULL);
	a->st.next_seq = a->seq;
	a->last_ckpt_mono = agt_mono_ns();
	if (a->pending_gap) { /* said now; kept for the next write if it cannot be */
		int rc = disclose(a);

		if (rc)
			write_failed(a, rc);
	}
	return a;
fail:
	agt_audit_close(a);
	return NULL;
}

void agt_audit_close(struct agt_audit *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	free(a->cont_from);
	cJSON_Delete(a->pending_gap);
	agt_jw_free(&a->w);
	agt_jw_free(&a->data);
	agt_audit_key_clear(&a->key);
	free(a->path);
	free(a);
}

/* The tee ---------------------------------------------------------------------------------- */

/* Records of spans: their data written straight into a reused buffer (as cJSON would print
 * it), the digest of a span's ECS document from the schema into another. */
static void audit_observe(void *ctx, const struct agt_span *sp)
{
	struct agt_audit *a = ctx;
	struct agt_jw *d = &a->data;

	if (sp->kind == AGT_SPAN_STATE) { /* attach, detach, exit, sampling changes */
		char type[32];

		snprintf(type, sizeof(type), "%.*s", (int)strcspn(sp->name, " "), sp->name);
		if (!sp->proc && !strcmp(type, "audit"))
			return; /* the trail's own anchor, sent out: it is in the trail already */
		agt_jw_reset(d);
		agt_jw_obj(d, NULL);
		agt_jw_f64(d, "pid", sp->pid);
		agt_jw_str(d, "name", sp->name);
		agt_jw_str(d, "message", sp->message);
		agt_jw_end_obj(d);
		if (d->failed)
			lose(a, -ENOMEM);
		else
			record_text(a, type, d->buf, d->len);
	} else if (sp->kind == AGT_SPAN_DECISION || sp->kind == AGT_SPAN_TOOL) {
		char digest[65], hex[33];

		agt_jw_reset(d);
		agt_schema_ecs(sp, &a->ctx, d);
		if (d->failed || chain_digest(NULL, "", d->buf, d->len, digest)) {
			lose(a, -ENOMEM);
			return;
		}
		agt_jw_reset(d);
		agt_jw_obj(d, NULL);
		agt_hex(sp->trace_id, 16, hex);
		agt_jw_str(d, "trace_id", hex);
		agt_schema_span_id(sp->span_id, hex);
		agt_jw_str(d, "span_id", hex);
		agt_jw_str(d, "name", sp->name);
		agt_jw_str(d, "sha256", digest);
		agt_jw_end_obj(d);
		if (d->failed)
			lose(a, -ENOMEM);
		else
			record_text(a, sp->kind == AGT_SPAN_DECISION ? "decision" : "tool_call",
				    d->buf, d->len);
	} else if (sp->kind == AGT_SPAN_FILE && strcmp(sp->file.operation, "read")) {
		/* Lineage: which tool call changed which file, from which content to which. */
		char hex[33];

		agt_jw_reset(d);
		agt_jw_obj(d, NULL);
		agt_hex(sp->trace_id, 16, hex);
		agt_jw_str(d, "trace_id", hex);
		agt_schema_span_id(sp->span_id, hex);
		agt_jw_str(d, "span_id", hex);
		if (sp->file.tool_call_id) {
			agt_schema_span_id(sp->parent_id, hex);
			agt_jw_str(d, "tool_span_id", hex);
			agt_jw_str(d, "tool_call_id", sp->file.tool_call_id);
			agt_jw_str(d, "tool_name", sp->file.tool_name);
		}
		agt_jw_f64(d, "pid", sp->pid);
		agt_jw_str(d, "path", sp->file.path);
		agt_jw_str(d, "operation", sp->file.operation);
		if (sp->file.previous_path)
			agt_jw_str(d, "previous_path", sp->file.previous_path);
		if (sp->file.sha256_before)
			agt_jw_str(d, "sha256_before", sp->file.sha256_before);
		if (sp->file.sha256)
			agt_jw_str(d, "sha256", sp->file.sha256);
		agt_jw_end_obj(d);
		if (d->failed)
			lose(a, -ENOMEM);
		else
			record_text(a, "file_change", d->buf, d->len);
	}
}

struct agt_sink *agt_audit_tee(struct agt_sink *next, struct agt_audit *a)
{
	return agt_tee_new(next, audit_observe, a);
}

/* Verification ---------------------------------------------------------------------------- */

int agt_audit_anchor_parse(const char *s, struct agt_audit_anchor_ref *out)
{
	const char *colon = strchr(s, ':');
	char num[24];
	long v;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(num) || !is_hex64(colon + 1))
		return -EINVAL;
	snprintf(num, sizeof(num), "%.*s", (int)(colon - s), s);
	if (agt_parse_long(num, 1, 0x7fffffffffffffffL, &v))
		return -EINVAL;
	out->records = (uint64_t)v;
	memcpy(out->head, colon + 1, 65);
	return 0;
}

/* One line into *buf (without its newline): 1, 0 at the end, -EFBIG for a line longer than
 * LINE_MAX_BYTES, -errno. *nl: it ended in a newline. */
static int read_line(FILE *f, char **buf, size_t *cap, size_t *len, int *nl)
{
	int ch = EOF;

	*len = 0;
	*nl = 0;
	while ((ch = getc(f)) != EOF) {
		if (*len + 1 >= *cap) {
			size_t ncap = *cap ? *cap * 2 : 4096;
			char *b;

			if (ncap > LINE_MAX_BYTES + 2)
				return -EFBIG;
			if (!(b = realloc(*buf, ncap)))
				return -ENOMEM;
			*buf = b;
			*cap = ncap;
		}
		if (ch == '\n') {
			*nl = 1;
			break;
		}
		(*buf)[(*len)++] = (char)ch;
	}
	if (ferror(f))
		return errno ? -errno : -EIO;
	if (ch == EOF && !*len)
		return 0;
	(*buf)[*len] = 0;
	return 1;
}

/* Control characters of a message from the file are not printed as such. */
static void copy_printable(char *dst, size_t n, const char *src)
{
	size_t i = 0;

	for (; src && src[i] && i + 1 < n; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? '?' : src[i];
	dst[i] = 0;
}

/* Check one record against the chain so far; NULL when it follows, else why not. */
static const char *check_record(cJSON *rec, const struct agt_audit_key *key, uint64_t n,
				const char *expect, char digest[65])
{
	const cJSON *seq = cJSON_GetObjectItemCaseSensitive(rec, "seq");
	const char *prev = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "prev"));
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "type"));
	const char *field = key ? "mac" : "hash";
	const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, field));
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(rec, "data");
	double sv;

	if (!cJSON_IsObject(rec) || !cJSON_IsNumber(seq) || !prev || !type)
		return "is not an audit record";
	if (!d)
		return key && cJSON_GetObjectItemCaseSensitive(rec, "hash")
			   ? "has no mac: the trail was written without a key, or rewritten "
			     "without it"
			   : "is not an audit record";
	sv = seq->valuedouble;
	if (sv < 0 || sv >= 0x1p63 || sv != (double)(uint64_t)sv)
		return "is not an audit record";
	if ((uint64_t)sv != n)
		return (uint64_t)sv > n ? "follows a gap: a record before it was removed"
					: "is out of order: records were reordered or repeated";
	if (strcmp(prev, expect))
		return "does not follow the record before it: a record was removed or reordered";
	if (record_digest(key, rec, field, digest))
		return "could not be checked: libcrypto failed";
	if (!digest_eq(digest, d))
		return key ? "was changed or forged: its mac does not match its content with "
			     "this key"
			   : "was changed: its hash does not match its content";
	if (!strcmp(type, "checkpoint") || !strcmp(type, "seal") || !strcmp(type, "rotate") ||
	    !strcmp(type, "continue")) {
		const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(data, "records");
		const char *head =
		    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "head"));

		if (!cJSON_IsNumber(cnt) || cnt->valuedouble != sv || !head || strcmp(head, prev))
			return "is a checkpoint, seal, rotate or continue record whose record "
			       "count or head does not match its place in the chain";
	}
	return NULL;
}

int agt_audit_verify_files(FILE *const *files, int nfiles, const struct agt_audit_key *key,
			   const struct agt_audit_anchor_ref *anchor, struct agt_audit_report *r,
			   char *err, size_t errlen)
{
	char expect[65] = "", digest[65], *buf = NULL;
	size_t cap = 0, len;
	uint64_t n = 0, line_no = 0, lines = 0;
	int nl, rc = 0, fi;

	memset(r, 0, sizeof(*r));
	r->keyed = key != NULL;
	r->anchor_given = anchor != NULL;
	r->files = nfiles;
	if (anchor)
		r->anchor_records = anchor->records;
	for (fi = 0; fi < nfiles; fi++) {
		line_no = 0;
		while ((rc = read_line(files[fi], &buf, &cap, &len, &nl)) != 0) {
			cJSON *rec;
			const char *why = NULL, *end = NULL, *type;
			const cJSON *data;

			if (rc < 0 && rc != -EFBIG) {
				free(buf);
				return agt_seterr(err, errlen, rc, "cannot read the trail: %s",
						  strerror(-rc));
			}
			line_no++;
			lines++;
			if (rc == -EFBIG) {
				r->broken = 1;
				snprintf(r->why, sizeof(r->why),
					 "is longer than %u MiB: not an audit record",
					 LINE_MAX_BYTES >> 20);
				goto done;
			}
			if (!nl) { /* and whatever came before it, a seal too, is not the end */
				r->torn_line = line_no;
				r->torn_bytes = len;
				r->torn_file = fi;
				r->sealed = r->rotated = 0;
				if (fi + 1 < nfiles) { /* a file that goes on in the next one */
					r->broken = 1;
					snprintf(r->why, sizeof(r->why),
						 "is torn (it ends without a newline) but another "
						 "file follows");
				}
				goto done;
			}
			rec = cJSON_ParseWithLengthOpts(buf, len + 1, &end, 1);
			if (rec && end != buf + len) { /* a NUL inside the line */
				cJSON_Delete(rec);
				rec = NULL;
			}
			if (lines == 1 && !key && rec &&
			    cJSON_GetObjectItemCaseSensitive(rec, "mac") &&
			    !cJSON_GetObjectItemCaseSensitive(rec, "hash")) {
				r->key_needed = 1;
				cJSON_Delete(rec);
				goto done;
			}
			type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "type"));
			data = cJSON_GetObjectItemCaseSensitive(rec, "data");
			if (rec && type && !strcmp(type, "continue") && lines == 1) {
				/* The first file given goes on from one not given: the chain is
				 * checked from here. */
				const cJSON *seq = cJSON_GetObjectItemCaseSensitive(rec, "seq");
				const char *prev = cJSON_GetStringValue(
				    cJSON_GetObjectItemCaseSensitive(rec, "prev"));

				if (cJSON_IsNumber(seq) && seq->valuedouble >= 1 &&
				    seq->valuedouble < 0x1p63 && prev && strlen(prev) < 65) {
					n = r->first_seq = (uint64_t)seq->valuedouble;
					snprintf(expect, sizeof(expect), "%s", prev);
					copy_printable(
					    r->first_from, sizeof(r->first_from),
					    cJSON_GetStringValue(
						cJSON_GetObjectItemCaseSensitive(data, "from")));
				}
			}
			if (rec && type) {
				int cont = !strcmp(type, "continue");

				if (line_no == 1 && fi > 0 && !cont)
					why = "does not continue the file before it: a file that "
					      "follows a rotated one starts with a continue record";
				else if (cont && !(line_no == 1 && (fi > 0 || r->first_seq)))
					why = "is a continue record that does not start its file";
			}
			if (!why)
				why = rec ? check_record(rec, key, n, expect, digest)
					  : "is not an audit record";
			if (why) {
				r->broken = 1;
				snprintf(r->why, sizeof(r->why), "%s", why);
				cJSON_Delete(rec);
				goto done;
			}
			r->sealed = !strcmp(type, "seal");
			r->rotated = !strcmp(type, "rotate");
			if (r->rotated)
				copy_printable(r->next_file, sizeof(r->next_file),
					       cJSON_GetStringValue(
						   cJSON_GetObjectItemCaseSensitive(data, "file")));
			r->checkpoints += !strcmp(type, "checkpoint");
			if (!strcmp(type, "gap") && !r->gaps++) {
				r->first_gap_seq = n;
				copy_printable(
				    r->first_gap, sizeof(r->first_gap),
				    cJSON_GetStringValue(
					cJSON_GetObjectItemCaseSensitive(data, "message")));
			}
			if (anchor && n + 1 == anchor->records && strcmp(digest, anchor->head))
				r->anchor_mismatch = 1;
			memcpy(expect, digest, sizeof(expect));
			n++;
			cJSON_Delete(rec);
		}
		if (!line_no && fi + 1 < nfiles && lines) {
			r->broken = 1; /* an empty file between two others */
			snprintf(r->why, sizeof(r->why), "is missing: the file is empty");
			goto done;
		}
	}
done:
	free(buf);
	r->records = n;
	r->empty = lines == 0;
	if (r->broken || r->torn_line) {
		r->break_file = fi < nfiles ? fi : nfiles - 1;
		r->break_line = line_no;
		r->break_record = n;
	}
	if (anchor && !r->broken && !r->key_needed && n < anchor->records)
		r->anchor_missing = 1;
	if (anchor && r->first_seq && anchor->records <= r->first_seq)
		r->anchor_before = 1;
	r->intact = !r->empty && !r->key_needed && !r->broken && !r->torn_line &&
		    (r->sealed || r->rotated) && !r->gaps && !r->anchor_missing &&
		    !r->anchor_mismatch && !r->anchor_before;
	return 0;
}

int agt_audit_verify(FILE *f, const struct agt_audit_key *key,
		     const struct agt_audit_anchor_ref *anchor, struct agt_audit_report *r,
		     char *err, size_t errlen)
{
	return agt_audit_verify_files(&f, 1, key, anchor, r, err, errlen);
}
