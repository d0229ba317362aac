/* A cleartext HTTP/2 (h2c) server for tests, on libnghttp2's session API: a client either
 * starts with the connection preface (prior knowledge, curl --http2-prior-knowledge) or sends
 * an HTTP/1.1 request with "Upgrade: h2c" (curl --http2 on an http:// URL), which is answered
 * "101 Switching Protocols" and then as stream 1 of the HTTP/2 connection. Every POST gets a
 * chat completion in OpenAI's wire format: the model is the request's with "-2024-08-06"
 * appended, usage prompt_tokens 42, completion_tokens 7, and the answer's "proto" says how the
 * request came ("h2c" or "h2c-upgrade"). One connection at a time.
 *   h2c_server -> prints "listening PORT" (127.0.0.1) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_STREAMS 64

struct stream {
	int32_t id;
	char body[65536];
	size_t n;
	char answer[1024];
	size_t alen, sent;
	char clen[16];
};

struct conn {
	int fd;
	const char *proto;
	struct stream st[MAX_STREAMS];
	int nst;
};

static struct stream *stream_of(struct conn *c, int32_t id, int create)
{
	for (int i = 0; i < c->nst; i++)
		if (c->st[i].id == id)
			return &c->st[i];
	if (!create || c->nst == MAX_STREAMS)
		return NULL;
	memset(&c->st[c->nst], 0, sizeof(c->st[0]));
	c->st[c->nst].id = id;
	return &c->st[c->nst++];
}

static int write_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k <= 0)
			return -1;
		p = (const char *)p + k;
		n -= k;
	}
	return 0;
}

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *u)
{
	(void)s;
	(void)flags;
	return write_all(((struct conn *)u)->fd, data, len) ? NGHTTP2_ERR_CALLBACK_FAILURE
							    : (ssize_t)len;
}

static ssize_t read_answer(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
			   uint32_t *flags, nghttp2_data_source *src, void *u)
{
	struct stream *st = src->ptr;
	size_t k = st->alen - st->sent < len ? st->alen - st->sent : len;

	(void)s;
	(void)id;
	(void)u;
	memcpy(buf, st->answer + st->sent, k);
	st->sent += k;
	if (st->sent == st->alen)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return k;
}

/* The request's "model" value, or "unknown". */
static void model_of(const struct stream *st, char *out, size_t n)
{
	char body[sizeof(st->body) + 1];
	const char *p, *q;

	memcpy(body, st->body, st->n);
	body[st->n] = 0;
	snprintf(out, n, "unknown");
	if (!(p = strstr(body, "\"model\"")) || !(p = strchr(p + 7, '"')) ||
	    !(q = strchr(p + 1, '"')))
		return;
	snprintf(out, n, "%.*s", (int)(q - p - 1), p + 1);
}

static int respond(nghttp2_session *s, struct conn *c, struct stream *st)
{
	char model[128];
	nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_answer};
	nghttp2_nv nv[] = {
	    {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
	    {(uint8_t *)"content-type", (uint8_t *)"application/json", 12, 16,
	     NGHTTP2_NV_FLAG_NONE},
	    {(uint8_t *)"content-length", (uint8_t *)st->clen, 14, 0, NGHTTP2_NV_FLAG_NONE},
	};

	model_of(st, model, sizeof(model));
	st->alen = snprintf(
	    st->answer, sizeof(st->answer),
	    "{\"id\":\"chatcmpl-h2c-%d\",\"object\":\"chat.completion\","
	    "\"model\":\"%s-2024-08-06\",\"proto\":\"%s\",\"choices\":[{\"index\":0,"
	    "\"finish_reason\":\"stop\",\"message\":{\"role\":\"assistant\","
	    "\"content\":\"Hello over cleartext.\"}}],"
	    "\"usage\":{\"prompt_tokens\":42,\"completion_tokens\":7,\"total_tokens\":49}}",
	    st->id, model, c->proto);
	nv[2].valuelen = snprintf(st->clen, sizeof(st->clen), "%zu", st->alen);
	return nghttp2_submit_response(s, st->id, nv, 3, &prd);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
	(void)s;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
		stream_of(u, f->hd.stream_id, 1);
	return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		   void *u)
{
	struct stream *st = stream_of(u, id, 0);

	(void)s;
	(void)flags;
	if (st && len <= sizeof(st->body) - st->n) {
		memcpy(st->body + st->n, data, len);
		st->n += len;
	}
	return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
	struct stream *st;

	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM) || !(st = stream_of(u, f->hd.stream_id, 0)))
		return 0;
	return respond(s, u, st) ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

/* base64url (no padding) of HTTP2-Settings into out; its length, or -1. */
static int b64url(const char *in, uint8_t *out, size_t cap)
{
	unsigned acc = 0, bits = 0;
	size_t n = 0;

	for (; *in && *in != '\r'; in++) {
		const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		const char *p = strchr(a, *in);

		if (*in == '=')
			break;
		if (!p)
			return -1;
		acc = acc << 6 | (unsigned)(p - a);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == cap)
				return -1;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	return (int)n;
}

/* The value of header name in an HTTP/1.1 head, or NULL. */
static const char *header(const char *head, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n"))
		if (!strncasecmp(l + 2, name, n) && l[2 + n] == ':')
			return l + 3 + n + strspn(l + 3 + n, " ");
	return NULL;
}

static void serve(int fd)
{
	static char buf[1 << 17];
	nghttp2_session_callbacks *cb;
	nghttp2_session *s;
	struct conn *c = calloc(1, sizeof(*c));
	size_t have = 0, used = 0;
	char *end;

	c->fd = fd;
	c->proto = "h2c";
	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_send_callback(cb, send_cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
	nghttp2_session_server_new(&s, cb, c);
	nghttp2_session_callbacks_del(cb);
	/* The first bytes: the preface, or an HTTP/1.1 request head. */
	while (have < 24 || (memcmp(buf, "PRI ", 4) && !strstr(buf, "\r\n\r\n"))) {
		ssize_t k = read(fd, buf + have, sizeof(buf) - 1 - have);

		if (k <= 0)
			goto out;
		have += k;
		buf[have] = 0;
	}
	nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
	if (memcmp(buf, "PRI ", 4)) {
		const char *up = header(buf, "Upgrade"), *set = header(buf, "HTTP2-Settings");
		const char *cl = header(buf, "Content-Length");
		size_t head = (end = strstr(buf, "\r\n\r\n")) + 4 - buf, blen = cl ? atoi(cl) : 0;
		uint8_t settings[256];
		int ns = set ? b64url(set, settings, sizeof(settings)) : -1;
		struct stream *st;
		static const char sw[] =
		    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
		    "Upgrade: h2c\r\n\r\n";

		if (!up || strncasecmp(up, "h2c", 3) || ns < 0 || blen > sizeof(c->st[0].body)) {
			static const char no[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
						 "Connection: close\r\n\r\n";

			write_all(fd, no, sizeof(no) - 1);
			goto out;
		}
		while (have < head + blen) {
			ssize_t k = read(fd, buf + have, sizeof(buf) - 1 - have);

			if (k <= 0)
				goto out;
			have += k;
		}
		c->proto = "h2c-upgrade";
		if (write_all(fd, sw, sizeof(sw) - 1) ||
		    nghttp2_session_upgrade2(s, settings, ns, 0, NULL))
			goto out;
		st = stream_of(c, 1, 1);
		memcpy(st->body, buf + head, blen);
		st->n = blen;
		if (respond(s, c, st))
			goto out;
		used = head + blen;
	}
	if (have > used && nghttp2_session_mem_recv(s, (uint8_t *)buf + used, have - used) < 0)
		goto out;
	for (;;) {
		ssize_t k;

		if (nghttp2_session_send(s) ||
		    (!nghttp2_session_want_read(s) && !nghttp2_session_want_write(s)))
			break;
		if ((k = read(fd, buf, sizeof(buf))) <= 0 ||
		    nghttp2_session_mem_recv(s, (uint8_t *)buf, k) < 0)
			break;
	}
out:
	nghttp2_session_del(s);
	free(c);
	close(fd);
}

int main(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 16) ||
	    getsockname(l, (struct sockaddr *)&a, &alen)) {
		perror("h2c_server");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("listening %d\n", ntohs(a.sin_port));
	for (;;) {
		int fd = accept(l, NULL, NULL);

		if (fd >= 0)
			serve(fd);
	}
}
