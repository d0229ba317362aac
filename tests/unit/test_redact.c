/* Secret redaction (base/redact.h). Most cases come from tests/fixtures/secrets/corpus.json
 * (every secret format in every context, and text that must come out unchanged); for each
 * entry the test asserts: the exact expected output; no secret value in it (raw, or escaped
 * once or twice as JSON); for JSON documents, output that parses to the same structure with
 * only secret-bearing values replaced; for text, output equal to the input but for the
 * replaced stretches; and that redacting the output again changes nothing. The other tests
 * cover the API itself: user patterns and their errors, argv and command lines, long, deep,
 * empty and binary input, the credential-name classifier, several threads at once, and speed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/redact.h"
#include "base/redact_int.h"
#include "base/util.h"

#define CORPUS "tests/fixtures/secrets/corpus.json"
#define MARK AGT_REDACTED

static char *redact(const struct agt_redactor *r, const char *s)
{
	char *o = agt_redact_text(r, s, strlen(s), NULL);

	assert_non_null(o);
	return o;
}

/* s as it appears inside a JSON string (cJSON's escaping), caller frees. */
static char *json_escaped(const char *s)
{
	cJSON *str = cJSON_CreateString(s);
	char *p = cJSON_PrintUnformatted(str), *e;
	size_t n = strlen(p);

	cJSON_Delete(str);
	e = strndup(p + 1, n - 2);
	cJSON_free(p);
	return e;
}

/* Whether out holds secret: as is, or escaped once or twice as JSON. */
static bool leaks(const char *out, const char *secret)
{
	char *e1, *e2;
	bool found;

	if (!*secret)
		return false;
	e1 = json_escaped(secret);
	e2 = json_escaped(e1);
	found = strstr(out, secret) || strstr(out, e1) || strstr(out, e2);
	free(e1);
	free(e2);
	return found;
}

/* The mark as it is written: bare, or quoted at escape level 0, 1 or 2; longest first. */
static size_t mark_at(const char *s)
{
	static const char *const forms[] = {"\\\\\\\"" MARK "\\\\\\\"", "\\\"" MARK "\\\"",
					    "\"" MARK "\"", MARK};

	for (size_t i = 0; i < AGT_ARRAY_SIZE(forms); i++)
		if (!strncmp(s, forms[i], strlen(forms[i])))
			return strlen(forms[i]);
	return 0;
}

/* Whether in could become out by replacing stretches of it with the mark: out is a pattern
 * where each mark stands for any text. Pieces between marks are matched leftmost, which is
 * exact for patterns whose only wildcard is "anything". */
static bool only_marks_differ(const char *out, const char *in)
{
	const char *o = out, *i = in;
	bool anchored = true;

	while (*o) {
		size_t m = mark_at(o), plen = 0;
		const char *hit;
		char *piece;

		if (m) {
			o += m;
			anchored = false;
			continue;
		}
		while (o[plen] && !mark_at(o + plen))
			plen++;
		piece = strndup(o, plen);
		if (anchored) {
			hit = !strncmp(i, piece, plen) ? i : NULL;
		} else if (!o[plen]) {
			/* The last piece ends the text. */
			size_t il = strlen(i);

			hit = il >= plen && !strcmp(i + il - plen, piece) ? i + il - plen : NULL;
		} else {
			hit = strstr(i, piece);
		}
		free(piece);
		if (!hit)
			return false;
		i = hit + plen;
		o += plen;
		anchored = true;
	}
	return !anchored || !*i;
}

static bool subtree_has_secret(const cJSON *in, const cJSON *secrets)
{
	char *text = cJSON_PrintUnformatted(in);
	const cJSON *s;
	bool found = false;

	cJSON_ArrayForEach(s, secrets)
	{
		if (leaks(text, s->valuestring))
			found = true;
	}
	cJSON_free(text);
	return found;
}

static bool is_doc(const char *s)
{
	cJSON *j = cJSON_Parse(s);
	bool doc = j && (cJSON_IsObject(j) || cJSON_IsArray(j));

	cJSON_Delete(j);
	return doc;
}

/* Whether out has the structure of in, with only values that carry a secret replaced (whole,
 * by the mark, or in part, as text). Names are compared, and so is their order. */
static bool same_structure(const cJSON *in, const cJSON *out, const cJSON *secrets)
{
	const cJSON *a, *b;

	if (cJSON_IsString(out) && !strcmp(out->valuestring, MARK) &&
	    !(cJSON_IsString(in) && !strcmp(in->valuestring, MARK)))
		return subtree_has_secret(in, secrets) || (cJSON_IsString(in) && !*in->valuestring);
	if ((in->type & 0xff) != (out->type & 0xff)) {
		/* A number that a user pattern matched becomes a string. */
		return cJSON_IsNumber(in) && cJSON_IsString(out) && strstr(out->valuestring, MARK);
	}
	if (cJSON_IsString(in)) {
		if (!strcmp(in->valuestring, out->valuestring))
			return true;
		if (is_doc(in->valuestring) && is_doc(out->valuestring)) {
			cJSON *ji = cJSON_Parse(in->valuestring),
			      *jo = cJSON_Parse(out->valuestring);
			bool same = same_structure(ji, jo, secrets);

			cJSON_Delete(ji);
			cJSON_Delete(jo);
			return same;
		}
		return only_marks_differ(out->valuestring, in->valuestring) &&
		       subtree_has_secret(in, secrets);
	}
	if (cJSON_IsNumber(in))
		return in->valuedouble == out->valuedouble;
	if (cJSON_IsObject(in) || cJSON_IsArray(in)) {
		if (cJSON_GetArraySize(in) != cJSON_GetArraySize(out))
			return false;
		for (a = in->child, b = out->child; a && b; a = a->next, b = b->next) {
			if (cJSON_IsObject(in) && strcmp(a->string, b->string) &&
			    !(only_marks_differ(b->string, a->string)))
				return false;
			if (!same_structure(a, b, secrets))
				return false;
		}
		return true;
	}
	return true; /* true, false, null */
}

static struct agt_redactor *redactor_for(const cJSON *e)
{
	const cJSON *pats = cJSON_GetObjectItem(e, "patterns"), *p;
	struct agt_redactor *r;
	char err[256];

	if (!pats)
		return NULL;
	r = agt_redactor_new();
	assert_non_null(r);
	cJSON_ArrayForEach(p, pats)
	{
		if (agt_redactor_add(r, p->valuestring, err, sizeof(err))) {
			fail_msg("%s", err);
		}
	}
	return r;
}

static int check_text_entry(const cJSON *e, const char *id, const struct agt_redactor *r)
{
	const char *in = cJSON_GetObjectItem(e, "input")->valuestring;
	const char *expect = cJSON_GetObjectItem(e, "expect")->valuestring;
	const cJSON *secrets = cJSON_GetObjectItem(e, "secrets"), *s;
	bool json = cJSON_IsTrue(cJSON_GetObjectItem(e, "json"));
	char *out = redact(r, in), *again;
	int bad = 0;

	if (strcmp(out, expect)) {
		print_error("%s: output differs\n  input:  %s\n  output: %s\n  expect: %s\n", id,
			    in, out, expect);
		bad++;
	}
	cJSON_ArrayForEach(s, secrets)
	{
		if (leaks(out, s->valuestring)) {
			print_error("%s: secret \"%s\" survives in %s\n", id, s->valuestring, out);
			bad++;
		}
	}
	if (json) {
		cJSON *ji = cJSON_Parse(in), *jo = cJSON_ParseWithOpts(out, NULL, 1);

		if (!jo) {
			print_error("%s: output is not valid JSON: %s\n", id, out);
			bad++;
		} else if (!same_structure(ji, jo, secrets)) {
			print_error("%s: output changes more than the secrets: %s\n", id, out);
			bad++;
		}
		cJSON_Delete(ji);
		cJSON_Delete(jo);
	} else if (!only_marks_differ(out, in)) {
		print_error("%s: output changes more than redacted stretches: %s\n", id, out);
		bad++;
	}
	again = redact(r, out);
	if (strcmp(again, out)) {
		print_error("%s: redacting twice changes it again: %s\n", id, again);
		bad++;
	}
	free(again);
	free(out);
	return bad;
}

static int check_argv_entry(const cJSON *e, const char *id, const struct agt_redactor *r)
{
	const cJSON *av = cJSON_GetObjectItem(e, "argv"),
		    *ev = cJSON_GetObjectItem(e, "expect_argv");
	const cJSON *secrets = cJSON_GetObjectItem(e, "secrets"), *s;
	int argc = cJSON_GetArraySize(av), bad = 0;
	const char **argv = calloc((size_t)argc + 1, sizeof(*argv));
	char **out, **again, *line, *joined, *expect_line;
	size_t jl = 0, el = 0;

	for (int i = 0; i < argc; i++) {
		argv[i] = cJSON_GetArrayItem(av, i)->valuestring;
		jl += strlen(argv[i]) + 1;
		el += strlen(cJSON_GetArrayItem(ev, i)->valuestring) + 1;
	}
	out = agt_redact_argv(r, argc, argv);
	assert_non_null(out);
	assert_null(out[argc]);
	for (int i = 0; i < argc; i++) {
		const char *want = cJSON_GetArrayItem(ev, i)->valuestring;

		if (strcmp(out[i], want)) {
			print_error("%s: argv[%d] is \"%s\", expected \"%s\"\n", id, i, out[i],
				    want);
			bad++;
		}
		cJSON_ArrayForEach(s, secrets)
		{
			if (leaks(out[i], s->valuestring)) {
				print_error("%s: secret survives in argv[%d]: %s\n", id, i, out[i]);
				bad++;
			}
		}
	}
	again = agt_redact_argv(r, argc, (const char *const *)out);
	assert_non_null(again);
	for (int i = 0; i < argc; i++)
		if (strcmp(again[i], out[i])) {
			print_error("%s: redacting argv twice changes argv[%d]: %s\n", id, i,
				    again[i]);
			bad++;
		}
	/* The same arguments as /proc/PID/cmdline has them, joined for display. */
	joined = malloc(jl + 1);
	expect_line = calloc(1, el + 1);
	for (int i = 0, at = 0; i < argc; i++) {
		memcpy(joined + at, argv[i], strlen(argv[i]) + 1);
		at += (int)strlen(argv[i]) + 1;
		if (i)
			strcat(expect_line, " ");
		strcat(expect_line, cJSON_GetArrayItem(ev, i)->valuestring);
	}
	line = agt_redact_cmdline(r, joined, jl);
	assert_non_null(line);
	if (strcmp(line, expect_line)) {
		print_error("%s: command line is \"%s\", expected \"%s\"\n", id, line, expect_line);
		bad++;
	}
	free(line);
	free(joined);
	free(expect_line);
	free(again);
	free(out);
	free(argv);
	return bad;
}

static void corpus(void **state)
{
	size_t len;
	char *text = agt_read_file(CORPUS, 64 << 20, &len);
	cJSON *root, *entries, *e;
	int bad = 0, n = 0, with_secrets = 0;

	(void)state;
	assert_non_null(text);
	root = cJSON_Parse(text);
	assert_non_null(root);
	assert_string_equal(cJSON_GetObjectItem(root, "mark")->valuestring, MARK);
	entries = cJSON_GetObjectItem(root, "entries");
	cJSON_ArrayForEach(e, entries)
	{
		const char *id = cJSON_GetObjectItem(e, "id")->valuestring;
		struct agt_redactor *r = redactor_for(e);

		if (cJSON_GetObjectItem(e, "argv"))
			bad += check_argv_entry(e, id, r);
		else
			bad += check_text_entry(e, id, r);
		with_secrets += cJSON_GetArraySize(cJSON_GetObjectItem(e, "secrets")) > 0;
		agt_redactor_free(r);
		n++;
	}
	print_message("corpus: %d entries (%d with secrets), %d failed checks\n", n, with_secrets,
		      bad);
	assert_true(n > 1000);
	assert_int_equal(bad, 0);
	cJSON_Delete(root);
	free(text);
}

/* The defect that started this: an escaped quote inside a value. */
static void escaped_quote(void **state)
{
	char *o;

	(void)state;
	o = redact(NULL, "{\"password\":\"a\\\"TAIL\"}");
	assert_string_equal(o, "{\"password\":\"[REDACTED]\"}");
	free(o);
	o = redact(NULL, "{\"password\": \"a\\\"TAIL\", \"n\": 1"); /* truncated: free text */
	assert_string_equal(o, "{\"password\": \"[REDACTED]\", \"n\": 1");
	free(o);
	o = redact(NULL, "password=\"a\\\"TAIL\" next");
	assert_string_equal(o, "password=\"[REDACTED]\" next");
	free(o);
}

static void json_output_is_compact_and_exact(void **state)
{
	const char *in =
	    "{\n  \"a\" : [ 1 , -0.5e+3, true, false, null, \"x\\u00e9\\ud83d\\ude00\\n\\/\" ],"
	    "\n  \"big\": 123456789012345678901234567890, \"esc\": \"\\u0001\\u001f\", "
	    "\"password\": \"p\" }";
	char *o;
	size_t n;

	(void)state;
	o = agt_redact_text(NULL, in, strlen(in), &n);
	assert_non_null(o);
	assert_string_equal(o,
			    "{\"a\":[1,-0.5e+3,true,false,null,\"x\xc3\xa9\xf0\x9f\x98\x80\\n/\"],"
			    "\"big\":123456789012345678901234567890,\"esc\":\"\\u0001\\u001f\","
			    "\"password\":\"[REDACTED]\"}");
	assert_int_equal(n, strlen(o));
	free(o);
	/* A document in which nothing is redacted comes out exactly as it was written. */
	o = redact(NULL, "{ \"a\" : [1, 2],\n \"b\": \"x\\u00e9\" }");
	assert_string_equal(o, "{ \"a\" : [1, 2],\n \"b\": \"x\\u00e9\" }");
	free(o);
	/* A lone surrogate escape becomes U+FFFD; invalid UTF-8 bytes pass through as they are
	 * (exporters repair them, and count, with agt_utf8_sanitize). */
	o = redact(NULL, "[\"\\ud800x\",\"a\xff\xfe b\",{\"token\":\"t\"}]");
	assert_string_equal(o, "[\"\xef\xbf\xbdx\",\"a\xff\xfe b\",{\"token\":\"[REDACTED]\"}]");
	free(o);
}

static void invalid_json_is_free_text(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"[1,2", "[1,2"},
	    {"{\"a\":1}}", "{\"a\":1}}"},
	    {"{\"token\":\"T-1\"} trailing", "{\"token\":\"[REDACTED]\"} trailing"},
	    {"{'token': 'T-2'}", "{'token': '[REDACTED]'}"},
	    {"[\"unterminated", "[\"unterminated"},
	    {"{\"a\":\"\x01\"}", "{\"a\":\"\x01\"}"},		    /* a raw control character */
	    {"{\"password\":01}", "{\"password\":\"[REDACTED]\"}"}, /* a leading zero */
	    {"{\"secret\":tru}", "{\"secret\":\"[REDACTED]\"}"},
	};

	(void)state;
	for (size_t i = 0; i < AGT_ARRAY_SIZE(cases); i++) {
		char *o = redact(NULL, cases[i].in);

		assert_string_equal(o, cases[i].out);
		free(o);
	}
}

static void empty_and_binary_input(void **state)
{
	static const char bin[] = "a\0password=B1n-S3cret\0z";
	size_t n = 99;
	char *o;

	(void)state;
	o = agt_redact_text(NULL, "", 0, &n);
	assert_non_null(o);
	assert_string_equal(o, "");
	assert_int_equal(n, 0);
	free(o);
	o = agt_redact_text(NULL, bin, sizeof(bin) - 1, &n);
	assert_non_null(o);
	assert_int_equal(n, 23);
	assert_memory_equal(o, "a\0password=[REDACTED]\0z", 24);
	free(o);
	errno = 0;
	assert_null(agt_redact_text(NULL, NULL, 0, NULL));
	assert_int_equal(errno, EINVAL);
	assert_null(agt_redact_cmdline(NULL, NULL, 0));
	assert_null(agt_redact_argv(NULL, -1, NULL));
}

/* 1 MiB of text with secrets at the start, the middle and the end: all go, nothing else
 * changes; and JSON nested far deeper than the parser goes is still redacted as text. */
static void long_and_deep_input(void **state)
{
	static const char *const secrets[] = {"sk-Aa0123456789012345678901234567890123456789",
					      "ghp_abcdefghijABCDEFGHIJ0123456789abcdef",
					      "AKIAABCDEFGHIJKLMNOP"};
	const size_t n = 1 << 20;
	char *big = malloc(n + 1), *o, *deep;
	size_t at[3] = {0, n / 2, n - strlen(secrets[2])}, olen, removed = 0;

	(void)state;
	for (size_t i = 0; i < n; i++)
		big[i] = "lorem ipsum dolor sit amet, consectetur adipiscing elit\n"[i % 57];
	for (int k = 0; k < 3; k++) {
		/* Each secret is a word of its own. */
		memcpy(big + at[k], secrets[k], strlen(secrets[k]));
		if (k < 2)
			big[at[k] + strlen(secrets[k])] = ' ';
		if (at[k])
			big[at[k] - 1] = ' ';
		removed += strlen(secrets[k]);
	}
	big[n] = 0;
	o = agt_redact_text(NULL, big, n, &olen);
	assert_non_null(o);
	assert_int_equal(olen, n - removed + 3 * strlen(MARK));
	for (int k = 0; k < 3; k++)
		assert_null(strstr(o, secrets[k]));
	assert_true(only_marks_differ(o, big));
	free(o);
	free(big);

	deep = malloc(200000 + 64);
	memset(deep, '[', 100000);
	strcpy(deep + 100000, "{\"password\":\"Deep-1\"}");
	memset(deep + 100000 + 21, ']', 100000);
	deep[200021] = 0;
	o = redact(NULL, deep);
	assert_int_equal(strlen(o), 200021 - 6 + strlen(MARK));
	assert_non_null(strstr(o, "[{\"password\":\"[REDACTED]\"}]"));
	free(o);
	free(deep);
}

static void user_patterns(void **state)
{
	struct agt_redactor *r = agt_redactor_new();
	char err[256] = "";
	char *o;

	(void)state;
	assert_non_null(r);
	assert_int_equal(agt_redactor_add(r, "\\d{4}", err, sizeof(err)), 0);
	assert_int_equal(agt_redactor_add(r, "(?<=pin:)\\w+", err, sizeof(err)), 0);
	o = redact(r, "year 2024, pin:abc, 123 stays, password=hunter2");
	assert_string_equal(o, "year [REDACTED], pin:[REDACTED], 123 stays, password=[REDACTED]");
	free(o);
	/* In JSON, on names, string values and numbers (a number a pattern matches becomes a
	 * string). */
	o = redact(r, "{\"k2024\":\"x 1999 y\",\"n\":20245,\"m\":12}");
	assert_string_equal(o,
			    "{\"k[REDACTED]\":\"x [REDACTED] y\",\"n\":\"[REDACTED]5\",\"m\":12}");
	free(o);
	/* An empty match replaces nothing and does not loop. */
	assert_int_equal(agt_redactor_add(r, "z*", err, sizeof(err)), 0);
	o = redact(r, "azzb");
	assert_string_equal(o, "a[REDACTED]b");
	free(o);
	agt_redactor_free(r);
}

static void bad_patterns(void **state)
{
	struct agt_redactor *r = agt_redactor_new();
	char err[256] = "";

	(void)state;
	assert_int_equal(agt_redactor_add(r, "(\\d{4}", err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
			    "redact pattern \"(\\d{4}\" is not a valid PCRE2 regular expression: "
			    "missing closing parenthesis (at offset 6)");
	assert_int_equal(agt_redactor_add(r, "a[b", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "redact pattern \"a[b\" is not a valid PCRE2 regular expression: "
				 "missing terminating ] for character class (at offset 3)");
	assert_int_equal(agt_redactor_add(r, "", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "a redact pattern must not be empty (it would match nothing)");
	assert_int_equal(agt_redactor_add(NULL, "x", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "no redact pattern was given");
	agt_redactor_free(r);
	agt_redactor_free(NULL);
}

/* Arguments are read together: an option and its value are two arguments. */
static void argv_and_cmdline(void **state)
{
	const char *const argv[] = {"agtrace",
				    "attach",
				    "--es-password",
				    "Es-Pw-1",
				    "--redact",
				    "\\d+",
				    "-u",
				    "elastic:Es-Pw-2",
				    "-H",
				    "Authorization: Bearer abcdefgh12345678",
				    "--x=1"};
	static const char cmdline[] = "mysql\0-uroot\0-pMy-Pw-3\0shop\0";
	char **o;
	char *line;

	(void)state;
	o = agt_redact_argv(NULL, (int)AGT_ARRAY_SIZE(argv), argv);
	assert_non_null(o);
	assert_string_equal(o[0], "agtrace");
	assert_string_equal(o[2], "--es-password");
	assert_string_equal(o[3], MARK);
	assert_string_equal(o[5], "\\d+");
	assert_string_equal(o[7], "elastic:" MARK);
	assert_string_equal(o[9], "Authorization: Bearer " MARK);
	assert_string_equal(o[10], "--x=1");
	assert_null(o[11]);
	free(o); /* one allocation */
	o = agt_redact_argv(NULL, 0, NULL);
	assert_non_null(o);
	assert_null(o[0]);
	free(o);
	line = agt_redact_cmdline(NULL, cmdline, sizeof(cmdline) - 1);
	assert_string_equal(line, "mysql -uroot -p" MARK " shop");
	free(line);
}

static void credential_names(void **state)
{
	static const struct {
		const char *key;
		enum agt_keyctx ctx;
		bool secret;
	} cases[] = {
	    {"password", AGT_KEY_JSON, true},
	    {"new_password_confirmation", AGT_KEY_JSON, true},
	    {"apiKey", AGT_KEY_JSON, true},
	    {"API-KEY", AGT_KEY_JSON, true},
	    {"x-auth-token", AGT_KEY_JSON, true},
	    {"aws_secret_access_key", AGT_KEY_JSON, true},
	    {"Client Secret", AGT_KEY_JSON, true},
	    {"credentials", AGT_KEY_JSON, true},
	    {"session", AGT_KEY_JSON, true},
	    {"pwd", AGT_KEY_JSON, true},
	    {"PWD", AGT_KEY_ENV, false},
	    {"OLDPWD", AGT_KEY_ENV, false},
	    {"max_tokens", AGT_KEY_JSON, false},
	    {"input_tokens", AGT_KEY_JSON, false},
	    {"token_type", AGT_KEY_JSON, false},
	    {"next_page_token", AGT_KEY_JSON, false},
	    {"eos_token", AGT_KEY_JSON, false},
	    {"session_id", AGT_KEY_JSON, false},
	    {"monkey", AGT_KEY_ENV, false},
	    {"primary_key", AGT_KEY_JSON, false},
	    {"PRIMARY_KEY", AGT_KEY_JSON, true},
	    {"cache_key", AGT_KEY_ENV, true},
	    {"cache_key", AGT_KEY_ASSIGN, false},
	    {"key", AGT_KEY_JSON, false},
	    {"key", AGT_KEY_QUERY, true},
	    {"code", AGT_KEY_JSON, false},
	    {"code", AGT_KEY_QUERY, true},
	    {"signature", AGT_KEY_JSON, false},
	    {"X-Amz-Signature", AGT_KEY_QUERY, true},
	    {"", AGT_KEY_JSON, false},
	    {"---", AGT_KEY_ENV, false},
	};

	(void)state;
	for (size_t i = 0; i < AGT_ARRAY_SIZE(cases); i++) {
		bool got =
		    agt_redact_key_is_secret(cases[i].key, strlen(cases[i].key), cases[i].ctx);

		if (got != cases[i].secret)
			fail_msg("\"%s\" (context %d): expected %d", cases[i].key, cases[i].ctx,
				 cases[i].secret);
	}
}

/* One redactor, several threads: each gets exactly what one thread alone gets. */
struct thread_arg {
	const struct agt_redactor *r;
	const char *in, *want;
	int bad;
};

static void *redact_loop(void *p)
{
	struct thread_arg *a = p;

	for (int i = 0; i < 300; i++) {
		char *o = agt_redact_text(a->r, a->in, strlen(a->in), NULL);

		if (!o || strcmp(o, a->want))
			a->bad++;
		free(o);
	}
	return NULL;
}

static void threads(void **state)
{
	static const char *const in[] = {
	    "{\"messages\":[{\"content\":\"pin 1234 and password=Th-Pw-1\"}],\"api_key\":\"x\"}",
	    "curl -u a:Th-Pw-2 https://h/?token=abc 5678",
	    "plain text 9999 with sk-Aa0123456789012345678901234567890123456789",
	    "{\"args\":\"{\\\"secret\\\":\\\"Th-3\\\",\\\"n\\\":4444}\"}",
	};
	struct agt_redactor *r = agt_redactor_new();
	struct thread_arg args[8];
	pthread_t t[8];
	char err[128];

	(void)state;
	assert_int_equal(agt_redactor_add(r, "\\b\\d{4}\\b", err, sizeof(err)), 0);
	for (int i = 0; i < 8; i++) {
		args[i] = (struct thread_arg){r, in[i % 4], NULL, 0};
		args[i].want = agt_redact_text(r, args[i].in, strlen(args[i].in), NULL);
		assert_non_null(args[i].want);
	}
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, redact_loop, &args[i]), 0);
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(args[i].bad, 0);
		free((char *)args[i].want);
	}
	agt_redactor_free(r);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The fastest of runs redactions of text, in ns (the fastest is what the code costs; slower
 * runs measure the neighbours on a shared machine). */
static uint64_t fastest(const struct agt_redactor *r, const char *text, size_t len, int runs)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < runs; i++) {
		uint64_t t0 = now_ns(), dt;
		char *o = agt_redact_text(r, text, len, NULL);

		dt = now_ns() - t0;
		assert_non_null(o);
		free(o);
		if (dt < best)
			best = dt;
	}
	return best;
}

/* The documented bounds (redact.h): a 4 KiB text in well under 50 us, a 64 KiB JSON body in
 * under 5 ms. */
static void speed(void **state)
{
	static const char para[] =
	    "The agent ran `curl -s https://api.example.com/v1/items?page=2&api_key=k-123` and got "
	    "200 OK with 14 items. It then read config.yaml (token: abc123, region: eu-west-1) and "
	    "called write_file with path=src/main.c. Model gpt-4o-mini answered in 812 ms; trace "
	    "4bf92f3577b34da6a3ce929d0e0e4736, call_abc123. Authorization: Bearer "
	    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl was sent.\n";
	char text[4097], *body;
	size_t n = 0, bl;
	struct agt_redactor *r = agt_redactor_new();
	uint64_t t_text, t_json, t_pat;
	char err[128];

	(void)state;
	while (n + sizeof(para) - 1 <= 4096) {
		memcpy(text + n, para, sizeof(para) - 1);
		n += sizeof(para) - 1;
	}
	memset(text + n, 'x', 4096 - n);
	text[4096] = 0;
	body = malloc(70000);
	bl = (size_t)sprintf(body, "{\"model\":\"claude-3-5-sonnet-20241022\",\"max_tokens\":1024,"
				   "\"messages\":[");
	for (int i = 0; bl < 65536 - 1200; i++) {
		bl +=
		    (size_t)sprintf(body + bl,
				    "%s{\"role\":\"%s\",\"content\":[{\"type\":\"text\","
				    "\"text\":\"%.*s\"}]}",
				    i ? "," : "", i % 2 ? "assistant" : "user", 600,
				    "Please look at the failing test in tests/unit and fix it. The "
				    "log says: expected 3 got 4 at line 120 of test_output.c; the "
				    "build uses make -j2 unit and gcc 12. I ran it twice and the "
				    "second run passed, so it may be flaky; check the timing "
				    "assumptions, the temporary files and the environment "
				    "variables it reads (HOME, TMPDIR, LANG) before changing the "
				    "code. Report what you find with file names and line numbers, "
				    "and keep the patch small. When done, run the whole unit suite "
				    "again and paste the summary line here so that I can compare "
				    "it with the one from the CI job of yesterday evening.");
	}
	bl += (size_t)sprintf(body + bl, "]}");
	assert_true(bl >= 60000 && bl <= 65536);
	t_text = fastest(NULL, text, 4096, 5000);
	t_json = fastest(NULL, body, bl, 300);
	assert_int_equal(agt_redactor_add(r, "\\b\\d{16}\\b", err, sizeof(err)), 0);
	assert_int_equal(agt_redactor_add(r, "(?i)project[-_ ]?x", err, sizeof(err)), 0);
	t_pat = fastest(r, text, 4096, 2000);
	print_message("speed: 4 KiB text %.1f us, with 2 user patterns %.1f us; %zu B JSON body "
		      "%.2f ms\n",
		      t_text / 1e3, t_pat / 1e3, bl, t_json / 1e6);
	agt_redactor_free(r);
	free(body);
	assert_true(t_text < 50000);
	assert_true(t_json < 5000000);
}

/* URLs as messages show them: the password of their user info, with or without a scheme, and
 * credential query parameters. */
static void urls_for_messages(void **state)
{
	static const char *const cases[][2] = {
	    {"http://elastic:Pw-123456@es:9200", "http://elastic:[REDACTED]@es:9200"},
	    {"elastic:Pw-123456@es:9200/x", "elastic:[REDACTED]@es:9200/x"},
	    {"ftp://u:p@h/a@b", "ftp://u:[REDACTED]@h/a@b"},
	    {"https://user@h/pods", "https://user@h/pods"},
	    {"https://h/pods?token=abcdef123456&x=1", "https://h/pods?token=[REDACTED]&x=1"},
	    {"https://h:10250/pods", "https://h:10250/pods"},
	    {"", ""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *r = agt_redact_url(cases[i][0]);

		assert_string_equal(r, cases[i][1]);
		free(r);
	}
	assert_null(agt_redact_url(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(corpus),
	    cmocka_unit_test(escaped_quote),
	    cmocka_unit_test(json_output_is_compact_and_exact),
	    cmocka_unit_test(invalid_json_is_free_text),
	    cmocka_unit_test(empty_and_binary_input),
	    cmocka_unit_test(long_and_deep_input),
	    cmocka_unit_test(user_patterns),
	    cmocka_unit_test(bad_patterns),
	    cmocka_unit_test(argv_and_cmdline),
	    cmocka_unit_test(urls_for_messages),
	    cmocka_unit_test(credential_names),
	    cmocka_unit_test(threads),
	    cmocka_unit_test(speed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
