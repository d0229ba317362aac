#include "protocols/jsonrpc.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BUFS 1024
#define MAX_PENDING 1024

const char *const agt_jdrop_names[AGT_JDROP_MAX] = {
    "jsonrpc_not_json", "jsonrpc_long_line", "jsonrpc_unmatched_response", "jsonrpc_pending_full"};

struct linebuf { /* bytes of one direction of one connection up to the next newline */
	struct linebuf *next;
	uint32_t pid;
	uint64_t conn;
	uint8_t dir;
	char *buf;
	size_t len;
	int overflow;
	const struct agt_proc_info *proc;
};

struct pending {
	struct pending *next;
	uint32_t pid;
	const struct agt_proc_info *proc;
	struct agt_mcp_call c;
};

struct agt_jsonrpc {
	struct linebuf *bufs;
	unsigned nbufs, npending;
	struct pending *pending;
	size_t cap;
	agt_mcp_cb cb;
	void *ctx;
	uint64_t drops[AGT_JDROP_MAX];
};

struct agt_jsonrpc *agt_jsonrpc_new(size_t line_cap, agt_mcp_cb cb, void *ctx)
{
	struct agt_jsonrpc *j = calloc(1, sizeof(*j));

	if (j) {
		j->cap = line_cap;
		j->cb = cb;
		j->ctx = ctx;
	}
	return j;
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

static void id_text(const cJSON *id, char *out, size_t n)
{
	if (cJSON_IsString(id))
		snprintf(out, n, "%s", id->valuestring);
	else if (cJSON_IsNumber(id))
		snprintf(out, n, "%.17g", id->valuedouble);
	else
		out[0] = 0;
}

static void done(struct agt_jsonrpc *j, struct pending *p)
{
	j->cb(j->ctx, p->proc, &p->c);
	free(p->c.arguments);
	free(p->c.result);
	free(p);
	j->npending--;
}

static void on_line(struct agt_jsonrpc *j, struct linebuf *lb, const char *line, uint64_t ts,
		    uint32_t tid)
{
	cJSON *o = cJSON_Parse(line);
	const cJSON *method, *id;
	char idt[64];

	if (!cJSON_IsObject(o)) {
		j->drops[AGT_JDROP_NOT_JSON]++;
		cJSON_Delete(o);
		return;
	}
	method = cJSON_GetObjectItemCaseSensitive(o, "method");
	id = cJSON_GetObjectItemCaseSensitive(o, "id");
	id_text(id, idt, sizeof(idt));
	if (cJSON_IsString(method) && idt[0]) {
		/* A request. Only the caller's side makes a span (a traced server would see the
		 * same call arriving): requests this process writes. */
		const cJSON *params = cJSON_GetObjectItemCaseSensitive(o, "params");
		struct pending *p;

		if (strcmp(method->valuestring, "tools/call") || lb->dir != AGT_DIR_EGRESS)
			goto out;
		if (j->npending >= MAX_PENDING || !(p = calloc(1, sizeof(*p)))) {
			j->drops[AGT_JDROP_PENDING_FULL]++;
			goto out;
		}
		p->pid = lb->pid;
		p->proc = lb->proc;
		snprintf(p->c.id, sizeof(p->c.id), "%s", idt);
		snprintf(p->c.name, sizeof(p->c.name), "%s",
			 or_empty(cJSON_GetStringValue(
			     cJSON_GetObjectItemCaseSensitive(params, "name"))));
		p->c.arguments =
		    cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(params, "arguments"));
		if (!p->c.arguments)
			p->c.arguments = strdup("{}");
		p->c.start_ns = ts;
		p->c.tid = tid;
		p->next = j->pending;
		j->pending = p;
		j->npending++;
	} else if (idt[0] && lb->dir == AGT_DIR_INGRESS &&
		   (cJSON_GetObjectItemCaseSensitive(o, "result") ||
		    cJSON_GetObjectItemCaseSensitive(o, "error"))) {
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(o, "result");
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "error"), *b;
		struct pending **pp = &j->pending;

		while (*pp && ((*pp)->pid != lb->pid || strcmp((*pp)->c.id, idt)))
			pp = &(*pp)->next;
		if (!*pp) { /* other methods' responses come here too: only count tools/call ones */
			if (res && cJSON_GetObjectItemCaseSensitive(res, "content"))
				j->drops[AGT_JDROP_UNMATCHED]++;
			goto out;
		}
		struct pending *p = *pp;
		size_t used = 0;

		*pp = p->next;
		p->c.answered = 1;
		p->c.end_ns = ts;
		if (err) {
			p->c.is_error = 1;
			const char *m =
			    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message"));

			p->c.result = strdup(m ? m : "error");
		} else {
			p->c.is_error =
			    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "isError"));
			cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(res, "content"))
			{
				const char *t = cJSON_GetStringValue(
				    cJSON_GetObjectItemCaseSensitive(b, "text"));
				size_t tl = t ? strlen(t) : 0;
				char *nr = t ? realloc(p->c.result, used + tl + 1) : NULL;

				if (!nr)
					continue;
				memcpy(nr + used, t, tl + 1);
				used += tl;
				p->c.result = nr;
			}
			if (!p->c.result)
				p->c.result = strdup("");
		}
		done(j, p);
	}
out:
	cJSON_Delete(o);
}

void agt_jsonrpc_feed(struct agt_jsonrpc *j, const struct agt_proc_info *proc, const struct agt_data *e)
{
	struct linebuf *lb;
	const char *p = (const char *)e->data, *end = p + e->len;

	for (lb = j->bufs; lb; lb = lb->next)
		if (lb->pid == e->h.pid && lb->conn == e->conn && lb->dir == e->dir)
			break;
	if (!lb) {
		if (j->nbufs >= MAX_BUFS || !(lb = calloc(1, sizeof(*lb))))
			return;
		lb->pid = e->h.pid;
		lb->conn = e->conn;
		lb->dir = e->dir;
		lb->next = j->bufs;
		j->bufs = lb;
		j->nbufs++;
	}
	lb->proc = proc;
	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (!lb->overflow && lb->len + n <= j->cap) {
			char *nb = realloc(lb->buf, lb->len + n + 1);

			if (nb) {
				memcpy(nb + lb->len, p, n);
				lb->buf = nb;
				lb->len += n;
				lb->buf[lb->len] = 0;
			} else {
				lb->overflow = 1;
			}
		} else {
			lb->overflow = 1;
		}
		if (nl) {
			if (lb->overflow)
				j->drops[AGT_JDROP_LONG_LINE]++;
			else if (lb->len)
				on_line(j, lb, lb->buf, e->h.ts_ns, e->h.tid);
			lb->len = 0;
			lb->overflow = 0;
		}
		p += n + (nl ? 1 : 0);
	}
}

/* End the calls and drop the line buffers of pid (0: all), or of proc when it is given. */
static void close_where(struct agt_jsonrpc *j, uint32_t pid, const struct agt_proc_info *proc,
			uint64_t ts)
{
	for (struct pending **pp = &j->pending; *pp;) {
		struct pending *p = *pp;

		if (proc ? p->proc != proc : pid && p->pid != pid) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->c.end_ns = ts;
		done(j, p);
	}
	for (struct linebuf **bp = &j->bufs; *bp;) {
		struct linebuf *b = *bp;

		if (proc ? b->proc != proc : pid && b->pid != pid) {
			bp = &b->next;
			continue;
		}
		*bp = b->next;
		free(b->buf);
		free(b);
		j->nbufs--;
	}
}

void agt_jsonrpc_close(struct agt_jsonrpc *j, uint32_t pid, uint64_t ts)
{
	close_where(j, pid, NULL, ts);
}

void agt_jsonrpc_close_proc(struct agt_jsonrpc *j, const struct agt_proc_info *proc, uint64_t ts)
{
	close_where(j, 0, proc, ts);
}

const uint64_t *agt_jsonrpc_drops(const struct agt_jsonrpc *j)
{
	return j->drops;
}

void agt_jsonrpc_free(struct agt_jsonrpc *j)
{
	if (!j)
		return;
	while (j->pending) {
		struct pending *p = j->pending;

		j->pending = p->next;
		free(p->c.arguments);
		free(p->c.result);
		free(p);
	}
	while (j->bufs) {
		struct linebuf *b = j->bufs;

		j->bufs = b->next;
		free(b->buf);
		free(b);
	}
	free(j);
}
