#include "capture/handlers.h"
#include <stdio.h>
#include <string.h>

static const struct agt_handler handlers[] = {
    {"ssl_write", AGT_HK_TLS, 0, AGT_RET_URETPROBE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "OpenSSL/BoringSSL SSL_write(ssl, buf, num) -> int: bytes written", "OpenSSL"},
    {"openssl_write", AGT_HK_TLS, AGT_TLS_COOKIE_AT_ENTRY, AGT_RET_NONE, AGT_ABI_SYSV,
     AGT_KEY_THREAD,
     "OpenSSL SSL_write(ssl, buf, num): all num bytes or none (no partial-write mode), copied "
     "at the entry",
     "OpenSSL"},
    {"ssl_read", AGT_HK_TLS, AGT_TLS_COOKIE_READ, AGT_RET_URETPROBE, AGT_ABI_SYSV,
     AGT_KEY_THREAD, "OpenSSL/BoringSSL SSL_read (and BoringSSL SSL_peek) -> int: bytes read",
     "OpenSSL"},
    {"ssl_write_ex", AGT_HK_TLS, AGT_TLS_COOKIE_EX, AGT_RET_URETPROBE, AGT_ABI_SYSV,
     AGT_KEY_THREAD, "OpenSSL SSL_write_ex(ssl, buf, num, &written) -> 1 on success", "OpenSSL"},
    {"openssl_write_ex", AGT_HK_TLS, AGT_TLS_COOKIE_AT_ENTRY | AGT_TLS_COOKIE_EX, AGT_RET_NONE,
     AGT_ABI_SYSV, AGT_KEY_THREAD,
     "OpenSSL SSL_write_ex(ssl, buf, num, &written): all num bytes or none, copied at the "
     "entry",
     "OpenSSL"},
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
    {"loader", AGT_HK_LOADER, 0, AGT_RET_NONE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "the dynamic loader's _dl_debug_state(): the process loaded libraries", NULL},
    {"ssl_write_internal", AGT_HK_TLS, AGT_TLS_COOKIE_EX, AGT_RET_URETPROBE, AGT_ABI_SYSV,
     AGT_KEY_THREAD,
     "OpenSSL 3 ssl_write_internal(ssl, buf, num, [flags,] &written) -> 1 on success; the "
     "out-length's register (rcx, or r8 since 3.3) comes from the locator",
     "OpenSSL"},
    {"openssl_write_internal", AGT_HK_TLS, AGT_TLS_COOKIE_AT_ENTRY | AGT_TLS_COOKIE_EX,
     AGT_RET_NONE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "OpenSSL 3 ssl_write_internal(ssl, buf, num, ...): what SSL_write(_ex) run, all num bytes "
     "or none (no partial-write mode), copied at the entry",
     "OpenSSL"},
    {"ssl_read_internal", AGT_HK_TLS, AGT_TLS_COOKIE_READ | AGT_TLS_COOKIE_EX,
     AGT_RET_URETPROBE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "OpenSSL 3 ssl_read_internal(ssl, buf, num, &readbytes) -> 1 on success", "OpenSSL"},
    {"aead_seal", AGT_HK_AEAD, 0, AGT_RET_NONE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "aws-lc EVP_AEAD_CTX_seal: one outgoing TLS record's plaintext (rustls), joined to the "
     "socket the thread writes next",
     "aws-lc"},
    {"aead_open", AGT_HK_AEAD, AGT_TLS_COOKIE_READ, AGT_RET_URETPROBE, AGT_ABI_SYSV,
     AGT_KEY_THREAD,
     "aws-lc EVP_AEAD_CTX_open: one incoming TLS record's plaintext (rustls), joined to the "
     "socket the thread read last",
     "aws-lc"},
    {"python_audit", AGT_HK_PY_AUDIT, 0, AGT_RET_NONE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "CPython's python:audit USDT marker: runtime events on the running tool call", NULL,
     1},
    /* Runtime metrics (bpf/rt.bpf.c): the cookie is the event. */
    {"py_gc", AGT_HK_RUNTIME, AGT_RT_PY_GC, AGT_RET_URETPROBE, AGT_ABI_SYSV, AGT_KEY_THREAD,
     "CPython gc__start/gc__done: collections by generation, objects collected, pauses", NULL,
     1},
    {"go_gc_cycle", AGT_HK_RUNTIME, AGT_RT_GO_GC_CYCLE, AGT_RET_NONE, AGT_ABI_GO,
     AGT_KEY_GOROUTINE, "Go runtime.gcMarkTermination: one per GC cycle", NULL},
    {"go_stw_stop", AGT_HK_RUNTIME, AGT_RT_GO_STW_STOP, AGT_RET_NONE, AGT_ABI_GO,
     AGT_KEY_GOROUTINE, "Go runtime.stopTheWorldWithSema: a stop-the-world pause begins", NULL},
    {"go_stw_start", AGT_HK_RUNTIME, AGT_RT_GO_STW_START, AGT_RET_INSN, AGT_ABI_GO,
     AGT_KEY_GOROUTINE, "Go runtime.startTheWorldWithSema's returns: the pause ends", NULL},
    {"go_heap_live", AGT_HK_RUNTIME, AGT_RT_GO_HEAP_LIVE, AGT_RET_NONE, AGT_ABI_GO,
     AGT_KEY_GOROUTINE, "Go (*gcControllerState).resetLive: the heap marked live by a GC", NULL},
    {"go_goroutine_start", AGT_HK_RUNTIME, AGT_RT_GO_G_START, AGT_RET_NONE, AGT_ABI_GO,
     AGT_KEY_GOROUTINE, "Go runtime.newproc1: a goroutine is created", NULL},
    {"go_goroutine_exit", AGT_HK_RUNTIME, AGT_RT_GO_G_EXIT, AGT_RET_NONE, AGT_ABI_GO,
     AGT_KEY_GOROUTINE, "Go runtime.goexit0: a goroutine ends", NULL},
    {"node_gc_start", AGT_HK_RUNTIME, AGT_RT_NODE_GC_START, AGT_RET_NONE, AGT_ABI_SYSV,
     AGT_KEY_THREAD, "V8 Heap::CallGCPrologueCallbacks(type): a collection of that kind begins", NULL},
    {"node_gc_end", AGT_HK_RUNTIME, AGT_RT_NODE_GC_END, AGT_RET_NONE, AGT_ABI_SYSV,
     AGT_KEY_THREAD, "V8 Heap::CallGCEpilogueCallbacks(type): ... and ends", NULL},
    {"node_loop", AGT_HK_RUNTIME, AGT_RT_NODE_POLL, AGT_RET_URETPROBE, AGT_ABI_SYSV,
     AGT_KEY_THREAD,
     "epoll_wait/epoll_pwait on the main thread of a process whose executable exports "
     "uv_run: the time libuv's event loop waits in its poll", NULL},
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
