#define _GNU_SOURCE
#include "export/es.h"
#include "export/otlp.h"
#include "export/schema.h"
#include "base/log.h"
#include "base/util.h"
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <msgpack.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <sys/socket.h>
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
#include <zlib.h>

#define QUEUE_MAX 100000 /* documents in memory; past this they go to the spool at once */
#define SEGMENT_DOCS 500 /* documents per spool file */

/* One document: its bulk action line and source line, newline-terminated, ready to send. */
struct doc {
	char *lines;
	size_t len;
};

struct docs {
	struct doc *v;
	size_t n, cap;
};

/* The statistics: updated by the exporter thread (and the pipeline, for queued), read by the
 * main thread: C11 atomics, so neither needs the other's lock. */
struct counters {
	_Atomic uint64_t queued, delivered, retried, dead_lettered, spooled, spool_dropped;
	_Atomic uint64_t send_failures, spool_bytes, spool_oldest_age_s, last_latency_ms,
	    wire_bytes;
};

struct agt_es {
	struct agt_es_config cfg;
	struct agt_export_ctx ctx;
	char url[1024], auth[1024], spool[1024], dead[1100];
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_mutex_t spool_lock; /* segment files: written by either thread */
	pthread_cond_t wake;
	struct docs queue; /* new documents, oldest first (guarded by lock) */
	struct docs retry; /* the thread's: to send again, before anything newer */
	int stopping, started;
	uint64_t next_segment;
	struct counters st;
	struct agt_jw w; /* the pipeline's: documents are written here, then copied */
	CURL *curl;
};

static int docs_push(struct docs *d, struct doc x)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		struct doc *v = realloc(d->v, cap * sizeof(*v));

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
		free(d->v[i].lines);
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

static void spool_scan(struct agt_es *es)
{
	struct dirent **ents;
	int n = scandir(es->spool, &ents, is_segment, segment_cmp);
	uint64_t bytes = 0, oldest = 0;
	time_t now = time(NULL);

	for (int i = 0; i < n; i++) {
		char path[2048];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", es->spool, ents[i]->d_name);
		if (stat(path, &st) == 0) {
			bytes += st.st_size;
			if (!oldest || (uint64_t)(now - st.st_mtime) > oldest)
				oldest = now - st.st_mtime;
		}
		if (i == n - 1)
			es->next_segment = strtoull(ents[i]->d_name + 6, NULL, 10) + 1;
		free(ents[i]);
	}
	if (n > 0)
		free(ents);
	es->st.spool_bytes = bytes;
	es->st.spool_oldest_age_s = oldest;
}

/* Write documents to a new spool segment (what cannot be delivered now); over the bound, the
 * documents are counted as spool_dropped: lost, but never in silence. */
static void spool_write(struct agt_es *es, struct docs *d, size_t from)
{
	pthread_mutex_lock(&es->spool_lock);
	while (from < d->n) {
		char path[2048], tmp[2100];
		size_t end = from + SEGMENT_DOCS < d->n ? from + SEGMENT_DOCS : d->n, bytes = 0;
		FILE *f;

		for (size_t i = from; i < end; i++)
			bytes += d->v[i].len;
		if (es->st.spool_bytes + bytes > es->cfg.spool_max) {
			es->st.spool_dropped += d->n - from;
			agt_warn("elasticsearch spool %s is full (%llu bytes): %zu documents lost",
				 es->spool, (unsigned long long)es->cfg.spool_max, d->n - from);
			break;
		}
		snprintf(path, sizeof(path), "%s/spool-%012llu.ndjson", es->spool,
			 (unsigned long long)es->next_segment++);
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		f = fopen(tmp, "we");
		for (size_t i = from; f && i < end; i++)
			fwrite(d->v[i].lines, 1, d->v[i].len, f);
		if (!f || fflush(f) || fsync(fileno(f)) || fclose(f) || rename(tmp, path)) {
			es->st.spool_dropped += end - from;
			agt_warn("cannot write the spool segment %s: %s", path, strerror(errno));
		} else {
			es->st.spooled += end - from;
			es->st.spool_bytes += bytes;
		}
		from = end;
	}
	pthread_mutex_unlock(&es->spool_lock);
	docs_clear(d);
}

/* Load the oldest spool segment into retry (its documents go before anything newer). */
static int spool_load(struct agt_es *es)
{
	struct dirent **ents;
	int n, loaded = 0;

	pthread_mutex_lock(&es->spool_lock);
	n = scandir(es->spool, &ents, is_segment, segment_cmp);
	if (n <= 0) {
		pthread_mutex_unlock(&es->spool_lock);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		if (!loaded) {
			char path[2048];
			size_t len;
			char *text;

			snprintf(path, sizeof(path), "%s/%s", es->spool, ents[i]->d_name);
			text = agt_read_file(path, 1u << 30, &len);
			/* Elasticsearch: pairs of lines (action, document); OTLP: one span a line.
			 */
			for (char *p = text; p && *p;) {
				char *nl = strchr(p, '\n');
				char *nl2 = es->cfg.otlp || es->cfg.forward ? nl
					    : nl			    ? strchr(nl + 1, '\n')
									    : NULL;
				struct doc d;

				if (!nl2)
					break;
				d.len = nl2 + 1 - p;
				d.lines = strndup(p, d.len);
				if (d.lines)
					docs_push(&es->retry, d);
				p = nl2 + 1;
			}
			free(text);
			es->st.spool_bytes -= es->st.spool_bytes >= len ? len : es->st.spool_bytes;
			unlink(path);
			loaded = 1;
		}
		free(ents[i]);
	}
	free(ents);
	pthread_mutex_unlock(&es->spool_lock);
	return loaded;
}

static void dead_letter(struct agt_es *es, const struct doc *d, const char *reason)
{
	FILE *f = fopen(es->dead, "ae");

	es->st.dead_lettered++;
	if (!f)
		return;
	if (es->cfg.otlp) { /* {"reason": ..., "span": ...} */
		fprintf(f, "{\"reason\":%s,\"span\":%.*s}\n", reason, (int)d->len - 1, d->lines);
		fclose(f);
		return;
	}
	/* One line per rejection: {"reason": ..., "action": ..., "document": ...}. */
	const char *nl = memchr(d->lines, '\n', d->len);
	size_t alen = nl ? (size_t)(nl - d->lines) : d->len;

	fprintf(f, "{\"reason\":%s,\"action\":%.*s,\"document\":%.*s}\n", reason, (int)alen,
		d->lines, nl ? (int)(d->len - alen - 2) : 2, nl ? nl + 1 : "{}");
	fclose(f);
}

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
	struct docs *out = ud; /* reuse: a growing buffer in v[0] */
	struct doc *b = &out->v[0];
	char *nb = realloc(b->lines, b->len + sz * n + 1);

	if (!nb)
		return 0;
	memcpy(nb + b->len, p, sz * n);
	b->lines = nb;
	b->len += sz * n;
	b->lines[b->len] = 0;
	return sz * n;
}

static int gzip_buf(const char *in, size_t n, unsigned char **out, size_t *outn)
{
	z_stream z = {0};
	size_t cap = compressBound(n) + 64;

	*out = malloc(cap);
	if (!*out || deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)n;
	z.next_out = *out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		return -1;
	}
	*outn = z.total_out;
	deflateEnd(&z);
	return 0;
}

/* msgpack from JSON: the forward protocol's record is a map of the span's fields. */
static void pack_json(msgpack_packer *pk, const cJSON *v)
{
	const cJSON *it;

	if (cJSON_IsObject(v)) {
		msgpack_pack_map(pk, cJSON_GetArraySize(v));
		cJSON_ArrayForEach(it, v)
		{
			msgpack_pack_str_with_body(pk, it->string, strlen(it->string));
			pack_json(pk, it);
		}
	} else if (cJSON_IsArray(v)) {
		msgpack_pack_array(pk, cJSON_GetArraySize(v));
		cJSON_ArrayForEach(it, v) pack_json(pk, it);
	} else if (cJSON_IsString(v)) {
		msgpack_pack_str_with_body(pk, v->valuestring, strlen(v->valuestring));
	} else if (cJSON_IsBool(v)) {
		if (cJSON_IsTrue(v))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
	} else if (cJSON_IsNumber(v) && v->valuedouble == (double)(int64_t)v->valuedouble) {
		msgpack_pack_int64(pk, (int64_t)v->valuedouble);
	} else if (cJSON_IsNumber(v)) {
		msgpack_pack_double(pk, v->valuedouble);
	} else {
		msgpack_pack_nil(pk);
	}
}

static int tcp_connect(const char *hostport, int timeout_ms)
{
	char host[1100], *colon;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	int fd = -1;

	snprintf(host, sizeof(host), "%s",
		 strncmp(hostport, "tcp://", 6) ? hostport : hostport + 6);
	colon = strrchr(host, ':');
	if (!colon)
		return -1;
	*colon = 0;
	if (getaddrinfo(host, colon + 1, &hints, &ai) || !ai)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		struct timeval tv = {.tv_sec = timeout_ms / 1000,
				     .tv_usec = (timeout_ms % 1000) * 1000};

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen)) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	return fd;
}

/* Does a msgpack map say {"ack": chunk}? */
static int is_ack(const msgpack_object *o, const char *chunk)
{
	for (uint32_t i = 0; o->type == MSGPACK_OBJECT_MAP && i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 3 &&
		    !memcmp(kv->key.via.str.ptr, "ack", 3) && kv->val.type == MSGPACK_OBJECT_STR &&
		    kv->val.via.str.size == strlen(chunk) &&
		    !memcmp(kv->val.via.str.ptr, chunk, kv->val.via.str.size))
			return 1;
	}
	return 0;
}

/* Forward mode: [tag, [[time, record], ...], {"chunk": id, "size": n}], delivered when Fluentd
 * answers {"ack": id} (require_ack_response). Anything else: the whole batch again. */
static int send_forward(struct agt_es *es, struct docs *batch)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	unsigned char raw[16], chunk[32] = {0};
	char buf[512];
	uint64_t a = (uint64_t)agt_mono_ns() * 0x9e3779b97f4a7c15ull, b = a ^ (uintptr_t)batch;
	int fd, ok = 0;
	size_t got = 0;
	uint64_t t0 = agt_mono_ns();

	memcpy(raw, &a, 8);
	memcpy(raw + 8, &b, 8);
	EVP_EncodeBlock(chunk, raw, 16);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_str_with_body(&pk, es->cfg.tag, strlen(es->cfg.tag));
	msgpack_pack_array(&pk, batch->n);
	for (size_t i = 0; i < batch->n; i++) {
		cJSON *rec = cJSON_ParseWithLength(batch->v[i].lines, batch->v[i].len);

		msgpack_pack_array(&pk, 2);
		msgpack_pack_int64(&pk, (int64_t)time(NULL));
		pack_json(&pk, rec);
		cJSON_Delete(rec);
	}
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "chunk", 5);
	msgpack_pack_str_with_body(&pk, chunk, strlen((char *)chunk));
	msgpack_pack_str_with_body(&pk, "size", 4);
	msgpack_pack_uint64(&pk, batch->n);
	es->st.wire_bytes += sb.size;
	fd = tcp_connect(es->url, 3000); /* also the wait for the ack */
	if (fd >= 0 && send(fd, sb.data, sb.size, MSG_NOSIGNAL) == (ssize_t)sb.size) {
		while (!ok && got < sizeof(buf)) {
			ssize_t n = recv(fd, buf + got, sizeof(buf) - got, 0);
			msgpack_unpacked msg;
			size_t off = 0;

			if (n <= 0)
				break;
			got += n;
			msgpack_unpacked_init(&msg);
			if (msgpack_unpack_next(&msg, buf, got, &off) == MSGPACK_UNPACK_SUCCESS) {
				ok = is_ack(&msg.data, (char *)chunk);
				msgpack_unpacked_destroy(&msg);
				break;
			}
			msgpack_unpacked_destroy(&msg);
		}
	}
	if (fd >= 0)
		close(fd);
	msgpack_sbuffer_destroy(&sb);
	es->st.last_latency_ms = (agt_mono_ns() - t0) / 1000000;
	for (size_t i = 0; i < batch->n; i++) {
		if (ok) {
			es->st.delivered++;
			free(batch->v[i].lines);
		} else {
			docs_push(&es->retry, batch->v[i]);
		}
	}
	if (!ok) {
		es->st.send_failures++;
		es->st.retried += batch->n;
	}
	batch->n = 0;
	return ok ? 0 : -1;
}

/* One request to the backend: URL, headers (plus the API key), timeouts, TLS verification or
 * not, the CA, basic auth; returns the header list to free after the request. */
static struct curl_slist *prepare_request(struct agt_es *es, const char *url, struct curl_slist *h,
					  long timeout_ms)
{
	if (es->auth[0])
		h = curl_slist_append(h, es->auth);
	curl_easy_reset(es->curl);
	curl_easy_setopt(es->curl, CURLOPT_URL, url);
	curl_easy_setopt(es->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(es->curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(es->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(es->curl, CURLOPT_NOSIGNAL, 1L);
	if (es->cfg.ca_file)
		curl_easy_setopt(es->curl, CURLOPT_CAINFO, es->cfg.ca_file);
	if (es->cfg.insecure) {
		curl_easy_setopt(es->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(es->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (es->cfg.user) {
		curl_easy_setopt(es->curl, CURLOPT_USERNAME, es->cfg.user);
		curl_easy_setopt(es->curl, CURLOPT_PASSWORD, es->auth + 512);
	}
	return h;
}

/* Send one bulk request of batch; sort its documents into delivered, retry (back into
 * es->retry, in order) and dead letters. 0 when Elasticsearch answered the bulk at all. */
static int send_batch(struct agt_es *es, struct docs *batch)
{
	struct curl_slist *h = NULL;
	struct doc respbuf = {0};
	struct docs resp = {.v = &respbuf, .n = 1, .cap = 1};
	char *body, url[1100];
	size_t len = 0;
	unsigned char *gz = NULL;
	size_t gzn = 0;
	long status = 0;
	cJSON *r = NULL;
	const cJSON *items;
	int rc = -1;
	uint64_t t0 = agt_mono_ns();

	if (es->cfg.forward)
		return send_forward(es, batch);
	for (size_t i = 0; i < batch->n; i++)
		len += batch->v[i].len;
	body = malloc(len + 1);
	if (!body)
		return -1;
	len = 0;
	for (size_t i = 0; i < batch->n; i++) {
		memcpy(body + len, batch->v[i].lines, batch->v[i].len);
		len += batch->v[i].len;
		if (es->cfg.otlp) /* spans joined by commas inside one request */
			body[len - 1] = i + 1 < batch->n ? ',' : ' ';
	}
	if (es->cfg.otlp) {
		char *req = agt_otlp_request(body, len, &es->ctx);

		free(body);
		if (!req)
			return -1;
		body = req;
		len = strlen(req);
	}
	if (gzip_buf(body, len, &gz, &gzn)) {
		free(body);
		free(gz);
		return -1;
	}
	es->st.wire_bytes += gzn;
	snprintf(url, sizeof(url), "%s%s", es->url, es->cfg.otlp ? "/v1/traces" : "/_bulk");
	h = curl_slist_append(h, es->cfg.otlp ? "Content-Type: application/json"
					      : "Content-Type: application/x-ndjson");
	h = curl_slist_append(h, "Content-Encoding: gzip");
	h = prepare_request(es, url, h, 15000);
	curl_easy_setopt(es->curl, CURLOPT_POSTFIELDS, gz);
	curl_easy_setopt(es->curl, CURLOPT_POSTFIELDSIZE, (long)gzn);
	curl_easy_setopt(es->curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(es->curl, CURLOPT_WRITEDATA, &resp);
	if (curl_easy_perform(es->curl) == CURLE_OK)
		curl_easy_getinfo(es->curl, CURLINFO_RESPONSE_CODE, &status);
	es->st.last_latency_ms = (agt_mono_ns() - t0) / 1000000;
	if (es->cfg.otlp && status) {
		/* OTLP answers for the request as a whole: 200 delivered (what partialSuccess says
		 * it rejected is counted); 429/502/503/504 again later; other statuses refused. */
		int retry = status == 429 || status == 502 || status == 503 || status == 504;
		const cJSON *ps;
		double rejected = 0;

		if (status == 200 && (r = cJSON_Parse(respbuf.lines ? respbuf.lines : "{}")) &&
		    (ps = cJSON_GetObjectItem(r, "partialSuccess")))
			rejected = cJSON_GetNumberValue(cJSON_GetObjectItem(ps, "rejectedSpans"));
		for (size_t i = 0; i < batch->n; i++) {
			struct doc *d = &batch->v[i];
			char why[96];

			if (status == 200) {
				es->st.delivered++;
				free(d->lines);
			} else if (retry) {
				es->st.retried++;
				docs_push(&es->retry, *d);
			} else {
				snprintf(why, sizeof(why), "{\"http_status\":%ld}", status);
				dead_letter(es, d, why);
				free(d->lines);
			}
		}
		if (rejected > 0 && (uint64_t)rejected <= es->st.delivered) {
			/* transport-delivered, but the collector said no to these */
			es->st.delivered -= (uint64_t)rejected;
			es->st.dead_lettered += (uint64_t)rejected;
		}
		batch->n = 0;
		rc = retry ? -1 : 0;
		if (retry)
			es->st.send_failures++;
	} else if (status == 200 && (r = cJSON_Parse(respbuf.lines ? respbuf.lines : "")) &&
		   cJSON_IsArray(items = cJSON_GetObjectItem(r, "items")) &&
		   cJSON_GetArraySize(items) == (int)batch->n) {
		int i = 0;
		const cJSON *it;

		cJSON_ArrayForEach(it, items)
		{
			const cJSON *res = it->child;
			int st = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(res, "status"));
			struct doc *d = &batch->v[i++];

			if (st >= 200 && st < 300) {
				es->st.delivered++;
				free(d->lines);
			} else if (st == 429 || st >= 500) {
				es->st.retried++;
				docs_push(&es->retry, *d);
			} else {
				char *why =
				    cJSON_PrintUnformatted(cJSON_GetObjectItem(res, "error"));

				dead_letter(es, d, why ? why : "null");
				free(why);
				free(d->lines);
			}
			d->lines = NULL;
		}
		batch->n = 0;
		rc = 0;
	} else {
		es->st.send_failures++;
		es->st.retried += batch->n; /* retried: documents sent again, whatever the cause */
		for (size_t i = 0; i < batch->n; i++) /* the whole batch again, in order */
			docs_push(&es->retry, batch->v[i]);
		batch->n = 0;
	}
	cJSON_Delete(r);
	curl_slist_free_all(h);
	free(respbuf.lines);
	free(body);
	free(gz);
	return rc;
}

static void *run(void *arg)
{
	struct agt_es *es = arg;
	uint64_t backoff_ms = 0, next_try = 0, stop_deadline = 0;
	struct agt_rng rng;

	agt_rng_init(&rng);
	for (;;) {
		struct docs batch = {0};
		int stopping;

		pthread_mutex_lock(&es->lock);
		if (!es->queue.n && !es->retry.n && !es->stopping && !es->st.spool_bytes) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&es->wake, &es->lock, &ts);
		}
		stopping = es->stopping;
		if (stopping && !stop_deadline)
			stop_deadline = agt_mono_ns() + (uint64_t)(es->cfg.drain_seconds * 1e9);
		/* Elasticsearch away: keep memory bounded by moving the queue to the spool. */
		if (backoff_ms && (es->queue.n >= SEGMENT_DOCS || stopping)) {
			struct docs q = es->queue;

			es->queue = (struct docs){0};
			pthread_mutex_unlock(&es->lock);
			spool_write(es, &q, 0);
			free(q.v);
			pthread_mutex_lock(&es->lock);
		}
		if (stopping && (agt_mono_ns() > stop_deadline ||
				 (!es->queue.n && !es->retry.n && !es->st.spool_bytes))) {
			struct docs q = es->queue;

			es->queue = (struct docs){0};
			pthread_mutex_unlock(&es->lock);
			/* Out of time: whatever is left waits in the spool for the next run. */
			spool_write(es, &es->retry, 0);
			spool_write(es, &q, 0);
			free(q.v);
			break;
		}
		if (backoff_ms && agt_mono_ns() < next_try) {
			pthread_mutex_unlock(&es->lock);
			usleep(20000);
			continue;
		}
		/* Oldest first: retries, then the spool, then the queue. */
		if (!es->retry.n && es->st.spool_bytes) {
			pthread_mutex_unlock(&es->lock);
			if (!spool_load(es))
				es->st.spool_bytes = 0;
			pthread_mutex_lock(&es->lock);
		}
		if (es->retry.n) {
			batch = es->retry;
			es->retry = (struct docs){0};
		} else {
			size_t n = es->queue.n < (size_t)es->cfg.batch_docs
				       ? es->queue.n
				       : (size_t)es->cfg.batch_docs;

			for (size_t i = 0; i < n; i++)
				docs_push(&batch, es->queue.v[i]);
			memmove(es->queue.v, es->queue.v + n,
				(es->queue.n - n) * sizeof(struct doc));
			es->queue.n -= n;
		}
		pthread_mutex_unlock(&es->lock);
		if (!batch.n) {
			free(batch.v);
			continue;
		}
		if (batch.n >
		    (size_t)es->cfg.batch_docs) { /* send in pieces, the rest stays first */
			struct docs rest = {0};

			for (size_t i = es->cfg.batch_docs; i < batch.n; i++)
				docs_push(&rest, batch.v[i]);
			batch.n = es->cfg.batch_docs;
			for (size_t i = 0; i < rest.n; i++)
				docs_push(&es->retry, rest.v[i]);
			free(rest.v);
		}
		{
			/* What is retried goes before what was already waiting to be retried. */
			struct docs later = es->retry;
			uint64_t before = es->st.delivered;

			es->retry = (struct docs){0};
			if (send_batch(es, &batch) == 0 && !es->retry.n) {
				backoff_ms = 0;
			} else if (es->st.delivered > before) {
				/* Progress, with some items pushed back (429): a short pause, no
				 * more. */
				backoff_ms = 100;
				next_try =
				    agt_mono_ns() + (50 + agt_rng_next(&rng) % 51) * 1000000ull;
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
				docs_push(&es->retry, later.v[i]);
			free(later.v);
		}
		free(batch.v);
	}
	return NULL;
}

static char *read_secret(const char *file, const char *env, char *err, size_t errlen, int *bad)
{
	char *s;

	*bad = 0;
	if (file) {
		s = agt_read_file(file, 4096, NULL);
		if (!s) {
			agt_seterr(err, errlen, -errno, "cannot read the credential file %s: %s",
				   file, strerror(errno));
			*bad = 1;
			return NULL;
		}
		s[strcspn(s, "\r\n")] = 0;
		return s;
	}
	return getenv(env) ? strdup(getenv(env)) : NULL;
}

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return sz * n;
}

static void put_json(struct agt_es *es, const char *path, const char *body)
{
	char url[1200];
	long status = 0;
	struct curl_slist *h;

	snprintf(url, sizeof(url), "%s%s", es->url, path);
	h = prepare_request(es, url, curl_slist_append(NULL, "Content-Type: application/json"),
			    5000);
	curl_easy_setopt(es->curl, CURLOPT_CUSTOMREQUEST, "PUT");
	curl_easy_setopt(es->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(es->curl, CURLOPT_WRITEFUNCTION, discard); /* never onto our stdout */
	if (curl_easy_perform(es->curl) == CURLE_OK)
		curl_easy_getinfo(es->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status >= 300)
		agt_warn("could not install %s in Elasticsearch (HTTP %ld); spans are still sent",
			 path, status);
	curl_slist_free_all(h);
}

/* The trace model's field mappings and the retention policy (hot 7 days, warm 30, cold 90):
 * deploy/elasticsearch/{index-template,ilm-policy}.json, embedded at build time. */
#include "es_assets.h"

struct agt_es *agt_es_start(const struct agt_es_config *cfg, const struct agt_export_ctx *c,
			    char *err, size_t errlen)
{
	struct agt_es *es = calloc(1, sizeof(*es));
	char *key, *pw;
	int bad;

	if (!es)
		return NULL;
	es->cfg = *cfg;
	es->ctx = *c;
	if (!es->cfg.index_pattern)
		es->cfg.index_pattern = "agentic-traces-%Y.%m.%d";
	if (!es->cfg.spool_max)
		es->cfg.spool_max = 256ull << 20;
	if (es->cfg.batch_docs <= 0)
		es->cfg.batch_docs = 500;
	if (es->cfg.drain_seconds <= 0)
		es->cfg.drain_seconds = 10;
	if (!es->cfg.tag)
		es->cfg.tag = "agentic.traces";
	if (!cfg->forward && strncmp(cfg->url, "http://", 7) && strncmp(cfg->url, "https://", 8)) {
		agt_seterr(err, errlen, -EINVAL,
			   "--es \"%s\" is not an http:// or https:// URL of Elasticsearch",
			   cfg->url);
		goto fail;
	}
	snprintf(es->url, sizeof(es->url), "%.*s", (int)strcspn(cfg->url, "?"), cfg->url);
	if (es->url[strlen(es->url) - 1] == '/')
		es->url[strlen(es->url) - 1] = 0;
	key = read_secret(cfg->api_key_file, "AGTRACE_ES_API_KEY", err, errlen, &bad);
	if (bad)
		goto fail;
	if (key)
		snprintf(es->auth, 512, "Authorization: ApiKey %s", key);
	free(key);
	pw = read_secret(cfg->password_file, "AGTRACE_ES_PASSWORD", err, errlen, &bad);
	if (bad)
		goto fail;
	snprintf(es->auth + 512, 512, "%s", pw ? pw : "");
	free(pw);
	snprintf(es->spool, sizeof(es->spool), "%s",
		 cfg->spool_dir ? cfg->spool_dir : "/var/lib/agtrace/spool");
	snprintf(es->dead, sizeof(es->dead), "%s", cfg->dead_letter ? cfg->dead_letter : "");
	if (!es->dead[0])
		snprintf(es->dead, sizeof(es->dead), "%s/dead-letter.ndjson", es->spool);
	mkdir(es->spool, 0700);
	if (access(es->spool, W_OK)) {
		agt_seterr(err, errlen, -errno,
			   "the spool folder %s is not writable (%s); give --spool-dir", es->spool,
			   strerror(errno));
		goto fail;
	}
	agt_jw_init(&es->w);
	spool_scan(es); /* what an earlier run could not deliver is sent first */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	es->curl = curl_easy_init();
	if (cfg->install_template) {
		put_json(es, "/_ilm/policy/agentic-traces", ilm_json);
		put_json(es, "/_index_template/agentic-traces", template_json);
	}
	pthread_mutex_init(&es->lock, NULL);
	pthread_mutex_init(&es->spool_lock, NULL);
	pthread_cond_init(&es->wake, NULL);
	if (pthread_create(&es->thread, NULL, run, es)) {
		agt_seterr(err, errlen, -EAGAIN, "cannot start the Elasticsearch exporter thread");
		goto fail;
	}
	es->started = 1;
	return es;
fail:
	if (es->curl)
		curl_easy_cleanup(es->curl);
	free(es);
	return NULL;
}

static void es_observe(void *ctx, const struct agt_span *sp)
{
	struct agt_es *es = ctx;
	char index[256], id[17];
	time_t secs = (time_t)((sp->start_ns + es->ctx.mono_to_real) / 1000000000ull);
	struct tm tm;
	struct agt_jw *w = &es->w;
	struct doc d;

	agt_jw_reset(w);
	if (es->cfg.otlp) {
		agt_schema_otlp(sp, &es->ctx, w);
	} else if (es->cfg.forward) { /* the record: the span's JSON, one line */
		agt_schema_ecs(sp, &es->ctx, w);
	} else {
		agt_schema_span_id(sp->span_id, id);
		gmtime_r(&secs, &tm);
		strftime(index, sizeof(index), es->cfg.index_pattern, &tm);
		static const char a[] = "{\"index\":{\"_index\":\"", b[] = "\",\"_id\":\"",
				  c[] = "\"}}\n";

		agt_jw_raw(w, a, sizeof(a) - 1);
		agt_jw_escaped(w, index, strlen(index));
		agt_jw_raw(w, b, sizeof(b) - 1);
		agt_jw_raw(w, id, 16);
		agt_jw_raw(w, c, sizeof(c) - 1);
		agt_schema_ecs(sp, &es->ctx, w);
	}
	agt_jw_raw(w, "\n", 1);
	d.len = w->len;
	d.lines = w->failed ? NULL : malloc(d.len + 1);
	if (!d.lines) {
		es->st.spool_dropped++;
		return;
	}
	memcpy(d.lines, w->buf, d.len + 1);

	pthread_mutex_lock(&es->lock);
	es->st.queued++;
	if (es->queue.n >= QUEUE_MAX) { /* the thread is far behind: this one to the spool */
		struct docs one = {0};

		docs_push(&one, d);
		pthread_mutex_unlock(&es->lock);
		spool_write(es, &one, 0);
		free(one.v);
		return;
	}
	docs_push(&es->queue, d);
	pthread_cond_signal(&es->wake);
	pthread_mutex_unlock(&es->lock);
}

struct agt_sink *agt_es_tee(struct agt_sink *next, struct agt_es *es)
{
	return agt_tee_new(next, es_observe, es);
}

void agt_es_stop(struct agt_es *es)
{
	if (!es || !es->started)
		return;
	pthread_mutex_lock(&es->lock);
	es->stopping = 1;
	pthread_cond_signal(&es->wake);
	pthread_mutex_unlock(&es->lock);
	pthread_join(es->thread, NULL);
	es->started = 0;
}

void agt_es_stats(struct agt_es *es, struct agt_es_stats *out)
{
	*out = (struct agt_es_stats){
	    .queued = es->st.queued,
	    .delivered = es->st.delivered,
	    .retried = es->st.retried,
	    .dead_lettered = es->st.dead_lettered,
	    .spooled = es->st.spooled,
	    .spool_dropped = es->st.spool_dropped,
	    .send_failures = es->st.send_failures,
	    .spool_bytes = es->st.spool_bytes,
	    .spool_oldest_age_s = es->st.spool_oldest_age_s,
	    .last_latency_ms = es->st.last_latency_ms,
	    .wire_bytes = es->st.wire_bytes,
	};
}

void agt_es_free(struct agt_es *es)
{
	if (!es)
		return;
	agt_es_stop(es);
	docs_clear(&es->queue);
	docs_clear(&es->retry);
	free(es->queue.v);
	free(es->retry.v);
	curl_easy_cleanup(es->curl);
	agt_jw_free(&es->w);
	pthread_mutex_destroy(&es->lock);
	pthread_mutex_destroy(&es->spool_lock);
	pthread_cond_destroy(&es->wake);
	free(es);
}
