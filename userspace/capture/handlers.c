#include "capture/handlers.h"
#include <stdio.h>
#include <string.h>

static const struct agt_handler handlers[] = {
    {"ssl_write", AGT_HK_TLS, 0, AGT_RET_URETPROBE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "OpenSSL/BoringSSL SSL_write(ssl, buf, num) -> int: bytes written", "OpenSSL"},
    {"ssl_read", AGT_HK_TLS, AGT_TLS_COOKIE_READ, AGT_RET_URETPROBE, AGT_ABI_SYSV,
     AGT_KEY_THREAD, "OpenSSL/BoringSSL SSL_read (and BoringSSL SSL_peek) -> int: bytes read",
     "OpenSSL"},
    {"ssl_write_ex", AGT_HK_TLS, AGT_TLS_COOKIE_EX, AGT_RET_URETPROBE, AGT_ABI_SYSV,
     AGT_KEY_THREAD, "OpenSSL SSL_write_ex(ssl, buf, num, &written) -> 1 on success", "OpenSSL"},
    {"ssl_read_ex", AGT_HK_TLS, AGT_TLS_COOKIE_READ | AGT_TLS_COOKIE_EX, AGT_RET_URETPROBE,
     AGT_ABI_SYSV, AGT_KEY_THREAD, "OpenSSL SSL_read_ex(ssl, buf, num, &read) -> 1 on success",
     "OpenSSL"},
    {"ssl_close", AGT_HK_TLS_CLOSE, 0, AGT_RET_NONE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "OpenSSL SSL_free(ssl) / SSL_shutdown(ssl): the connection is over", "OpenSSL"},
    {"gnutls_send", AGT_HK_TLS, AGT_TLS_COOKIE_SSIZE, AGT_RET_URETPROBE, AGT_ABI_SYSV,
     AGT_KEY_THREAD, "GnuTLS gnutls_record_send(session, buf, n) -> ssize_t", "GnuTLS"},
    {"gnutls_recv", AGT_HK_TLS, AGT_TLS_COOKIE_READ | AGT_TLS_COOKIE_SSIZE, AGT_RET_URETPROBE,
     AGT_ABI_SYSV, AGT_KEY_THREAD, "GnuTLS gnutls_record_recv(session, buf, n) -> ssize_t",
     "GnuTLS"},
    {"gnutls_close", AGT_HK_TLS_CLOSE, 0, AGT_RET_NONE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "GnuTLS gnutls_deinit(session) / gnutls_bye(session, how): the connection is over",
     "GnuTLS"},
    {"go_tls_write", AGT_HK_TLS, AGT_TLS_COOKIE_GO | AGT_TLS_COOKIE_AT_ENTRY, AGT_RET_NONE,
     AGT_ABI_GO, AGT_KEY_GOROUTINE,
     "Go crypto/tls.(*Conn).Write(b []byte) (int, error): all of b is written or it fails, so "
     "b is copied at the entry",
     "Go crypto/tls"},
    {"go_tls_read", AGT_HK_TLS, AGT_TLS_COOKIE_GO | AGT_TLS_COOKIE_READ, AGT_RET_INSN,
     AGT_ABI_GO, AGT_KEY_GOROUTINE,
     "Go crypto/tls.(*Conn).Read(b []byte) (int, error), returns caught at its return "
     "instructions",
     "Go crypto/tls"},
    {"go_tls_close", AGT_HK_TLS_CLOSE, AGT_TLS_COOKIE_GO, AGT_RET_NONE, AGT_ABI_GO,
     AGT_KEY_GOROUTINE, "Go crypto/tls.(*Conn).Close(): the connection is over",
     "Go crypto/tls"},
    {"python_audit", AGT_HK_PY_AUDIT, 0, AGT_RET_NONE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "CPython's python:audit USDT marker: runtime events on the running tool call", NULL},
    {"loader", AGT_HK_LOADER, 0, AGT_RET_NONE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "the dynamic loader's _dl_debug_state(): the process loaded libraries", NULL},
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
