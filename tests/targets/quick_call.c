/* Integration-test target: a process whose LLM call comes right after its exec, for discovery
 * (--select) to catch from its first instruction. It connects to 127.0.0.1:PORT, checks the
 * server against CAFILE, POSTs one chat completion for MODEL over HTTP/1.1 with SSL_write
 * (libssl.so.3) and reads the answer until the server closes.
 *   quick_call PORT CAFILE MODEL
 * When AGT_T0_NS holds the CLOCK_MONOTONIC time (ns) its launcher took just before exec, it
 * prints how long after that its call began (its connection to the server): "status CODE after
 * US us". Then it waits for its standard input to end before it exits.
 *   quick_call --idle TAG
 * only maps libssl and waits for its standard input to end (one of many targets). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char req[1024], body[256], buf[8192], *t0 = getenv("AGT_T0_NS");
	size_t got = 0;
	struct timespec now;
	long long after_us = -1;
	SSL_CTX *ctx;
	SSL *ssl;
	int fd, n, len, blen, code = 0;

	if (argc == 3 && !strcmp(argv[1], "--idle")) {
		OPENSSL_init_ssl(0, NULL);
		while (read(0, buf, sizeof(buf)) > 0)
			;
		return 0;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: %s PORT CAFILE MODEL\n", argv[0]);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (t0)
		after_us = ((long long)now.tv_sec * 1000000000ll + now.tv_nsec - atoll(t0)) / 1000;
	sa.sin_port = htons(atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || SSL_CTX_load_verify_locations(ctx, argv[2], NULL) != 1) {
		fprintf(stderr, "cannot load the CA file %s\n", argv[2]);
		return 1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
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
	blen = snprintf(body, sizeof(body),
			"{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
			argv[3]);
	len = snprintf(req, sizeof(req),
		       "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
		       "Content-Type: application/json\r\nContent-Length: %d\r\n"
		       "Connection: close\r\n\r\n%s",
		       blen, body);
	if (SSL_write(ssl, req, len) != len) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	while ((n = SSL_read(ssl, buf + got, sizeof(buf) - 1 - got)) > 0 && got < sizeof(buf) - 1)
		got += n;
	buf[got] = 0;
	sscanf(buf, "HTTP/1.%*d %d", &code);
	printf("status %d after %lld us\n", code, after_us);
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	SSL_shutdown(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return 0;
}
