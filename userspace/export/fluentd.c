/* Fluentd transport: the forward protocol over TCP (msgpack-c), Forward mode with
 * require_ack_response: a batch counts as delivered only when Fluentd acknowledges its chunk,
 * else the whole batch is sent again (at least once). The record of a span is a map of its ECS
 * fields, written by the schema straight into msgpack when the span is handed over; that map is
 * the document the spool holds, and a batch is those maps framed, never parsed again. Spools of
 * older versions hold ECS JSON text instead (a document starting with '{'): those are packed
 * from a parse when they are replayed. */
#include "base/log.h"
#include "base/redact.h"
#include "base/util.h"
#include "export/exporters.h"
#include "export/schema.h"
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <msgpack.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct fluentd {
	char address[1024]; /* host:port */
	char tag[256];
};

/* msgpack-c writes into the document buffer. */
static int jw_write(void *data, const char *buf, size_t len)
{
	agt_jw_raw(data, buf, len);
	return 0;
}

static void fluentd_encode(void *t, const struct agt_span *sp, const struct agt_export_ctx *c,
			   struct agt_jw *w)
{
	msgpack_packer pk;

	(void)t;
	msgpack_packer_init(&pk, w, jw_write);
	/* a map: its first byte is never '{' */
	w->replaced += agt_schema_msgpack(sp, c, &pk);
}

/* msgpack from JSON (documents of older versions' spools): a map of the span's fields. */
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
 * answers {"ack": id}. Anything else: the whole batch again. */
static int fluentd_send(void *t, const struct agt_doc *docs, size_t n, struct agt_send_result *r)
{
	struct fluentd *fl = t;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	unsigned char raw[16], chunk[32] = {0};
	char buf[512];
	uint64_t a = (uint64_t)agt_mono_ns() * 0x9e3779b97f4a7c15ull, b = a ^ (uintptr_t)docs;
	int fd, ok = 0;
	size_t got = 0;

	memcpy(raw, &a, 8);
	memcpy(raw + 8, &b, 8);
	EVP_EncodeBlock(chunk, raw, 16);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_str_with_body(&pk, fl->tag, strlen(fl->tag));
	msgpack_pack_array(&pk, n);
	for (size_t i = 0; i < n; i++) {
		msgpack_pack_array(&pk, 2);
		msgpack_pack_int64(&pk, (int64_t)time(NULL));
		if (docs[i].len && docs[i].bytes[0] == '{') { /* JSON text of an older spool */
			cJSON *rec = cJSON_ParseWithLength(docs[i].bytes, docs[i].len);

			pack_json(&pk, rec);
			cJSON_Delete(rec);
		} else {
			msgpack_sbuffer_write(&sb, docs[i].bytes, docs[i].len);
		}
	}
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "chunk", 5);
	msgpack_pack_str_with_body(&pk, chunk, strlen((char *)chunk));
	msgpack_pack_str_with_body(&pk, "size", 4);
	msgpack_pack_uint64(&pk, n);
	r->wire_bytes += sb.size;
	fd = tcp_connect(fl->address, 3000); /* also the wait for the ack */
	if (fd >= 0 && send(fd, sb.data, sb.size, MSG_NOSIGNAL) == (ssize_t)sb.size) {
		while (!ok && got < sizeof(buf)) {
			ssize_t k = recv(fd, buf + got, sizeof(buf) - got, 0);
			msgpack_unpacked msg;
			size_t off = 0;

			if (k <= 0)
				break;
			got += k;
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
	if (!ok)
		return -1;
	for (size_t i = 0; i < n; i++)
		r->outcome[i] = AGT_DELIVERED;
	return 0;
}

/* Fluentd rejects nothing document by document (a batch is acknowledged or sent again), but
 * should a document ever be dead-lettered, its msgpack record is kept as base64. */
static void fluentd_dead_letter(FILE *f, const struct agt_doc *d, const char *reason)
{
	unsigned char *b64 = malloc(4 * (d->len / 3 + 1) + 1);

	if (!b64)
		return;
	EVP_EncodeBlock(b64, (const unsigned char *)d->bytes, (int)d->len);
	fprintf(f, "{\"reason\":%s,\"record_msgpack_base64\":\"%s\"}", reason, (char *)b64);
	free(b64);
}

static void fluentd_free(void *t)
{
	free(t);
}

static const struct agt_transport_ops fluentd_ops = {
    .name = "fluentd",
    .doc_lines = 1,
    .encode = fluentd_encode,
    .send = fluentd_send,
    .dead_letter = fluentd_dead_letter,
    .free = fluentd_free,
};

int agt_fluentd_open(const struct agt_exporter_config *c, const struct agt_export_ctx *x,
		     const struct agt_transport_ops **ops, void **t, char *err, size_t errlen)
{
	struct fluentd *fl = calloc(1, sizeof(*fl));
	const char *addr = c->url && !strncmp(c->url, "tcp://", 6) ? c->url + 6 : c->url;
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	long port;

	(void)x;
	if (!fl)
		return -ENOMEM;
	if (!colon || colon == addr || agt_parse_long(colon + 1, 1, 65535, &port)) {
		char *shown = agt_redact_url(c->url ? c->url : ""); /* its password is not shown */
		int rc =
		    agt_seterr(err, errlen, -EINVAL,
			       "--fluentd \"%s\" is not HOST:PORT (for example 127.0.0.1:24224)",
			       shown ? shown : "");

		free(shown);
		free(fl);
		return rc;
	}
	snprintf(fl->address, sizeof(fl->address), "%s", addr);
	snprintf(fl->tag, sizeof(fl->tag), "%s", c->tag ? c->tag : "agentic.traces");
	*ops = &fluentd_ops;
	*t = fl;
	return 0;
}
