#include "export/audit.h"
#include "base/log.h"
#include "base/util.h"
#include "export/schema.h"
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct agt_audit {
	FILE *f;
	char prev[65]; /* hex SHA-256 of the last record ("" before the first) */
	uint64_t seq;
	struct agt_export_ctx ctx;
};

static void sha256_hex(const char *a, const char *b, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, a, strlen(a));
	EVP_DigestUpdate(c, b, strlen(b));
	EVP_DigestFinal_ex(c, md, &n);
	EVP_MD_CTX_free(c);
	agt_hex(md, 32, out);
}

/* The hash of a record: SHA-256 over the previous hash and the record printed without "hash". */
static void record_hash(cJSON *rec, char out[65])
{
	cJSON *h = cJSON_DetachItemFromObjectCaseSensitive(rec, "hash");
	char *txt = cJSON_PrintUnformatted(rec);
	const char *prev = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "prev"));

	sha256_hex(prev ? prev : "", txt ? txt : "", out);
	free(txt);
	if (h)
		cJSON_AddItemToObject(rec, "hash", h);
}

struct agt_audit *agt_audit_open(const char *path, const struct agt_export_ctx *c, char *err,
				 size_t errlen)
{
	struct agt_audit *a = calloc(1, sizeof(*a));
	char *text = agt_read_file(path, 1u << 30, NULL);

	if (!a) {
		free(text);
		return NULL;
	}
	a->ctx = *c;
	if (text) { /* continue the chain from the last record */
		char *last = NULL;

		for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
			last = line;
		if (last) {
			cJSON *r = cJSON_Parse(last);
			const char *h =
			    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "hash"));
			const cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "seq");

			if (!h || !cJSON_IsNumber(s)) {
				agt_seterr(
				    err, errlen, -EINVAL,
				    "audit trail %s ends in a record that is not one; check it "
				    "with `agtrace audit verify %s`",
				    path, path);
				cJSON_Delete(r);
				free(text);
				free(a);
				return NULL;
			}
			snprintf(a->prev, sizeof(a->prev), "%s", h);
			a->seq = (uint64_t)s->valuedouble + 1;
			cJSON_Delete(r);
		}
		free(text);
	}
	a->f = fopen(path, "ae");
	if (!a->f) {
		agt_seterr(err, errlen, -errno, "cannot append to the audit trail %s: %s", path,
			   strerror(errno));
		free(a);
		return NULL;
	}
	return a;
}

int agt_audit_record(struct agt_audit *a, const char *type, cJSON *data)
{
	cJSON *rec = cJSON_CreateObject();
	char ts[40], hash[65], *txt;

	agt_format_time(agt_mono_ns() + a->ctx.mono_to_real, ts, sizeof(ts));
	cJSON_AddNumberToObject(rec, "seq", (double)a->seq);
	cJSON_AddStringToObject(rec, "@timestamp", ts);
	cJSON_AddStringToObject(rec, "host", a->ctx.host);
	cJSON_AddStringToObject(rec, "type", type);
	cJSON_AddItemToObject(rec, "data", data ? data : cJSON_CreateObject());
	cJSON_AddStringToObject(rec, "prev", a->prev);
	record_hash(rec, hash);
	cJSON_AddStringToObject(rec, "hash", hash);
	txt = cJSON_PrintUnformatted(rec);
	cJSON_Delete(rec);
	if (!txt || fprintf(a->f, "%s\n", txt) < 0 || fflush(a->f)) {
		free(txt);
		return -EIO;
	}
	free(txt);
	memcpy(a->prev, hash, sizeof(a->prev));
	a->seq++;
	return 0;
}

void agt_audit_close(struct agt_audit *a)
{
	if (!a)
		return;
	if (a->f)
		fclose(a->f);
	free(a);
}

static void audit_observe(void *ctx, const struct agt_span *sp)
{
	struct agt_audit *a = ctx;
	if (sp->kind == AGT_SPAN_STATE) { /* attach, detach, exit, sampling changes */
		cJSON *d = cJSON_CreateObject();
		char type[32];

		snprintf(type, sizeof(type), "%.*s", (int)strcspn(sp->name, " "), sp->name);
		cJSON_AddNumberToObject(d, "pid", sp->pid);
		cJSON_AddStringToObject(d, "name", sp->name);
		cJSON_AddStringToObject(d, "message", sp->message);
		agt_audit_record(a, type, d);
	} else if (sp->kind == AGT_SPAN_DECISION || sp->kind == AGT_SPAN_TOOL) {
		struct agt_jw w;
		cJSON *d = cJSON_CreateObject();
		char digest[65], hex[33];

		agt_jw_init(&w);
		agt_schema_ecs(sp, &a->ctx, &w);
		sha256_hex("", agt_jw_text(&w), digest);
		agt_jw_free(&w);
		agt_hex(sp->trace_id, 16, hex);
		cJSON_AddStringToObject(d, "trace_id", hex);
		agt_schema_span_id(sp->span_id, hex);
		cJSON_AddStringToObject(d, "span_id", hex);
		cJSON_AddStringToObject(d, "name", sp->name);
		cJSON_AddStringToObject(d, "sha256", digest);
		agt_audit_record(a, sp->kind == AGT_SPAN_DECISION ? "decision" : "tool_call", d);
	}
}

struct agt_sink *agt_audit_tee(struct agt_sink *next, struct agt_audit *a)
{
	return agt_tee_new(next, audit_observe, a);
}

/* agtrace audit verify FILE: the first record changed, removed or reordered. */
int cmd_audit(int argc, char **argv)
{
	char *text, expect[65] = "", hash[65];
	uint64_t n = 0, line_no = 0;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fprintf(
		    argc < 2 ? stderr : stdout,
		    "Usage: agtrace audit verify FILE\n\nChecks an audit trail written with "
		    "`agtrace attach --audit FILE`: every record's SHA-256 covers the one before\n"
		    "it, so the first record that was changed, removed or reordered is named. Exit "
		    "0 when the chain is intact, 2 otherwise.\n");
		return argc < 2 ? AGT_EXIT_USAGE : 0;
	}
	if (strcmp(argv[1], "verify") || argc != 3) {
		agt_err("usage: agtrace audit verify FILE");
		return AGT_EXIT_USAGE;
	}
	text = agt_read_file(argv[2], 1u << 30, NULL);
	if (!text) {
		agt_err("cannot read audit trail %s: %s", argv[2], strerror(errno));
		return AGT_EXIT_USAGE;
	}
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		cJSON *r = cJSON_Parse(line);
		const cJSON *seq = cJSON_GetObjectItemCaseSensitive(r, "seq");
		const char *prev =
		    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "prev"));
		const char *h = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "hash"));
		const char *why = NULL;

		line_no++;
		if (!r || !cJSON_IsNumber(seq) || !prev || !h)
			why = "is not an audit record";
		else if ((uint64_t)seq->valuedouble != n)
			why = (uint64_t)seq->valuedouble > n
				  ? "follows a gap: a record before it was "
				    "removed"
				  : "is out of order: records were "
				    "reordered or repeated";
		else if (strcmp(prev, expect))
			why = "does not follow the record before it: a record was removed or "
			      "reordered";
		else {
			record_hash(r, hash);
			if (strcmp(hash, h))
				why = "was changed: its hash does not match its content";
		}
		if (why) {
			agt_err("%s: line %llu (record %llu) %s", argv[2],
				(unsigned long long)line_no, (unsigned long long)n, why);
			cJSON_Delete(r);
			free(text);
			return AGT_EXIT_USAGE;
		}
		snprintf(expect, sizeof(expect), "%s", h);
		n++;
		cJSON_Delete(r);
	}
	free(text);
	printf("%s: %llu records, chain intact\n", argv[2], (unsigned long long)n);
	return 0;
}
