/* A stand-in for aws-lc's crypto/fipsmodule/cipher/aead.c error sites, for the TLS locator's
 * tests: functions raising OPENSSL_PUT_ERROR(CIPHER, reason)'s call (library 30, 0, reason,
 * file, line) with the reason codes of EVP_AEAD_CTX_seal, _open, _seal_scatter and
 * _open_gather. Built plain, the locator must find seal and open (with their symbols here to
 * check against); built with TWO_SEALS there are two functions with seal's sites and it must
 * refuse. */
#include <stdio.h>
#include <string.h>

static const char file[] = "/aws-lc/crypto/fipsmodule/cipher/aead.c";

__attribute__((noinline)) void ERR_put_error(int library, int unused, int reason, const char *f,
					     unsigned line)
{
	fprintf(stderr, "error %d %d %d %s:%u\n", library, unused, reason, f, line);
}

__attribute__((noinline)) int open_gather(unsigned char *out, const unsigned char *in,
					  size_t in_len, int implemented)
{
	if (out != in && out < in + in_len && in < out + in_len) {
		ERR_put_error(30, 0, 115, file, 291);
		return 0;
	}
	if (!implemented) {
		ERR_put_error(30, 0, 104, file, 296);
		return 0;
	}
	memmove(out, in, in_len);
	return 1;
}

#define SEAL(name, base)                                                                         \
	__attribute__((noinline)) int name(unsigned char *out, size_t *out_len, size_t max_out,  \
					   const unsigned char *in, size_t in_len)               \
	{                                                                                        \
		if (in_len + 16 < in_len) {                                                      \
			ERR_put_error(30, 0, 117, file, base);                                   \
			return 0;                                                                \
		}                                                                                \
		if (max_out < in_len) {                                                          \
			ERR_put_error(30, 0, 103, file, base + 5);                               \
			return 0;                                                                \
		}                                                                                \
		if (out != in && out < in + in_len && in < out + max_out) {                      \
			ERR_put_error(30, 0, 115, file, base + 10);                              \
			return 0;                                                                \
		}                                                                                \
		memmove(out, in, in_len);                                                        \
		*out_len = in_len + 16;                                                          \
		return 1;                                                                        \
	}

SEAL(seal, 166)
#ifdef TWO_SEALS
SEAL(seal_again, 1166)
#endif

__attribute__((noinline)) int seal_scatter(unsigned char *out, const unsigned char *in,
					   size_t in_len, size_t extra_in_len, int supports_extra)
{
	if (out != in && out < in + in_len && in < out + in_len) {
		ERR_put_error(30, 0, 115, file, 214);
		return 0;
	}
	if (!supports_extra && extra_in_len) {
		ERR_put_error(30, 0, 112, file, 219);
		return 0;
	}
	memmove(out, in, in_len);
	return 1;
}

__attribute__((noinline)) int open(unsigned char *out, size_t *out_len, size_t max_out,
				   const unsigned char *in, size_t in_len)
{
	if (out != in && out < in + in_len && in < out + max_out) {
		ERR_put_error(30, 0, 115, file, 244);
		return 0;
	}
	if (in_len < 16) {
		ERR_put_error(30, 0, 101, file, 261);
		return 0;
	}
	if (max_out < in_len - 16) {
		ERR_put_error(30, 0, 103, file, 267);
		return 0;
	}
	if (!open_gather(out, in, in_len - 16, max_out > 0))
		return 0;
	*out_len = in_len - 16;
	return 1;
}

int main(int argc, char **argv)
{
	unsigned char buf[64] = "hello, world", out[64];
	size_t n = 0;

	(void)argv;
	seal(buf, &n, sizeof(buf), buf, 12);
#ifdef TWO_SEALS
	seal_again(buf, &n, sizeof(buf), buf, 12);
#endif
	seal_scatter(out, buf, 12, 0, argc > 1);
	return !open(out, &n, sizeof(out), buf, 28);
}
