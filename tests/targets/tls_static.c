/* A tiny HTTPS client linked statically against OpenSSL, for the TLS locator's tests: it
 * connects to 127.0.0.1:PORT, checks the server against CAFILE, sends one HTTP request with
 * SSL_write and prints the response read with SSL_read.
 *   tls_static PORT CAFILE [PATH]
 * With --agent instead of PATH it is an integration-test target: it prints "ready PID", then
 * per stdin line ("openai plain", "openai long": a request over 16 KiB, "anthropic plain",
 * "quit") POSTs a chat request over a new connection and prints "PROVIDER STATUS TOOL";
 * "forked COMMAND" makes that call from a child it forks (no exec: a worker of its own), which
 * starts calling after 300 ms.
 * Built with TLS_AMBIGUOUS defined it also holds a second function raising an OpenSSL error
 * in SSL_write's name, which the locator must refuse to choose between. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef TLS_AMBIGUOUS
/* Raises an error exactly as ssl/ssl_lib.c's SSL_write does (ERR_raise expands to these three
 * calls with OPENSSL_FILE, OPENSSL_LINE and __func__). */
__attribute__((noinline)) int SSL_write_lookalike(int num)
{
	if (num < 0) {
		ERR_new();
		ERR_set_debug("../ssl/ssl_lib.c", __LINE__, "SSL_write");
		ERR_set_error(ERR_LIB_SSL, SSL_R_BAD_LENGTH, NULL);
		return -1;
	}
	return num;
}
#endif

static SSL *dial(SSL_CTX *ctx, int port, int *fdp)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	SSL *ssl;
	int fd;

	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("connect");
		return NULL;
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	SSL_set1_host(ssl, "localhost");
	if (SSL_connect(ssl) != 1) {
		ERR_print_errors_fp(stderr);
		return NULL;
	}
	*fdp = fd;
	return ssl;
}

/* One chat request per command line; the reply line names the tool the response asks for. */
/* One call as line says; 0, or 1 when it failed. */
static int one_call(SSL_CTX *ctx, int port, const char *line)
{
	static char body[64 << 10], req[80 << 10], resp[64 << 10];
	{
		int anthropic = !strncmp(line, "anthropic", 9), blen, len, fd, n, got = 0;
		const char *pad = strstr(line, "long") ? "x" : "";
		char filler[20000] = "";
		SSL *ssl;

		if (*pad)
			memset(filler, 'x', sizeof(filler) - 1);
		if (anthropic)
			blen = snprintf(body, sizeof(body),
					"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,"
					"\"tools\":[{\"name\":\"get_weather\",\"input_schema\":{}},"
					"{\"name\":\"get_time\",\"input_schema\":{}}],\"messages\":"
					"[{\"role\":\"user\",\"content\":\"weather?%s\"}]}",
					filler);
		else
			blen = snprintf(body, sizeof(body),
					"{\"model\":\"gpt-4o\",\"tools\":[{\"type\":\"function\","
					"\"function\":{\"name\":\"get_weather\",\"parameters\":{}}},"
					"{\"type\":\"function\",\"function\":{\"name\":\"search\","
					"\"parameters\":{}}}],\"messages\":[{\"role\":\"user\","
					"\"content\":\"weather?%s\"}]}",
					filler);
		len = snprintf(req, sizeof(req),
			       "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
			       "application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			       anthropic ? "/v1/messages" : "/v1/chat/completions", blen, body);
		if (!(ssl = dial(ctx, port, &fd)))
			return 1;
		if (SSL_write(ssl, req, len) != len) {
			ERR_print_errors_fp(stderr);
			return 1;
		}
		while (got < (int)sizeof(resp) - 1 &&
		       (n = SSL_read(ssl, resp + got, sizeof(resp) - 1 - got)) > 0)
			got += n;
		resp[got] = 0;
		printf("%s %.3s %s\n", anthropic ? "anthropic" : "openai",
		       got > 12 ? resp + 9 : "???", strstr(resp, "get_weather") ? "get_weather" : "-");
		fflush(stdout);
		SSL_shutdown(ssl);
		SSL_free(ssl);
		close(fd);
	}
	return 0;
}

static int agent(SSL_CTX *ctx, int port)
{
	char line[256];

	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		pid_t child;
		int st;

		if (!strncmp(line, "quit", 4))
			break;
		if (strncmp(line, "forked ", 7)) {
			if (one_call(ctx, port, line))
				return 1;
			continue;
		}
		if ((child = fork()) == 0) {
			usleep(300000);
			_exit(one_call(ctx, port, line + 7));
		}
		if (child < 0 || waitpid(child, &st, 0) != child || !WIFEXITED(st) ||
		    WEXITSTATUS(st))
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char req[512], buf[4096];
	SSL_CTX *ctx;
	SSL *ssl;
	int fd, n, len;

	if (argc < 3) {
		fprintf(stderr, "usage: %s PORT CAFILE [PATH]\n", argv[0]);
		return 2;
	}
#ifdef TLS_AMBIGUOUS
	if (SSL_write_lookalike(argc - 100) >= 0)
		return 2;
#endif
	sa.sin_port = htons(atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || SSL_CTX_load_verify_locations(ctx, argv[2], NULL) != 1) {
		fprintf(stderr, "cannot load the CA file %s\n", argv[2]);
		return 1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (argc > 3 && !strcmp(argv[3], "--agent"))
		return agent(ctx, atoi(argv[1]));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("connect");
		return 1;
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	SSL_set1_host(ssl, "localhost");
	if (SSL_connect(ssl) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	len = snprintf(req, sizeof(req),
		       "GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tls_static\r\n"
		       "Connection: close\r\n\r\n",
		       argc > 3 ? argv[3] : "/");
	if (SSL_write(ssl, req, len) != len) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, n, stdout);
	SSL_shutdown(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return 0;
}
