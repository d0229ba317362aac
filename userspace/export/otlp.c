/* OTLP/HTTP transport: spans as OTLP Spans, in protobuf (the default: every OTLP/HTTP receiver
 * takes it, some take nothing else) or JSON, sent in one ExportTraceServiceRequest per batch:
 * one ResourceSpans per workload (the spans of one traced process, see export/schema.c), one
 * ScopeSpans (agtrace and its version) in each. A document in the spool is one span with its
 * resource: its format ('P' protobuf, 'J' JSON), the resource's length as a varint, the
 * resource, the span, a newline; a batch read back is grouped by identical resources. OTLP
 * answers for the request as a whole: 200 delivered, except what its partialSuccess says it
 * rejected (counted, and dead-lettered); 429/502/503/504 (or no answer) again later; any other
 * status rejected, every span of the request dead-lettered with the status. */
#define _GNU_SOURCE
#include "base/log.h"
#include "base/redact.h"
#include "base/util.h"
#include "base/version.h"
#include "export/exporters.h"
#include "export/http.h"
#include "export/pb.h"
#include "export/schema.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 10000

struct otlp {
	struct agt_http_client *http;
	struct agt_export_ctx ctx;
	char *shown_url; /* the URL for messages, its password hidden */
	int unreachable; /* the last request got no answer: said once, until one does */
	int json, gzip;
	long timeout_ms;
	/* OTEL_RESOURCE_ATTRIBUTES */
	char *rkeys[64], *rvals[64];
	struct agt_otlp_attrs extra;
	/* The pipeline thread's: a span encoded here, then copied into the document. */
	struct agt_pb pb;
	struct agt_jw jw;
	/* The send thread's: the request. */
	struct agt_pb req;
	struct agt_jw jreq;
};

/* ---- the environment, as the OpenTelemetry SDKs read it ---- */

/* The traces-specific variable, else the generic one; NULL when neither is set (or empty). */
static const char *env2(const char *what)
{
	char name[96];
	const char *v;

	snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_TRACES_%s", what);
	if ((v = getenv(name)) && v[0])
		return v;
	snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_%s", what);
	return (v = getenv(name)) && v[0] ? v : NULL;
}

/* Percent-decode s[0..n) into out (cap bytes); -1 on a bad escape or no room. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			if (!isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2]))
				return -1;
			c = (char)strtol((char[]){s[i + 1], s[i + 2], 0}, NULL, 16);
			i += 2;
		}
		if (k + 1 >= cap)
			return -1;
		out[k++] = c;
	}
	out[k] = 0;
	return 0;
}

static void trim(const char **s, size_t *n)
{
	while (*n && isspace((unsigned char)**s))
		(*s)++, (*n)--;
	while (*n && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

/* "k=v,k2=v2" (values percent-encoded) into the callback; -1 when it is not that. */
static int kv_list(const char *text, int (*add)(void *ctx, const char *k, const char *v),
		   void *ctx)
{
	const char *p = text;

	while (*p) {
		const char *end = strchr(p, ','), *eq;
		size_t n = end ? (size_t)(end - p) : strlen(p), kn, vn;
		const char *k = p, *v;
		char key[256], val[4096];

		eq = memchr(p, '=', n);
		if (!eq) {
			if (strspn(p, " \t") < n) /* not an empty member: not a list */
				return -1;
			p = end ? end + 1 : p + n;
			continue;
		}
		kn = (size_t)(eq - p);
		v = eq + 1;
		vn = n - kn - 1;
		trim(&k, &kn);
		trim(&v, &vn);
		if (!kn || kn >= sizeof(key) || pct_decode(v, vn, val, sizeof(val)))
			return -1;
		memcpy(key, k, kn);
		key[kn] = 0;
		if (add(ctx, key, val))
			return -1;
		p = end ? end + 1 : p + n;
	}
	return 0;
}

/* A header name: an RFC 9110 token. */
static int header_name_ok(const char *k)
{
	if (!k[0])
		return 0;
	for (const char *c = k; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("!#$%&'*+-.^_`|~", *c))
			return 0;
	return 1;
}

static int header_value_ok(const char *v)
{
	return !strpbrk(v, "\r\n");
}

static int check_header(void *ctx, const char *k, const char *v)
{
	(void)ctx;
	return header_name_ok(k) && header_value_ok(v) ? 0 : -1;
}

static int check_attr(void *ctx, const char *k, const char *v)
{
	(void)ctx, (void)k, (void)v;
	return 0;
}

/* An --otlp URL with no path gets OTLP's traces path; any other is used as it is. */
static const char *traces_url(const char *url, char *buf, size_t n)
{
	const char *host = strstr(url, "://"), *path;

	if (!host)
		return url;
	path = strchr(host + 3, '/');
	if (path && strcmp(path, "/"))
		return url;
	snprintf(buf, n, "%.*s/v1/traces", path ? (int)(path - url) : (int)strlen(url), url);
	return buf;
}

int agt_otlp_config_env(struct agt_exporter_config *c, char *err, size_t errlen)
{
	static char url[2048];
	const char *v;
	long ms;

	/* As the OpenTelemetry specification says: the signal's own endpoint is used as it is
	 * (whatever its path, none included); the generic one is a base URL for /v1/traces. */
	if (!c->url && (v = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) && v[0]) {
		c->url = v;
		c->url_exact = 1;
		c->url_from = "$OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
	} else if (!c->url && (v = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) && v[0]) {
		size_t n = strlen(v);

		while (n && v[n - 1] == '/')
			n--;
		snprintf(url, sizeof(url), "%.*s/v1/traces", (int)n, v);
		c->url = url;
		c->url_exact = 1;
		c->url_from = "$OTEL_EXPORTER_OTLP_ENDPOINT";
	}
	if (!c->url)
		return 0; /* OTLP is off: nothing of it matters */
	if (!c->protocol && (v = env2("PROTOCOL")))
		c->protocol = v;
	if (c->protocol && strcmp(c->protocol, "http/protobuf") && strcmp(c->protocol, "http/json"))
		return agt_seterr(err, errlen, -EINVAL,
				  "the OTLP protocol \"%s\" (--otlp-protocol or "
				  "$OTEL_EXPORTER_OTLP_PROTOCOL) is not one agtrace speaks: give "
				  "http/protobuf or http/json",
				  c->protocol);
	if (!c->timeout_ms && (v = env2("TIMEOUT"))) {
		if (agt_parse_long(v, 1, 600000, &ms))
			return agt_seterr(err, errlen, -EINVAL,
					  "$OTEL_EXPORTER_OTLP_TIMEOUT needs milliseconds from 1 to "
					  "600000, got \"%s\"",
					  v);
		c->timeout_ms = ms;
	}
	if (!c->compression && (v = env2("COMPRESSION")))
		c->compression = v;
	if (c->compression && strcmp(c->compression, "gzip") && strcmp(c->compression, "none"))
		return agt_seterr(err, errlen, -EINVAL,
				  "the OTLP compression \"%s\" is not gzip or none", c->compression);
	if (!c->ca_file && (v = env2("CERTIFICATE")))
		c->ca_file = v;
	if (!c->client_cert && (v = env2("CLIENT_CERTIFICATE")))
		c->client_cert = v;
	if (!c->client_key && (v = env2("CLIENT_KEY")))
		c->client_key = v;
	for (int i = 0; i < 2; i++) {
		const char *name = i ? "OTEL_EXPORTER_OTLP_TRACES_HEADERS" : "OTEL_EXPORTER_OTLP_HEADERS";

		if ((v = getenv(name)) && kv_list(v, check_header, NULL))
			return agt_seterr(err, errlen, -EINVAL,
					  "$%s is not a list of name=value headers (values "
					  "percent-encoded, joined by commas)",
					  name);
	}
	for (int i = 0; i < c->nheaders; i++) {
		const char *eq = strchr(c->headers[i], '=');
		char name[256];

		snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - c->headers[i]) : 0,
			 c->headers[i]);
		if (!eq || !header_name_ok(name) || !header_value_ok(eq + 1))
			return agt_seterr(err, errlen, -EINVAL,
					  "--otlp-header needs NAME=VALUE with an HTTP header name, "
					  "got \"%s\"",
					  c->headers[i]);
	}
	if ((v = getenv("OTEL_RESOURCE_ATTRIBUTES")) && kv_list(v, check_attr, NULL))
		return agt_seterr(err, errlen, -EINVAL,
				  "$OTEL_RESOURCE_ATTRIBUTES is not a list of key=value pairs "
				  "(values percent-encoded, joined by commas)");
	return 0;
}

/* ---- documents ---- */

static size_t put_varint(uint8_t *d, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		d[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	d[n++] = (uint8_t)v;
	return n;
}

/* The resource of a span written by an older agtrace (a document that is the span alone). */
static const char legacy_resource[] =
    "{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"unknown_service\"}}]}";

struct doc {
	int fmt; /* 'P' or 'J' */
	const uint8_t *res, *span;
	size_t rlen, slen;
};

static int parse_doc(const struct agt_doc *d, struct doc *out)
{
	const uint8_t *b = (const uint8_t *)d->bytes;
	size_t n = d->len ? d->len - 1 : 0, off = 1; /* without the newline */
	uint64_t rlen = 0;

	if (n && b[0] == '{') {
		*out = (struct doc){'J', (const uint8_t *)legacy_resource, b,
				    sizeof(legacy_resource) - 1, n};
		return 0;
	}
	if (!n || (b[0] != 'P' && b[0] != 'J'))
		return -1;
	for (int shift = 0; off < n && shift < 64; shift += 7) {
		rlen |= (uint64_t)(b[off] & 0x7f) << shift;
		if (!(b[off++] & 0x80))
			break;
	}
	if (rlen > n - off)
		return -1;
	*out = (struct doc){b[0], b + off, b + off + rlen, (size_t)rlen, n - off - (size_t)rlen};
	return 0;
}

static void otlp_encode(void *t, const struct agt_span *sp, const struct agt_export_ctx *c,
			struct agt_jw *w)
{
	struct otlp *o = t;
	uint8_t head[11];
	size_t rlen, hn;

	head[0] = o->json ? 'J' : 'P';
	if (o->json) {
		uint64_t before = o->jw.replaced;

		agt_jw_reset(&o->jw);
		agt_schema_otlp_resource(sp, c, &o->extra, &o->jw);
		rlen = o->jw.len;
		o->jw.first[0] = 1; /* the span: a document of its own, no separator */
		agt_schema_otlp(sp, c, &o->jw);
		hn = 1 + put_varint(head + 1, rlen);
		agt_jw_raw(w, (const char *)head, hn);
		agt_jw_raw(w, o->jw.buf, o->jw.len);
		w->replaced += o->jw.replaced - before;
		w->failed |= o->jw.failed;
	} else {
		uint64_t before = o->pb.replaced;

		agt_pb_reset(&o->pb);
		agt_schema_otlp_resource_pb(sp, c, &o->extra, &o->pb);
		rlen = o->pb.len;
		agt_schema_otlp_pb(sp, c, &o->pb);
		hn = 1 + put_varint(head + 1, rlen);
		agt_jw_raw(w, (const char *)head, hn);
		agt_jw_raw(w, (const char *)o->pb.buf, o->pb.len);
		w->replaced += o->pb.replaced - before;
		w->failed |= o->pb.failed;
	}
	agt_jw_raw(w, "\n", 1);
}

/* ---- requests ---- */

/* Group i of the batch: the documents with this resource, in their order. */
struct group {
	const uint8_t *res;
	size_t rlen;
	size_t *idx, n;
};

/* The documents of format fmt, grouped by resource. Returns the number of groups (-1: no
 * memory); *g and every idx array are malloc'd. */
static int group_docs(const struct doc *d, size_t n, int fmt, struct group **out)
{
	struct group *g = calloc(n ? n : 1, sizeof(*g));
	int ng = 0;

	if (!g)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int k;

		if (d[i].fmt != fmt)
			continue;
		for (k = ng - 1; k >= 0; k--)
			if (g[k].rlen == d[i].rlen && !memcmp(g[k].res, d[i].res, d[i].rlen))
				break;
		if (k < 0) {
			k = ng++;
			g[k] = (struct group){d[i].res, d[i].rlen, calloc(n, sizeof(size_t)), 0};
			if (!g[k].idx)
				goto fail;
		}
		g[k].idx[g[k].n++] = i;
	}
	*out = g;
	return ng;
fail:
	for (int k = 0; k < ng; k++)
		free(g[k].idx);
	free(g);
	return -1;
}

static void request_pb(struct agt_pb *p, const struct doc *d, const struct group *g, int ng)
{
	agt_pb_reset(p);
	for (int k = 0; k < ng; k++) {
		agt_pb_begin(p, 1); /* ResourceSpans */
		agt_pb_bytes(p, 1, g[k].res, g[k].rlen);
		agt_pb_begin(p, 2); /* ScopeSpans */
		agt_pb_begin(p, 1);
		agt_pb_str(p, 1, "agtrace");
		agt_pb_str(p, 2, agt_version);
		agt_pb_end(p);
		for (size_t i = 0; i < g[k].n; i++)
			agt_pb_bytes(p, 2, d[g[k].idx[i]].span, d[g[k].idx[i]].slen);
		agt_pb_end(p);
		agt_pb_end(p);
	}
}

static void request_json(struct agt_jw *w, const struct doc *d, const struct group *g, int ng)
{
	char scope[160];
	int sl = snprintf(scope, sizeof(scope),
			  "\"scopeSpans\":[{\"scope\":{\"name\":\"agtrace\",\"version\":\"%s\"},"
			  "\"spans\":[",
			  agt_version);

	agt_jw_reset(w);
	agt_jw_raw(w, "{\"resourceSpans\":[", 18);
	for (int k = 0; k < ng; k++) {
		agt_jw_raw(w, k ? ",{\"resource\":" : "{\"resource\":", k ? 13 : 12);
		agt_jw_raw(w, (const char *)g[k].res, g[k].rlen);
		agt_jw_raw(w, ",", 1);
		agt_jw_raw(w, scope, (size_t)sl);
		for (size_t i = 0; i < g[k].n; i++) {
			if (i)
				agt_jw_raw(w, ",", 1);
			agt_jw_raw(w, (const char *)d[g[k].idx[i]].span, d[g[k].idx[i]].slen);
		}
		agt_jw_raw(w, "]}]}", 4);
	}
	agt_jw_raw(w, "]}", 2);
}

/* What an answer says: partialSuccess {rejectedSpans, errorMessage} of a 200, or the message of
 * an error (google.rpc.Status). int64 is a string in OTLP/JSON (a number is taken too). */
static void answer(const char *resp, size_t len, int json, int64_t *rejected, char *msg,
		   size_t mn)
{
	*rejected = 0;
	msg[0] = 0;
	if (!resp || !len)
		return;
	if (json) {
		cJSON *o = cJSON_ParseWithLength(resp, len);
		const cJSON *ps = cJSON_GetObjectItem(o, "partialSuccess");
		const cJSON *v = cJSON_GetObjectItem(ps, "rejectedSpans");
		const char *m = cJSON_GetStringValue(
		    cJSON_GetObjectItem(ps ? ps : o, ps ? "errorMessage" : "message"));

		if (cJSON_IsString(v))
			*rejected = strtoll(v->valuestring, NULL, 10);
		else if (cJSON_IsNumber(v))
			*rejected = (int64_t)v->valuedouble;
		if (m)
			snprintf(msg, mn, "%s", m);
		cJSON_Delete(o);
		return;
	}
	{
		const uint8_t *b = (const uint8_t *)resp, *data, *d2;
		size_t off = 0, dl, off2, l2;
		uint32_t field, f2;
		int wire, w2;
		uint64_t v, v2;

		while (agt_pb_next(b, len, &off, &field, &wire, &v, &data, &dl) == 1) {
			if (field == 2 && wire == 2) /* google.rpc.Status.message */
				snprintf(msg, mn, "%.*s", (int)dl, (const char *)data);
			if (field != 1 || wire != 2)
				continue;
			/* ExportTraceServiceResponse.partial_success, or google.rpc.Status.code */
			off2 = 0;
			while (agt_pb_next(data, dl, &off2, &f2, &w2, &v2, &d2, &l2) == 1) {
				if (f2 == 1 && w2 == 0)
					*rejected = (int64_t)v2;
				else if (f2 == 2 && w2 == 2)
					snprintf(msg, mn, "%.*s", (int)l2, (const char *)d2);
			}
		}
	}
}

/* A reason as JSON text (malloc'd). */
static char *reason_json(long status, int64_t rejected, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	char n[24], *s;

	if (status) {
		cJSON_AddNumberToObject(o, "http_status", (double)status);
	} else {
		snprintf(n, sizeof(n), "%lld", (long long)rejected);
		cJSON_AddStringToObject(o, "rejected_spans", n);
	}
	if (msg[0])
		cJSON_AddStringToObject(o, status ? "message" : "error_message", msg);
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/* One request with the documents of one format. 0: answered (outcomes set), -1: not. */
static int send_part(struct otlp *o, const struct doc *d, size_t n, int fmt,
		     struct agt_send_result *r, int *sent)
{
	struct group *g = NULL;
	int ng = group_docs(d, n, fmt, &g), json = fmt == 'J';
	const void *body;
	size_t blen, gzn = 0, rlen = 0, count = 0;
	unsigned char *gz = NULL;
	char *resp = NULL, msg[512];
	long status;
	int64_t rejected;

	*sent = 0;
	if (ng <= 0) {
		free(g);
		return ng < 0 ? -1 : 0;
	}
	*sent = 1;
	if (json) {
		request_json(&o->jreq, d, g, ng);
		body = o->jreq.buf;
		blen = o->jreq.len;
	} else {
		request_pb(&o->req, d, g, ng);
		body = o->req.buf;
		blen = o->req.len;
	}
	if ((json ? o->jreq.failed : o->req.failed) ||
	    (o->gzip && agt_http_gzip(body, blen, &gz, &gzn))) {
		status = -1;
		goto out;
	}
	r->wire_bytes += o->gzip ? gzn : blen;
	status = agt_http_request_len(o->http, "POST", "",
				      json ? "application/json" : "application/x-protobuf",
				      o->gzip ? "gzip" : NULL, o->gzip ? (void *)gz : body,
				      o->gzip ? gzn : blen, o->timeout_ms, &resp, &rlen);
	if (!status && !o->unreachable) {
		/* Said once until the collector answers again: the spans wait in the spool. */
		agt_warn("otlp: no answer from %s: %s; the spans wait in the spool and are sent "
			 "again",
			 o->shown_url ? o->shown_url : "the collector", agt_http_error(o->http));
		o->unreachable = 1;
	} else if (status && o->unreachable) {
		agt_info("otlp: %s answers again", o->shown_url ? o->shown_url : "the collector");
		o->unreachable = 0;
	}
	if (!status || status == 429 || status == 502 || status == 503 || status == 504) {
		for (int k = 0; k < ng; k++) /* later: in order, with the rest of the window */
			for (size_t i = 0; i < g[k].n; i++)
				r->outcome[g[k].idx[i]] = AGT_RETRY;
		status = status ? 0 : -1;
		goto out;
	}
	answer(resp, rlen, json, &rejected, msg, sizeof(msg));
	for (int k = 0; k < ng; k++)
		count += g[k].n;
	for (int k = 0; k < ng; k++)
		for (size_t i = 0; i < g[k].n; i++) {
			size_t x = g[k].idx[i];

			if (status >= 200 && status < 300 && (rejected <= 0 || (size_t)rejected < count)) {
				r->outcome[x] = AGT_DELIVERED;
			} else {
				/* refused, or every span of the request rejected: each one dead-
				 * lettered with what the collector said */
				r->outcome[x] = AGT_REJECTED;
				r->reason[x] = reason_json(status >= 300 ? status : 0, rejected, msg);
			}
		}
	if (status >= 200 && status < 300 && rejected > 0 && (size_t)rejected < count) {
		/* some spans of the request, which the collector does not name */
		r->rejected_uncounted += (uint64_t)rejected;
		free(r->rejected_note);
		r->rejected_note = reason_json(0, rejected, msg);
	}
	status = 0;
out:
	for (int k = 0; k < ng; k++)
		free(g[k].idx);
	free(g);
	free(gz);
	free(resp);
	return status ? -1 : 0;
}

static int otlp_send(void *t, const struct agt_doc *docs, size_t n, struct agt_send_result *r)
{
	struct otlp *o = t;
	struct doc *d = calloc(n ? n : 1, sizeof(*d));
	int reached = 0, tried = 0, sent;

	if (!d)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (parse_doc(&docs[i], &d[i])) { /* not a document of this transport */
			d[i].fmt = 0;
			r->outcome[i] = AGT_REJECTED;
			r->reason[i] = strdup("{\"error\":\"not an OTLP span document\"}");
		}
	/* Documents spooled in the other encoding (the protocol was changed between runs) go in
	 * a request of their own, in that encoding. */
	for (int pass = 0; pass < 2; pass++) {
		int fmt = (pass == 0) == !o->json ? 'P' : 'J';

		if (!send_part(o, d, n, fmt, r, &sent) && sent)
			reached = 1;
		tried |= sent;
	}
	free(d);
	return reached || !tried ? 0 : -1;
}

/* {"reason": ..., "resource": ..., "span": ...}; a protobuf document's parts in base64. */
static void otlp_dead_letter(FILE *f, const struct agt_doc *d, const char *reason)
{
	struct doc x;

	if (parse_doc(d, &x)) {
		fprintf(f, "{\"reason\":%s}", reason);
		return;
	}
	if (x.fmt == 'J') {
		fprintf(f, "{\"reason\":%s,\"resource\":%.*s,\"span\":%.*s}", reason, (int)x.rlen,
			(const char *)x.res, (int)x.slen, (const char *)x.span);
		return;
	}
	{
		unsigned char *rb = malloc(4 * (x.rlen / 3 + 2)), *sb = malloc(4 * (x.slen / 3 + 2));

		if (rb && sb) {
			EVP_EncodeBlock(rb, x.res, (int)x.rlen);
			EVP_EncodeBlock(sb, x.span, (int)x.slen);
			fprintf(f, "{\"reason\":%s,\"resource_protobuf\":\"%s\",\"span_protobuf\":\"%s\"}",
				reason, rb, sb);
		} else {
			fprintf(f, "{\"reason\":%s}", reason);
		}
		free(rb);
		free(sb);
	}
}

static void otlp_free(void *t)
{
	struct otlp *o = t;

	if (!o)
		return;
	agt_http_client_free(o->http);
	free(o->shown_url);
	for (int i = 0; i < o->extra.n; i++) {
		free(o->rkeys[i]);
		free(o->rvals[i]);
	}
	agt_pb_free(&o->pb);
	agt_pb_free(&o->req);
	agt_jw_free(&o->jw);
	agt_jw_free(&o->jreq);
	free(o);
}

static const struct agt_transport_ops otlp_ops = {
    .name = "otlp",
    .doc_lines = 1,
    .encode = otlp_encode,
    .send = otlp_send,
    .dead_letter = otlp_dead_letter,
    .free = otlp_free,
};

/* Headers: from the environment (generic, then traces-specific), then --otlp-header; a later
 * one replaces an earlier one of the same name. */
struct headers {
	char *lines[3 * AGT_MAX_HEADERS];
	int n;
};

static int add_header(void *ctx, const char *k, const char *v)
{
	struct headers *h = ctx;
	size_t kl = strlen(k);
	char *line;

	for (int i = 0; i < h->n; i++)
		if (!strncasecmp(h->lines[i], k, kl) && h->lines[i][kl] == ':') {
			free(h->lines[i]);
			h->lines[i] = h->lines[--h->n];
			break;
		}
	if (h->n == (int)(sizeof(h->lines) / sizeof(h->lines[0])) ||
	    asprintf(&line, "%s: %s", k, v) < 0)
		return -1;
	h->lines[h->n++] = line;
	return 0;
}

static int add_attr(void *ctx, const char *k, const char *v)
{
	struct otlp *o = ctx;

	if (o->extra.n == (int)(sizeof(o->rkeys) / sizeof(o->rkeys[0])))
		return 0;
	o->rkeys[o->extra.n] = strdup(k);
	o->rvals[o->extra.n] = strdup(v);
	if (!o->rkeys[o->extra.n] || !o->rvals[o->extra.n])
		return -1;
	o->extra.n++;
	return 0;
}

int agt_otlp_open(const struct agt_exporter_config *c, const struct agt_export_ctx *x,
		  const struct agt_transport_ops **ops, void **t, char *err, size_t errlen)
{
	struct agt_exporter_config cc = *c;
	struct headers h = {.n = 0};
	struct agt_http_config hc = {0};
	struct otlp *o;
	char url[2048];
	const char *v;
	int rc = -EINVAL;

	if (agt_otlp_config_env(&cc, err, errlen))
		return -EINVAL;
	if (!(o = calloc(1, sizeof(*o))))
		return -ENOMEM;
	o->ctx = *x;
	o->json = cc.protocol && !strcmp(cc.protocol, "http/json");
	o->gzip = !cc.compression || strcmp(cc.compression, "none");
	o->timeout_ms = cc.timeout_ms ? cc.timeout_ms : DEFAULT_TIMEOUT_MS;
	agt_pb_init(&o->pb);
	agt_pb_init(&o->req);
	agt_jw_init(&o->jw);
	agt_jw_init(&o->jreq);
	if (((v = getenv("OTEL_EXPORTER_OTLP_HEADERS")) && kv_list(v, add_header, &h)) ||
	    ((v = getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS")) && kv_list(v, add_header, &h))) {
		agt_seterr(err, errlen, -EINVAL, "$OTEL_EXPORTER_OTLP_HEADERS is not a list of "
						 "name=value headers");
		goto fail;
	}
	for (int i = 0; i < cc.nheaders; i++) {
		const char *eq = strchr(cc.headers[i], '=');
		char name[256];

		snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - cc.headers[i]) : 0,
			 cc.headers[i]);
		if (!eq || add_header(&h, name, eq + 1)) {
			agt_seterr(err, errlen, -EINVAL, "--otlp-header \"%s\" is not NAME=VALUE",
				   cc.headers[i]);
			goto fail;
		}
	}
	if ((v = getenv("OTEL_RESOURCE_ATTRIBUTES")) && kv_list(v, add_attr, o)) {
		agt_seterr(err, errlen, -EINVAL, "$OTEL_RESOURCE_ATTRIBUTES is not a list of "
						 "key=value pairs");
		goto fail;
	}
	o->extra.keys = (const char *const *)o->rkeys;
	o->extra.values = (const char *const *)o->rvals;
	hc.url = cc.url && !cc.url_exact ? traces_url(cc.url, url, sizeof(url)) : cc.url;
	hc.ca_file = cc.ca_file;
	hc.insecure = cc.insecure;
	hc.client_cert = cc.client_cert;
	hc.client_key = cc.client_key;
	hc.headers = (const char *const *)h.lines;
	hc.nheaders = h.n;
	if (!(o->http = agt_http_client_new(&hc, "--otlp", err, errlen)))
		goto fail;
	o->shown_url = agt_redact_url(hc.url);
	for (int i = 0; i < h.n; i++) { /* (curl keeps its copies) */
		memset(h.lines[i], 0, strlen(h.lines[i]));
		free(h.lines[i]);
	}
	*ops = &otlp_ops;
	*t = o;
	return 0;
fail:
	for (int i = 0; i < h.n; i++) {
		memset(h.lines[i], 0, strlen(h.lines[i]));
		free(h.lines[i]);
	}
	otlp_free(o);
	return rc;
}
