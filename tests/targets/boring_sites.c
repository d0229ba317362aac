/* A stand-in for BoringSSL's ssl_lib.cc error sites, for the TLS locator's tests: functions
 * raising OPENSSL_PUT_ERROR's calls (library, 0, reason, file, line) with the reason codes of
 * SSL_write, SSL_peek and ssl_read_impl. Built plain, the locator must find the write and read
 * functions (PIE code, bounds from .eh_frame_hdr); built with TWO_WRITERS there are two
 * functions with SSL_write's sites and it must refuse. */
#include <stdio.h>
#include <string.h>

struct ssl {
	int quic, initialized, can_write;
	char data[64];
	int pending;
};

static const char file[] = "vendor/boringssl/ssl/ssl_lib.cc";

__attribute__((noinline)) void ERR_put_error(int library, int unused, int reason, const char *f,
					     unsigned line)
{
	fprintf(stderr, "error %d %d %d %s:%u\n", library, unused, reason, f, line);
}

__attribute__((noinline)) static int do_handshake(struct ssl *s)
{
	s->can_write = 1;
	return 1;
}

__attribute__((noinline)) static int read_impl(struct ssl *s)
{
	if (!s->initialized) {
		ERR_put_error(16, 0, 226, file, 852);
		return -1;
	}
	while (!s->pending) {
		int ret = do_handshake(s);

		if (ret == 0) {
			ERR_put_error(16, 0, 215, file, 880);
			return -1;
		}
		s->pending = 5;
	}
	return 1;
}

__attribute__((noinline)) int peek(struct ssl *s, void *buf, int num)
{
	int ret;

	if (s->quic) {
		ERR_put_error(16, 0, 66, file, 950);
		return -1;
	}
	ret = read_impl(s);
	if (ret <= 0)
		return ret;
	if (num > s->pending)
		num = s->pending;
	memcpy(buf, s->data, num);
	return num;
}

#define WRITER(name, base)                                                          \
	__attribute__((noinline)) int name(struct ssl *s, const void *buf, int num) \
	{                                                                           \
		if (s->quic) {                                                      \
			ERR_put_error(16, 0, 66, file, base);                       \
			return -1;                                                  \
		}                                                                   \
		if (!s->initialized) {                                              \
			ERR_put_error(16, 0, 226, file, base + 5);                  \
			return -1;                                                  \
		}                                                                   \
		if (!s->can_write && do_handshake(s) == 0) {                        \
			ERR_put_error(16, 0, 215, file, base + 20);                 \
			return -1;                                                  \
		}                                                                   \
		if (num < 0) {                                                      \
			ERR_put_error(16, 0, 111, file, base + 26);                 \
			return -1;                                                  \
		}                                                                   \
		memcpy(s->data, buf, num > 64 ? 64 : num);                          \
		return num;                                                         \
	}

WRITER(write_one, 970)
#ifdef TWO_WRITERS
WRITER(write_two, 1970)
#endif

int main(int argc, char **argv)
{
	struct ssl s = {.initialized = argc > 0};
	char buf[8];

	(void)argv;
	write_one(&s, "hello", 5);
#ifdef TWO_WRITERS
	write_two(&s, "hello", 5);
#endif
	return peek(&s, buf, sizeof(buf)) < 0;
}
