/* HTTP requests of one exporter (libcurl): its base URL, its own credentials, headers and TLS
 * settings, and nothing of any other exporter's; every request says User-Agent: agtrace/VERSION. Requests run on the exporter's delivery thread: one at a
 * time and blocking (agt_http_request), or up to AGT_HTTP_SLOTS at once, each on a connection of
 * its own (agt_http_start, then agt_http_wait for each): the caller prepares the next request
 * while the ones started travel and the server works on them. Connections are kept alive and
 * reused; no "Expect: 100-continue" round trip is asked for. */
#ifndef AGT_EXPORT_HTTP_H
#define AGT_EXPORT_HTTP_H
#include <stddef.h>
#include <stdint.h>

/* What one exporter was given. Secrets are read from files (or the environment variables the
 * exporter names), never taken from the command line. */
struct agt_http_config {
	const char *url;	   /* http(s)://host:port[/prefix] */
	const char *api_key_file;  /* Authorization: ApiKey ... */
	const char *api_key_env;   /* else this environment variable, when set */
	const char *user;	   /* basic auth */
	const char *password_file; /* its password; else password_env */
	const char *password_env;
	const char *ca_file; /* TLS: the CA bundle; verification is on unless insecure */
	int insecure;
	const char *client_cert, *client_key; /* TLS client certificate and key (PEM files) */
	const char *const *headers; /* more request headers, "Name: value" (copied) */
	int nheaders;
};

struct agt_http_client;
/* NULL with one sentence in err: not an http(s) URL, an unreadable credential file. what names
 * the option for messages ("--es"). */
struct agt_http_client *agt_http_client_new(const struct agt_http_config *c, const char *what,
					    char *err, size_t errlen);
void agt_http_client_free(struct agt_http_client *h);
/* The base URL, without a trailing slash or query. */
const char *agt_http_base(const struct agt_http_client *h);

/* method: "POST" or "PUT"; path appended to the base URL; body of len bytes with the given
 * content type (and Content-Encoding when encoding is not NULL). The response body goes to
 * *resp (malloc'd, NUL-terminated; NULL when there is none). Returns the HTTP status, or 0 when
 * no answer came (connection refused, reset, timeout). */
long agt_http_request(struct agt_http_client *h, const char *method, const char *path,
		      const char *content_type, const char *encoding, const void *body, size_t len,
		      long timeout_ms, char **resp);
/* The same, with the response body's length in *resp_len (a binary body may hold NULs). */
long agt_http_request_len(struct agt_http_client *h, const char *method, const char *path,
			  const char *content_type, const char *encoding, const void *body,
			  size_t len, long timeout_ms, char **resp, size_t *resp_len);
/* Why the last agt_http_request[_len] got no answer, in libcurl's words ("SSL certificate
 * problem: ...", "Operation timed out after ..."); "" after one that got an answer. */
const char *agt_http_error(const struct agt_http_client *h);
/* Requests in flight at once, at most (slots 0 .. AGT_HTTP_SLOTS - 1). */
#define AGT_HTTP_SLOTS 8
/* Start a request in slot (free: never started, or waited for) and return without waiting for
 * it; body must stay unchanged until agt_http_wait(slot). 0, or -1 when it cannot be started. */
int agt_http_start(struct agt_http_client *h, int slot, const char *method, const char *path,
		   const char *content_type, const char *encoding, const void *body, size_t len,
		   long timeout_ms);
/* Wait until the request in slot is over (and move the others on meanwhile): its HTTP status
 * (0: no answer) and response body as agt_http_request gives them. The slot is free again. */
long agt_http_wait(struct agt_http_client *h, int slot, char **resp);

/* gzip (libdeflate, level AGT_HTTP_GZIP_LEVEL) of n bytes into *out (malloc'd); 0 or -1. */
int agt_http_gzip(const void *in, size_t n, unsigned char **out, size_t *outn);
/* The same into a buffer reused from call to call (*buf of *cap bytes, grown as needed). */
int agt_http_gzip_into(const void *in, size_t n, unsigned char **buf, size_t *cap, size_t *outn);
/* libdeflate's level 1: about twice as fast as 6 here, some 15% more bytes on the wire. */
#define AGT_HTTP_GZIP_LEVEL 1
#endif
