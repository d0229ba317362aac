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
#include <string.h>
#include <zlib.h>

struct agt_http_client {
	CURL *curl;
	char base[1024];
	char auth[600];	    /* "Authorization: ApiKey ..." or "" */
	char user[256];	    /* basic auth, "" when none */
	char password[512]; /* its password */
	char ca[1024];
	int insecure;
	char cert[1024], key[1024];
	struct curl_slist *extra; /* the exporter's own request headers */
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

struct buf {
	char *p;
	size_t n;
};

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

long agt_http_request(struct agt_http_client *h, const char *method, const char *path,
		      const char *content_type, const char *encoding, const void *body, size_t len,
		      long timeout_ms, char **resp)
{
	return agt_http_request_len(h, method, path, content_type, encoding, body, len, timeout_ms,
				    resp, NULL);
}

long agt_http_request_len(struct agt_http_client *h, const char *method, const char *path,
			  const char *content_type, const char *encoding, const void *body,
			  size_t len, long timeout_ms, char **resp, size_t *resp_len)
{
	struct curl_slist *hdrs = NULL;
	struct buf b = {NULL, 0};
	char url[2048], line[256];
	long status = 0;

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
	curl_easy_reset(h->curl);
	curl_easy_setopt(h->curl, CURLOPT_USERAGENT, (const char *)agt_user_agent);
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, collect); /* never onto our stdout */
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &b);
	if (h->ca[0])
		curl_easy_setopt(h->curl, CURLOPT_CAINFO, h->ca);
	if (h->cert[0])
		curl_easy_setopt(h->curl, CURLOPT_SSLCERT, h->cert);
	if (h->key[0])
		curl_easy_setopt(h->curl, CURLOPT_SSLKEY, h->key);
	if (h->insecure) {
		curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (h->user[0]) {
		curl_easy_setopt(h->curl, CURLOPT_USERNAME, h->user);
		curl_easy_setopt(h->curl, CURLOPT_PASSWORD, h->password);
	}
	if (curl_easy_perform(h->curl) == CURLE_OK)
		curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	if (resp_len)
		*resp_len = b.n;
	if (resp)
		*resp = b.p;
	else
		free(b.p);
	return status;
}

int agt_http_gzip(const void *in, size_t n, unsigned char **out, size_t *outn)
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
