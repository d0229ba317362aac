#include "streams/conn.h"
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const agt_sdrop_names[AGT_SDROP_MAX] = {
    "capture_gap_bytes",	"not_http",	"http2",
    "response_without_request", "conn_evicted", "pending_requests_full"};

struct dir_state {
	struct agt_http_dir *http;
	uint64_t call_len, got; /* the TLS call being reassembled */
	int in_call;
};

struct conn {
	struct conn *next;
	uint32_t pid;
	uint64_t id;
	const struct agt_proc_info *proc;
	struct dir_state d[2];
	struct agt_http_msg **pending; /* requests waiting for their response, oldest first */
	int npending;
	int http2;
	int source;    /* enum agt_source */
	char peer[64]; /* TCP: address:port of the other end */
	uint64_t last_ns;
	struct agt_streams *owner;
};

struct agt_streams {
	struct conn *conns;
	unsigned nconns, max_conns;
	size_t msg_cap;
	agt_exchange_cb cb;
	void *ctx;
	uint64_t drops[AGT_SDROP_MAX];
};

static void on_msg(void *ctx, struct agt_http_msg *m)
{
	struct conn *c = ctx;
	struct agt_streams *s = c->owner;

	m->source = c->source;
	snprintf(m->peer, sizeof(m->peer), "%s", c->peer);
	if (m->is_request) {
		struct agt_http_msg **n = NULL;

		if (c->npending >= 64 ||
		    !(n = realloc(c->pending, (c->npending + 1) * sizeof(*n)))) {
			s->drops[AGT_SDROP_PENDING_FULL]++;
			agt_http_msg_free(m);
			return;
		}
		c->pending = n;
		c->pending[c->npending++] = m;
		return;
	}
	if (!c->npending) {
		s->drops[AGT_SDROP_ORPHAN_RESP]++;
		agt_http_msg_free(m);
		return;
	}
	struct agt_http_msg *req = c->pending[0];

	memmove(c->pending, c->pending + 1, --c->npending * sizeof(*c->pending));
	s->cb(s->ctx, c->proc, req, m);
}

struct agt_streams *agt_streams_new(size_t msg_cap, unsigned max_conns, agt_exchange_cb cb,
				    void *ctx)
{
	struct agt_streams *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->msg_cap = msg_cap;
	s->max_conns = max_conns;
	s->cb = cb;
	s->ctx = ctx;
	return s;
}

static void conn_free(struct agt_streams *s, struct conn *c, uint64_t ts, int hand_over)
{
	for (int d = 0; d < 2; d++) {
		if (hand_over)
			agt_http_dir_close(c->d[d].http, ts);
		agt_http_dir_free(c->d[d].http);
	}
	for (int i = 0; i < c->npending; i++) {
		if (hand_over)
			s->cb(s->ctx, c->proc, c->pending[i], NULL);
		else
			agt_http_msg_free(c->pending[i]);
	}
	free(c->pending);
	free(c);
	s->nconns--;
}

static struct conn *conn_get(struct agt_streams *s, const struct agt_proc_info *proc, uint32_t pid,
			     uint64_t id, uint64_t ts)
{
	struct conn **pp, *c, **last = NULL;

	/* Most recently used first: a burst of records of one connection finds it at once, and
	 * the least recently used one is the last. */
	for (pp = &s->conns; *pp; pp = &(*pp)->next) {
		c = *pp;
		if (c->pid == pid && c->id == id) {
			if (pp != &s->conns) {
				*pp = c->next;
				c->next = s->conns;
				s->conns = c;
			}
			return c;
		}
		last = pp;
	}
	if (s->nconns >= s->max_conns && last) {
		c = *last;
		*last = c->next;
		s->drops[AGT_SDROP_CONN_EVICTED]++;
		conn_free(s, c, ts, 1);
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->pid = pid;
	c->id = id;
	c->source = -1;
	c->proc = proc;
	c->owner = s;
	for (int d = 0; d < 2; d++)
		c->d[d].http = agt_http_dir_new(s->msg_cap, on_msg, c);
	c->next = s->conns;
	s->conns = c;
	s->nconns++;
	return c;
}

static void format_peer(const struct agt_data *e, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	inet_ntop(e->family == AF_INET6 ? AF_INET6 : AF_INET, e->peer_addr, ip, sizeof(ip));
	snprintf(out, n, e->family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, e->peer_port);
}

static void gap(struct agt_streams *s, struct dir_state *d, uint64_t n, uint64_t ts)
{
	if (!n)
		return;
	s->drops[AGT_SDROP_GAP_BYTES] += n;
	agt_http_dir_gap(d->http, n, ts);
}

void agt_streams_feed(struct agt_streams *s, const struct agt_proc_info *proc, const struct agt_data *e)
{
	static const char h2_preface[] = "PRI * HTTP/2.0\r\n";
	struct conn *c = conn_get(s, proc, e->h.pid, e->conn, e->h.ts_ns);
	struct dir_state *d;
	uint64_t want, ts = e->dir == AGT_DIR_EGRESS ? e->call_start_ns : e->h.ts_ns;

	if (!c)
		return;
	c->last_ns = e->h.ts_ns;
	if (c->source < 0) {
		c->source = e->source;
		if (e->family)
			format_peer(e, c->peer, sizeof(c->peer));
	}
	if (!c->http2 && e->offset == 0 && e->len >= sizeof(h2_preface) - 1 &&
	    !memcmp(e->data, h2_preface, sizeof(h2_preface) - 1))
		c->http2 = 1;
	if (c->http2) {
		if (e->offset == 0)
			s->drops[AGT_SDROP_HTTP2]++;
		return;
	}
	d = &c->d[e->dir & 1];
	/* What the kernel sends of this call (it may cap it lower than we would). */
	want = e->captured && e->captured < e->call_len ? e->captured : e->call_len;
	if (want > s->msg_cap)
		want = s->msg_cap;
	if (e->offset == 0) {
		if (d->in_call && d->got < d->call_len) /* the end of the last call never came */
			gap(s, d, d->call_len - d->got, ts);
		d->in_call = 1;
		d->call_len = e->call_len;
		d->got = 0;
	} else if (!d->in_call || e->offset != d->got) {
		gap(s, d, d->in_call ? e->offset - d->got : e->offset, ts);
		d->in_call = 1;
		d->call_len = e->call_len;
	}
	if (agt_http_dir_feed(d->http, e->data, e->len, ts, e->h.tid) && e->offset == 0)
		s->drops[AGT_SDROP_NOT_HTTP]++;
	d->got = e->offset + e->len;
	if (d->got >= want) {
		if (e->call_len > want) /* the rest of the call was over the cap */
			gap(s, d, e->call_len - want, ts);
		d->in_call = 0;
	}
}

/* Close the connections of pid (0: all), or of proc when it is given. */
static void close_where(struct agt_streams *s, uint32_t pid, const struct agt_proc_info *proc,
			uint64_t ts)
{
	struct conn **pp = &s->conns;

	while (*pp) {
		struct conn *c = *pp;

		if (proc ? c->proc != proc : pid && c->pid != pid) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		conn_free(s, c, ts, 1);
	}
}

void agt_streams_close(struct agt_streams *s, uint32_t pid, uint64_t ts)
{
	close_where(s, pid, NULL, ts);
}

void agt_streams_close_proc(struct agt_streams *s, const struct agt_proc_info *proc, uint64_t ts)
{
	close_where(s, 0, proc, ts);
}

const uint64_t *agt_streams_drops(const struct agt_streams *s)
{
	return s->drops;
}

void agt_streams_free(struct agt_streams *s)
{
	if (!s)
		return;
	while (s->conns) {
		struct conn *c = s->conns;

		s->conns = c->next;
		conn_free(s, c, 0, 0);
	}
	free(s);
}
