/* The delivery core: a write-ahead spool log between the pipeline and the backend.
 *
 * Threads. The pipeline's thread (delivery_observe) encodes a span and appends the document to
 * an in-memory batch under a mutex it shares only with the log thread: it never touches the
 * disk or the network, and never waits for either. The log thread takes the batch (at once
 * when it was idle, and at most once per sync_ms under load), appends it to the active log
 * segment with one write, fdatasyncs it, and only then hands it to the send thread. The send
 * thread reads the log in order, sends batches through the transport, retries and
 * dead-letters, and deletes a segment once every record in it was delivered or dead-lettered.
 *
 * Accepted. A document is accepted when the fdatasync after its write has returned. From then
 * on it survives a SIGKILL, an OOM kill and a crash of the machine, and it is delivered at least
 * once, by this run or by the next one started on the same spool folder (ids make duplicates
 * harmless), unless the overflow policy evicts it, which is counted. Before that it is in memory
 * (or written and not yet synced), so a SIGKILL or an OOM kill costs at most the documents
 * handed over and not yet accepted (a crash of the machine exactly those): a document handed
 * over at time t is accepted by t + sync_ms + the duration of the write and fdatasync in
 * progress at t + the duration of its own write and fdatasync, and never more than 32 MiB of
 * documents wait. sync_ms is --spool-sync-ms (default 100). A process cannot count what its
 * own death loses; it measures the window instead: stats.unsynced (documents not yet accepted,
 * now) and stats.sync_lag_max_ms (the longest hand-over-to-accepted wait seen). Documents the
 * bounds refuse are never accepted and are counted at once, by reason.
 *
 * Files in the spool folder (flock'ed: one agtrace per folder):
 *   spool-<seq: 20 digits>.log  the log segments, in order of seq. A 16-byte header ("AGTSPOOL",
 *       u32 version 1, u32 0), then records: u32 crc, u32 len, u64 time, len bytes of document.
 *       Little-endian; crc is the CRC-32 (zlib's, computed with libdeflate) of the 12 + len bytes
 * after it; time is when the record was written (CLOCK_REALTIME ns). A segment takes spool_max/8
 * bytes (4 KiB to 8 MiB) before the next one is started, so space comes back in small steps. cursor
 * "<seq> <offset> <crc>\n": 20-digit seq and offset, then the CRC-32 of the 42 bytes before it in 8
 * hex digits. Every segment before seq, and every record of segment seq before byte offset, was
 * delivered or dead-lettered. Rewritten in place (one pwrite, no fsync) after every batch that
 * moves it. It may lag (after a crash of the machine, or by the batch in flight at a SIGKILL: the
 * next run sends those again); it never leads: it is written after what it covers was resolved and
 * the dead letters were fdatasynced. dead-letter.ndjson  documents the backend rejected, with its
 * reason (unless --dead-letter). At start the log thread lists the folder once: stale *.tmp files
 * (of older versions) are removed and counted; segments the cursor covers are deleted; every other
 * segment is read through once, and a torn or corrupt tail (the record being written when a run
 * died, never an accepted one) is reported once, counted and cut off; spool files of older versions
 * (spool-N.ndjson) are copied into the log and deleted. Then everything the cursor does not
 * cover is sent, in order, reading the segments sequentially (no listing per document): replay
 * runs at the speed of the backend.
 *
 * Bounds. The segment files never exceed spool_max bytes. A record that does not fit is refused
 * under --spool-overflow newest (lost: spool_full); under oldest, the oldest segments are
 * deleted until it fits (their records not yet sent: lost: evicted). A full disk (ENOSPC,
 * EDQUOT) is handled the same way: what was written past the last whole record is cut off,
 * oldest segments are evicted under policy oldest, and the records that still do not fit are
 * lost: disk_full. A document is counted lost exactly when it is not in the log and never will
 * be (evicted: and will not be sent either): a run never counts what a later run delivers. */
#define _GNU_SOURCE
#include "export/delivery.h"
#include "base/log.h"
#include "base/util.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <libdeflate.h>

#define SEG_MAGIC "AGTSPOOL"
#define SEG_VERSION 1
#define SEG_HDR 16
#define REC_HDR 16
#define REC_MAX (1u << 30)     /* a longer record is corruption */
#define INBOX_MAX (32u << 20)  /* bytes of documents handed over, not yet in the log */
#define PENDING_MAX (4u << 20) /* framed bytes the log thread writes (and syncs) at once */
#define SEG_MIN (4u << 10)     /* segment size bounds */
#define SEG_CAP (8u << 20)
#define READ_CHUNK (1u << 20) /* sequential reads of the log */
#define CURSOR_LEN 51

const char *const agt_lost_reason_names[AGT_LOST_REASONS] = {
    "spool_full", "evicted", "disk_full", "io_error", "queue_full", "encode",
};

/* A log segment, as the log and send threads know it. */
struct seg {
	uint64_t seq, size, records; /* size: bytes of whole records on disk, header included */
	int sealed;		     /* no more records will be appended */
	int prior;		     /* written by an earlier run */
};

/* Documents handed over by the pipeline: each is its length (uint32_t), then its bytes. The
 * buffer is INBOX_MAX bytes of address space reserved once (pages are taken as they are
 * written, and given back when a burst is over): appending never moves what is there. */
struct inbox {
	char *buf;
	size_t len;
	size_t touched;		 /* bytes up to which pages may be resident */
	uint64_t docs, first_ns; /* first_ns: when the first of them was handed over */
};

/* Where a document read for sending sits in the log. */
struct where {
	uint64_t seq, off, ns;
};

/* Sequential reads of one segment file through a buffer. */
struct reader {
	int fd;
	uint64_t seq, size; /* size: read nothing at or past it */
	uint8_t *buf;
	size_t cap, len;
	uint64_t off; /* file offset of buf[0] */
};

/* The statistics: written by the three threads, read by the main thread: C11 atomics. */
struct counters {
	_Atomic uint64_t queued, delivered, retried, dead_lettered, spooled, send_failures;
	_Atomic uint64_t spool_bytes, oldest_ns, last_latency_ms, wire_bytes;
	_Atomic uint64_t lost[AGT_LOST_REASONS];
	_Atomic uint64_t replayed, torn, torn_bytes, tmp_removed, disk_bytes, fsyncs, unsynced;
	_Atomic uint64_t sync_lag_max_ms, write_failures;
	_Atomic int warned[AGT_LOST_REASONS];
};

struct agt_delivery {
	const struct agt_transport_ops *ops;
	void *t;
	struct agt_delivery_config cfg;
	struct agt_export_ctx ctx;
	char spool[1024], dead[1100];
	int dirfd; /* the spool folder, flock'ed */
	uint64_t seg_max;
	struct counters st;
	int started;
	pthread_t log_thread, send_thread;

	/* The pipeline and the log thread: lock guards in and stopping. */
	pthread_mutex_t lock;
	pthread_cond_t log_wake;
	struct inbox in;
	int stopping;
	struct agt_jw w; /* the pipeline's: documents are encoded here, then copied */

	/* The log and send threads: seg_lock guards everything up to the log thread's own. */
	pthread_mutex_t seg_lock;
	pthread_cond_t send_wake;
	struct seg *segs; /* oldest first */
	size_t nsegs, segcap;
	uint64_t usage;		   /* bytes of all segment files */
	uint64_t rd_seq, rd_off;   /* the send thread's next record */
	uint64_t rd_count;	   /* records it read in segment rd_seq */
	uint64_t ack_seq, ack_off; /* the first record not yet resolved */
	uint64_t evicted_upto;	   /* the newest segment evicted (the oldest go first) */
	uint64_t next_seq;	   /* the seq of the next segment */
	uint64_t stop_ns;	   /* when the stop was asked for; 0: running */
	int ready, log_done;

	/* The log thread's own. */
	struct inbox out; /* the batch being written (swapped with in) */
	int wfd;	  /* the active segment, or -1 */
	uint64_t wseq, wsize;
	uint8_t *wbuf; /* records framed for the active segment, not yet written */
	size_t wlen, wcap;
	uint64_t wrecs;
	int wprior; /* copying an older version's spool: its records are not this run's */
	uint64_t last_sync_ns;

	/* The send thread's own. */
	struct agt_doc *win; /* documents read and not yet resolved, in log order */
	struct where *wat;
	size_t nwin;	/* at most win_max */
	size_t win_max; /* batch_docs x the transport's requests in flight */
	struct reader rd;
	int cfd;	       /* the cursor file, or -1 */
	uint64_t c_seq, c_off; /* what it says */
	FILE *dlf;
	int dl_dirty;
};

static uint64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* The CRC of a record: its header after the crc field, then its document. */
static uint32_t rec_crc(const uint8_t *hdr, const void *doc, uint32_t len)
{
	return libdeflate_crc32(libdeflate_crc32(0, hdr + 4, REC_HDR - 4), doc, len);
}

static void seg_name(uint64_t seq, char *out, size_t n)
{
	snprintf(out, n, "spool-%020llu.log", (unsigned long long)seq);
}

static void deadline_ts(uint64_t mono_ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(mono_ns / 1000000000ull);
	ts->tv_nsec = (long)(mono_ns % 1000000000ull);
}

static int grow(void *pp, size_t *cap, size_t need, size_t elem)
{
	void **p = pp;
	size_t c = *cap ? *cap : 256;
	void *v;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	if (!(v = realloc(*p, c * elem)))
		return -ENOMEM;
	*p = v;
	*cap = c;
	return 0;
}

/* Count n documents lost for reason r; the first time, say why. */
static void lose(struct agt_delivery *d, enum agt_lost_reason r, uint64_t n, int err)
{
	if (!n)
		return;
	d->st.lost[r] += n;
	if (atomic_exchange(&d->st.warned[r], 1))
		return;
	switch (r) {
	case AGT_LOST_SPOOL_FULL:
		agt_warn("the %s spool %s is full (--spool-max-bytes %llu): newer documents are "
			 "refused until it drains, and counted as lost (--spool-overflow newest)",
			 d->ops->name, d->spool, (unsigned long long)d->cfg.spool_max);
		break;
	case AGT_LOST_EVICTED:
		agt_warn("the %s spool %s is full (--spool-max-bytes %llu): its oldest undelivered "
			 "documents are deleted to make room, and counted as lost "
			 "(--spool-overflow oldest)",
			 d->ops->name, d->spool, (unsigned long long)d->cfg.spool_max);
		break;
	case AGT_LOST_DISK_FULL:
		agt_warn("the disk of the %s spool %s is full (%s): documents that do not fit are "
			 "counted as lost",
			 d->ops->name, d->spool, strerror(err));
		break;
	case AGT_LOST_IO_ERROR:
		agt_warn("cannot write or read the %s spool %s (%s): the documents concerned are "
			 "counted as lost",
			 d->ops->name, d->spool, strerror(err));
		break;
	case AGT_LOST_QUEUE_FULL:
		agt_warn("%u MiB of %s documents wait for the spool log thread: newer ones are "
			 "counted as lost",
			 INBOX_MAX >> 20, d->ops->name);
		break;
	default:
		agt_warn("a span could not be encoded for %s (no memory): counted as lost",
			 d->ops->name);
	}
}

/* The segment list (seg_lock held). */
static struct seg *seg_find(struct agt_delivery *d, uint64_t seq)
{
	for (size_t i = 0; i < d->nsegs; i++)
		if (d->segs[i].seq == seq)
			return &d->segs[i];
	return NULL;
}

static struct seg *seg_after(struct agt_delivery *d, uint64_t seq)
{
	for (size_t i = 0; i < d->nsegs; i++)
		if (d->segs[i].seq > seq)
			return &d->segs[i];
	return NULL;
}

static int seg_add(struct agt_delivery *d, const struct seg *s)
{
	if (grow(&d->segs, &d->segcap, d->nsegs + 1, sizeof(*d->segs)))
		return -ENOMEM;
	d->segs[d->nsegs++] = *s;
	d->usage += s->size;
	d->st.disk_bytes = d->usage;
	return 0;
}

static void seg_remove(struct agt_delivery *d, size_t i)
{
	char name[64];

	seg_name(d->segs[i].seq, name, sizeof(name));
	unlinkat(d->dirfd, name, 0);
	d->usage -= d->segs[i].size;
	d->st.disk_bytes = d->usage;
	memmove(d->segs + i, d->segs + i + 1, (d->nsegs - i - 1) * sizeof(*d->segs));
	d->nsegs--;
}

/* Log bytes from the first unresolved record on (seg_lock held). */
static void update_waiting(struct agt_delivery *d)
{
	uint64_t w = 0;

	for (size_t i = 0; i < d->nsegs; i++) {
		const struct seg *s = &d->segs[i];

		if (s->seq > d->ack_seq)
			w += s->size - SEG_HDR;
		else if (s->seq == d->ack_seq && s->size > d->ack_off)
			w += s->size - (d->ack_off > SEG_HDR ? d->ack_off : SEG_HDR);
	}
	d->st.spool_bytes = w;
}

/* Delete segment i to make room (seg_lock held): the records the send thread has not read yet
 * are counted lost here, the ones it holds unresolved when it drops them (drop_evicted). */
static void seg_evict(struct agt_delivery *d, size_t i)
{
	const struct seg *s = &d->segs[i];
	uint64_t lost = 0;

	if (s->seq > d->evicted_upto)
		d->evicted_upto = s->seq;
	if (s->seq == d->rd_seq) {
		lost = s->records > d->rd_count ? s->records - d->rd_count : 0;
		d->rd_seq = i + 1 < d->nsegs ? d->segs[i + 1].seq : s->seq + 1;
		d->rd_off = SEG_HDR;
		d->rd_count = 0;
	} else if (s->seq > d->rd_seq) {
		lost = s->records;
	}
	lose(d, AGT_LOST_EVICTED, lost, 0);
	seg_remove(d, i);
	update_waiting(d);
}

/* The oldest sealed segment, evicted; 0 when there is none (seg_lock held). */
static int evict_oldest(struct agt_delivery *d)
{
	for (size_t i = 0; i < d->nsegs; i++)
		if (d->segs[i].sealed) {
			seg_evict(d, i);
			return 1;
		}
	return 0;
}

/* Readers. */
static void reader_close(struct reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->len = 0;
}

/* Make buf hold [off, off + n) of the file; 0, -ENODATA past r->size, or -errno. */
static int reader_get(struct reader *r, uint64_t off, size_t n, const uint8_t **p)
{
	size_t want, got = 0;

	if (off + n > r->size)
		return -ENODATA;
	if (off < r->off || off + n > r->off + r->len) {
		want = n > READ_CHUNK ? n : READ_CHUNK;
		if (want > r->size - off)
			want = r->size - off;
		if (grow(&r->buf, &r->cap, want, 1))
			return -ENOMEM;
		while (got < want) {
			ssize_t k = pread(r->fd, r->buf + got, want - got, (off_t)(off + got));

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				break;
			got += (size_t)k;
		}
		r->off = off;
		r->len = got;
		if (got < n)
			return -EIO;
	}
	*p = r->buf + (off - r->off);
	return 0;
}

/* The record at off: 0 with its document, or -1 when it is torn or corrupt (or unreadable). */
static int record_at(struct reader *r, uint64_t off, const uint8_t **doc, uint32_t *len,
		     uint64_t *ns)
{
	const uint8_t *h;

	if (reader_get(r, off, REC_HDR, &h))
		return -1;
	*len = get32(h + 4);
	*ns = get64(h + 8);
	if (*len > REC_MAX || reader_get(r, off, REC_HDR + (size_t)*len, &h))
		return -1;
	if (get32(h) != rec_crc(h, h + REC_HDR, *len))
		return -1;
	*doc = h + REC_HDR;
	return 0;
}

/* The log thread: the active segment. */
static int seg_create(struct agt_delivery *d)
{
	uint8_t hdr[SEG_HDR] = {0};
	struct seg s = {0};
	char name[64];
	int fd = -1, e = 0;

	memcpy(hdr, SEG_MAGIC, 8);
	put32(hdr + 8, SEG_VERSION);
	for (int tries = 0; fd < 0 && tries < 16; tries++) {
		seg_name(d->next_seq, name, sizeof(name));
		fd = openat(d->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			return -errno;
		if (fd < 0) { /* not ours: never write over a file */
			pthread_mutex_lock(&d->seg_lock);
			d->next_seq++;
			pthread_mutex_unlock(&d->seg_lock);
		}
	}
	if (fd < 0)
		return -EEXIST;
	{
		ssize_t k = pwrite(fd, hdr, SEG_HDR, 0);

		if (k != SEG_HDR)
			e = k < 0 ? -errno : -ENOSPC;
	}
	if (!e && (fdatasync(fd) || fsync(d->dirfd)))
		e = -errno;
	if (e) {
		close(fd);
		unlinkat(d->dirfd, name, 0);
		return e;
	}
	d->st.fsyncs += 2;
	s.seq = d->next_seq;
	s.size = SEG_HDR;
	s.prior = d->wprior;
	pthread_mutex_lock(&d->seg_lock);
	if (seg_add(d, &s)) {
		pthread_mutex_unlock(&d->seg_lock);
		close(fd);
		unlinkat(d->dirfd, name, 0);
		return -ENOMEM;
	}
	d->next_seq++;
	pthread_mutex_unlock(&d->seg_lock);
	d->wfd = fd;
	d->wseq = s.seq;
	d->wsize = SEG_HDR;
	return 0;
}

static void seg_seal(struct agt_delivery *d)
{
	struct seg *s;

	if (d->wfd < 0)
		return;
	close(d->wfd);
	d->wfd = -1;
	pthread_mutex_lock(&d->seg_lock);
	if ((s = seg_find(d, d->wseq)))
		s->sealed = 1;
	pthread_cond_signal(&d->send_wake);
	pthread_mutex_unlock(&d->seg_lock);
}

/* Bytes of the whole records among the first n bytes of wbuf, and how many they are. */
static size_t whole_records(const uint8_t *buf, size_t n, uint64_t *count)
{
	size_t off = 0;

	*count = 0;
	while (off + REC_HDR <= n && off + REC_HDR + get32(buf + off + 4) <= n) {
		off += REC_HDR + get32(buf + off + 4);
		(*count)++;
	}
	return off;
}

/* Write the framed records to the active segment and fdatasync them; then they are accepted
 * and the send thread may read them. A full disk cuts off what was written past the last whole
 * record; under policy oldest the oldest segments make room, else the rest is lost. */
static void flush(struct agt_delivery *d)
{
	while (d->wlen) {
		size_t done = 0, keep;
		uint64_t nkeep;
		int err = 0, broken = 0;
		struct seg *s;

		while (done < d->wlen) {
			ssize_t k = pwrite(d->wfd, d->wbuf + done, d->wlen - done,
					   (off_t)(d->wsize + done));

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				err = k < 0 ? errno : ENOSPC;
				break;
			}
			done += (size_t)k;
		}
		keep = whole_records(d->wbuf, done, &nkeep);
		if (err && ftruncate(d->wfd, (off_t)(d->wsize + keep)))
			broken = 1;
		if (keep && fdatasync(d->wfd)) {
			/* What the kernel kept of it is unknown: none of it was accepted. */
			err = errno;
			keep = 0;
			nkeep = 0;
			if (ftruncate(d->wfd, (off_t)d->wsize))
				broken = 1;
		}
		d->st.fsyncs++;
		if (err)
			d->st.write_failures++;
		pthread_mutex_lock(&d->seg_lock);
		if ((s = seg_find(d, d->wseq))) {
			s->size += keep;
			s->records += nkeep;
		}
		d->usage += keep;
		d->st.disk_bytes = d->usage;
		update_waiting(d);
		pthread_cond_signal(&d->send_wake);
		pthread_mutex_unlock(&d->seg_lock);
		d->wsize += keep;
		if (!d->wprior)
			d->st.spooled += nkeep;
		memmove(d->wbuf, d->wbuf + keep, d->wlen - keep);
		d->wlen -= keep;
		d->wrecs -= nkeep;
		if (!err)
			continue;
		if (broken) {
			/* Bytes past the last accepted record may remain: append no more here. */
			seg_seal(d);
		} else if ((err == ENOSPC || err == EDQUOT) &&
			   d->cfg.overflow == AGT_OVERFLOW_OLDEST) {
			int evicted;

			pthread_mutex_lock(&d->seg_lock);
			evicted = evict_oldest(d);
			pthread_mutex_unlock(&d->seg_lock);
			if (evicted)
				continue;
		}
		lose(d, err == ENOSPC || err == EDQUOT ? AGT_LOST_DISK_FULL : AGT_LOST_IO_ERROR,
		     d->wrecs, err);
		d->wlen = 0;
		d->wrecs = 0;
		if (d->wfd < 0)
			break;
	}
}

/* Room for need more bytes of segment files, counting what is framed and not yet written;
 * under policy oldest the oldest segments are deleted for it. 1 when there is. */
static int make_room(struct agt_delivery *d, uint64_t rec)
{
	for (;;) {
		uint64_t need = rec + (d->wfd < 0 ? SEG_HDR : 0);
		int fits, evicted = 0;

		pthread_mutex_lock(&d->seg_lock);
		fits = d->usage + d->wlen + need <= d->cfg.spool_max;
		if (!fits && d->cfg.overflow == AGT_OVERFLOW_OLDEST)
			evicted = evict_oldest(d);
		pthread_mutex_unlock(&d->seg_lock);
		if (fits)
			return 1;
		if (d->cfg.overflow != AGT_OVERFLOW_OLDEST)
			return 0;
		if (evicted)
			continue;
		/* Only the active segment is left: seal it so that it can go too. */
		if (d->wfd < 0 || (d->wsize == SEG_HDR && !d->wlen))
			return 0;
		flush(d);
		seg_seal(d);
	}
}

/* One document into the log: framed now, written by the next flush. */
static void log_record(struct agt_delivery *d, const void *doc, uint32_t len, uint64_t now)
{
	uint64_t rec = REC_HDR + (uint64_t)len;
	uint8_t *h;
	int e;

	/* A full segment is sealed first (a record larger than a segment fills one alone). */
	if (d->wfd >= 0 && d->wsize + d->wlen > SEG_HDR && d->wsize + d->wlen + rec > d->seg_max) {
		flush(d);
		seg_seal(d);
	}
	if (!make_room(d, rec)) {
		lose(d, AGT_LOST_SPOOL_FULL, 1, 0);
		return;
	}
	while (d->wfd < 0 && (e = seg_create(d))) {
		int evicted = 0;

		d->st.write_failures++;
		if ((e == -ENOSPC || e == -EDQUOT) && d->cfg.overflow == AGT_OVERFLOW_OLDEST) {
			pthread_mutex_lock(&d->seg_lock);
			evicted = evict_oldest(d);
			pthread_mutex_unlock(&d->seg_lock);
		}
		if (!evicted) {
			lose(d,
			     e == -ENOSPC || e == -EDQUOT ? AGT_LOST_DISK_FULL : AGT_LOST_IO_ERROR,
			     1, -e);
			return;
		}
	}
	if (grow(&d->wbuf, &d->wcap, d->wlen + rec, 1)) {
		lose(d, AGT_LOST_IO_ERROR, 1, ENOMEM);
		return;
	}
	h = d->wbuf + d->wlen;
	put32(h + 4, len);
	put64(h + 8, now);
	memcpy(h + REC_HDR, doc, len);
	put32(h, rec_crc(h, doc, len));
	d->wlen += rec;
	d->wrecs++;
	if (d->wlen >= PENDING_MAX)
		flush(d);
}

/* A batch from the pipeline into the log. */
static void log_batch(struct agt_delivery *d, struct inbox *b)
{
	uint64_t now = real_ns(), lag;

	for (size_t off = 0; off < b->len;) {
		uint32_t len;

		memcpy(&len, b->buf + off, sizeof(len));
		log_record(d, b->buf + off + sizeof(len), len, now);
		off += sizeof(len) + len;
	}
	flush(d);
	lag = (agt_mono_ns() - b->first_ns) / 1000000;
	if (lag > d->st.sync_lag_max_ms)
		d->st.sync_lag_max_ms = lag;
	d->st.unsynced -= b->docs;
	b->len = 0;
	b->docs = 0;
}

/* The cursor file: (seq, off) or (0, 0) when there is none or it is damaged. */
static void cursor_load(struct agt_delivery *d, uint64_t *seq, uint64_t *off)
{
	char line[CURSOR_LEN + 1] = {0}, *end;
	unsigned long long s, o;

	*seq = *off = 0;
	if (d->cfd < 0 || pread(d->cfd, line, CURSOR_LEN, 0) != CURSOR_LEN)
		return;
	if (line[20] != ' ' || line[41] != ' ' || line[50] != '\n' ||
	    strtoul(line + 42, &end, 16) != libdeflate_crc32(0, line, 42) || end != line + 50) {
		agt_warn("the %s spool cursor %s/cursor is damaged: the whole spool is sent again",
			 d->ops->name, d->spool);
		return;
	}
	s = strtoull(line, NULL, 10);
	o = strtoull(line + 21, NULL, 10);
	*seq = s;
	*off = o;
}

static void cursor_save(struct agt_delivery *d, uint64_t seq, uint64_t off)
{
	char line[CURSOR_LEN + 1];

	if (d->cfd < 0 || (seq == d->c_seq && off == d->c_off))
		return;
	if (d->dlf && d->dl_dirty) { /* what the cursor covers must not be lost */
		fflush(d->dlf);
		fdatasync(fileno(d->dlf));
		d->dl_dirty = 0;
	}
	snprintf(line, sizeof(line), "%020llu %020llu ", (unsigned long long)seq,
		 (unsigned long long)off);
	snprintf(line + 42, sizeof(line) - 42, "%08lx\n",
		 (unsigned long)libdeflate_crc32(0, line, 42));
	if (pwrite(d->cfd, line, CURSOR_LEN, 0) == CURSOR_LEN) {
		d->c_seq = seq;
		d->c_off = off;
	}
}

/* Read a segment of an earlier run through: its valid size and records, how many records lie
 * before byte from (when from is a record boundary: *at_from is then set). A torn or corrupt
 * tail is reported and cut off. -1: not a segment (removed). */
static int check_segment(struct agt_delivery *d, uint64_t seq, uint64_t from, struct seg *out,
			 uint64_t *before, int *at_from)
{
	struct reader r = {.fd = -1};
	char name[64];
	const uint8_t *h;
	struct stat st;
	uint64_t off = SEG_HDR, n = 0;

	seg_name(seq, name, sizeof(name));
	*at_from = 0;
	*before = 0;
	if ((r.fd = openat(d->dirfd, name, O_RDWR | O_CLOEXEC)) < 0 || fstat(r.fd, &st)) {
		reader_close(&r);
		return -1;
	}
	r.size = (uint64_t)st.st_size;
	if (reader_get(&r, 0, SEG_HDR, &h) || memcmp(h, SEG_MAGIC, 8) ||
	    get32(h + 8) != SEG_VERSION) {
		/* Created, then the run died before its header was on disk: nothing accepted. */
		if (r.size) {
			d->st.torn++;
			d->st.torn_bytes += r.size;
			agt_warn(
			    "the %s spool segment %s/%s has no valid header (%llu bytes, left by a "
			    "run that died while creating it): removed",
			    d->ops->name, d->spool, name, (unsigned long long)r.size);
		}
		reader_close(&r);
		free(r.buf);
		unlinkat(d->dirfd, name, 0);
		return -1;
	}
	for (;;) {
		const uint8_t *doc;
		uint32_t len;
		uint64_t ns;

		if (off == from) {
			*before = n;
			*at_from = 1;
		}
		if (off >= r.size || record_at(&r, off, &doc, &len, &ns))
			break;
		off += REC_HDR + len;
		n++;
	}
	if (off < r.size) {
		d->st.torn++;
		d->st.torn_bytes += r.size - off;
		agt_warn("the %s spool segment %s/%s ends in a torn or corrupt record at byte %llu "
			 "(%llu bytes, written when a run died, never accepted): the %llu records "
			 "before it are sent, the tear is cut off",
			 d->ops->name, d->spool, name, (unsigned long long)off,
			 (unsigned long long)(r.size - off), (unsigned long long)n);
		if (ftruncate(r.fd, (off_t)off) == 0)
			fsync(r.fd);
	}
	reader_close(&r);
	free(r.buf);
	*out = (struct seg){.seq = seq, .size = off, .records = n, .sealed = 1, .prior = 1};
	return 0;
}

/* Copy the spool files of an older version (documents of doc_lines lines each, one file per
 * segment, or per document when it was overloaded: there may be very many) into the log, in
 * the order of their names, with the usual batched writes. A file is deleted once its documents
 * are on disk (or counted lost). */
static void import_legacy(struct agt_delivery *d, char **names, size_t n)
{
	size_t done = 0; /* names[0..done) are dealt with */
	uint64_t now = real_ns();

	d->wprior = 1;
	for (size_t i = 0; i < n; i++) {
		char path[2048], *text;
		size_t len;

		snprintf(path, sizeof(path), "%s/%s", d->spool, names[i]);
		if (!(text = agt_read_file(path, 1u << 30, &len))) {
			agt_warn("cannot read the older %s spool file %s (%s): left in place",
				 d->ops->name, path, strerror(errno));
			free(names[i]);
			names[i] = NULL;
			continue;
		}
		for (char *p = text; *p;) {
			char *end = p;

			for (int l = 0; end && l < d->ops->doc_lines; l++)
				end = (end = strchr(end, '\n')) ? end + 1 : NULL;
			if (!end)
				break;
			log_record(d, p, (uint32_t)(end - p), now);
			p = end;
		}
		free(text);
		if (d->wlen) /* some of it is not written yet */
			continue;
		for (; done <= i; done++)
			if (names[done])
				unlinkat(d->dirfd, names[done], 0);
	}
	flush(d);
	seg_seal(d);
	d->wprior = 0;
	for (; done < n; done++)
		if (names[done])
			unlinkat(d->dirfd, names[done], 0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Take over what earlier runs left in the spool folder (the log thread, before anything else). */
static void log_open(struct agt_delivery *d)
{
	uint64_t *seqs = NULL, c_seq, c_off, max_seq = 0;
	size_t nseqs = 0, seqcap = 0, nlegacy = 0, legcap = 0;
	char **legacy = NULL;
	int dfd = dup(d->dirfd), have_rd = 0;
	DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *e;

	while (dir && (e = readdir(dir))) {
		size_t n = strlen(e->d_name);
		unsigned long long seq;
		char tail[16];

		if (n > 4 && !strcmp(e->d_name + n - 4, ".tmp")) {
			if (!unlinkat(d->dirfd, e->d_name, 0))
				d->st.tmp_removed++;
		} else if (sscanf(e->d_name, "spool-%20llu%15s", &seq, tail) == 2 &&
			   !strcmp(tail, ".log")) {
			if (!grow(&seqs, &seqcap, nseqs + 1, sizeof(*seqs)))
				seqs[nseqs++] = seq;
		} else if (sscanf(e->d_name, "spool-%20llu%15s", &seq, tail) == 2 &&
			   !strcmp(tail, ".ndjson")) {
			if (!grow(&legacy, &legcap, nlegacy + 1, sizeof(*legacy)) &&
			    (legacy[nlegacy] = strdup(e->d_name)))
				nlegacy++;
		}
	}
	if (dir)
		closedir(dir);
	else if (dfd >= 0)
		close(dfd);
	if (d->st.tmp_removed)
		agt_warn("removed %llu stale .tmp files from the %s spool %s (partial files of an "
			 "interrupted earlier run)",
			 (unsigned long long)d->st.tmp_removed, d->ops->name, d->spool);
	cursor_load(d, &c_seq, &c_off);
	d->c_seq = c_seq;
	d->c_off = c_off;
	if (nseqs)
		qsort(seqs, nseqs, sizeof(*seqs), cmp_u64);
	max_seq = c_seq;
	for (size_t i = 0; i < nseqs; i++) {
		char name[64];
		struct seg s;
		uint64_t before;
		int at_from;

		if (seqs[i] > max_seq)
			max_seq = seqs[i];
		if (seqs[i] < c_seq) { /* delivered; its deletion did not happen */
			seg_name(seqs[i], name, sizeof(name));
			unlinkat(d->dirfd, name, 0);
			continue;
		}
		if (check_segment(d, seqs[i], seqs[i] == c_seq ? c_off : SEG_HDR, &s, &before,
				  &at_from))
			continue;
		pthread_mutex_lock(&d->seg_lock);
		seg_add(d, &s);
		if (!have_rd) {
			/* The first segment left: from the cursor, when it points into it. */
			d->rd_seq = s.seq;
			d->rd_off = at_from ? (seqs[i] == c_seq ? c_off : SEG_HDR) : SEG_HDR;
			d->rd_count = at_from ? before : 0;
			have_rd = 1;
		}
		pthread_mutex_unlock(&d->seg_lock);
	}
	free(seqs);
	pthread_mutex_lock(&d->seg_lock);
	d->next_seq = max_seq + 1;
	if (!have_rd) {
		d->rd_seq = d->next_seq;
		d->rd_off = SEG_HDR;
	}
	pthread_mutex_unlock(&d->seg_lock);
	if (nlegacy)
		qsort(legacy, nlegacy, sizeof(*legacy), cmp_str);
	import_legacy(d, legacy, nlegacy);
	for (size_t i = 0; i < nlegacy; i++)
		free(legacy[i]);
	free(legacy);
	pthread_mutex_lock(&d->seg_lock);
	d->ack_seq = d->rd_seq;
	d->ack_off = d->rd_off;
	update_waiting(d);
	d->ready = 1;
	pthread_cond_broadcast(&d->send_wake);
	pthread_mutex_unlock(&d->seg_lock);
}

static void *log_main(void *arg)
{
	struct agt_delivery *d = arg;
	uint64_t every = (uint64_t)d->cfg.sync_ms * 1000000ull;

	log_open(d);
	for (;;) {
		struct inbox t;
		int stop, more;
		size_t used;

		pthread_mutex_lock(&d->lock);
		while (!d->in.docs && !d->stopping)
			pthread_cond_wait(&d->log_wake, &d->lock);
		/* Under load, one write and fdatasync per sync_ms: documents gather meanwhile. */
		while (!d->stopping && agt_mono_ns() < d->last_sync_ns + every) {
			struct timespec ts;

			deadline_ts(d->last_sync_ns + every, &ts);
			pthread_cond_timedwait(&d->log_wake, &d->lock, &ts);
		}
		t = d->in;
		d->in = d->out;
		d->out = t;
		stop = d->stopping;
		pthread_mutex_unlock(&d->lock);
		d->last_sync_ns = agt_mono_ns();
		used = d->out.len;
		if (d->out.docs)
			log_batch(d, &d->out);
		/* A burst is over (this batch used little of a large buffer): give its memory back.
		 * Under steady load the buffers are kept, not grown again (and faulted in) each
		 * time. */
		if (used > d->out.touched)
			d->out.touched = used;
		if (d->out.touched > PENDING_MAX && used < d->out.touched / 4) {
			madvise(d->out.buf + PENDING_MAX, d->out.touched - PENDING_MAX,
				MADV_DONTNEED);
			d->out.touched = PENDING_MAX;
		}
		if (!stop)
			continue;
		pthread_mutex_lock(&d->lock);
		more = d->in.docs != 0;
		pthread_mutex_unlock(&d->lock);
		if (!more)
			break;
	}
	seg_seal(d);
	pthread_mutex_lock(&d->seg_lock);
	d->log_done = 1;
	pthread_cond_signal(&d->send_wake);
	pthread_mutex_unlock(&d->seg_lock);
	return NULL;
}

/* The send thread: read records into the window, up to a batch (seg_lock held). */
static void refill(struct agt_delivery *d)
{
	while (d->nwin < d->win_max) {
		struct seg *s = seg_find(d, d->rd_seq), *n;
		const uint8_t *doc;
		uint32_t len;
		uint64_t ns;
		char *copy;

		if (!s) { /* deleted to make room: on to the next one */
			if (!(n = seg_after(d, d->rd_seq)))
				break;
			d->rd_seq = n->seq;
			d->rd_off = SEG_HDR;
			d->rd_count = 0;
			continue;
		}
		if (d->rd_off >= s->size) {
			if (!s->sealed || !(n = seg_after(d, s->seq)))
				break;
			d->rd_seq = n->seq;
			d->rd_off = SEG_HDR;
			d->rd_count = 0;
			continue;
		}
		if (d->rd.seq != s->seq) {
			reader_close(&d->rd);
			d->rd.seq = s->seq;
		}
		if (d->rd.fd < 0) {
			char name[64];

			seg_name(s->seq, name, sizeof(name));
			d->rd.fd = openat(d->dirfd, name, O_RDONLY | O_CLOEXEC);
		}
		d->rd.size = s->size;
		if (d->rd.fd < 0 || record_at(&d->rd, d->rd_off, &doc, &len, &ns)) {
			/* Checked at start or written by this run: the disk changed under us. */
			uint64_t skipped = s->records > d->rd_count ? s->records - d->rd_count : 0;

			d->st.torn++;
			d->st.torn_bytes += s->size - d->rd_off;
			agt_warn(
			    "cannot read back the %s spool segment %s/spool-%020llu.log at byte "
			    "%llu: its %llu remaining records are lost",
			    d->ops->name, d->spool, (unsigned long long)s->seq,
			    (unsigned long long)d->rd_off, (unsigned long long)skipped);
			lose(d, AGT_LOST_IO_ERROR, skipped, EIO);
			d->rd_count = s->records;
			d->rd_off = s->size;
			continue;
		}
		if (!(copy = malloc(len ? len : 1)))
			break;
		memcpy(copy, doc, len);
		d->win[d->nwin] = (struct agt_doc){.bytes = copy, .len = len};
		d->wat[d->nwin] = (struct where){.seq = s->seq, .off = d->rd_off, .ns = ns};
		d->nwin++;
		d->rd_off += REC_HDR + len;
		d->rd_count++;
		if (s->prior)
			d->st.replayed++;
	}
	/* An open file keeps its space after an eviction unlinks it: open only while reading. */
	if (d->rd.fd >= 0) {
		close(d->rd.fd);
		d->rd.fd = -1;
	}
}

static void dead_letter(struct agt_delivery *d, const struct agt_doc *doc, const char *reason)
{
	d->st.dead_lettered++;
	if (!d->dlf && !(d->dlf = fopen(d->dead, "ae")))
		return;
	if (d->ops->dead_letter)
		d->ops->dead_letter(d->dlf, doc, reason);
	else
		fprintf(d->dlf, "{\"reason\":%s,\"document\":%.*s}", reason, (int)doc->len - 1,
			doc->bytes);
	fputc('\n', d->dlf);
	d->dl_dirty = 1;
}

/* Send the window through the transport; what is delivered or dead-lettered leaves it, what
 * is to be retried stays, in order. 0: all resolved; 1: some to retry, after progress; -1: no
 * progress. */
static int send_window(struct agt_delivery *d)
{
	struct agt_send_result r = {0};
	size_t n = d->nwin, k = 0;
	uint64_t t0 = agt_mono_ns(), delivered = 0, resolved = 0;
	int rc;

	r.request_docs = (size_t)d->cfg.batch_docs;
	r.outcome = calloc(n, 1);
	r.reason = calloc(n, sizeof(char *));
	rc = r.outcome && r.reason ? d->ops->send(d->t, d->win, n, &r) : -1;
	d->st.last_latency_ms = (agt_mono_ns() - t0) / 1000000;
	d->st.wire_bytes += r.wire_bytes;
	if (rc) {
		d->st.send_failures++;
		d->st.retried += n; /* retried: documents sent again, whatever the cause */
	} else {
		for (size_t i = 0; i < n; i++) {
			if (r.outcome[i] == AGT_RETRY) {
				d->st.retried++;
				d->win[k] = d->win[i];
				d->wat[k++] = d->wat[i];
				continue;
			}
			if (r.outcome[i] == AGT_DELIVERED)
				delivered++;
			else
				dead_letter(d, &d->win[i], r.reason[i] ? r.reason[i] : "null");
			free(d->win[i].bytes);
			resolved++;
		}
		if (r.rejected_uncounted && r.rejected_uncounted <= delivered) {
			/* transport-delivered, but the backend said no to these */
			delivered -= r.rejected_uncounted;
			d->st.dead_lettered += r.rejected_uncounted;
			if (r.rejected_note && (d->dlf || (d->dlf = fopen(d->dead, "ae")))) {
				fprintf(d->dlf, "{\"reason\":%s,\"documents\":%llu}\n",
					r.rejected_note, (unsigned long long)r.rejected_uncounted);
				d->dl_dirty = 1;
			}
		}
		d->st.delivered += delivered;
		d->nwin = k;
		if (d->dlf && d->dl_dirty)
			fflush(d->dlf);
	}
	for (size_t i = 0; r.reason && i < n; i++)
		free(r.reason[i]);
	free(r.reason);
	free(r.outcome);
	free(r.rejected_note);
	if (!rc && !k)
		return 0;
	return resolved ? 1 : -1;
}

/* Documents of evicted segments leave the window, lost (seg_lock held): policy oldest drops
 * the oldest, and these are. Each is counted once: unread ones by seg_evict, these here. */
static void drop_evicted(struct agt_delivery *d)
{
	size_t k = 0;

	if (!d->evicted_upto)
		return;
	for (size_t i = 0; i < d->nwin; i++) {
		if (d->wat[i].seq <= d->evicted_upto) {
			free(d->win[i].bytes);
			continue;
		}
		d->win[k] = d->win[i];
		d->wat[k++] = d->wat[i];
	}
	lose(d, AGT_LOST_EVICTED, d->nwin - k, 0);
	d->nwin = k;
}

/* Whether the send thread has read every record in the log (seg_lock held). */
static int read_all(struct agt_delivery *d)
{
	const struct seg *s = seg_find(d, d->rd_seq);

	return !seg_after(d, d->rd_seq) && (!s || d->rd_off >= s->size);
}

/* Everything before the window's first document is resolved: delete the segments behind it
 * (seg_lock held). 1 when one was deleted. */
static int ack(struct agt_delivery *d)
{
	int deleted = 0;

	drop_evicted(d);
	d->ack_seq = d->nwin ? d->wat[0].seq : d->rd_seq;
	d->ack_off = d->nwin ? d->wat[0].off : d->rd_off;
	while (d->nsegs && d->segs[0].seq < d->ack_seq && d->segs[0].sealed) {
		seg_remove(d, 0);
		deleted = 1;
	}
	update_waiting(d);
	d->st.oldest_ns = d->nwin ? d->wat[0].ns : 0;
	return deleted;
}

static void *send_main(void *arg)
{
	struct agt_delivery *d = arg;
	uint64_t backoff_ms = 0, next_try = 0, deadline = 0, seq, off;
	struct agt_rng rng;
	int clean = 0;

	agt_rng_init(&rng);
	pthread_mutex_lock(&d->seg_lock);
	while (!d->ready)
		pthread_cond_wait(&d->send_wake, &d->seg_lock);
	for (;;) {
		uint64_t now, wake;
		int res, deleted;

		refill(d);
		ack(d);
		now = agt_mono_ns();
		if (d->stop_ns && !deadline) {
			deadline = d->stop_ns + (uint64_t)(d->cfg.drain_seconds * 1e9);
			next_try = 0; /* a stop tries at once, whatever the backoff */
		}
		if (!d->nwin && d->log_done && read_all(d)) {
			clean = 1;
			break;
		}
		if (deadline && now >= deadline)
			break;
		if (!d->nwin || now < next_try) {
			struct timespec ts;

			wake = d->nwin ? next_try : now + 200000000ull;
			if (deadline && deadline < wake)
				wake = deadline;
			deadline_ts(wake, &ts);
			pthread_cond_timedwait(&d->send_wake, &d->seg_lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&d->seg_lock);
		res = send_window(d);
		if (res == 0) {
			backoff_ms = 0;
			next_try = 0;
		} else if (res > 0) {
			/* Progress, with some items pushed back (429): a short pause. */
			backoff_ms = 100;
			next_try = agt_mono_ns() + (50 + agt_rng_next(&rng) % 51) * 1000000ull;
		} else {
			backoff_ms = backoff_ms ? backoff_ms * 2 : 100;
			if (backoff_ms > 30000)
				backoff_ms = 30000;
			/* full jitter between half and all of the backoff */
			next_try = agt_mono_ns() +
				   (backoff_ms / 2 + agt_rng_next(&rng) % (backoff_ms / 2 + 1)) *
				       1000000ull;
		}
		pthread_mutex_lock(&d->seg_lock);
		deleted = ack(d);
		seq = d->ack_seq;
		off = d->ack_off;
		if (deleted || seq != d->c_seq || off != d->c_off) {
			pthread_mutex_unlock(&d->seg_lock);
			cursor_save(d, seq, off);
			pthread_mutex_lock(&d->seg_lock);
		}
	}
	/* The log thread may still evict segments whose documents are in the window: the final
	 * count and cursor come after it is done (the stop waits for it anyway). */
	while (!d->log_done)
		pthread_cond_wait(&d->send_wake, &d->seg_lock);
	if (!clean)
		ack(d);
	if (clean) { /* everything delivered: the log is empty */
		while (d->nsegs)
			seg_remove(d, 0);
		d->ack_seq = d->next_seq;
		d->ack_off = 0;
		d->st.oldest_ns = 0;
	}
	update_waiting(d);
	seq = d->ack_seq;
	off = d->ack_off;
	pthread_mutex_unlock(&d->seg_lock);
	cursor_save(d, seq, off);
	if (d->dlf) {
		fflush(d->dlf);
		fdatasync(fileno(d->dlf));
		fclose(d->dlf);
		d->dlf = NULL;
	}
	reader_close(&d->rd);
	return NULL;
}

static void delivery_free_parts(struct agt_delivery *d)
{
	for (size_t i = 0; i < d->nwin; i++)
		free(d->win[i].bytes);
	free(d->win);
	free(d->wat);
	if (d->in.buf)
		munmap(d->in.buf, INBOX_MAX);
	if (d->out.buf)
		munmap(d->out.buf, INBOX_MAX);
	free(d->wbuf);
	free(d->segs);
	free(d->rd.buf);
	agt_jw_free(&d->w);
	if (d->wfd >= 0)
		close(d->wfd);
	if (d->cfd >= 0)
		close(d->cfd);
	if (d->dirfd >= 0)
		close(d->dirfd); /* releases the folder's lock */
	d->ops->free(d->t);
	free(d);
}

struct agt_delivery *agt_delivery_start(const struct agt_transport_ops *ops, void *t,
					const struct agt_delivery_config *cfg,
					const struct agt_export_ctx *c, char *err, size_t errlen)
{
	struct agt_delivery *d = calloc(1, sizeof(*d));
	pthread_condattr_t ca;

	if (!d) {
		ops->free(t);
		agt_seterr(err, errlen, -ENOMEM, "no memory for the %s exporter", ops->name);
		return NULL;
	}
	d->ops = ops;
	d->t = t;
	d->cfg = *cfg;
	d->ctx = *c;
	d->dirfd = d->wfd = d->cfd = d->rd.fd = -1;
	agt_jw_init(&d->w);
	if (!d->cfg.spool_max)
		d->cfg.spool_max = 256ull << 20;
	if (d->cfg.batch_docs <= 0)
		d->cfg.batch_docs = 500;
	if (d->cfg.drain_seconds <= 0)
		d->cfg.drain_seconds = 10;
	if (d->cfg.sync_ms <= 0)
		d->cfg.sync_ms = 100;
	d->seg_max = d->cfg.spool_max / 8;
	if (d->seg_max < SEG_MIN)
		d->seg_max = SEG_MIN;
	if (d->seg_max > SEG_CAP)
		d->seg_max = SEG_CAP;
	snprintf(d->spool, sizeof(d->spool), "%s",
		 cfg->spool_dir ? cfg->spool_dir : "/var/lib/agtrace/spool");
	snprintf(d->dead, sizeof(d->dead), "%s", cfg->dead_letter ? cfg->dead_letter : "");
	if (!d->dead[0])
		snprintf(d->dead, sizeof(d->dead), "%s/dead-letter.ndjson", d->spool);
	mkdir(d->spool, 0700);
	if ((d->dirfd = open(d->spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    faccessat(d->dirfd, ".", W_OK, 0)) {
		agt_seterr(err, errlen, -errno,
			   "the spool folder %s is not writable (%s); give --spool-dir", d->spool,
			   strerror(errno));
		delivery_free_parts(d);
		return NULL;
	}
	if (flock(d->dirfd, LOCK_EX | LOCK_NB)) {
		agt_seterr(
		    err, errlen, -EBUSY,
		    "the spool folder %s is in use by another agtrace; give each run its own "
		    "--spool-dir",
		    d->spool);
		delivery_free_parts(d);
		return NULL;
	}
	d->cfd = openat(d->dirfd, "cursor", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	d->win_max = (size_t)d->cfg.batch_docs * (size_t)(ops->inflight > 1 ? ops->inflight : 1);
	d->win = calloc(d->win_max, sizeof(*d->win));
	d->wat = calloc(d->win_max, sizeof(*d->wat));
	d->in.buf = mmap(NULL, INBOX_MAX, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	d->out.buf = mmap(NULL, INBOX_MAX, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (d->in.buf == MAP_FAILED)
		d->in.buf = NULL;
	if (d->out.buf == MAP_FAILED)
		d->out.buf = NULL;
	if (!d->win || !d->wat || !d->in.buf || !d->out.buf) {
		agt_seterr(err, errlen, -ENOMEM, "no memory for the %s exporter", ops->name);
		delivery_free_parts(d);
		return NULL;
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->seg_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the clock of agt_mono_ns */
	pthread_cond_init(&d->log_wake, &ca);
	pthread_cond_init(&d->send_wake, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&d->log_thread, NULL, log_main, d)) {
		agt_seterr(err, errlen, -EAGAIN, "cannot start the %s exporter threads", ops->name);
		goto fail;
	}
	if (pthread_create(&d->send_thread, NULL, send_main, d)) {
		agt_seterr(err, errlen, -EAGAIN, "cannot start the %s exporter threads", ops->name);
		pthread_mutex_lock(&d->lock);
		d->stopping = 1;
		pthread_cond_signal(&d->log_wake);
		pthread_mutex_unlock(&d->lock);
		pthread_join(d->log_thread, NULL);
		goto fail;
	}
	d->started = 1;
	return d;
fail:
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->seg_lock);
	pthread_cond_destroy(&d->log_wake);
	pthread_cond_destroy(&d->send_wake);
	delivery_free_parts(d);
	return NULL;
}

/* The pipeline's thread: encode, append to the batch, wake the log thread when it was empty.
 * No disk, no network, no wait but the batch's mutex. */
static void delivery_observe(void *ctx, const struct agt_span *sp)
{
	struct agt_delivery *d = ctx;
	uint32_t len;
	int wake;

	d->st.queued++;
	agt_jw_reset(&d->w);
	d->ops->encode(d->t, sp, &d->ctx, &d->w);
	if (d->w.failed || d->w.len > REC_MAX) {
		lose(d, AGT_LOST_ENCODE, 1, ENOMEM);
		return;
	}
	len = (uint32_t)d->w.len;
	pthread_mutex_lock(&d->lock);
	if (d->in.len + sizeof(len) + len > INBOX_MAX) {
		pthread_mutex_unlock(&d->lock);
		lose(d, AGT_LOST_QUEUE_FULL, 1, 0);
		return;
	}
	if ((wake = !d->in.docs))
		d->in.first_ns = agt_mono_ns();
	memcpy(d->in.buf + d->in.len, &len, sizeof(len));
	memcpy(d->in.buf + d->in.len + sizeof(len), d->w.buf, len);
	d->in.len += sizeof(len) + len;
	d->in.docs++;
	d->st.unsynced++;
	if (wake)
		pthread_cond_signal(&d->log_wake);
	pthread_mutex_unlock(&d->lock);
}

struct agt_sink *agt_delivery_tee(struct agt_sink *next, struct agt_delivery *d)
{
	return agt_tee_new(next, delivery_observe, d);
}

const char *agt_delivery_name(const struct agt_delivery *d)
{
	return d->ops->name;
}

void agt_delivery_stop(struct agt_delivery *d)
{
	if (!d || !d->started)
		return;
	pthread_mutex_lock(&d->lock);
	d->stopping = 1;
	pthread_cond_signal(&d->log_wake);
	pthread_mutex_unlock(&d->lock);
	pthread_mutex_lock(&d->seg_lock);
	d->stop_ns = agt_mono_ns();
	pthread_cond_signal(&d->send_wake);
	pthread_mutex_unlock(&d->seg_lock);
	pthread_join(d->log_thread, NULL);
	pthread_join(d->send_thread, NULL);
	d->started = 0;
}

void agt_delivery_stats(struct agt_delivery *d, struct agt_delivery_stats *out)
{
	uint64_t oldest = d->st.oldest_ns, now = real_ns();

	*out = (struct agt_delivery_stats){
	    .queued = d->st.queued,
	    .delivered = d->st.delivered,
	    .retried = d->st.retried,
	    .dead_lettered = d->st.dead_lettered,
	    .spooled = d->st.spooled,
	    .send_failures = d->st.send_failures,
	    .spool_bytes = d->st.spool_bytes,
	    .spool_oldest_age_s = oldest && now > oldest ? (now - oldest) / 1000000000ull : 0,
	    .last_latency_ms = d->st.last_latency_ms,
	    .wire_bytes = d->st.wire_bytes,
	    .replayed = d->st.replayed,
	    .torn = d->st.torn,
	    .torn_bytes = d->st.torn_bytes,
	    .tmp_removed = d->st.tmp_removed,
	    .disk_bytes = d->st.disk_bytes,
	    .fsyncs = d->st.fsyncs,
	    .unsynced = d->st.unsynced,
	    .sync_lag_max_ms = d->st.sync_lag_max_ms,
	    .write_failures = d->st.write_failures,
	    .utf8_replaced = d->w.replaced, /* the pipeline's thread, as the caller's */
	};
	for (int r = 0; r < AGT_LOST_REASONS; r++) {
		out->lost[r] = d->st.lost[r];
		out->spool_dropped += out->lost[r];
	}
}

void agt_delivery_free(struct agt_delivery *d)
{
	if (!d)
		return;
	agt_delivery_stop(d);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->seg_lock);
	pthread_cond_destroy(&d->log_wake);
	pthread_cond_destroy(&d->send_wake);
	delivery_free_parts(d);
}
