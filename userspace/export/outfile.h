/* An output file (or standard output) of whole lines: the JSONL and tree outputs write through
 * it. It owns what a local output must never get wrong:
 *
 *  - Write failures are never silent. Lines are written with write(2) from a buffer of our
 *    own; a write that fails (a full disk, an I/O error, a reader that went away) loses the
 *    lines it could not write, counted by reason, and a line cut short is cut back out of the
 *    file (ftruncate), so the file only ever holds whole lines. The first failure is warned
 *    about once, and agt_outfile_failed then says the run must exit non-zero. Every line handed
 *    over is either written or lost: records = written + lost, exactly.
 *  - Flushed at least once a second (agt_outfile_tick), at most 64 KiB held in memory.
 *  - A torn last line left by a run that was killed in the middle of a write (no newline at
 *    the end of the file) is found when the file is opened, cut off and reported.
 *  - Rotation: a file that would grow past max_bytes, or is older than max_age, is renamed
 *    FILE.N (N one more than the highest there) and a new FILE is started; rotated files of
 *    this output beyond keep_bytes in total (the current file included) are removed, oldest
 *    first. A path whose file name holds strftime conversions (spans-%Y-%m-%d.jsonl) names one
 *    file per day (UTC), chosen for each line by the time the caller gives with it.
 *
 * One thread (the pipeline's). */
#ifndef AGT_OUTFILE_H
#define AGT_OUTFILE_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Why lines were lost. */
enum agt_out_lost {
	AGT_OUT_DISK_FULL = 0, /* ENOSPC, EDQUOT, EFBIG */
	AGT_OUT_IO_ERROR,      /* EIO and anything else */
	AGT_OUT_CLOSED,	       /* EPIPE: nobody reads standard output any more */
	AGT_OUT_LOST_REASONS
};
extern const char *const agt_out_lost_names[AGT_OUT_LOST_REASONS];

struct agt_outfile_config {
	const char *path;    /* NULL: standard output */
	uint64_t max_bytes;  /* rotate before a file grows past this; 0: never */
	uint64_t max_age_s;  /* rotate a file this old (seconds); 0: never */
	uint64_t keep_bytes; /* this output's files kept, in bytes, at most; 0: no bound */
};

struct agt_outfile_stats {
	uint64_t records; /* complete lines handed over */
	uint64_t written; /* ... written out */
	uint64_t lost[AGT_OUT_LOST_REASONS];
	uint64_t write_failures;   /* failed write(2) calls, and failed opens of a new file */
	uint64_t rotations;	   /* files renamed to FILE.N */
	uint64_t removed;	   /* rotated files removed to stay under keep_bytes */
	uint64_t torn, torn_bytes; /* torn last lines found (and cut) when opening a file */
	uint64_t bytes;		   /* bytes written */
};

struct agt_outfile;

/* Open (append to) cfg->path, or standard output. A torn last line is cut off and warned about.
 * NULL with one sentence in err: the file cannot be opened, the options do not fit (rotation
 * of standard output, strftime conversions in the folder). */
struct agt_outfile *agt_outfile_open(const struct agt_outfile_config *cfg, char *err,
				     size_t errlen);
/* Check a path and rotation options without opening anything (--dry-run, option checks).
 * 0, or -EINVAL with one sentence in err. */
int agt_outfile_check(const struct agt_outfile_config *cfg, char *err, size_t errlen);
/* Hand over bytes: whole lines (a partial line waits for its end). real_ns (CLOCK_REALTIME)
 * chooses the file of a dated path: the file of the day of the line. */
void agt_outfile_put(struct agt_outfile *o, const char *data, size_t len, uint64_t real_ns);
/* Write out every whole line held. */
void agt_outfile_flush(struct agt_outfile *o);
/* Once a second: flush, and rotate a file older than max_age. */
void agt_outfile_tick(struct agt_outfile *o, uint64_t real_ns);
/* A stdio stream whose bytes go to o (stamped with the time they are written); for outputs
 * built on stdio (the tree). Closed by agt_outfile_close. */
FILE *agt_outfile_stream(struct agt_outfile *o);
void agt_outfile_stats(const struct agt_outfile *o, struct agt_outfile_stats *out);
/* "file" or "stdout": the output label of its metrics. */
const char *agt_outfile_label(const struct agt_outfile *o);
/* What the summary calls it: the path (the current file of a dated path) or "standard
 * output". */
const char *agt_outfile_name(const struct agt_outfile *o);
/* Standard output is a terminal. */
int agt_outfile_isatty(const struct agt_outfile *o);
/* Nonzero once a line was lost: the run must exit non-zero. */
int agt_outfile_failed(const struct agt_outfile *o);
/* Flush, then close. */
void agt_outfile_close(struct agt_outfile *o);

/* Rotation, shared with the audit trail. The name FILE is rotated to: FILE.N with N one more
 * than the highest FILE.<digits> in its folder (1 when there is none). 0 or -ENAMETOOLONG. */
int agt_rotate_name(const char *path, char *out, size_t n);
/* Remove rotated files of path (path.<digits>; with glob, every file whose name matches glob,
 * with or without .<digits>) oldest first (by modification time) while all of them together,
 * with current (never removed), take more than keep bytes. Returns how many were removed;
 * *bytes_removed (if not NULL) gets their size. */
int agt_rotate_prune(const char *path, const char *glob, const char *current, uint64_t keep,
		     uint64_t *bytes_removed);
#endif
