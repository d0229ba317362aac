/* Secret redaction: secrets never leave the node. Everything agtrace emits that could hold a
 * credential (tool inputs and outputs, HTTP bodies, command lines, URLs, error messages) goes
 * through agt_redact_text, agt_redact_argv or agt_redact_cmdline, which replace each secret by
 * "[REDACTED]" and keep what names it ("api_key":"[REDACTED]", ?key=[REDACTED], -p[REDACTED]).
 *
 * A redactor holds the user's --redact patterns (PCRE2 syntax, e.g. "\d{4}-\d{4}"); the
 * built-in rules need no setup, and a NULL redactor means "built-in rules only". Once its
 * patterns are added a redactor is read-only: any number of threads may redact with it at once.
 *
 * Credential names. Case and every character but letters and digits are ignored, so api_key,
 * API-KEY, apiKey and "Api Key" are one name. A name is a credential when it contains password,
 * passwd or passphrase; is pwd (not PWD, the shell's directory), auth, session, jwt or privkey;
 * or ends in secret(s), token, api key, access key, private key, secret key, signing key,
 * session key, auth key, master key, encryption key, credential(s), authorization or cookie(s)
 * (client_secret, accessToken, x-auth-token, aws_secret_access_key, Set-Cookie, ...), except
 * tokenizer and paging names (eos_token, next_page_token, ...). NAME_KEY=value in free text and
 * an upper-case SOME_KEY member also count; in a URL query so do key, code, sig, signature and
 * pass.
 *
 * JSON documents. A text that is one whole JSON object or array is parsed and rewritten as
 * compact JSON. The value of a member named as a credential becomes "[REDACTED]" whatever it
 * is (string, number, array, object; null, true and false are kept, as they hold no secret).
 * Every other string value, and every member name, is redacted as free text; a string that
 * itself holds a JSON document (tool-call arguments) is redacted as one, and rewritten (compact)
 * only if something in it was redacted. In {"name": "DB_PASSWORD", "value": ...} (Kubernetes
 * env, HAR headers) the value is redacted when the name is a credential name. The members of a
 * JSON Schema "properties" object are parameter definitions: an object under "password" there
 * is descended into instead of redacted whole. Numbers are copied as written (no precision is
 * lost). Invalid or truncated JSON is redacted as free text.
 *
 * Free text (anything else) is redacted by tokens:
 *  - PEM private keys: the body between -----BEGIN ... PRIVATE KEY----- and -----END (to the
 *    end of the text when END is missing);
 *  - tokens by their shape: JWTs (eyJ...), AWS key ids (AKIA..., ASIA...), OpenAI/Anthropic
 *    sk-..., Stripe sk_live_/sk_test_/rk_live_/rk_test_/whsec_, GitHub github_pat_ and
 *    ghp_/gho_/ghu_/ghs_/ghr_, GitLab glpat-, Slack xoxa/b/p/o/s/r- and xapp-, Google AIza...,
 *    Hugging Face hf_, npm npm_;
 *  - "Bearer <token>" anywhere; Authorization and Proxy-Authorization headers (the scheme word
 *    is kept), Cookie and Set-Cookie headers (to the end of the line or the enclosing quote);
 *  - URL passwords (scheme://user:[REDACTED]@host) and credential query parameters (?key=,
 *    api_key, token, access_token, code, sig, signature, password, client_secret, secret,
 *    X-Amz-Signature, ...; also after # and in form bodies);
 *  - a credential name and its value: password=..., passwd: ..., secret=..., OPENAI_API_KEY=...,
 *    *_KEY=, *_TOKEN=, *_SECRET=, *PASSWORD=, config lines (aws_secret_access_key = ...), YAML
 *    (token: ...), XML (<SecretAccessKey>...</SecretAccessKey>), loose or truncated JSON and
 *    Python dicts ("password": "...", 'token': '...', also JSON escaped inside a JSON string:
 *    \"password\":\"...\"), where a quoted value ends at its real closing quote, so an
 *    escaped quote inside it never leaks the rest; with only a blank between (aws configure set
 *    aws_secret_access_key KEY) when the value looks like a key, and netrc's login ... password;
 *  - command lines: --password=X, --password X, --token X, --api-key X (any credential option,
 *    one or two dashes), curl/wget -u and --user user:PASSWORD, -pPASSWORD for mysql and
 *    mariadb tools, -p PASSWORD for sshpass and "... login", -a PASSWORD for redis-cli,
 *    openssl -passin/-passout pass:X, and -H 'Authorization: ...' through the header rule.
 * Then the user's patterns run, in the order added, on the result (in JSON: on names, string
 * values and numbers; a number a pattern matches becomes a string). The match of a pattern
 * (from \K when it has one) is replaced; empty matches are ignored; when a pattern exceeds
 * PCRE2's match limit the rest of that text is redacted (we cannot tell it holds no secret).
 *
 * Deliberately kept: public keys and certificates; random strings without a credential name
 * or a known prefix (a bare 40-character AWS secret key looks like a git SHA, a hash or an id);
 * user names; session_id and paging tokens; PWD and OLDPWD; a value after a credential name in
 * prose ("the password is ..."); "Basic xxx" outside an Authorization header; https://TOKEN@host
 * without a colon (unless the token has a known shape); HTML form values.
 *
 * Output never splits a UTF-8 sequence and never adds invalid bytes; invalid UTF-8 in the input
 * is passed through (exporters repair and count it with agt_utf8_sanitize, base/utf8.h).
 *
 * Speed (one core of the build machine, -O2; tests/unit/test_redact.c checks the bounds): a
 * 4 KiB mixed free text in about 15 us (bound 50 us), a 64 KiB LLM request JSON body in about
 * 0.4 ms (bound 5 ms), linear in the length of the text. Each user pattern adds one PCRE2 (JIT)
 * pass over each text. */
#ifndef AGT_BASE_REDACT_H
#define AGT_BASE_REDACT_H
#include <stddef.h>

#define AGT_REDACTED "[REDACTED]"

struct agt_redactor;

/* An empty redactor (built-in rules only). NULL with errno ENOMEM when memory runs out. */
struct agt_redactor *agt_redactor_new(void);

/* Add a user pattern (PCRE2 syntax, UTF-8; --redact). 0, or -EINVAL with one sentence in err
 * naming the pattern, PCRE2's message and the offset of the error, or -ENOMEM. Not safe while
 * another thread redacts with r. */
int agt_redactor_add(struct agt_redactor *r, const char *pattern, char *err, size_t errlen);

void agt_redactor_free(struct agt_redactor *r);

/* A redacted copy of text[0..len) (caller frees), NUL-terminated; *out_len (if not NULL) gets
 * its length. A JSON document comes back as compact JSON, anything else as text with the same
 * bytes apart from the redactions. NULL with errno EINVAL (text is NULL) or ENOMEM. */
char *agt_redact_text(const struct agt_redactor *r, const char *text, size_t len, size_t *out_len);
/* agt_redact_text of a NUL-terminated text, with the redactor passed as an opaque pointer: the
 * form callers that take a redaction callback want (the trace stage's emitter). */
char *agt_redact_str(void *redactor, const char *text);

/* A URL as a message may show it (a setting that is wrong, a server that does not answer): its
 * password redacted (user:[REDACTED]@host, with or without a scheme), and what the built-in
 * rules find in the rest (credential query parameters). Caller frees; NULL on ENOMEM. */
char *agt_redact_url(const char *url);

/* Redacted copies of argv[0..argc), in one allocation: the returned vector (argc entries and a
 * NULL) and its strings are freed by one free(). Arguments are read together, so
 * "--password" "X" and "-u" "user:X" redact X. NULL with errno EINVAL or ENOMEM. */
char **agt_redact_argv(const struct agt_redactor *r, int argc, const char *const *argv);

/* A command line as /proc/PID/cmdline holds it (arguments each followed by a NUL, len bytes in
 * all) redacted as agt_redact_argv does, and joined with spaces for display (caller frees).
 * NULL with errno EINVAL or ENOMEM. */
char *agt_redact_cmdline(const struct agt_redactor *r, const char *args, size_t len);
#endif
