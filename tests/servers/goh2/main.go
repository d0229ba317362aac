// A local HTTPS server that offers HTTP/2 (ALPN h2, then http/1.1), as Go's net/http does by
// default, for tests of Go clients (tests/targets/gotls) whose requests travel as h2 frames
// through crypto/tls. llm_server.py speaks HTTP/1.1 only. Every POST gets a fixed OpenAI-style
// chat completion naming the protocol it came over and the body size it got.
// Run: goh2 CERT KEY -> prints "listening PORT" (127.0.0.1).
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: goh2 CERT KEY")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening %d\n", ln.Addr().(*net.TCPAddr).Port)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"chatcmpl-abc123","object":"chat.completion","model":"gpt-4o",`+
			`"proto":"%s","request_bytes":%d,"choices":[{"index":0,"message":`+
			`{"role":"assistant","content":"It is sunny in Paris."},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":42,"completion_tokens":7,"total_tokens":49}}`,
			r.Proto, len(body))
	})
	fmt.Fprintln(os.Stderr, http.ServeTLS(ln, h, os.Args[1], os.Args[2]))
	os.Exit(1)
}
