#include "export/http.h"
#include "base/redact.h"
#include "base/log.h"
#include "base/util.h"
#include "base/version.h"
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <libdeflate.h>
#include <string.h>

struct buf {
	char *p;
	size_t n;
};

/* A request started with agt_http_start. */
struct slot {
	CURL *curl;
	struct curl_slist *hdrs;
	struct buf resp;
	int busy, done;
	long status;
};

struct agt_http_client {
	CURL *curl;
	CURLM *multi; /* the slots' requests; NULL until the first is started */
	struct slot slots[AGT_HTTP_SLOTS];
	char base[1024];
	char auth[600];	    /* "Authorization: ApiKey ..." or "" */
	char user[256];	    /* basic auth, "" when none */
	char password[512]; /* its password */
	char ca[1024];
	int insecure;
	char cert[1024], key[1024];
	struct curl_slist *extra; /* the exporter's own request headers */
	char error[CURL_ERROR_SIZE]; /* why the last request got no answer */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* A secret from a file (first line), else from an environment variable; *bad when the file
 * cannot be read. */
static int secret(const char *file, const char *env, char *out, size_t n, const char *what,
		  char *err, size_t errlen)
{
	out[0] = 0;
	if (file) {
		char *s = agt_read_file(file, 4096, NULL);

		if (!s)
			return agt_seterr(err, errlen, -errno,
					  "cannot read the %s credential file %s: %s", what, file,
					  strerror(errno));
		s[strcspn(s, "\r\n")] = 0;
		snprintf(out, n, "%s", s);
		free(s);
	} else if (env && getenv(env)) {
		snprintf(out, n, "%s", getenv(env));
	}
	return 0;
}

struct agt_http_client *agt_http_client_new(const struct agt_http_config *c, const char *what,
					    char *err, size_t errlen)
{
	struct agt_http_client *h = calloc(1, sizeof(*h));
	char key[512];
	size_t n;

	if (!h)
		return NULL;
	if (!c->url || (strncmp(c->url, "http://", 7) && strncmp(c->url, "https://", 8))) {
		char *shown = agt_redact_url(c->url ? c->url : ""); /* its password is not shown */

		agt_seterr(err, errlen, -EINVAL, "%s \"%s\" is not an http:// or https:// URL",
			   what, shown ? shown : "");
		free(shown);
		goto fail;
	}
	snprintf(h->base, sizeof(h->base), "%.*s", (int)strcspn(c->url, "?"), c->url);
	n = strlen(h->base);
	while (n && h->base[n - 1] == '/')
		h->base[--n] = 0;
	if (secret(c->api_key_file, c->api_key_env, key, sizeof(key), what, err, errlen))
		goto fail;
	if (key[0])
		snprintf(h->auth, sizeof(h->auth), "Authorization: ApiKey %s", key);
	if (c->user) {
		snprintf(h->user, sizeof(h->user), "%s", c->user);
		if (secret(c->password_file, c->password_env, h->password, sizeof(h->password),
			   what, err, errlen))
			goto fail;
	}
	snprintf(h->ca, sizeof(h->ca), "%s", c->ca_file ? c->ca_file : "");
	h->insecure = c->insecure;
	snprintf(h->cert, sizeof(h->cert), "%s", c->client_cert ? c->client_cert : "");
	snprintf(h->key, sizeof(h->key), "%s", c->client_key ? c->client_key : "");
	for (int i = 0; i < c->nheaders; i++) {
		struct curl_slist *l = curl_slist_append(h->extra, c->headers[i]);

		if (!l) {
			agt_seterr(err, errlen, -ENOMEM, "cannot set up HTTP requests for %s", what);
			goto fail;
		}
		h->extra = l;
	}
	pthread_once(&curl_once, curl_init);
	if (!(h->curl = curl_easy_init())) {
		agt_seterr(err, errlen, -ENOMEM, "cannot set up HTTP requests for %s", what);
		goto fail;
	}
	return h;
fail:
	curl_slist_free_all(h->extra);
	free(h);
	return NULL;
}

void agt_http_client_free(struct agt_http_client *h)
{
	if (!h)
		return;
	for (int i = 0; i < AGT_HTTP_SLOTS; i++) {
		struct slot *s = &h->slots[i];

		if (s->busy)
			curl_multi_remove_handle(h->multi, s->curl);
		if (s->curl)
			curl_easy_cleanup(s->curl);
		curl_slist_free_all(s->hdrs);
		free(s->resp.p);
	}
	if (h->multi)
		curl_multi_cleanup(h->multi);
	curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->extra); /* (headers may carry credentials: curl's copies) */
	memset(h->password, 0, sizeof(h->password));
	memset(h->auth, 0, sizeof(h->auth));
	free(h);
}

const char *agt_http_base(const struct agt_http_client *h)
{
	return h->base;
}

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
	struct buf *b = ud;
	char *nb = realloc(b->p, b->n + sz * n + 1);

	if (!nb)
		return 0;
	memcpy(nb + b->n, p, sz * n);
	b->p = nb;
	b->n += sz * n;
	b->p[b->n] = 0;
	return sz * n;
}

/* The headers and options of a request on handle c. */
static struct curl_slist *prepare(struct agt_http_client *h, CURL *c, const char *method,
				  const char *path, const char *content_type, const char *encoding,
				  const void *body, size_t len, long timeout_ms, struct buf *b)
{
	struct curl_slist *hdrs = NULL;
	char url[2048], line[256];

	snprintf(url, sizeof(url), "%s%s", h->base, path);
	snprintf(line, sizeof(line), "Content-Type: %s", content_type);
	hdrs = curl_slist_append(hdrs, line);
	if (encoding) {
		snprintf(line, sizeof(line), "Content-Encoding: %s", encoding);
		hdrs = curl_slist_append(hdrs, line);
	}
	if (h->auth[0])
		hdrs = curl_slist_append(hdrs, h->auth);
	for (const struct curl_slist *l = h->extra; l; l = l->next)
		hdrs = curl_slist_append(hdrs, l->data);
	hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip per request */
	curl_easy_reset(c);			   /* keeps the live connection */
	curl_easy_setopt(c, CURLOPT_USERAGENT, (const char *)agt_user_agent);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect); /* never onto our stdout */
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	if (h->ca[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca);
	if (h->cert[0])
		curl_easy_setopt(c, CURLOPT_SSLCERT, h->cert);
	if (h->key[0])
		curl_easy_setopt(c, CURLOPT_SSLKEY, h->key);
	if (h->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (h->user[0]) {
		curl_easy_setopt(c, CURLOPT_USERNAME, h->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, h->password);
	}
	return hdrs;
}

long agt_http_request_len(struct agt_http_client *h, const char *method, const char *path,
			  const char *content_type, const char *encoding, const void *body,
			  size_t len, long timeout_ms, char **resp, size_t *resp_len)
{
	struct buf b = {NULL, 0};
	struct curl_slist *hdrs =
	    prepare(h, h->curl, method, path, content_type, encoding, body, len, timeout_ms, &b);
	long status = 0;
	CURLcode cc;

	h->error[0] = 0;
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->error);
	if ((cc = curl_easy_perform(h->curl)) == CURLE_OK)
		curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	else if (!h->error[0])
		snprintf(h->error, sizeof(h->error), "%s", curl_easy_strerror(cc));
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hdrs);
	if (resp_len)
		*resp_len = b.n;
	if (resp)
		*resp = b.p;
	else
		free(b.p);
	return status;
}

const char *agt_http_error(const struct agt_http_client *h)
{
	return h->error;
}

long agt_http_request(struct agt_http_client *h, const char *method, const char *path,
		      const char *content_type, const char *encoding, const void *body, size_t len,
		      long timeout_ms, char **resp)
{
	return agt_http_request_len(h, method, path, content_type, encoding, body, len, timeout_ms,
				    resp, NULL);
}

/* Move every started request on as far as it goes without waiting; mark the finished ones. */
static void pump(struct agt_http_client *h)
{
	CURLMsg *m;
	int running, left;

	curl_multi_perform(h->multi, &running);
	while ((m = curl_multi_info_read(h->multi, &left))) {
		struct slot *s = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
		if (!s)
			continue;
		s->done = 1;
		s->status = 0;
		if (m->data.result == CURLE_OK)
			curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
	}
}

int agt_http_start(struct agt_http_client *h, int slot, const char *method, const char *path,
		   const char *content_type, const char *encoding, const void *body, size_t len,
		   long timeout_ms)
{
	struct slot *s;

	if (slot < 0 || slot >= AGT_HTTP_SLOTS || h->slots[slot].busy)
		return -1;
	s = &h->slots[slot];
	if (!h->multi && !(h->multi = curl_multi_init()))
		return -1;
	if (!s->curl && !(s->curl = curl_easy_init()))
		return -1;
	curl_slist_free_all(s->hdrs);
	free(s->resp.p);
	s->resp = (struct buf){NULL, 0};
	s->hdrs = prepare(h, s->curl, method, path, content_type, encoding, body, len, timeout_ms,
			  &s->resp);
	curl_easy_setopt(s->curl, CURLOPT_PRIVATE, (char *)s);
	s->done = 0;
	s->status = 0;
	if (curl_multi_add_handle(h->multi, s->curl) != CURLM_OK)
		return -1;
	s->busy = 1;
	pump(h); /* connect and send what can be sent now */
	return 0;
}

long agt_http_wait(struct agt_http_client *h, int slot, char **resp)
{
	struct slot *s;
	long status;

	if (resp)
		*resp = NULL;
	if (slot < 0 || slot >= AGT_HTTP_SLOTS || !h->slots[slot].busy)
		return 0;
	s = &h->slots[slot];
	for (pump(h); !s->done; pump(h))
		curl_multi_poll(h->multi, NULL, 0, 100, NULL);
	curl_multi_remove_handle(h->multi, s->curl);
	s->busy = 0;
	status = s->status;
	if (resp)
		*resp = s->resp.p;
	else
		free(s->resp.p);
	s->resp = (struct buf){NULL, 0};
	return status;
}

/* One compressor per thread (a delivery thread compresses its own batches), freed with it. */
static pthread_key_t gz_key;
static pthread_once_t gz_once = PTHREAD_ONCE_INIT;

static void gz_free(void *c)
{
	libdeflate_free_compressor(c);
}

static void gz_init(void)
{
	pthread_key_create(&gz_key, gz_free);
}

static struct libdeflate_compressor *compressor(void)
{
	struct libdeflate_compressor *c;

	pthread_once(&gz_once, gz_init);
	if ((c = pthread_getspecific(gz_key)))
		return c;
	if ((c = libdeflate_alloc_compressor(AGT_HTTP_GZIP_LEVEL)))
		pthread_setspecific(gz_key, c);
	return c;
}

int agt_http_gzip_into(const void *in, size_t n, unsigned char **buf, size_t *cap, size_t *outn)
{
	struct libdeflate_compressor *c = compressor();
	size_t bound;

	if (!c)
		return -1;
	bound = libdeflate_gzip_compress_bound(c, n);
	if (bound > *cap) {
		unsigned char *b = realloc(*buf, bound);

		if (!b)
			return -1;
		*buf = b;
		*cap = bound;
	}
	*outn = libdeflate_gzip_compress(c, in, n, *buf, *cap);
	return *outn ? 0 : -1;
}

int agt_http_gzip(const void *in, size_t n, unsigned char **out, size_t *outn)
{
	size_t cap = 0;

	*out = NULL;
	return agt_http_gzip_into(in, n, out, &cap, outn);
}
