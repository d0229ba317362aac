#define _GNU_SOURCE
#include "export/delivery.h"
#include "base/log.h"
#include "base/util.h"
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_MAX 100000 /* documents in memory; past this they go to the spool at once */
#define SEGMENT_DOCS 500 /* documents per spool file */

struct docs {
	struct agt_doc *v;
	size_t n, cap;
};

/* The statistics: updated by the delivery thread (and the pipeline, for queued), read by the
 * main thread: C11 atomics, so neither needs the other's lock. */
struct counters {
	_Atomic uint64_t queued, delivered, retried, dead_lettered, spooled, spool_dropped;
	_Atomic uint64_t send_failures, spool_bytes, spool_oldest_age_s, last_latency_ms,
	    wire_bytes;
};

struct agt_delivery {
	const struct agt_transport_ops *ops;
	void *t;
	struct agt_delivery_config cfg;
	struct agt_export_ctx ctx;
	char spool[1024], dead[1100];
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_mutex_t spool_lock; /* segment files: written by either thread */
	pthread_cond_t wake;
	struct docs queue; /* new documents, oldest first (guarded by lock) */
	struct docs retry; /* the thread's: to send again, before anything newer */
	int stopping, started;
	uint64_t next_segment;
	struct counters st;
	struct agt_jw w; /* the pipeline's: documents are encoded here, then copied */
};

static int docs_push(struct docs *d, struct agt_doc x)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		struct agt_doc *v = realloc(d->v, cap * sizeof(*v));

		if (!v)
			return -1;
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n++] = x;
	return 0;
}

static void docs_clear(struct docs *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].bytes);
	d->n = 0;
}

/* Spool segments: spool-<seq>.ndjson, replayed in sequence order. */
static int segment_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_segment(const struct dirent *e)
{
	return !strncmp(e->d_name, "spool-", 6) && strstr(e->d_name, ".ndjson");
}

static void spool_scan(struct agt_delivery *d)
{
	struct dirent **ents;
	int n = scandir(d->spool, &ents, is_segment, segment_cmp);
	uint64_t bytes = 0, oldest = 0;
	time_t now = time(NULL);

	for (int i = 0; i < n; i++) {
		char path[2048];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", d->spool, ents[i]->d_name);
		if (stat(path, &st) == 0) {
			bytes += st.st_size;
			if (!oldest || (uint64_t)(now - st.st_mtime) > oldest)
				oldest = now - st.st_mtime;
		}
		if (i == n - 1)
			d->next_segment = strtoull(ents[i]->d_name + 6, NULL, 10) + 1;
		free(ents[i]);
	}
	if (n > 0)
		free(ents);
	d->st.spool_bytes = bytes;
	d->st.spool_oldest_age_s = oldest;
}

/* Write documents to new spool segments (what cannot be delivered now); over the bound, the
 * documents are counted as spool_dropped: lost, but never in silence. */
static void spool_write(struct agt_delivery *d, struct docs *v, size_t from)
{
	pthread_mutex_lock(&d->spool_lock);
	while (from < v->n) {
		char path[2048], tmp[2100];
		size_t end = from + SEGMENT_DOCS < v->n ? from + SEGMENT_DOCS : v->n, bytes = 0;
		FILE *f;

		for (size_t i = from; i < end; i++)
			bytes += v->v[i].len;
		if (d->st.spool_bytes + bytes > d->cfg.spool_max) {
			d->st.spool_dropped += v->n - from;
			agt_warn("%s spool %s is full (%llu bytes): %zu documents lost", d->ops->name,
				 d->spool, (unsigned long long)d->cfg.spool_max, v->n - from);
			break;
		}
		snprintf(path, sizeof(path), "%s/spool-%012llu.ndjson", d->spool,
			 (unsigned long long)d->next_segment++);
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		f = fopen(tmp, "we");
		for (size_t i = from; f && i < end; i++)
			fwrite(v->v[i].bytes, 1, v->v[i].len, f);
		if (!f || fflush(f) || fsync(fileno(f)) || fclose(f) || rename(tmp, path)) {
			d->st.spool_dropped += end - from;
			agt_warn("cannot write the spool segment %s: %s", path, strerror(errno));
		} else {
			d->st.spooled += end - from;
			d->st.spool_bytes += bytes;
		}
		from = end;
	}
	pthread_mutex_unlock(&d->spool_lock);
	docs_clear(v);
}

/* Load the oldest spool segment into retry (its documents go before anything newer). */
static int spool_load(struct agt_delivery *d)
{
	struct dirent **ents;
	int n, loaded = 0;

	pthread_mutex_lock(&d->spool_lock);
	n = scandir(d->spool, &ents, is_segment, segment_cmp);
	if (n <= 0) {
		pthread_mutex_unlock(&d->spool_lock);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		if (!loaded) {
			char path[2048];
			size_t len;
			char *text;

			snprintf(path, sizeof(path), "%s/%s", d->spool, ents[i]->d_name);
			text = agt_read_file(path, 1u << 30, &len);
			for (char *p = text; p && *p;) { /* doc_lines lines make one document */
				char *end = p;
				struct agt_doc doc;

				for (int l = 0; end && l < d->ops->doc_lines; l++)
					end = (end = strchr(end, '\n')) ? end + 1 : NULL;
				if (!end)
					break;
				doc.len = end - p;
				doc.bytes = strndup(p, doc.len);
				if (doc.bytes)
					docs_push(&d->retry, doc);
				p = end;
			}
			free(text);
			d->st.spool_bytes -= d->st.spool_bytes >= len ? len : d->st.spool_bytes;
			unlink(path);
			loaded = 1;
		}
		free(ents[i]);
	}
	free(ents);
	pthread_mutex_unlock(&d->spool_lock);
	return loaded;
}

static void dead_letter(struct agt_delivery *d, const struct agt_doc *doc, const char *reason)
{
	FILE *f = fopen(d->dead, "ae");

	d->st.dead_lettered++;
	if (!f)
		return;
	if (d->ops->dead_letter)
		d->ops->dead_letter(f, doc, reason);
	else
		fprintf(f, "{\"reason\":%s,\"document\":%.*s}", reason, (int)doc->len - 1,
			doc->bytes);
	fputc('\n', f);
	fclose(f);
}

/* Send one batch through the transport; sort its documents into delivered, retry (back into
 * d->retry, in order) and dead letters. 0 when the backend answered at all. */
static int send_batch(struct agt_delivery *d, struct docs *batch)
{
	struct agt_send_result r = {0};
	uint64_t t0 = agt_mono_ns();
	int rc;

	r.outcome = calloc(batch->n, 1);
	r.reason = calloc(batch->n, sizeof(char *));
	rc = r.outcome && r.reason ? d->ops->send(d->t, batch->v, batch->n, &r) : -1;
	d->st.last_latency_ms = (agt_mono_ns() - t0) / 1000000;
	d->st.wire_bytes += r.wire_bytes;
	if (rc) {
		d->st.send_failures++;
		d->st.retried += batch->n; /* retried: documents sent again, whatever the cause */
		for (size_t i = 0; i < batch->n; i++) /* the whole batch again, in order */
			docs_push(&d->retry, batch->v[i]);
	} else {
		for (size_t i = 0; i < batch->n; i++) {
			struct agt_doc *doc = &batch->v[i];

			if (r.outcome[i] == AGT_RETRY) {
				d->st.retried++;
				docs_push(&d->retry, *doc);
				continue;
			}
			if (r.outcome[i] == AGT_DELIVERED)
				d->st.delivered++;
			else
				dead_letter(d, doc, r.reason[i] ? r.reason[i] : "null");
			free(doc->bytes);
		}
		if (r.rejected_uncounted && r.rejected_uncounted <= d->st.delivered) {
			/* transport-delivered, but the backend said no to these */
			d->st.delivered -= r.rejected_uncounted;
			d->st.dead_lettered += r.rejected_uncounted;
		}
	}
	for (size_t i = 0; r.reason && i < batch->n; i++)
		free(r.reason[i]);
	free(r.reason);
	free(r.outcome);
	batch->n = 0;
	return rc;
}

static void *run(void *arg)
{
	struct agt_delivery *d = arg;
	uint64_t backoff_ms = 0, next_try = 0, stop_deadline = 0;
	struct agt_rng rng;

	agt_rng_init(&rng);
	for (;;) {
		struct docs batch = {0};
		int stopping;

		pthread_mutex_lock(&d->lock);
		if (!d->queue.n && !d->retry.n && !d->stopping && !d->st.spool_bytes) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&d->wake, &d->lock, &ts);
		}
		stopping = d->stopping;
		if (stopping && !stop_deadline)
			stop_deadline = agt_mono_ns() + (uint64_t)(d->cfg.drain_seconds * 1e9);
		/* The backend away: keep memory bounded by moving the queue to the spool. */
		if (backoff_ms && (d->queue.n >= SEGMENT_DOCS || stopping)) {
			struct docs q = d->queue;

			d->queue = (struct docs){0};
			pthread_mutex_unlock(&d->lock);
			spool_write(d, &q, 0);
			free(q.v);
			pthread_mutex_lock(&d->lock);
		}
		if (stopping && (agt_mono_ns() > stop_deadline ||
				 (!d->queue.n && !d->retry.n && !d->st.spool_bytes))) {
			struct docs q = d->queue;

			d->queue = (struct docs){0};
			pthread_mutex_unlock(&d->lock);
			/* Out of time: whatever is left waits in the spool for the next run. */
			spool_write(d, &d->retry, 0);
			spool_write(d, &q, 0);
			free(q.v);
			break;
		}
		if (backoff_ms && agt_mono_ns() < next_try) {
			pthread_mutex_unlock(&d->lock);
			usleep(20000);
			continue;
		}
		/* Oldest first: retries, then the spool, then the queue. */
		if (!d->retry.n && d->st.spool_bytes) {
			pthread_mutex_unlock(&d->lock);
			if (!spool_load(d))
				d->st.spool_bytes = 0;
			pthread_mutex_lock(&d->lock);
		}
		if (d->retry.n) {
			batch = d->retry;
			d->retry = (struct docs){0};
		} else {
			size_t n = d->queue.n < (size_t)d->cfg.batch_docs ? d->queue.n
									  : (size_t)d->cfg.batch_docs;

			for (size_t i = 0; i < n; i++)
				docs_push(&batch, d->queue.v[i]);
			memmove(d->queue.v, d->queue.v + n,
				(d->queue.n - n) * sizeof(struct agt_doc));
			d->queue.n -= n;
		}
		pthread_mutex_unlock(&d->lock);
		if (!batch.n) {
			free(batch.v);
			continue;
		}
		if (batch.n > (size_t)d->cfg.batch_docs) { /* in pieces; the rest stays first */
			struct docs rest = {0};

			for (size_t i = d->cfg.batch_docs; i < batch.n; i++)
				docs_push(&rest, batch.v[i]);
			batch.n = d->cfg.batch_docs;
			for (size_t i = 0; i < rest.n; i++)
				docs_push(&d->retry, rest.v[i]);
			free(rest.v);
		}
		{
			/* What is retried goes before what was already waiting to be retried. */
			struct docs later = d->retry;
			uint64_t before = d->st.delivered;

			d->retry = (struct docs){0};
			if (send_batch(d, &batch) == 0 && !d->retry.n) {
				backoff_ms = 0;
			} else if (d->st.delivered > before) {
				/* Progress, with some items pushed back (429): a short pause. */
				backoff_ms = 100;
				next_try = agt_mono_ns() + (50 + agt_rng_next(&rng) % 51) * 1000000ull;
			} else {
				backoff_ms = backoff_ms ? backoff_ms * 2 : 100;
				if (backoff_ms > 30000)
					backoff_ms = 30000;
				/* full jitter between half and all of the backoff */
				next_try =
				    agt_mono_ns() +
				    (backoff_ms / 2 + agt_rng_next(&rng) % (backoff_ms / 2 + 1)) *
					1000000ull;
			}
			for (size_t i = 0; i < later.n; i++)
				docs_push(&d->retry, later.v[i]);
			free(later.v);
		}
		free(batch.v);
	}
	return NULL;
}

struct agt_delivery *agt_delivery_start(const struct agt_transport_ops *ops, void *t,
					const struct agt_delivery_config *cfg,
					const struct agt_export_ctx *c, char *err, size_t errlen)
{
	struct agt_delivery *d = calloc(1, sizeof(*d));

	if (!d) {
		ops->free(t);
		return NULL;
	}
	d->ops = ops;
	d->t = t;
	d->cfg = *cfg;
	d->ctx = *c;
	if (!d->cfg.spool_max)
		d->cfg.spool_max = 256ull << 20;
	if (d->cfg.batch_docs <= 0)
		d->cfg.batch_docs = 500;
	if (d->cfg.drain_seconds <= 0)
		d->cfg.drain_seconds = 10;
	snprintf(d->spool, sizeof(d->spool), "%s",
		 cfg->spool_dir ? cfg->spool_dir : "/var/lib/agtrace/spool");
	snprintf(d->dead, sizeof(d->dead), "%s", cfg->dead_letter ? cfg->dead_letter : "");
	if (!d->dead[0])
		snprintf(d->dead, sizeof(d->dead), "%s/dead-letter.ndjson", d->spool);
	mkdir(d->spool, 0700);
	if (access(d->spool, W_OK)) {
		agt_seterr(err, errlen, -errno,
			   "the spool folder %s is not writable (%s); give --spool-dir", d->spool,
			   strerror(errno));
		goto fail;
	}
	agt_jw_init(&d->w);
	spool_scan(d); /* what an earlier run could not deliver is sent first */
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->spool_lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	if (pthread_create(&d->thread, NULL, run, d)) {
		agt_seterr(err, errlen, -EAGAIN, "cannot start the %s exporter thread", ops->name);
		pthread_mutex_destroy(&d->lock);
		pthread_mutex_destroy(&d->spool_lock);
		pthread_cond_destroy(&d->wake);
		agt_jw_free(&d->w);
		goto fail;
	}
	d->started = 1;
	return d;
fail:
	ops->free(t);
	free(d);
	return NULL;
}

static void delivery_observe(void *ctx, const struct agt_span *sp)
{
	struct agt_delivery *d = ctx;
	struct agt_doc doc;

	agt_jw_reset(&d->w);
	d->ops->encode(d->t, sp, &d->ctx, &d->w);
	doc.len = d->w.len;
	doc.bytes = d->w.failed ? NULL : malloc(doc.len + 1);
	if (!doc.bytes) {
		d->st.spool_dropped++;
		return;
	}
	memcpy(doc.bytes, d->w.buf, doc.len + 1);
	pthread_mutex_lock(&d->lock);
	d->st.queued++;
	if (d->queue.n >= QUEUE_MAX) { /* the thread is far behind: this one to the spool */
		struct docs one = {0};

		docs_push(&one, doc);
		pthread_mutex_unlock(&d->lock);
		spool_write(d, &one, 0);
		free(one.v);
		return;
	}
	docs_push(&d->queue, doc);
	pthread_cond_signal(&d->wake);
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
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	d->started = 0;
}

void agt_delivery_stats(struct agt_delivery *d, struct agt_delivery_stats *out)
{
	*out = (struct agt_delivery_stats){
	    .queued = d->st.queued,
	    .delivered = d->st.delivered,
	    .retried = d->st.retried,
	    .dead_lettered = d->st.dead_lettered,
	    .spooled = d->st.spooled,
	    .spool_dropped = d->st.spool_dropped,
	    .send_failures = d->st.send_failures,
	    .spool_bytes = d->st.spool_bytes,
	    .spool_oldest_age_s = d->st.spool_oldest_age_s,
	    .last_latency_ms = d->st.last_latency_ms,
	    .wire_bytes = d->st.wire_bytes,
	};
}

void agt_delivery_free(struct agt_delivery *d)
{
	if (!d)
		return;
	agt_delivery_stop(d);
	docs_clear(&d->queue);
	docs_clear(&d->retry);
	free(d->queue.v);
	free(d->retry.v);
	d->ops->free(d->t);
	agt_jw_free(&d->w);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->spool_lock);
	pthread_cond_destroy(&d->wake);
	free(d);
}
