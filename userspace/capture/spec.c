#include "capture/spec.h"
#include "capture/handlers.h"
#include "capture/locate.h"
#include "base/log.h"
#include "base/util.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const agt_trace_types[7] = {"reasoning_step", "tool_call", "cot_process", "decision",
					"state_change",	  "error",     "metric"};

static const char *const value_kinds[] = {[AGT_VAL_NONE] = "none",
					  [AGT_VAL_INT] = "int",
					  [AGT_VAL_UINT] = "uint",
					  [AGT_VAL_PTR] = "ptr",
					  [AGT_VAL_STR] = "str"};

const char *agt_value_kind_name(enum agt_value_kind k)
{
	return (unsigned)k < AGT_ARRAY_SIZE(value_kinds) ? value_kinds[k] : "?";
}

/* Parsing context: the file name and the error buffer travel together. */
struct pctx {
	const char *file;
	char *err;
	size_t errlen;
	int locate; /* the spec has a "locate": its probes name roles */
	int funnel; /* the spec has a "funnel": role probes beside its symbol probes */
};

/* The libraries the TLS locator tells apart (agt_tls_located.library), for "locate". */
static const char *const locators[] = {"boringssl", "openssl3", "aws-lc", NULL};
/* The locator v names (one of locators), or NULL. */
static const char *locator_named(const cJSON *v)
{
	for (int i = 0; locators[i] && cJSON_IsString(v); i++)
		if (!strcmp(v->valuestring, locators[i]))
			return locators[i];
	return NULL;
}

/* Roles a located probe can name, by enum agt_tls_role (1..4). */
static const char *const roles[] = {NULL, "write", "read", "seal", "open"};

#define FAIL(c, path, ...)                                                                       \
	do {                                                                                     \
		char _m[1024];                                                                    \
		snprintf(_m, sizeof(_m), __VA_ARGS__);                                           \
		return agt_seterr((c)->err, (c)->errlen, -EINVAL, "%s: %s: %s", (c)->file, path, \
				  _m);                                                           \
	} while (0)

static int check_keys(struct pctx *c, const cJSON *obj, const char *path,
		      const char *const *allowed)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, obj)
	{
		int ok = 0;

		for (const char *const *a = allowed; *a; a++)
			ok |= !strcmp(it->string, *a);
		if (!ok) {
			char list[200] = "";

			for (const char *const *a = allowed; *a; a++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
					 a == allowed ? "" : ", ", *a);
			FAIL(c, path, "unknown key \"%s\" (allowed: %s)", it->string, list);
		}
	}
	return 0;
}

/* A required or optional non-empty string member. */
static int get_str(struct pctx *c, const cJSON *obj, const char *path, const char *key,
		   int required, char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = NULL;
	if (!v) {
		if (required)
			FAIL(c, path, "missing required key \"%s\"", key);
		return 0;
	}
	if (!cJSON_IsString(v) || !v->valuestring[0])
		FAIL(c, path, "\"%s\" must be a non-empty string", key);
	*out = strdup(v->valuestring);
	return *out ? 0 : -ENOMEM;
}

/* A string or an array of non-empty strings. */
static int get_str_list(struct pctx *c, const cJSON *v, const char *path, char ***out, int *n)
{
	int cnt, i = 0;
	const cJSON *it;

	if (cJSON_IsString(v)) {
		if (!v->valuestring[0])
			FAIL(c, path, "must not be empty");
		*out = calloc(1, sizeof(char *));
		if (!*out || !((*out)[0] = strdup(v->valuestring)))
			return -ENOMEM;
		*n = 1;
		return 0;
	}
	if (!cJSON_IsArray(v) || (cnt = cJSON_GetArraySize(v)) == 0)
		FAIL(c, path, "must be a string or a non-empty array of strings");
	*out = calloc(cnt, sizeof(char *));
	if (!*out)
		return -ENOMEM;
	*n = 0;
	cJSON_ArrayForEach(it, v)
	{
		if (!cJSON_IsString(it) || !it->valuestring[0])
			FAIL(c, path, "element %d must be a non-empty string", i);
		(*out)[i++] = strdup(it->valuestring);
		*n = i;
	}
	return 0;
}

static int parse_kind(struct pctx *c, const char *path, const char *s, enum agt_value_kind *k)
{
	for (unsigned i = AGT_VAL_INT; i < AGT_ARRAY_SIZE(value_kinds); i++)
		if (!strcmp(s, value_kinds[i])) {
			*k = i;
			return 0;
		}
	FAIL(c, path, "unknown type \"%s\" (expected int, uint, ptr or str)", s);
}

/* {"name": "...", "type": "int|uint|ptr|str"} */
static int parse_value(struct pctx *c, const cJSON *v, const char *path, struct agt_value_spec *out,
		       const char *default_name)
{
	static const char *const keys[] = {"name", "type", NULL};
	const cJSON *name, *type;
	int err;

	if (!cJSON_IsObject(v))
		FAIL(c, path, "must be an object like {\"name\": \"len\", \"type\": \"int\"}");
	if ((err = check_keys(c, v, path, keys)))
		return err;
	name = cJSON_GetObjectItemCaseSensitive(v, "name");
	type = cJSON_GetObjectItemCaseSensitive(v, "type");
	if (!type || !cJSON_IsString(type))
		FAIL(c, path, "missing \"type\" (int, uint, ptr or str)");
	if (name && (!cJSON_IsString(name) || !name->valuestring[0] ||
		     strlen(name->valuestring) >= AGT_NAME_LEN))
		FAIL(c, path, "\"name\" must be a string of 1 to %d characters", AGT_NAME_LEN - 1);
	snprintf(out->name, sizeof(out->name), "%s", name ? name->valuestring : default_name);
	return parse_kind(c, path, type->valuestring, &out->kind);
}

static int split_usdt(struct pctx *c, const char *path, const char *s, char **prov, char **name)
{
	const char *colon = strchr(s, ':');

	if (!colon || colon == s || !colon[1] || strchr(colon + 1, ':'))
		FAIL(c, path, "\"%s\" is not of the form provider:name (e.g. python:gc__start)", s);
	*prov = strndup(s, colon - s);
	*name = strdup(colon + 1);
	return (*prov && *name) ? 0 : -ENOMEM;
}

/* A probe of a located spec: {"role": "write|read|seal|open", "handler": ..., "trace_type"};
 * in a spec with a "funnel", also "instead_of": the symbol probes it replaces. */
static int parse_located_probe(struct pctx *c, const cJSON *p, const char *path,
			       struct agt_probe_spec *out)
{
	static const char *const keys[] = {"role", "handler", "trace_type", "span", NULL};
	static const char *const funnel_keys[] = {"role",	"handler",    "trace_type",
						  "span",	"instead_of", NULL};
	const cJSON *role = cJSON_GetObjectItemCaseSensitive(p, "role");
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(p, "handler");
	const cJSON *tt = cJSON_GetObjectItemCaseSensitive(p, "trace_type");
	char names[200], sub[160];
	int err, aead;

	if (!cJSON_IsObject(p))
		FAIL(c, path, "must be an object");
	if ((err = check_keys(c, p, path, c->funnel ? funnel_keys : keys)))
		return err;
	if (c->funnel) {
		const cJSON *io = cJSON_GetObjectItemCaseSensitive(p, "instead_of");

		snprintf(sub, sizeof(sub), "%s.instead_of", path);
		if (!io)
			FAIL(c, sub,
			     "a funnel's role probe needs \"instead_of\": the exported functions "
			     "(symbols of this spec's probes) it replaces where it is found");
		if ((err = get_str_list(c, io, sub, &out->instead_of, &out->ninstead_of)))
			return err;
	}
	snprintf(sub, sizeof(sub), "%s.role", path);
	for (int i = AGT_TLS_WRITE; i <= AGT_TLS_OPEN && role && cJSON_IsString(role); i++)
		if (!strcmp(role->valuestring, roles[i]))
			out->role = i;
	if (!out->role)
		FAIL(c, sub,
		     "a located spec's probe needs \"role\": \"write\", \"read\" (SSL "
		     "functions) or \"seal\", \"open\" (AEAD)");
	snprintf(sub, sizeof(sub), "%s.handler", path);
	agt_handler_list(names, sizeof(names));
	if (!h || !cJSON_IsString(h) || !(out->handler = agt_handler_find(h->valuestring)))
		FAIL(c, sub, "must be one of %s", names);
	aead = out->role >= AGT_TLS_SEAL;
	if (out->handler->kind != (aead ? AGT_HK_AEAD : AGT_HK_TLS))
		FAIL(c, sub, "role \"%s\" goes with %s", roles[out->role],
		     aead ? "handler \"aead_seal\" or \"aead_open\""
			  : "a TLS handler such as \"ssl_write\" or \"ssl_read\"");
	out->ret_mode = out->handler->ret;
	out->abi = out->handler->abi;
	out->trace_type = "reasoning_step";
	if (tt) {
		out->trace_type = NULL;
		for (unsigned i = 0; cJSON_IsString(tt) && i < AGT_ARRAY_SIZE(agt_trace_types); i++)
			if (!strcmp(tt->valuestring, agt_trace_types[i]))
				out->trace_type = agt_trace_types[i];
		snprintf(sub, sizeof(sub), "%s.trace_type", path);
		if (!out->trace_type)
			FAIL(c, sub,
			     "must be one of reasoning_step, tool_call, cot_process, decision, "
			     "state_change, error, metric");
	}
	if ((err = get_str(c, p, path, "span", 0, &out->span)))
		return err;
	if (!out->span && !(out->span = strdup("{symbol}")))
		return -ENOMEM;
	return 0;
}

static int parse_probe(struct pctx *c, const cJSON *p, const char *path, struct agt_probe_spec *out)
{
	static const char *const keys[] = {
	    "symbols",	    "usdt",   "return_usdt", "span",	"trace_type", "args",
	    "return_value", "return", "abi",	     "handler", NULL};
	const cJSON *syms = cJSON_GetObjectItemCaseSensitive(p, "symbols");
	const cJSON *v;
	char sub[160], *s = NULL;
	int err;

	if (c->locate || (c->funnel && cJSON_GetObjectItemCaseSensitive(p, "role")))
		return parse_located_probe(c, p, path, out);
	if (!cJSON_IsObject(p))
		FAIL(c, path, "must be an object");
	if (cJSON_GetObjectItemCaseSensitive(p, "role"))
		FAIL(c, path,
		     "\"role\" probes belong to a spec with \"locate\" or \"funnel\" (the "
		     "library the TLS locator finds)");
	if ((err = check_keys(c, p, path, keys)))
		return err;
	if (!syms == !cJSON_GetObjectItemCaseSensitive(p, "usdt"))
		FAIL(c, path,
		     "needs exactly one of \"symbols\" (functions) or \"usdt\" (a marker)");
	if (syms) {
		snprintf(sub, sizeof(sub), "%s.symbols", path);
		if ((err = get_str_list(c, syms, sub, &out->symbols, &out->nsymbols)))
			return err;
		if (cJSON_GetObjectItemCaseSensitive(p, "return_usdt"))
			FAIL(c, path, "\"return_usdt\" only goes with \"usdt\"");
	} else {
		if ((err = get_str(c, p, path, "usdt", 1, &s)))
			return err;
		snprintf(sub, sizeof(sub), "%s.usdt", path);
		err = split_usdt(c, sub, s, &out->usdt_provider, &out->usdt_name);
		free(s);
		if (err)
			return err;
		if ((err = get_str(c, p, path, "return_usdt", 0, &s)))
			return err;
		if (s) {
			snprintf(sub, sizeof(sub), "%s.return_usdt", path);
			err = split_usdt(c, sub, s, &out->ret_usdt_provider, &out->ret_usdt_name);
			free(s);
			if (err)
				return err;
		}
		if (cJSON_GetObjectItemCaseSensitive(p, "return") ||
		    cJSON_GetObjectItemCaseSensitive(p, "abi"))
			FAIL(c, path, "\"return\" and \"abi\" apply to \"symbols\" probes only");
		out->ret_mode = out->ret_usdt_name ? AGT_RET_URETPROBE : AGT_RET_NONE;
	}
	if ((err = get_str(c, p, path, "span", 0, &out->span)))
		return err;
	if (!out->span) {
		char def[160];

		if (syms)
			snprintf(def, sizeof(def), "{symbol}");
		else
			snprintf(def, sizeof(def), "%s:%s", out->usdt_provider, out->usdt_name);
		out->span = strdup(def);
	}

	out->trace_type = "tool_call";
	if ((v = cJSON_GetObjectItemCaseSensitive(p, "trace_type"))) {
		out->trace_type = NULL;
		for (unsigned i = 0; cJSON_IsString(v) && i < AGT_ARRAY_SIZE(agt_trace_types); i++)
			if (!strcmp(v->valuestring, agt_trace_types[i]))
				out->trace_type = agt_trace_types[i];
		snprintf(sub, sizeof(sub), "%s.trace_type", path);
		if (!out->trace_type)
			FAIL(c, sub,
			     "must be one of reasoning_step, tool_call, cot_process, decision, "
			     "state_change, error, metric");
	}

	if ((v = cJSON_GetObjectItemCaseSensitive(p, "args"))) {
		const cJSON *a;
		int i = 0;

		snprintf(sub, sizeof(sub), "%s.args", path);
		if (!cJSON_IsArray(v))
			FAIL(c, sub, "must be an array of {\"name\", \"type\"} objects");
		if (cJSON_GetArraySize(v) > AGT_MAX_ARGS)
			FAIL(c, sub, "has %d entries; at most %d arguments can be recorded",
			     cJSON_GetArraySize(v), AGT_MAX_ARGS);
		cJSON_ArrayForEach(a, v)
		{
			char apath[200], def[16];

			snprintf(apath, sizeof(apath), "%s[%d]", sub, i);
			snprintf(def, sizeof(def), "arg%d", i);
			if ((err = parse_value(c, a, apath, &out->args[i], def)))
				return err;
			out->nargs = ++i;
		}
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(p, "return_value"))) {
		snprintf(sub, sizeof(sub), "%s.return_value", path);
		if ((err = parse_value(c, v, sub, &out->ret, "return_value")))
			return err;
	}
	if (syms && (v = cJSON_GetObjectItemCaseSensitive(p, "return"))) {
		snprintf(sub, sizeof(sub), "%s.return", path);
		if (cJSON_IsString(v) && !strcmp(v->valuestring, "uretprobe"))
			out->ret_mode = AGT_RET_URETPROBE;
		else if (cJSON_IsString(v) && !strcmp(v->valuestring, "insn"))
			out->ret_mode = AGT_RET_INSN;
		else if (cJSON_IsString(v) && !strcmp(v->valuestring, "none"))
			out->ret_mode = AGT_RET_NONE;
		else
			FAIL(c, sub,
			     "must be \"uretprobe\", \"insn\" (every return instruction; use for "
			     "Go) "
			     "or \"none\" (entry only)");
	}
	if (out->ret_mode == AGT_RET_NONE && out->ret.kind != AGT_VAL_NONE)
		FAIL(c, path,
		     "\"return_value\" needs a return probe (\"return\" or \"return_usdt\")");
	if (syms && (v = cJSON_GetObjectItemCaseSensitive(p, "abi"))) {
		snprintf(sub, sizeof(sub), "%s.abi", path);
		if (cJSON_IsString(v) && !strcmp(v->valuestring, "c"))
			out->abi = AGT_ABI_SYSV;
		else if (cJSON_IsString(v) && !strcmp(v->valuestring, "go"))
			out->abi = AGT_ABI_GO;
		else
			FAIL(c, sub, "must be \"c\" or \"go\"");
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(p, "handler"))) {
		char names[800];
		int audit;

		snprintf(sub, sizeof(sub), "%s.handler", path);
		agt_handler_list(names, sizeof(names));
		if (!cJSON_IsString(v) || !(out->handler = agt_handler_find(v->valuestring)))
			FAIL(c, sub, "must be one of %s", names);
		audit = out->handler->kind == AGT_HK_PY_AUDIT;
		if (out->handler->kind == AGT_HK_AEAD)
			FAIL(c, sub,
			     "\"%s\" captures a located function: it goes in a spec with "
			     "\"locate\": \"aws-lc\" and a \"role\"",
			     out->handler->name);
		if (out->handler->marker == !!syms)
			FAIL(c, path,
			     audit ? "handler \"python_audit\" goes with \"usdt\": \"python:audit\""
			     : out->handler->marker ? "handler \"%s\" goes with a \"usdt\" marker"
						     : "handler \"%s\" goes with \"symbols\" probes",
			     out->handler->name);
		if (cJSON_GetObjectItemCaseSensitive(p, "return_usdt") &&
		    out->handler->ret != AGT_RET_URETPROBE)
			FAIL(c, path, "a \"handler\" probe has no \"return_usdt\"");
		/* The handler's row says how its calls are caught and read. */
		out->ret_mode = out->handler->ret;
		out->abi = out->handler->abi;
		if (audit) { /* the event name, a C string */
			out->nargs = 1;
			out->args[0] =
			    (struct agt_value_spec){.name = "event", .kind = AGT_VAL_STR};
		}
		if (cJSON_GetObjectItemCaseSensitive(p, "args") ||
		    cJSON_GetObjectItemCaseSensitive(p, "return_value") ||
		    cJSON_GetObjectItemCaseSensitive(p, "return") ||
		    cJSON_GetObjectItemCaseSensitive(p, "abi"))
			FAIL(c, path,
			     "a \"handler\" probe records what its handler decides; remove "
			     "\"args\", \"return_value\", \"return\" and \"abi\"");
	}
	return 0;
}

/* Line and column of a byte offset, for JSON syntax errors. */
static void line_col(const char *text, const char *at, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (const char *p = text; p < at && *p; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* Each "instead_of" of a funnel's role probes names a symbol one of its symbol probes has. */
static int check_funnel(struct pctx *c, const struct agt_spec *s)
{
	int roles_seen = 0;

	for (int i = 0; i < s->nprobes; i++) {
		const struct agt_probe_spec *r = &s->probes[i];
		char path[64];

		roles_seen += !!r->role;
		for (int k = 0; k < r->ninstead_of; k++) {
			int found = 0;

			for (int j = 0; j < s->nprobes && !found; j++)
				for (int m = 0; m < s->probes[j].nsymbols && !found; m++)
					found = !strcmp(s->probes[j].symbols[m], r->instead_of[k]);
			snprintf(path, sizeof(path), "$.probes[%d].instead_of[%d]", i, k);
			if (!found)
				FAIL(c, path, "\"%s\" is no symbol of this spec's probes",
				     r->instead_of[k]);
		}
	}
	if (!roles_seen)
		FAIL(c, "$.funnel", "needs probes with a \"role\" and \"instead_of\"");
	return 0;
}

int agt_spec_parse(const char *json, const char *file, struct agt_spec *out, char *err,
		   size_t errlen)
{
	static const char *const keys[] = {"name",   "description", "target", "probes",
					   "auto",   "runtime",	    "locate", "funnel", NULL};
	struct pctx c = {.file = file, .err = err, .errlen = errlen};
	const char *endp = NULL;
	cJSON *root;
	const cJSON *v, *p;
	int rc, i = 0;

	memset(out, 0, sizeof(*out));
	out->file = strdup(file);
	root = cJSON_ParseWithOpts(json, &endp, 1);
	if (!root) {
		int line, col;

		line_col(json, endp ? endp : cJSON_GetErrorPtr(), &line, &col);
		rc = agt_seterr(err, errlen, -EINVAL,
				"%s: line %d, column %d: not valid JSON; fix the syntax there",
				file, line, col);
		goto fail;
	}
	if (!cJSON_IsObject(root)) {
		rc = agt_seterr(err, errlen, -EINVAL, "%s: $: a probe spec must be a JSON object",
				file);
		goto fail;
	}
	if ((rc = check_keys(&c, root, "$", keys)))
		goto fail;
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "auto"))) {
		if (!cJSON_IsBool(v)) {
			rc = agt_seterr(err, errlen, -EINVAL, "%s: $.auto: must be true or false",
					file);
			goto fail;
		}
		out->auto_attach = cJSON_IsTrue(v);
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "runtime"))) {
		if (!cJSON_IsBool(v)) {
			rc = agt_seterr(err, errlen, -EINVAL, "%s: $.runtime: must be true or false",
					file);
			goto fail;
		}
		out->runtime = cJSON_IsTrue(v);
	}
	if ((rc = get_str(&c, root, "$", "name", 1, &out->name)) ||
	    (rc = get_str(&c, root, "$", "description", 0, &out->description)))
		goto fail;
	if (!(v = cJSON_GetObjectItemCaseSensitive(root, "target"))) {
		rc = agt_seterr(err, errlen, -EINVAL,
				"%s: $: missing required key \"target\" (a library name like "
				"\"libssl.so*\", an absolute path, or \"$exe\")",
				file);
		goto fail;
	}
	if ((rc = get_str_list(&c, v, "$.target", &out->targets, &out->ntargets)))
		goto fail;
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "locate"))) {
		const char *lib = locator_named(v);

		if (!lib) {
			rc = agt_seterr(err, errlen, -EINVAL,
					"%s: $.locate: must be \"boringssl\", \"openssl3\" or "
					"\"aws-lc\" (the library the TLS locator finds)",
					file);
			goto fail;
		}
		if (!(out->locate = strdup(lib))) {
			rc = -ENOMEM;
			goto fail;
		}
		c.locate = 1;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "funnel"))) {
		const char *lib = locator_named(v);

		if (!lib || !strcmp(lib, "aws-lc") || c.locate) {
			rc = agt_seterr(err, errlen, -EINVAL,
					"%s: $.funnel: must be \"boringssl\" or \"openssl3\" (the "
					"library whose internal functions the role probes take), in a "
					"spec of symbol probes without \"locate\"",
					file);
			goto fail;
		}
		if (!(out->funnel = strdup(lib))) {
			rc = -ENOMEM;
			goto fail;
		}
		c.funnel = 1;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "probes");
	if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0) {
		rc = agt_seterr(err, errlen, -EINVAL,
				"%s: $.probes: must be a non-empty array of probe objects", file);
		goto fail;
	}
	out->probes = calloc(cJSON_GetArraySize(v), sizeof(*out->probes));
	if (!out->probes) {
		rc = -ENOMEM;
		goto fail;
	}
	cJSON_ArrayForEach(p, v)
	{
		char path[64];

		snprintf(path, sizeof(path), "$.probes[%d]", i);
		out->nprobes = i + 1;
		if ((rc = parse_probe(&c, p, path, &out->probes[i++])))
			goto fail;
	}
	if (c.funnel && (rc = check_funnel(&c, out)))
		goto fail;
	cJSON_Delete(root);
	return 0;
fail:
	cJSON_Delete(root);
	agt_spec_free(out);
	if (rc == -ENOMEM)
		agt_seterr(err, errlen, rc, "%s: out of memory while parsing", file);
	return rc;
}

int agt_spec_load(const char *path, struct agt_spec *out, char *err, size_t errlen)
{
	char *text = agt_read_file(path, 1 << 20, NULL);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!text)
		return agt_seterr(
		    err, errlen, -errno,
		    "cannot read probe spec %s: %s; check the path and its permissions", path,
		    strerror(errno));
	rc = agt_spec_parse(text, path, out, err, errlen);
	free(text);
	return rc;
}

int agt_spec_from_uprobe(const char *arg, struct agt_spec *out, char *err, size_t errlen)
{
	const char *colon = strchr(arg, ':');
	struct agt_probe_spec *p;

	memset(out, 0, sizeof(*out));
	if (!colon || colon == arg || !colon[1])
		return agt_seterr(
		    err, errlen, -EINVAL,
		    "--uprobe %s: expected PATH:SYMBOL, e.g. /usr/bin/myapp:handle_request "
		    "or libc.so.6:malloc",
		    arg);
	out->file = strdup("--uprobe");
	out->name = strdup(arg);
	out->targets = calloc(1, sizeof(char *));
	out->probes = calloc(1, sizeof(*out->probes));
	if (!out->file || !out->name || !out->targets || !out->probes)
		goto nomem;
	out->targets[0] = strndup(arg, colon - arg);
	out->ntargets = 1;
	out->nprobes = 1;
	p = &out->probes[0];
	p->symbols = calloc(1, sizeof(char *));
	if (!out->targets[0] || !p->symbols || !(p->symbols[0] = strdup(colon + 1)))
		goto nomem;
	p->nsymbols = 1;
	p->span = strdup("{symbol}");
	p->trace_type = "tool_call";
	p->ret = (struct agt_value_spec){.name = "return_value", .kind = AGT_VAL_INT};
	return p->span ? 0 : -ENOMEM;
nomem:
	agt_spec_free(out);
	return agt_seterr(err, errlen, -ENOMEM, "out of memory");
}

static void free_list(char **l, int n)
{
	for (int i = 0; l && i < n; i++)
		free(l[i]);
	free(l);
}

void agt_spec_free(struct agt_spec *s)
{
	for (int i = 0; s->probes && i < s->nprobes; i++) {
		struct agt_probe_spec *p = &s->probes[i];

		free_list(p->symbols, p->nsymbols);
		free(p->usdt_provider);
		free(p->usdt_name);
		free(p->ret_usdt_provider);
		free(p->ret_usdt_name);
		free(p->span);
		free_list(p->instead_of, p->ninstead_of);
	}
	free(s->probes);
	free_list(s->targets, s->ntargets);
	free(s->file);
	free(s->locate);
	free(s->funnel);
	free(s->name);
	free(s->description);
	memset(s, 0, sizeof(*s));
}
