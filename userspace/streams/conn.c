#include "streams/conn.h"
#include "protocols/proto.h"
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DETECT_MAX 64 /* first bytes kept while no protocol has decided */
#define MAX_PROTOS 8

static const char *const sdrop_names[AGT_SDROP_MAX] = {"capture_gap_bytes", "conn_evicted",
						       "unknown_protocol", "conns_closed"};

/* One direction's captured calls: a call of call_len bytes arrives as chunks. */
struct dir_state {
	uint64_t call_len, got;
	int in_call;
};

struct conn {
	struct conn *next;
	uint32_t pid;
	uint64_t id;
	const struct agt_proc_info *proc;
	struct dir_state d[2];
	int source;    /* enum agt_source */
	char peer[64]; /* TCP: address:port of the other end */
	int decided;   /* a protocol was chosen (or none will be: proto NULL) */
	int slot;      /* the chosen protocol's index in the stream layer */
	void *ps;      /* its state for this connection */
	uint8_t head[DETECT_MAX];
	size_t nhead;
	int head_dir;
	uint64_t head_ts;
	uint32_t head_tid;
	struct agt_proto_out out; /* ctx: this connection */
	struct agt_streams *owner;
};

/* A process that fed data: what the protocols' per-process state is handed over for. */
struct procref {
	struct procref *next;
	uint32_t pid;
	const struct agt_proc_info *proc;
	struct agt_streams *owner;
};

struct proto_slot {
	const struct agt_proto *p;
	void *shared;
	uint64_t *drops;
};

struct agt_streams {
	struct conn *conns;
	unsigned nconns, max_conns;
	size_t msg_cap;
	struct agt_streams_out out;
	struct proto_slot protos[MAX_PROTOS];
	int nprotos;
	struct procref *procs;
	uint64_t drops[AGT_SDROP_MAX];
};

/* ---- results of a connection's protocol, with what the stream layer knows added ---- */

static void conn_exchange(void *ctx, struct agt_http_msg *req, struct agt_http_msg *resp)
{
	struct conn *c = ctx;

	for (struct agt_http_msg *m = req; m; m = m == req ? resp : NULL) {
		m->pid = c->pid;
		m->source = c->source;
		snprintf(m->peer, sizeof(m->peer), "%s", c->peer);
	}
	c->owner->out.exchange(c->owner->out.ctx, c->proc, req, resp);
}

static void conn_mcp(void *ctx, const struct agt_mcp_call *call)
{
	struct conn *c = ctx;

	c->owner->out.mcp_call(c->owner->out.ctx, c->proc, call);
}

static void proc_exchange(void *ctx, struct agt_http_msg *req, struct agt_http_msg *resp)
{
	struct procref *r = ctx;

	for (struct agt_http_msg *m = req; m; m = m == req ? resp : NULL)
		m->pid = r->pid;
	r->owner->out.exchange(r->owner->out.ctx, r->proc, req, resp);
}

static void proc_mcp(void *ctx, const struct agt_mcp_call *call)
{
	struct procref *r = ctx;

	r->owner->out.mcp_call(r->owner->out.ctx, r->proc, call);
}

struct agt_streams *agt_streams_new(size_t msg_cap, unsigned max_conns,
				    const struct agt_streams_out *out)
{
	struct agt_streams *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->msg_cap = msg_cap;
	s->max_conns = max_conns;
	s->out = *out;
	for (int i = 0; agt_protocols[i] && s->nprotos < MAX_PROTOS; i++) {
		struct proto_slot *ps = &s->protos[s->nprotos++];

		ps->p = agt_protocols[i];
		ps->drops = calloc(ps->p->ndrops ? ps->p->ndrops : 1, sizeof(uint64_t));
		if (!ps->drops) {
			agt_streams_free(s);
			return NULL;
		}
		if (ps->p->init && !(ps->shared = ps->p->init(msg_cap, ps->drops))) {
			agt_streams_free(s);
			return NULL;
		}
	}
	return s;
}

static void conn_free(struct agt_streams *s, struct conn *c, uint64_t ts, int hand_over)
{
	if (c->decided && c->slot >= 0) {
		const struct agt_proto *p = s->protos[c->slot].p;

		if (hand_over)
			p->close(c->ps, ts);
		p->free(c->ps);
	}
	free(c);
	s->nconns--;
}

static void note_proc(struct agt_streams *s, const struct agt_proc_info *proc, uint32_t pid)
{
	struct procref *r;

	for (r = s->procs; r; r = r->next)
		if (r->pid == pid && r->proc == proc)
			return;
	if (!(r = calloc(1, sizeof(*r))))
		return;
	r->pid = pid;
	r->proc = proc;
	r->owner = s;
	r->next = s->procs;
	s->procs = r;
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
	c->slot = -1;
	c->proc = proc;
	c->owner = s;
	c->out = (struct agt_proto_out){conn_exchange, conn_mcp, c};
	c->next = s->conns;
	s->conns = c;
	s->nconns++;
	note_proc(s, proc, pid);
	return c;
}

static void format_peer(const struct agt_data *e, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	inet_ntop(e->family == AF_INET6 ? AF_INET6 : AF_INET, e->peer_addr, ip, sizeof(ip));
	snprintf(out, n, e->family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, e->peer_port);
}

/* Bytes to the connection's protocol. A protocol that says the connection switched protocols
 * (HTTP/1.1's Upgrade) hands over the request the switch answers; the protocol it names adopts
 * the connection and gets the rest of the bytes. One that cannot (none is registered by that
 * name, or no memory) leaves the request unanswered and the connection nobody's. */
static void feed(struct agt_streams *s, struct conn *c, int dir, const uint8_t *data, size_t len,
		 uint64_t ts, uint32_t tid)
{
	while (c->slot >= 0) {
		const struct agt_proto *p = s->protos[c->slot].p;
		struct agt_proto_switch sw = {0};
		void *ps = NULL;
		int to = -1;

		if (p->feed(c->ps, dir, data, len, ts, tid) != AGT_FEED_SWITCH || !p->switched)
			return;
		p->switched(c->ps, &sw);
		for (int i = 0; i < s->nprotos && sw.to; i++)
			if (s->protos[i].p->adopt && !strcmp(s->protos[i].p->name, sw.to))
				to = i;
		if (to >= 0)
			ps = s->protos[to].p->adopt(s->protos[to].shared, c->pid, s->msg_cap,
						    s->protos[to].drops, &c->out, sw.req);
		else if (sw.req)
			c->out.exchange(c->out.ctx, sw.req, NULL);
		p->close(c->ps, ts);
		p->free(c->ps);
		c->ps = ps;
		c->slot = ps ? to : -1;
		if (sw.used >= len)
			return;
		data += sw.used;
		len -= sw.used;
	}
}

/* Ask the protocols about the connection's first bytes; final: no more will come before a
 * decision is needed (another direction spoke, or a gap). */
static void decide(struct agt_streams *s, struct conn *c, int final)
{
	int more = 0;

	for (int i = 0; i < s->nprotos && !c->decided; i++) {
		const struct agt_proto *p = s->protos[i].p;
		enum agt_detect d;

		if (!(p->sources & (1u << c->source)))
			continue;
		d = p->detect(c->head, c->nhead, c->head_dir);
		if (d == AGT_DETECT_YES) {
			c->slot = i;
			c->ps = p->open(s->protos[i].shared, c->pid, s->msg_cap, s->protos[i].drops,
					&c->out);
			c->decided = 1;
		}
		more |= d == AGT_DETECT_MORE;
	}
	if (c->decided && !c->ps) { /* out of memory: treat as unknown */
		c->slot = -1;
	} else if (c->decided) {
		feed(s, c, c->head_dir, c->head, c->nhead, c->head_ts, c->head_tid);
	} else if (!more || final || c->nhead == DETECT_MAX) {
		c->decided = 1; /* nobody's: its calls are counted and dropped */
		c->slot = -1;
	}
}

/* Bytes of one direction, in order, to the connection's protocol (deciding it first). */
static void deliver(struct agt_streams *s, struct conn *c, int dir, const uint8_t *data,
		    size_t len, uint64_t ts, uint32_t tid)
{
	if (!c->decided && c->nhead && dir != c->head_dir)
		decide(s, c, 1); /* the other side spoke before anything was decided */
	while (!c->decided && len) {
		size_t k = DETECT_MAX - c->nhead < len ? DETECT_MAX - c->nhead : len;

		if (!c->nhead) {
			c->head_dir = dir;
			c->head_ts = ts;
			c->head_tid = tid;
		}
		memcpy(c->head + c->nhead, data, k);
		c->nhead += k;
		data += k;
		len -= k;
		decide(s, c, 0);
	}
	if (c->decided && c->slot >= 0 && len)
		feed(s, c, dir, data, len, ts, tid);
}

static void gap(struct agt_streams *s, struct conn *c, int dir, uint64_t n, uint64_t ts)
{
	if (!n)
		return;
	s->drops[AGT_SDROP_GAP_BYTES] += n;
	if (!c->decided)
		decide(s, c, 1);
	if (c->slot >= 0)
		s->protos[c->slot].p->gap(c->ps, dir, n, ts);
}

void agt_streams_feed(struct agt_streams *s, const struct agt_proc_info *proc,
		      const struct agt_data *e)
{
	struct conn *c = conn_get(s, proc, e->h.pid, e->conn, e->h.ts_ns);
	struct dir_state *d;
	int dir = e->dir & 1;
	uint64_t want, ts = dir == AGT_DIR_EGRESS ? e->call_start_ns : e->h.ts_ns;

	if (!c)
		return;
	if (c->source < 0) {
		c->source = e->source;
		if (e->family)
			format_peer(e, c->peer, sizeof(c->peer));
	}
	d = &c->d[dir];
	/* What the kernel sends of this call (it may cap it lower than we would). */
	want = e->captured && e->captured < e->call_len ? e->captured : e->call_len;
	if (want > s->msg_cap)
		want = s->msg_cap;
	if (e->offset == 0) {
		if (d->in_call && d->got < d->call_len) /* the end of the last call never came */
			gap(s, c, dir, d->call_len - d->got, ts);
		d->in_call = 1;
		d->call_len = e->call_len;
		d->got = 0;
	} else if (!d->in_call || e->offset != d->got) {
		gap(s, c, dir, d->in_call ? e->offset - d->got : e->offset, ts);
		d->in_call = 1;
		d->call_len = e->call_len;
	}
	deliver(s, c, dir, e->data, e->len, ts, e->h.tid);
	if (c->decided && c->slot < 0 && e->offset == 0)
		s->drops[AGT_SDROP_UNKNOWN]++;
	d->got = e->offset + e->len;
	if (d->got >= want) {
		if (e->call_len > want) /* the rest of the call was over the cap */
			gap(s, c, dir, e->call_len - want, ts);
		d->in_call = 0;
	}
}

/* Close the connections of pid (0: all), or of proc when it is given; then the protocols'
 * per-process state of the same processes. */
static void close_where(struct agt_streams *s, uint32_t pid, const struct agt_proc_info *proc,
			uint64_t ts)
{
	for (struct conn **pp = &s->conns; *pp;) {
		struct conn *c = *pp;

		if (proc ? c->proc != proc : pid && c->pid != pid) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		conn_free(s, c, ts, 1);
	}
	for (struct procref **rp = &s->procs; *rp;) {
		struct procref *r = *rp;
		struct agt_proto_out out = {proc_exchange, proc_mcp, r};

		if (proc ? r->proc != proc : pid && r->pid != pid) {
			rp = &r->next;
			continue;
		}
		for (int i = 0; i < s->nprotos; i++)
			if (s->protos[i].p->proc_gone)
				s->protos[i].p->proc_gone(s->protos[i].shared, r->pid, ts, &out);
		*rp = r->next;
		free(r);
	}
}

void agt_streams_close_conn(struct agt_streams *s, uint32_t pid, uint64_t id, uint64_t ts)
{
	for (struct conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
		struct conn *c = *pp;

		if (c->pid != pid || c->id != id)
			continue;
		*pp = c->next;
		s->drops[AGT_SDROP_CLOSED]++;
		conn_free(s, c, ts, 1);
		return;
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

void agt_streams_drops(const struct agt_streams *s, agt_drop_fn fn, void *ctx)
{
	for (int i = 0; i < AGT_SDROP_MAX; i++)
		fn(ctx, sdrop_names[i], s->drops[i],
		   i != AGT_SDROP_GAP_BYTES && i != AGT_SDROP_CLOSED);
	for (int i = 0; i < s->nprotos; i++)
		for (int k = 0; k < s->protos[i].p->ndrops; k++)
			fn(ctx, s->protos[i].p->drop_names[k], s->protos[i].drops[k], 1);
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
	while (s->procs) {
		struct procref *r = s->procs;

		s->procs = r->next;
		free(r);
	}
	for (int i = 0; i < s->nprotos; i++) {
		if (s->protos[i].p->fini && s->protos[i].shared)
			s->protos[i].p->fini(s->protos[i].shared);
		free(s->protos[i].drops);
	}
	free(s);
}

static void stage_gone(void *self, uint32_t pid, uint64_t ts)
{
	agt_streams_close(self, pid, ts);
}

static void stage_forget(void *self, const struct agt_proc_info *proc, uint64_t ts)
{
	agt_streams_close_proc(self, proc, ts);
}

static void stage_flush(void *self, uint64_t ts)
{
	agt_streams_close(self, 0, ts);
}

static void stage_drops(const void *self, agt_drop_fn fn, void *ctx)
{
	agt_streams_drops(self, fn, ctx);
}

const struct agt_stage_ops agt_streams_stage = {"streams", stage_gone, stage_forget, stage_flush,
						stage_drops};
