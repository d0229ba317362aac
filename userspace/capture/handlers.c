#include "capture/handlers.h"
#include <stdio.h>
#include <string.h>

static const struct agt_handler handlers[] = {
    {"ssl_write", AGT_HK_TLS, 0, AGT_RET_URETPROBE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "OpenSSL/BoringSSL SSL_write(ssl, buf, num) -> int: bytes written"},
    {"ssl_read", AGT_HK_TLS, AGT_TLS_COOKIE_READ, AGT_RET_URETPROBE, AGT_ABI_SYSV,
     AGT_KEY_THREAD, "OpenSSL/BoringSSL SSL_read (and BoringSSL SSL_peek) -> int: bytes read"},
    {"ssl_write_ex", AGT_HK_TLS, AGT_TLS_COOKIE_EX, AGT_RET_URETPROBE, AGT_ABI_SYSV,
     AGT_KEY_THREAD, "OpenSSL SSL_write_ex(ssl, buf, num, &written) -> 1 on success"},
    {"ssl_read_ex", AGT_HK_TLS, AGT_TLS_COOKIE_READ | AGT_TLS_COOKIE_EX, AGT_RET_URETPROBE,
     AGT_ABI_SYSV, AGT_KEY_THREAD, "OpenSSL SSL_read_ex(ssl, buf, num, &read) -> 1 on success"},
    {"gnutls_send", AGT_HK_TLS, AGT_TLS_COOKIE_SSIZE, AGT_RET_URETPROBE, AGT_ABI_SYSV,
     AGT_KEY_THREAD, "GnuTLS gnutls_record_send(session, buf, n) -> ssize_t"},
    {"gnutls_recv", AGT_HK_TLS, AGT_TLS_COOKIE_READ | AGT_TLS_COOKIE_SSIZE, AGT_RET_URETPROBE,
     AGT_ABI_SYSV, AGT_KEY_THREAD, "GnuTLS gnutls_record_recv(session, buf, n) -> ssize_t"},
    {"ssl_write_internal", AGT_HK_TLS, AGT_TLS_COOKIE_EX, AGT_RET_URETPROBE, AGT_ABI_SYSV,
     AGT_KEY_THREAD,
     "OpenSSL 3 ssl_write_internal(ssl, buf, num, [flags,] &written) -> 1 on success; the "
     "out-length's register (rcx, or r8 since 3.3) comes from the locator"},
    {"ssl_read_internal", AGT_HK_TLS, AGT_TLS_COOKIE_READ | AGT_TLS_COOKIE_EX,
     AGT_RET_URETPROBE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "OpenSSL 3 ssl_read_internal(ssl, buf, num, &readbytes) -> 1 on success"},
    {"aead_seal", AGT_HK_AEAD, 0, AGT_RET_NONE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "aws-lc EVP_AEAD_CTX_seal: one outgoing TLS record's plaintext (rustls), joined to the "
     "socket the thread writes next"},
    {"aead_open", AGT_HK_AEAD, AGT_TLS_COOKIE_READ, AGT_RET_URETPROBE, AGT_ABI_SYSV,
     AGT_KEY_THREAD,
     "aws-lc EVP_AEAD_CTX_open: one incoming TLS record's plaintext (rustls), joined to the "
     "socket the thread read last"},
    {"python_audit", AGT_HK_PY_AUDIT, 0, AGT_RET_NONE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "CPython's python:audit USDT marker: runtime events on the running tool call"},
};

const struct agt_handler *agt_handler_find(const char *name)
{
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (!strcmp(handlers[i].name, name))
			return &handlers[i];
	return NULL;
}

void agt_handler_list(char *buf, size_t n)
{
	size_t used = 0;

	buf[0] = 0;
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]) && used < n; i++)
		used += snprintf(buf + used, n - used, "%s%s", i ? ", " : "", handlers[i].name);
}
