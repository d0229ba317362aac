/* A TLS client that ends its connections with close(2) alone: one SSL object for every
 * connection (SSL_clear between them, never SSL_shutdown; SSL_free only at the end), so each
 * new connection has the address of the last one. Every call is one HTTPS request on a new TCP
 * connection, whose answer is read until the server closes.
 *   tls_reuse PORT  -> "ready PID", then per stdin line "call MODEL" -> "got N BYTES" (the
 *   bytes read, 0 when the server closed without answering); "quit" ends. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int dial(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("connect");
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	char line[256], model[128], body[512], req[1024], buf[16384];
	int port;

	if (argc != 2 || (port = atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: %s PORT\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", (int)getpid());
	while (fgets(line, sizeof(line), stdin) && sscanf(line, "call %127s", model) == 1) {
		int fd = dial(port), n, blen, rlen;
		long got = 0;

		if (fd < 0)
			return 1;
		SSL_set_fd(ssl, fd);
		if (SSL_connect(ssl) != 1) {
			ERR_print_errors_fp(stderr);
			return 1;
		}
		blen = snprintf(
		    body, sizeof(body),
		    "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
		    model);
		rlen = snprintf(req, sizeof(req),
				"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
				"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				blen, body);
		if (SSL_write(ssl, req, rlen) != rlen) {
			ERR_print_errors_fp(stderr);
			return 1;
		}
		while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0)
			got += n;
		close(fd); /* no SSL_shutdown: the descriptor alone */
		SSL_clear(ssl);
		ERR_clear_error();
		printf("got %ld bytes\n", got);
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return 0;
}
