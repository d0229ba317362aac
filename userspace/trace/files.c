/* File lineage, window by window (files.h). A window keeps one record per path it touched (and
 * one per path it only read): the operations in order, the bytes, the processes that did them,
 * and what agtrace knew of the path's content before. Records follow renames (a temporary file
 * written and renamed over its target, as sed -i and atomic writers do, is one record of the
 * target: create, write, rename). When the window ends, each record becomes a span; the content
 * after is hashed then (the state after the last close, since the tool is done), and becomes
 * what agtrace knows of the path for the next window. */
#define _GNU_SOURCE
#include "trace/files.h"
#include "base/utf8.h"
#include "base/util.h"
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SET_CAP 64	     /* paths per window */
#define OPS_CAP 8	     /* operations kept per path */
#define KNOWN_BUCKETS 1024   /* paths whose content agtrace knows */
#define KNOWN_CAP 8192
#define OPEN_BUCKETS 256     /* open files being followed */
#define OPEN_CAP 4096
#define ROOT_SETS_CAP 256    /* processes with a window of their own open */
#define DIFF_FILE_MAX 65536  /* bytes of a file diffed at most */
#define DIFF_OUT_MAX 4096    /* bytes of a diff kept */
#define DIFF_CELLS 250000    /* changed lines compared pairwise at most (else one block) */

enum { OP_CREATE, OP_WRITE, OP_TRUNCATE, OP_RENAME, OP_DELETE, OP_READ, OP_N };
static const char *const op_names[OP_N] = {"create", "write", "truncate",
					   "rename", "delete", "read"};

struct change {
	struct change *next;
	char *path, *from;
	uint8_t ops[OPS_CAP];
	int nops;
	int reading;	/* a read (kept apart from changes of the same path) */
	int tentative;	/* opened for writing, nothing written yet */
	uint8_t opened; /* slots of ops[]: a write only because a file was opened for writing
			 * (no O_TRUNC); dropped at the end when nothing was written */
	uint64_t bytes;
	uint64_t start_ns, end_ns;
	uint32_t pid, tid;
	struct agt_proc_info who;
	char before[65]; /* what agtrace knew of the content it replaced; "" unknown */
	char *before_content;
	size_t before_len;
	int before_content_known; /* before_content is the whole content (diffs) */
	int created;		  /* nothing was there before it */
	uint32_t root;		  /* the agent process whose view of the path counts */
	int snapped;		  /* after: read at its last close (or rename, truncate) */
	int dirty;		  /* closed (renamed, truncated) since: to be read again */
	struct agt_file_state after;
};

struct agt_fileset {
	struct agt_fileset *next; /* the roots' own windows */
	uint32_t root;
	struct change *head, *tail;
	int n;
	uint64_t last_ns;
};

/* A file open for writing (reading): whose record its bytes go to. */
struct openf {
	struct openf *next;
	uint64_t file;
	struct change *ch;
	uint64_t last_bytes;
};

/* What agtrace knows of a path's content: the hash at the end of the last window that changed
 * it (and, with diffs, the content itself when it is small text). */
struct known {
	struct known *next;
	char *key; /* container id, NUL, path */
	size_t klen;
	char sha256[65];
	char *content;
	size_t len;
	int has_content;
	uint64_t used;
};

struct agt_files {
	struct agt_emitter *em;
	struct agt_files_cfg cfg;
	struct agt_fileset *roots;
	int nroots;
	struct openf *open[OPEN_BUCKETS];
	int nopen;
	struct known *known[KNOWN_BUCKETS];
	int nknown;
	uint64_t tick;
	uint32_t cur_root; /* the root of the operation being handled */
	struct change *dirty[256]; /* to be read once the records at hand are handled */
	int ndirty;
	struct agt_files_stats st;
};

struct agt_files *agt_files_new(struct agt_emitter *em, const struct agt_files_cfg *cfg)
{
	struct agt_files *f = calloc(1, sizeof(*f));

	if (f) {
		f->em = em;
		f->cfg = *cfg;
	}
	return f;
}

/* ---- what agtrace knows of paths ---- */

static size_t known_key(const struct agt_proc_info *who, const char *path, char *out, size_t n)
{
	const char *ctr = who ? who->id.container_id : "";
	int len = snprintf(out, n, "%s%c%s", ctr, 0, path);

	return len > 0 && (size_t)len < n ? (size_t)len : n - 1;
}

static struct known **known_slot(struct agt_files *f, const char *key, size_t klen)
{
	struct known **pp = &f->known[agt_fnv1a(key, klen, 0) % KNOWN_BUCKETS];

	while (*pp && ((*pp)->klen != klen || memcmp((*pp)->key, key, klen)))
		pp = &(*pp)->next;
	return pp;
}

static struct known *known_get(struct agt_files *f, const struct agt_proc_info *who,
			       const char *path)
{
	char key[4200];
	size_t kl = known_key(who, path, key, sizeof(key));
	struct known *k = *known_slot(f, key, kl);

	if (k)
		k->used = ++f->tick;
	return k;
}

static void known_del(struct agt_files *f, const struct agt_proc_info *who, const char *path)
{
	char key[4200];
	size_t kl = known_key(who, path, key, sizeof(key));
	struct known **pp = known_slot(f, key, kl), *k = *pp;

	if (!k)
		return;
	*pp = k->next;
	free(k->key);
	free(k->content);
	free(k);
	f->nknown--;
}

/* The least recently used entry goes when the table is full. */
static void known_evict(struct agt_files *f)
{
	struct known **oldest = NULL;

	for (int b = 0; b < KNOWN_BUCKETS; b++)
		for (struct known **pp = &f->known[b]; *pp; pp = &(*pp)->next)
			if (!oldest || (*pp)->used < (*oldest)->used)
				oldest = pp;
	if (oldest) {
		struct known *k = *oldest;

		*oldest = k->next;
		free(k->key);
		free(k->content);
		free(k);
		f->nknown--;
	}
}

static void known_set(struct agt_files *f, const struct agt_proc_info *who, const char *path,
		      const char *sha256, const char *content, size_t len, int has_content)
{
	char key[4200];
	size_t kl = known_key(who, path, key, sizeof(key));
	struct known **pp = known_slot(f, key, kl), *k = *pp;

	if (!k) {
		if (f->nknown >= KNOWN_CAP)
			known_evict(f);
		pp = known_slot(f, key, kl);
		if (!(k = calloc(1, sizeof(*k))) || !(k->key = malloc(kl))) {
			free(k);
			return;
		}
		memcpy(k->key, key, kl);
		k->klen = kl;
		k->next = *pp;
		*pp = k;
		f->nknown++;
	}
	snprintf(k->sha256, sizeof(k->sha256), "%s", sha256);
	free(k->content);
	k->content = NULL;
	k->has_content = 0;
	if (has_content && (k->content = malloc(len + 1))) {
		memcpy(k->content, content, len);
		k->content[len] = 0;
		k->len = len;
		k->has_content = 1;
	}
	k->used = ++f->tick;
}

/* ---- open files ---- */

static struct openf **open_slot(struct agt_files *f, uint64_t file)
{
	struct openf **pp = &f->open[(file >> 6) % OPEN_BUCKETS];

	while (*pp && (*pp)->file != file)
		pp = &(*pp)->next;
	return pp;
}

static void open_forget_change(struct agt_files *f, const struct change *ch)
{
	for (int b = 0; b < OPEN_BUCKETS; b++)
		for (struct openf **pp = &f->open[b]; *pp;) {
			if ((*pp)->ch == ch) {
				struct openf *o = *pp;

				*pp = o->next;
				free(o);
				f->nopen--;
			} else {
				pp = &(*pp)->next;
			}
		}
}

/* ---- records ---- */

static void change_free(struct agt_files *f, struct change *ch)
{
	for (int i = 0; ch->dirty && i < f->ndirty; i++)
		if (f->dirty[i] == ch)
			f->dirty[i--] = f->dirty[--f->ndirty];
	open_forget_change(f, ch);
	free(ch->after.content);
	free(ch->path);
	free(ch->from);
	free(ch->before_content);
	free(ch);
}

static void set_free(struct agt_files *f, struct agt_fileset *s)
{
	while (s->head) {
		struct change *ch = s->head;

		s->head = ch->next;
		change_free(f, ch);
	}
	free(s);
}

static struct change *find(struct agt_fileset *s, const char *path, int reading)
{
	for (struct change *ch = s->head; ch; ch = ch->next)
		if (ch->reading == reading && !strcmp(ch->path, path))
			return ch;
	return NULL;
}

static void add_op(struct change *ch, int op)
{
	if (ch->nops && ch->ops[ch->nops - 1] == op)
		return; /* the same again (a second write): one operation */
	if (ch->nops < OPS_CAP)
		ch->ops[ch->nops++] = (uint8_t)op;
}

/* What agtrace knew of path before this window touched it. */
static void take_before(struct agt_files *f, struct change *ch, const char *path)
{
	struct known *k = known_get(f, &ch->who, path);

	free(ch->before_content);
	ch->before_content = NULL;
	ch->before_content_known = 0;
	ch->before[0] = 0;
	if (!k)
		return;
	snprintf(ch->before, sizeof(ch->before), "%s", k->sha256);
	if (k->has_content && (ch->before_content = malloc(k->len + 1))) {
		memcpy(ch->before_content, k->content, k->len + 1);
		ch->before_len = k->len;
		ch->before_content_known = 1;
	}
}

static struct change *record(struct agt_files *f, struct agt_fileset *s, const char *path,
			     int reading, const struct agt_proc_info *who, uint32_t pid,
			     uint32_t tid, uint64_t ts)
{
	struct change *ch = find(s, path, reading);

	if (ch) {
		ch->end_ns = ts;
		ch->pid = pid;
		ch->tid = tid;
		return ch;
	}
	if (s->n >= SET_CAP || !(ch = calloc(1, sizeof(*ch))) || !(ch->path = strdup(path))) {
		if (ch)
			free(ch);
		f->st.over_cap++;
		return NULL;
	}
	ch->reading = reading;
	ch->root = f->cur_root;
	ch->start_ns = ch->end_ns = ts;
	ch->pid = pid;
	ch->tid = tid;
	if (who)
		ch->who = *who;
	ch->who.pid = (int)pid;
	take_before(f, ch, path);
	if (s->tail)
		s->tail->next = ch;
	else
		s->head = ch;
	s->tail = ch;
	s->n++;
	return ch;
}

static void unlink_change(struct agt_fileset *s, struct change *ch)
{
	struct change **pp = &s->head, *prev = NULL;

	while (*pp && *pp != ch) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = ch->next;
	if (s->tail == ch)
		s->tail = prev;
	s->n--;
}

static int ignored(const struct agt_files *f, const char *path)
{
	for (int i = 0; i < f->cfg.nignore; i++)
		if (!fnmatch(f->cfg.ignore[i], path, 0))
			return 1;
	return 0;
}

static struct agt_fileset *root_set(struct agt_files *f, uint32_t root)
{
	struct agt_fileset *s;

	for (s = f->roots; s; s = s->next)
		if (s->root == root)
			return s;
	if (f->nroots >= ROOT_SETS_CAP || !(s = calloc(1, sizeof(*s))))
		return NULL;
	s->root = root;
	s->next = f->roots;
	f->roots = s;
	f->nroots++;
	return s;
}

/* The path's content as it is now: right after the last close of a write (the reader is woken
 * at once for those), a rename or a truncation, so before the next tool call can change it. */
static void snapshot(struct agt_files *f, struct change *ch)
{
	if (ch->reading || !f->cfg.state)
		return;
	free(ch->after.content);
	f->cfg.state(f->cfg.state_ctx, ch->root, ch->path, f->cfg.hash_max,
		     f->cfg.diffs ? DIFF_FILE_MAX : 0, &ch->after);
	ch->snapped = 1;
}

/* Read it once the records at hand are handled (a file saved a thousand times in a row is
 * read once), or now when too many wait. */
static void mark_dirty(struct agt_files *f, struct change *ch)
{
	if (ch->reading || ch->dirty)
		return;
	if (f->ndirty == (int)AGT_ARRAY_SIZE(f->dirty)) {
		snapshot(f, ch);
		return;
	}
	ch->dirty = 1;
	f->dirty[f->ndirty++] = ch;
}

void agt_files_settle(struct agt_files *f)
{
	while (f && f->ndirty > 0) {
		struct change *ch = f->dirty[--f->ndirty];

		ch->dirty = 0;
		snapshot(f, ch);
	}
}

void agt_files_op(struct agt_files *f, struct agt_fileset **setp, uint32_t root,
		  const struct agt_proc_info *who, uint32_t pid, uint32_t tid, uint64_t ts,
		  const struct agt_file_call *op)
{
	struct agt_fileset *s;
	struct change *ch;

	if (!f)
		return;
	if (op->op == AGT_FILE_CLOSE) { /* bytes of an open file, wherever its record is */
		struct openf **pp = open_slot(f, op->file), *o = *pp;

		if (!o)
			return;
		if (op->bytes > o->last_bytes) {
			o->ch->bytes += op->bytes - o->last_bytes;
			o->last_bytes = op->bytes;
			if (!o->ch->reading)
				o->ch->tentative = 0;
		}
		o->ch->end_ns = ts;
		if (op->flags & AGT_FILE_F_LAST) {
			struct change *ch = o->ch;

			*pp = o->next;
			free(o);
			f->nopen--;
			if (op->flags & AGT_FILE_F_WRITE)
				mark_dirty(f, ch);
		}
		return;
	}
	if (!op->path || (ignored(f, op->path) && (!op->path2 || ignored(f, op->path2)))) {
		f->st.ignored++;
		return;
	}
	if (setp && !*setp && !(*setp = calloc(1, sizeof(**setp))))
		return;
	s = setp ? *setp : root_set(f, root);
	if (!s) {
		f->st.over_cap++;
		return;
	}
	s->last_ns = ts;
	f->cur_root = root;
	switch (op->op) {
	case AGT_FILE_OPEN: {
		int write = !!(op->flags & AGT_FILE_F_WRITE);
		struct openf **pp, *o;

		if (!write && !f->cfg.read)
			return;
		if (!(ch = record(f, s, op->path, !write, who, pid, tid, ts)))
			return;
		if (!write) {
			add_op(ch, OP_READ);
		} else if (op->flags & AGT_FILE_F_CREATED) {
			add_op(ch, OP_CREATE);
			ch->created = ch->nops == 1;
			if (ch->created)
				ch->before[0] = 0; /* nothing was there */
		} else {
			int had = ch->nops;

			add_op(ch, OP_WRITE);
			if (!(op->flags & AGT_FILE_F_TRUNC) && ch->nops > had)
				ch->opened |= (uint8_t)(1u << (ch->nops - 1));
			if (!(op->flags & AGT_FILE_F_TRUNC) && ch->nops == 1)
				ch->tentative = 1; /* a change once something is written */
		}
		pp = open_slot(f, op->file);
		if (!*pp && f->nopen < OPEN_CAP && (o = calloc(1, sizeof(*o)))) {
			o->file = op->file;
			*pp = o;
			f->nopen++;
		}
		if (*pp) {
			(*pp)->ch = ch;
			(*pp)->last_bytes = 0;
		}
		break;
	}
	case AGT_FILE_RENAME: {
		struct change *dst = find(s, op->path2, 0);
		char before[65] = "";
		char *content = NULL;
		size_t clen = 0;
		int known_content = 0, created = 0;

		ch = find(s, op->path, 0);
		if (op->flags & AGT_FILE_F_EXCHANGE) {
			/* Two files swapped: each path's record says it was renamed. */
			if ((ch = record(f, s, op->path, 0, who, pid, tid, ts)))
				add_op(ch, OP_RENAME);
			if ((ch = record(f, s, op->path2, 0, who, pid, tid, ts)))
				add_op(ch, OP_RENAME);
			break;
		}
		if (ch && ch == dst)
			break;
		/* What was at the destination before this window: what the rename replaced. */
		uint8_t ops[OPS_CAP];
		int nops = 0;
		uint64_t bytes = 0;

		if (dst) {
			snprintf(before, sizeof(before), "%s", dst->before);
			content = dst->before_content;
			clen = dst->before_len;
			known_content = dst->before_content_known;
			created = dst->created;
			/* the path's own history in this window goes on */
			memcpy(ops, dst->ops, sizeof(ops));
			nops = dst->nops;
			bytes = dst->bytes;
			dst->before_content = NULL;
			unlink_change(s, dst);
			change_free(f, dst);
		} else {
			struct known *k = known_get(f, who, op->path2);

			if (k) {
				snprintf(before, sizeof(before), "%s", k->sha256);
				if (k->has_content && (content = malloc(k->len + 1))) {
					memcpy(content, k->content, k->len + 1);
					clen = k->len;
					known_content = 1;
				}
			}
		}
		if (!ch && !(ch = record(f, s, op->path, 0, who, pid, tid, ts))) {
			free(content);
			break;
		}
		if (!ch->from)
			ch->from = strdup(op->path);
		free(ch->path);
		ch->path = strdup(op->path2);
		snprintf(ch->before, sizeof(ch->before), "%s", before);
		free(ch->before_content);
		ch->before_content = content;
		ch->before_len = clen;
		ch->before_content_known = known_content;
		ch->created = created;
		if (nops) {
			memcpy(ch->ops, ops, sizeof(ops));
			ch->nops = nops;
			ch->opened = 0; /* the destination's history: kept as it is */
			ch->bytes += bytes;
		}
		add_op(ch, OP_RENAME);
		ch->tentative = 0;
		ch->end_ns = ts;
		ch->pid = pid;
		ch->tid = tid;
		mark_dirty(f, ch);
		break;
	}
	case AGT_FILE_UNLINK:
		if (!(ch = record(f, s, op->path, 0, who, pid, tid, ts)))
			return;
		add_op(ch, OP_DELETE);
		ch->tentative = 0;
		break;
	case AGT_FILE_TRUNCATE:
		if (!(ch = record(f, s, op->path, 0, who, pid, tid, ts)))
			return;
		add_op(ch, OP_TRUNCATE);
		ch->tentative = 0;
		mark_dirty(f, ch);
		break;
	default: break;
	}
}

/* ---- diffs ---- */

struct lines {
	const char **p;
	size_t *len;
	size_t n;
};

static int split_lines(const char *text, size_t n, struct lines *l)
{
	size_t cap = 16;

	l->n = 0;
	l->p = malloc(cap * sizeof(*l->p));
	l->len = malloc(cap * sizeof(*l->len));
	for (size_t i = 0; i < n && l->p && l->len;) {
		const char *nl = memchr(text + i, '\n', n - i);
		size_t len = nl ? (size_t)(nl - (text + i)) + 1 : n - i;

		if (l->n == cap) {
			cap *= 2;
			const char **np = realloc(l->p, cap * sizeof(*np));
			size_t *nlen = np ? realloc(l->len, cap * sizeof(*nlen)) : NULL;

			if (np)
				l->p = np;
			if (!nlen)
				return -1;
			l->len = nlen;
		}
		l->p[l->n] = text + i;
		l->len[l->n++] = len;
		i += len;
	}
	return l->p && l->len ? 0 : -1;
}

static int same_line(const struct lines *a, size_t i, const struct lines *b, size_t j)
{
	return a->len[i] == b->len[j] && !memcmp(a->p[i], b->p[j], a->len[i]);
}

/* The edit script: for each step ' ' (both), '-' (a only) or '+' (b only). Common prefix and
 * suffix first, then the longest common subsequence of what is left when it is small enough,
 * else the middle as one replaced block. */
static char *edit_script(const struct lines *a, const struct lines *b, size_t *n)
{
	size_t pre = 0, suf = 0, na, nb, o = 0;
	char *s = malloc(a->n + b->n + 1);

	if (!s)
		return NULL;
	while (pre < a->n && pre < b->n && same_line(a, pre, b, pre))
		pre++;
	while (suf < a->n - pre && suf < b->n - pre &&
	       same_line(a, a->n - 1 - suf, b, b->n - 1 - suf))
		suf++;
	na = a->n - pre - suf;
	nb = b->n - pre - suf;
	memset(s, ' ', pre);
	o = pre;
	if (na && nb && na * nb <= DIFF_CELLS) {
		uint16_t *t = calloc((na + 1) * (nb + 1), sizeof(*t));

		if (t) {
#define T(i, j) t[(i) * (nb + 1) + (j)]
			for (size_t i = na; i-- > 0;)
				for (size_t j = nb; j-- > 0;)
					T(i, j) = same_line(a, pre + i, b, pre + j)
						      ? T(i + 1, j + 1) + 1
						  : T(i + 1, j) >= T(i, j + 1) ? T(i + 1, j)
									       : T(i, j + 1);
			size_t i = 0, j = 0;

			while (i < na || j < nb) {
				if (i < na && j < nb && same_line(a, pre + i, b, pre + j)) {
					s[o++] = ' ';
					i++, j++;
				} else if (i < na && (j == nb || T(i + 1, j) >= T(i, j + 1))) {
					s[o++] = '-'; /* removals first, as diff(1) shows them */
					i++;
				} else {
					s[o++] = '+';
					j++;
				}
			}
#undef T
			free(t);
			goto tail;
		}
	}
	memset(s + o, '-', na);
	o += na;
	memset(s + o, '+', nb);
	o += nb;
tail:
	memset(s + o, ' ', suf);
	o += suf;
	*n = o;
	return s;
}

static void out_line(FILE *f, char mark, const char *p, size_t len)
{
	fputc(mark, f);
	fwrite(p, 1, len, f);
	if (!len || p[len - 1] != '\n')
		fputs("\n\\ No newline at end of file\n", f);
}

/* A unified diff (3 lines of context) of a -> b, NULL when they are equal. */
static char *unified_diff(const char *path, const char *a, size_t alen, int a_none,
			  const char *b, size_t blen)
{
	struct lines la = {0}, lb = {0};
	char *script = NULL, *buf = NULL;
	size_t n = 0, blen_out = 0;
	FILE *f;

	if (split_lines(a, alen, &la) || split_lines(b, blen, &lb) ||
	    !(script = edit_script(&la, &lb, &n)) || !(f = open_memstream(&buf, &blen_out)))
		goto out;
	fprintf(f, "--- %s%s\n+++ b%s\n", a_none ? "" : "a", a_none ? "/dev/null" : path, path);
	for (size_t k = 0; k < n;) {
		size_t start, end, ai = 0, bi = 0, ac = 0, bc = 0;

		if (script[k] == ' ') {
			k++;
			continue;
		}
		/* A hunk: from 3 lines before this change to 3 after the last change that is
		 * within 6 lines of the previous one. */
		start = k > 3 ? k - 3 : 0;
		end = k;
		for (size_t q = k; q < n; q++)
			if (script[q] != ' ') {
				if (q > end + 6)
					break;
				end = q;
			}
		end = end + 4 < n ? end + 4 : n;
		for (size_t q = 0; q < start; q++) {
			ai += script[q] != '+';
			bi += script[q] != '-';
		}
		for (size_t q = start; q < end; q++) {
			ac += script[q] != '+';
			bc += script[q] != '-';
		}
		fprintf(f, "@@ -%zu,%zu +%zu,%zu @@\n", ac ? ai + 1 : ai, ac, bc ? bi + 1 : bi, bc);
		for (size_t q = start; q < end; q++) {
			if (script[q] == ' ') {
				out_line(f, ' ', la.p[ai], la.len[ai]);
				ai++, bi++;
			} else if (script[q] == '-') {
				out_line(f, '-', la.p[ai], la.len[ai]);
				ai++;
			} else {
				out_line(f, '+', lb.p[bi], lb.len[bi]);
				bi++;
			}
		}
		k = end;
	}
	fclose(f);
out:
	free(script);
	free(la.p);
	free(la.len);
	free(lb.p);
	free(lb.len);
	if (buf && !strchr(buf, '@')) { /* no hunk: the same content */
		free(buf);
		buf = NULL;
	}
	return buf;
}

static int is_text(const char *p, size_t n)
{
	return !memchr(p, 0, n) && agt_utf8_valid(p, n);
}

/* ---- emitting a window ---- */

/* The operation a record is named after: what it ended as. */
static int main_op(const struct change *ch)
{
	int has[OP_N] = {0};

	for (int i = 0; i < ch->nops; i++)
		has[ch->ops[i]] = 1;
	if (ch->nops && ch->ops[ch->nops - 1] == OP_DELETE)
		return OP_DELETE;
	if (has[OP_RENAME])
		return OP_RENAME;
	if (has[OP_CREATE])
		return OP_CREATE;
	if (has[OP_WRITE])
		return OP_WRITE;
	if (has[OP_TRUNCATE])
		return OP_TRUNCATE;
	return ch->nops ? ch->ops[0] : OP_WRITE;
}

static void emit_change(struct agt_files *f, struct change *ch, const struct agt_span *parent,
			uint32_t root, uint64_t ts)
{
	struct agt_span sp;
	struct agt_file_state st;
	const char *opnames[OPS_CAP];
	int op, deleted, want_content;
	char *diff = NULL;

	if (!ch->bytes && ch->opened) {
		/* Opened for writing and nothing written through it (a descriptor only
		 * ftruncate(2) used): no write, only what else was done. */
		int w = 0;

		for (int i = 0; i < ch->nops; i++)
			if (!(ch->opened & 1u << i) && (!w || ch->ops[w - 1] != ch->ops[i]))
				ch->ops[w++] = ch->ops[i];
		if (w)
			ch->nops = w;
		ch->opened = 0;
	}
	op = main_op(ch);
	deleted = op == OP_DELETE;

	memset(&sp, 0, sizeof(sp));
	memset(&st, 0, sizeof(st));
	if (ch->dirty) {
		for (int i = 0; i < f->ndirty; i++)
			if (f->dirty[i] == ch)
				f->dirty[i--] = f->dirty[--f->ndirty];
		ch->dirty = 0;
		snapshot(f, ch);
	}
	want_content = f->cfg.diffs && !ch->reading && !deleted;
	if (!ch->reading && !deleted && !ch->snapped && f->cfg.state) /* never closed: now */
		f->cfg.state(f->cfg.state_ctx, root, ch->path, f->cfg.hash_max,
			     want_content ? DIFF_FILE_MAX : 0, &st);
	else if (ch->snapped) {
		st = ch->after;
		ch->after.content = NULL; /* st owns it now */
	}
	sp.kind = AGT_SPAN_FILE;
	sp.trace_type = "state_change";
	sp.start_ns = ch->start_ns;
	sp.end_ns = ch->end_ns > ch->start_ns ? ch->end_ns : ch->start_ns;
	sp.pid = ch->pid;
	sp.tid = ch->tid;
	sp.proc = &ch->who;
	if (parent) {
		memcpy(sp.trace_id, parent->trace_id, sizeof(sp.trace_id));
		sp.parent_id = parent->span_id;
		memcpy(sp.workflow_id, parent->workflow_id, sizeof(sp.workflow_id));
		sp.depth = parent->depth + 1;
		sp.span_id = agt_emit_id(f->em);
		if (parent->kind == AGT_SPAN_TOOL) {
			sp.file.tool_call_id = parent->tool.id;
			sp.file.tool_name = parent->tool.name;
		}
	} else {
		agt_emit_root(f->em, &sp);
	}
	(void)ts;
	if (op == OP_RENAME && ch->from) {
		/* From the same directory (a temporary file): its name alone. */
		const char *slash = strrchr(ch->path, '/'), *from = ch->from;
		size_t dl = slash ? (size_t)(slash - ch->path) + 1 : 0;

		if (dl && !strncmp(from, ch->path, dl) && !strchr(from + dl, '/'))
			from += dl;
		snprintf(sp.name, sizeof(sp.name), "file rename %s -> %s", from, ch->path);
	} else
		snprintf(sp.name, sizeof(sp.name), "file %s %s", op_names[op], ch->path);
	sp.file.path = ch->path;
	sp.file.operation = op_names[op];
	for (int i = 0; i < ch->nops; i++)
		opnames[i] = op_names[ch->ops[i]];
	sp.file.operations = opnames;
	sp.file.noperations = ch->nops;
	sp.file.previous_path = op == OP_RENAME ? ch->from : NULL;
	sp.file.bytes = (int64_t)ch->bytes;
	sp.file.size = deleted || ch->reading || !st.exists ? -1 : (int64_t)st.size;
	sp.file.sha256_before = ch->before[0] && !ch->created ? ch->before : NULL;
	if (!ch->reading && !deleted) {
		if (st.sha256[0])
			sp.file.sha256 = st.sha256;
		else
			sp.file.hash_note = st.exists ? st.note : "gone by the end of the tool call";
	}
	if (want_content && st.content && is_text(st.content, st.content_len) &&
	    (ch->created || ch->before_content_known)) {
		diff = unified_diff(ch->path, ch->created ? "" : ch->before_content,
				    ch->created ? 0 : ch->before_len, ch->created, st.content,
				    st.content_len);
		if (diff) { /* redacted whole, then cut: a secret at the cut is not half kept */
			char *red = agt_emit_redact(f->em, diff);

			free(diff);
			diff = red;
			sp.file.diff = diff;
		}
		if (diff && strlen(diff) > DIFF_OUT_MAX) {
			size_t cut = DIFF_OUT_MAX;

			while (cut > 0 && (diff[cut] & 0xc0) == 0x80) /* not inside a character */
				cut--;
			diff[cut] = 0;
			sp.file.diff_truncated = 1;
		}
	}
	f->st.changes++;
	agt_emit(f->em, &sp);
	/* What agtrace knows of these paths from now on. */
	if (ch->from)
		known_del(f, &ch->who, ch->from);
	if (deleted || (!ch->reading && !st.exists))
		known_del(f, &ch->who, ch->path);
	else if (!ch->reading && st.sha256[0])
		known_set(f, &ch->who, ch->path, st.sha256, st.content, st.content_len,
			  st.content && is_text(st.content, st.content_len));
	else if (!ch->reading)
		known_del(f, &ch->who, ch->path); /* changed, and not hashed: unknown now */
	free(diff);
	free(st.content);
}

static void emit_set(struct agt_files *f, struct agt_fileset *s, const struct agt_span *parent,
		     uint32_t root, uint64_t ts)
{
	for (struct change *ch = s->head; ch; ch = ch->next)
		if (!ch->tentative)
			emit_change(f, ch, parent, root, ts);
}

void agt_files_emit(struct agt_files *f, struct agt_fileset **set, const struct agt_span *parent,
		    uint32_t root, uint64_t ts)
{
	if (!f || !*set)
		return;
	emit_set(f, *set, parent, root, ts);
	set_free(f, *set);
	*set = NULL;
}

void agt_files_drop(struct agt_files *f, struct agt_fileset **set)
{
	if (f && *set)
		set_free(f, *set);
	if (set)
		*set = NULL;
}

void agt_files_flush(struct agt_files *f, uint32_t root, uint64_t now, uint64_t quiet_ns, int all)
{
	if (!f)
		return;
	for (struct agt_fileset **pp = &f->roots; *pp;) {
		struct agt_fileset *s = *pp;

		if ((root && s->root != root) || (!all && s->last_ns + quiet_ns > now)) {
			pp = &s->next;
			continue;
		}
		/* An open file's record waits for its close (a log kept open is one record). */
		int busy = 0;

		for (int b = 0; !all && b < OPEN_BUCKETS && !busy; b++)
			for (struct openf *o = f->open[b]; o && !busy; o = o->next)
				for (struct change *ch = s->head; ch && !busy; ch = ch->next)
					busy = o->ch == ch && !ch->reading;
		if (busy) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		f->nroots--;
		emit_set(f, s, NULL, s->root, now);
		set_free(f, s);
	}
}

const struct agt_files_stats *agt_files_stats(const struct agt_files *f)
{
	static const struct agt_files_stats none;

	return f ? &f->st : &none;
}

void agt_files_free(struct agt_files *f)
{
	if (!f)
		return;
	while (f->roots) {
		struct agt_fileset *s = f->roots;

		f->roots = s->next;
		set_free(f, s);
	}
	for (int b = 0; b < OPEN_BUCKETS; b++)
		while (f->open[b]) {
			struct openf *o = f->open[b];

			f->open[b] = o->next;
			free(o);
		}
	for (int b = 0; b < KNOWN_BUCKETS; b++)
		while (f->known[b]) {
			struct known *k = f->known[b];

			f->known[b] = k->next;
			free(k->key);
			free(k->content);
			free(k);
		}
	free(f);
}
