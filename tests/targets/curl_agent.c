/* Integration-test target: an "agent" that calls an LLM API through libcurl with libcurl's
 * defaults (over HTTPS it offers h2 by ALPN and speaks HTTP/2 when the server takes it; one
 * easy handle, so the connection is kept and reused). Built against libcurl with OpenSSL
 * (build/tests/curl_agent) and against libcurl-gnutls (build/tests/curl_agent_gnutls). The CA is
 * taken from SSL_CERT_FILE. Prints "ready PID", then answers one line per stdin command:
 *
 *	call URL BODY	POST BODY (JSON) to URL -> "status CODE HTTP/VERSION BYTES"
 *	quit		exit
 *
 * With arguments (curl_agent URL BODY) it makes that one call at once and exits: a process
 * whose LLM call comes a few milliseconds after its exec.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t count(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	*(size_t *)arg += size * n;
	return size * n;
}

/* POST body to url on c; prints the answer line. */
static void call(CURL *c, const char *url, const char *body)
{
	struct curl_slist *h = NULL;
	size_t got = 0;
	long code = 0, ver = 0;
	CURLcode rc;

	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Authorization: Bearer sk-test-SECRET0123456789");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, count);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
	if (getenv("SSL_CERT_FILE"))
		curl_easy_setopt(c, CURLOPT_CAINFO, getenv("SSL_CERT_FILE"));
	rc = curl_easy_perform(c);
	curl_slist_free_all(h);
	if (rc != CURLE_OK) {
		printf("error %s\n", curl_easy_strerror(rc));
		return;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &ver);
	printf("status %ld %s %zu\n", code,
	       ver == CURL_HTTP_VERSION_2_0   ? "HTTP/2"
	       : ver == CURL_HTTP_VERSION_1_1 ? "HTTP/1.1"
					      : "HTTP/?",
	       got);
}

int main(int argc, char **argv)
{
	char *line = NULL;
	size_t cap = 0;
	CURL *c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = curl_easy_init();
	if (!c)
		return 1;
	if (argc == 3) {
		call(c, argv[1], argv[2]);
		curl_easy_cleanup(c);
		curl_global_cleanup();
		return 0;
	}
	printf("ready %d\n", (int)getpid());
	while (getline(&line, &cap, stdin) > 0) {
		char *url, *save = NULL;

		line[strcspn(line, "\n")] = 0;
		if (!strcmp(line, "quit"))
			break;
		if (strncmp(line, "call ", 5) || !(url = strtok_r(line + 5, " ", &save))) {
			printf("unknown\n");
			continue;
		}
		call(c, url, save && *save ? save : "{}");
	}
	free(line);
	curl_easy_cleanup(c);
	curl_global_cleanup();
	return 0;
}
