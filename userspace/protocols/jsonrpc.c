/* Newline-delimited JSON-RPC 2.0 over local IPC, as a protocol of the stream layer: lines are
 * put together per connection and direction (a capture gap drops the line it cuts, counted);
 * requests the process writes (egress) are paired with the responses it reads (ingress) by id,
 * per process, across connections: an MCP client writes to the server's stdin pipe and reads
 * its stdout pipe. tools/call pairs become MCP tool calls. */
#include "protocols/jsonrpc.h"
#include "protocols/proto.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PENDING 1024

enum {
	J_NOT_JSON = 0,	    /* lines that did not parse */
	J_LONG_LINE = 1,    /* lines over the cap: dropped */
	J_UNMATCHED = 2,    /* responses to requests not seen (attached mid-call) */
	J_PENDING_FULL = 3, /* requests dropped: too many waiting */
	J_LINES_CUT = 4,    /* lines a capture gap cut: dropped */
	J_DROPS = 5,
};
static const char *const jdrop_names[J_DROPS] = {
    "jsonrpc_not_json", "jsonrpc_long_line", "jsonrpc_unmatched_response", "jsonrpc_pending_full",
    "jsonrpc_lines_cut"};

struct pending {
	struct pending *next;
	uint32_t pid;
	struct agt_mcp_call c;
};

/* Shared by one stream layer's JSON-RPC connections: calls waiting for their answer. */
struct jshared {
	struct pending *pending;
	unsigned npending;
	uint64_t *drops;
};

struct linebuf {
	char *buf;
	size_t len;
	int skip; /* dropping up to the next newline (over the cap, or cut by a gap) */
	int cut;  /* what is skipped was cut by a gap (counted as such) */
};

struct jconn {
	struct jshared *sh;
	uint32_t pid;
	size_t cap;
	struct linebuf d[2];
	const struct agt_proto_out *out;
};

static void done(struct jshared *sh, struct pending *p, const struct agt_proto_out *out)
{
	out->mcp_call(out->ctx, &p->c);
	agt_mcp_call_free(&p->c);
	free(p);
	sh->npending--;
}

static void on_line(struct jconn *jc, int dir, const char *line, uint64_t ts, uint32_t tid)
{
	struct jshared *j = jc->sh;
	cJSON *o = cJSON_Parse(line);
	const cJSON *method, *id;
	char idt[64];

	if (!cJSON_IsObject(o)) {
		j->drops[J_NOT_JSON]++;
		cJSON_Delete(o);
		return;
	}
	method = cJSON_GetObjectItemCaseSensitive(o, "method");
	id = cJSON_GetObjectItemCaseSensitive(o, "id");
	agt_jsonrpc_id(id, idt, sizeof(idt));
	if (cJSON_IsString(method) && idt[0]) {
		/* A request. Only the caller's side makes a span (a traced server would see the
		 * same call arriving): requests this process writes. */
		struct pending *p;

		if (strcmp(method->valuestring, "tools/call") || dir != AGT_DIR_EGRESS)
			goto out;
		if (j->npending >= MAX_PENDING || !(p = calloc(1, sizeof(*p)))) {
			j->drops[J_PENDING_FULL]++;
			goto out;
		}
		p->pid = jc->pid;
		agt_mcp_request(o, &p->c);
		p->c.start_ns = ts;
		p->c.pid = jc->pid;
		p->c.tid = tid;
		p->next = j->pending;
		j->pending = p;
		j->npending++;
	} else if (idt[0] && dir == AGT_DIR_INGRESS &&
		   (cJSON_GetObjectItemCaseSensitive(o, "result") ||
		    cJSON_GetObjectItemCaseSensitive(o, "error"))) {
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(o, "result");
		struct pending **pp = &j->pending;

		while (*pp && ((*pp)->pid != jc->pid || strcmp((*pp)->c.id, idt)))
			pp = &(*pp)->next;
		if (!*pp) { /* other methods' responses come here too: only count tools/call ones */
			if (res && cJSON_GetObjectItemCaseSensitive(res, "content"))
				j->drops[J_UNMATCHED]++;
			goto out;
		}
		struct pending *p = *pp;

		*pp = p->next;
		p->c.end_ns = ts;
		agt_mcp_answer(o, &p->c);
		done(j, p, jc->out);
	}
out:
	cJSON_Delete(o);
}

/* A connection that starts with an object is newline-delimited JSON. */
static enum agt_detect j_detect(const uint8_t *data, size_t len, int dir)
{
	(void)dir;
	if (!len)
		return AGT_DETECT_MORE;
	return data[0] == '{' ? AGT_DETECT_YES : AGT_DETECT_NO;
}

static void *j_init(size_t cap, uint64_t *drops)
{
	struct jshared *sh = calloc(1, sizeof(*sh));

	(void)cap;
	if (sh)
		sh->drops = drops;
	return sh;
}

static void j_fini(void *shared)
{
	struct jshared *sh = shared;

	while (sh->pending) {
		struct pending *p = sh->pending;

		sh->pending = p->next;
		agt_mcp_call_free(&p->c);
		free(p);
	}
	free(sh);
}

/* A process is gone: its calls still waiting end unanswered. */
static void j_proc_gone(void *shared, uint32_t pid, uint64_t ts, const struct agt_proto_out *out)
{
	struct jshared *sh = shared;

	for (struct pending **pp = &sh->pending; *pp;) {
		struct pending *p = *pp;

		if (p->pid != pid) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->c.end_ns = ts;
		done(sh, p, out);
	}
}

static void *j_open(void *shared, uint32_t pid, size_t cap, uint64_t *drops,
		    const struct agt_proto_out *out)
{
	struct jconn *jc = calloc(1, sizeof(*jc));

	(void)drops;
	if (!jc)
		return NULL;
	jc->sh = shared;
	jc->pid = pid;
	jc->cap = cap;
	jc->out = out;
	return jc;
}

static int j_feed(void *conn, int dir, const uint8_t *data, size_t len, uint64_t ts,
		  uint32_t tid)
{
	struct jconn *jc = conn;
	struct linebuf *lb = &jc->d[dir & 1];
	const char *p = (const char *)data, *end = p + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (!lb->skip && lb->len + n <= jc->cap) {
			char *nb = realloc(lb->buf, lb->len + n + 1);

			if (nb) {
				memcpy(nb + lb->len, p, n);
				lb->buf = nb;
				lb->len += n;
				lb->buf[lb->len] = 0;
			} else {
				lb->skip = 1;
			}
		} else {
			lb->skip = 1;
		}
		if (nl) {
			if (lb->skip)
				jc->sh->drops[lb->cut ? J_LINES_CUT : J_LONG_LINE]++;
			else if (lb->len)
				on_line(jc, dir & 1, lb->buf, ts, tid);
			lb->len = 0;
			lb->skip = lb->cut = 0;
		}
		p += n + (nl ? 1 : 0);
	}
	return 0;
}

/* Bytes the capture missed: the line they fall in is dropped, up to its newline. */
static void j_gap(void *conn, int dir, uint64_t n, uint64_t ts)
{
	struct linebuf *lb = &((struct jconn *)conn)->d[dir & 1];

	(void)n;
	(void)ts;
	lb->len = 0;
	lb->skip = lb->cut = 1;
}

static void j_close(void *conn, uint64_t ts)
{
	(void)conn;
	(void)ts; /* calls wait in the shared state for their process's end */
}

static void j_free(void *conn)
{
	struct jconn *jc = conn;

	for (int d = 0; d < 2; d++)
		free(jc->d[d].buf);
	free(jc);
}

const struct agt_proto agt_proto_jsonrpc = {
    .name = "jsonrpc",
    .sources = 1u << AGT_SRC_IPC,
    .drop_names = jdrop_names,
    .ndrops = J_DROPS,
    .detect = j_detect,
    .init = j_init,
    .fini = j_fini,
    .proc_gone = j_proc_gone,
    .open = j_open,
    .feed = j_feed,
    .gap = j_gap,
    .close = j_close,
    .free = j_free,
};
