/* Benchmark target: what an OpenSSL call costs a process, traced or not (libssl.so.3's
 * SSL_write and SSL_read, probed once for every process that maps it). A TLS client and server
 * in one process over a BIO pair (no system calls), the server's key and certificate from
 * CERT and KEY; "run N" makes N round trips of 64 bytes (four SSL_write/SSL_read calls each)
 * and prints the elapsed nanoseconds.
 *   ssl_loop CERT KEY    -> "ready PID", then "run N" -> "elapsed NS" per stdin line */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000ll + t.tv_nsec;
}

int main(int argc, char **argv)
{
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
	SSL *srv, *cli;
	BIO *a, *b;
	char line[64], msg[64] = {0}, buf[64];
	long n;

	if (argc != 3 || SSL_CTX_use_certificate_file(sctx, argv[1], SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sctx, argv[2], SSL_FILETYPE_PEM) != 1) {
		fprintf(stderr, "usage: %s CERT KEY\n", argv[0]);
		return 2;
	}
	srv = SSL_new(sctx);
	cli = SSL_new(cctx);
	BIO_new_bio_pair(&a, 1 << 16, &b, 1 << 16);
	SSL_set_bio(srv, a, a);
	SSL_set_bio(cli, b, b);
	SSL_set_accept_state(srv);
	SSL_set_connect_state(cli);
	for (int i = 0; i < 100 && (!SSL_is_init_finished(cli) || !SSL_is_init_finished(srv)); i++) {
		SSL_do_handshake(cli);
		SSL_do_handshake(srv);
	}
	if (!SSL_is_init_finished(cli) || !SSL_is_init_finished(srv)) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", (int)getpid());
	while (fgets(line, sizeof(line), stdin) && sscanf(line, "run %ld", &n) == 1) {
		long long t0 = now_ns();

		for (long i = 0; i < n; i++) {
			SSL_write(cli, msg, sizeof(msg));
			SSL_read(srv, buf, sizeof(buf));
			SSL_write(srv, buf, sizeof(buf));
			SSL_read(cli, buf, sizeof(buf));
		}
		printf("elapsed %lld\n", now_ns() - t0);
	}
	return 0;
}
