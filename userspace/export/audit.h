/* Audit trail: an append-only JSONL file of what a run attached, configured, sampled and decided,
 * made tamper-evident.
 *
 * Records: {"seq", "@timestamp", "host", "type", "data", "prev", "mac"} with a key, or the same
 * with "hash" instead of "mac" without one. "prev" is the previous record's mac (hash), "" for
 * the first record of a trail. The mac is HMAC-SHA256(key, prev || R), R being the record printed
 * as compact JSON without its "mac" member (the line as written, up to it); the hash is
 * SHA-256(prev || R). Without the key a chain of macs cannot be recomputed, so a changed, forged,
 * removed or reordered record is found; an unkeyed hash chain only finds accidental damage
 * (anyone can recompute it).
 *
 * Types the trail writes itself: "checkpoint" every N records or T seconds (data: "records", the
 * count of records before it, "head", the mac of the last of them, and "write_failures" so far;
 * fsync'd, then handed to the anchor hook, so a copy is kept outside the host, as the count up
 * to and including the checkpoint and the checkpoint's own mac), "seal" at a clean end (the
 * same),
 * and "gap" when records are known to be missing (data: "reason" torn_tail, unsealed or
 * write_failed, and "message", one sentence). A trail is intact when every record verifies,
 * it ends in a seal, it records no gap and an external anchor, if given, is in it.
 *
 * Records are written with one write(2) each; a write that fails is cut back out of the file,
 * counted, warned about once, and disclosed by a gap record as soon as a write succeeds again.
 * One thread: the pipeline's. */
#ifndef AGT_AUDIT_H
#define AGT_AUDIT_H
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "export/sink.h"

#define AGT_AUDIT_KEY_MIN 16   /* bytes: 128 bits */
#define AGT_AUDIT_KEY_MAX 4096 /* bytes */
#define AGT_AUDIT_CHECKPOINT_RECORDS 100
#define AGT_AUDIT_CHECKPOINT_SECONDS 30

/* An HMAC key: the raw bytes of a key file (`head -c 32 /dev/urandom > key; chmod 600 key`). */
struct agt_audit_key {
	unsigned char bytes[AGT_AUDIT_KEY_MAX];
	size_t len;
};

/* Read a key file: a regular file of AGT_AUDIT_KEY_MIN..MAX bytes that neither group nor others
 * can read; with check_owner, owned by the user agtrace runs as (whoever owns it can read it).
 * 0, or -errno with one sentence in err. */
int agt_audit_key_load(const char *path, int check_owner, struct agt_audit_key *k, char *err,
		       size_t errlen);
/* Wipe a key from memory. */
void agt_audit_key_clear(struct agt_audit_key *k);

/* A checkpoint or seal as written and synced: what a collector keeps as the external anchor,
 * and what `agtrace audit verify --anchor RECORDS:HEAD` takes back (text). A trail cut before
 * it, or rewritten up to it, no longer holds it. */
struct agt_audit_anchor {
	const char *type; /* "checkpoint" or "seal" */
	const char *path; /* the trail */
	uint64_t seq;	  /* the checkpoint's (seal's) own seq */
	uint64_t records; /* records up to and including it: seq + 1 */
	char head[65];	  /* its own mac (hash), hex */
	uint64_t real_ns; /* when it was written, CLOCK_REALTIME */
	int keyed;	  /* head is an HMAC */
	char text[96];	  /* "RECORDS:HEAD", the --anchor argument */
};
typedef void (*agt_audit_anchor_fn)(void *ctx, const struct agt_audit_anchor *an);

struct agt_audit_config {
	const char *path;
	const struct agt_audit_key *key; /* NULL: unkeyed SHA-256 chain; copied by open */
	const char *key_file;		 /* or the key read from here (agt_audit_key_load with
					    check_owner) */
	uint64_t checkpoint_records;	 /* 0: AGT_AUDIT_CHECKPOINT_RECORDS */
	uint64_t checkpoint_seconds;	 /* 0: AGT_AUDIT_CHECKPOINT_SECONDS */
	/* Rotation (0: never): before an ordinary record would take the file past max_bytes, or
	 * once it is max_age_s old, it ends in a rotate record (synced, an anchor), is renamed
	 * FILE.N (export/outfile.h, agt_rotate_name) and a new FILE starts with a continue
	 * record that goes on with the chain; rotated files beyond keep_bytes in all (FILE
	 * included) are removed, oldest first. */
	uint64_t max_bytes, max_age_s, keep_bytes;
};

/* What a running trail has done, for metrics. */
struct agt_audit_stats {
	uint64_t records;	 /* records written, of every type, by this run */
	uint64_t write_failures; /* records that could not be written, and failed fsyncs */
	uint64_t checkpoints;	 /* checkpoints written and synced by this run */
	uint64_t last_checkpoint_seq;
	uint64_t last_checkpoint_real_ns; /* 0: none yet */
	uint64_t next_seq;		  /* the seq the next record gets */
	uint64_t rotations;		  /* files rotated by this run */
	uint64_t removed;		  /* rotated files removed to stay under keep_bytes */
};

struct agt_audit;
/* Open (or continue) the trail at cfg->path, locked against a second writer. A torn last line
 * (no newline: a write cut short) is cut off; continuing a trail whose last record is not a
 * seal, or after such a cut, first writes a gap record saying so. Refused with one sentence:
 * a trail in use, a last line that is not a record, a keyed trail without the key (or with
 * another key), an unkeyed trail with a key. NULL with one sentence in err. */
struct agt_audit *agt_audit_open(const struct agt_audit_config *cfg, const struct agt_export_ctx *c,
				 char *err, size_t errlen);
/* Called after every checkpoint and the seal once written and synced. */
void agt_audit_set_anchor(struct agt_audit *a, agt_audit_anchor_fn fn, void *ctx);
/* Append one record of type with data (taken over); a checkpoint follows when one is due.
 * 0 or -errno (the failure is counted and disclosed; see agt_audit_failed). */
int agt_audit_record(struct agt_audit *a, const char *type, cJSON *data);
/* Once a second or so: a checkpoint when T seconds passed and records were written since the
 * last one. now_ns: CLOCK_MONOTONIC. */
void agt_audit_tick(struct agt_audit *a, uint64_t now_ns);
/* At a clean end: the seal record, synced. Nothing may be recorded after it. 0 or -errno. */
int agt_audit_seal(struct agt_audit *a);
void agt_audit_stats(const struct agt_audit *a, struct agt_audit_stats *out);
/* Nonzero once any record could not be written or synced: the run must exit non-zero. */
int agt_audit_failed(const struct agt_audit *a);
void agt_audit_close(struct agt_audit *a);
/* A sink that passes every span on to next and records a digest of each decision and tool call. */
struct agt_sink *agt_audit_tee(struct agt_sink *next, struct agt_audit *a);

/* Verification. An external anchor: the trail had `records` records, the last with mac (hash)
 * `head`. */
struct agt_audit_anchor_ref {
	uint64_t records;
	char head[65];
};
/* Parse "RECORDS:HEAD" (RECORDS >= 1, HEAD 64 hex digits). 0 or -EINVAL. */
int agt_audit_anchor_parse(const char *s, struct agt_audit_anchor_ref *out);

struct agt_audit_report {
	uint64_t records; /* records that verified, in order, before any break */
	int keyed;	  /* macs were checked with the key */
	int empty;	  /* no line at all */
	int key_needed;	  /* the trail has macs and no key was given */
	/* The chain breaks: line break_line (record break_record) is not what it should be. */
	int broken;
	uint64_t break_line, break_record;
	char why[160]; /* ends the sentence "line L (record N) ..." */
	/* The last line ends without a newline: a write cut short. */
	uint64_t torn_line, torn_bytes;
	uint64_t torn_file;	/* in this file (index) */
	int sealed;		/* the last record is a seal */
	int files;		/* files read, in order */
	/* The first file continues one that was not given (rotated away, or left out): the
	 * chain is checked from record first_seq, whose "prev" is taken as given. */
	uint64_t first_seq;
	char first_from[128];
	int rotated;		/* the last record is a rotate record: the trail goes on in ... */
	char next_file[128];	/* ... this file, not given */
	uint64_t break_file;	/* the file (index) of break_line or torn_line */
	int anchor_before;	/* the anchored record is before the first one checked */
	uint64_t gaps;		/* gap records */
	uint64_t first_gap_seq; /* valid when gaps */
	char first_gap[200];	/* its message */
	uint64_t checkpoints;	/* checkpoint records */
	int anchor_given;
	int anchor_missing;	 /* the trail has fewer records than the anchor names */
	int anchor_mismatch;	 /* record anchor.records-1 is not the anchored one */
	uint64_t anchor_records; /* as given */
	int intact;		 /* all of the above in order */
};
/* Verify the trail read from f (to its end). key NULL: an unkeyed trail; anchor NULL: none.
 * 0 with the report filled, or -errno with one sentence in err when f cannot be read. */
int agt_audit_verify(FILE *f, const struct agt_audit_key *key,
		     const struct agt_audit_anchor_ref *anchor, struct agt_audit_report *r,
		     char *err, size_t errlen);
/* The same over the files of a rotated trail, oldest first (FILE.1 FILE.2 ... FILE): each
 * after the first must start with the continue record that goes on with the chain of the one
 * before. The first may itself start with a continue record (its earlier files rotated away):
 * the chain is then checked from there. A trail that ends in a rotate record (its next file
 * not given) counts as ended, as a sealed one does. */
int agt_audit_verify_files(FILE *const *files, int nfiles, const struct agt_audit_key *key,
			   const struct agt_audit_anchor_ref *anchor, struct agt_audit_report *r,
			   char *err, size_t errlen);

/* cli/cmd_audit.c: agtrace audit verify [--key FILE] [--anchor RECORDS:HEAD] TRAIL */
#endif
