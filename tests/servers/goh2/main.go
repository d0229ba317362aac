// A local HTTPS server that offers HTTP/2 (ALPN h2, then http/1.1), as the LLM APIs and Go's
// net/http do by default, for tests of clients whose requests travel as h2 frames: curl and
// libcurl with their defaults, Go's crypto/tls (tests/targets/gotls). llm_server.py speaks
// HTTP/1.1 only. It answers POSTs to .../chat/completions in OpenAI's wire format:
//
//   - the model is the request's, with "-2024-08-06" appended;
//   - usage: prompt_tokens 42, completion_tokens 7, cached 10;
//   - "stream": true gets Server-Sent Events (chunk deltas, the finish reason, the usage chunk
//     when "stream_options": {"include_usage": true}, then [DONE]), each event flushed as
//     its own DATA frame;
//   - the "proto" field of a plain answer names the protocol the request came over.
//
// Run: goh2 CERT KEY -> prints "listening PORT" (127.0.0.1).
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

type request struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

var usage = map[string]interface{}{
	"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49,
	"prompt_tokens_details": map[string]int{"cached_tokens": 10},
}

func chat(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req request
	if json.Unmarshal(body, &req) != nil || req.Model == "" {
		req.Model = "gpt-4o"
	}
	model := req.Model + "-2024-08-06"
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]interface{}{
			"id": "chatcmpl-abc123", "object": "chat.completion", "created": 1764000000,
			"model": model, "proto": r.Proto, "request_bytes": len(body),
			"choices": []interface{}{map[string]interface{}{
				"index": 0, "finish_reason": "stop",
				"message": map[string]string{"role": "assistant",
					"content": "It is sunny in Paris."}}},
			"usage": usage})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl, _ := w.(http.Flusher)
	event := func(v interface{}) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if fl != nil {
			fl.Flush()
		}
	}
	chunk := func(delta map[string]string, finish interface{}) map[string]interface{} {
		return map[string]interface{}{"id": "chatcmpl-abc123", "object": "chat.completion.chunk",
			"created": 1764000000, "model": model,
			"choices": []interface{}{map[string]interface{}{
				"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	event(chunk(map[string]string{"role": "assistant", "content": ""}, nil))
	event(chunk(map[string]string{"content": "It is sun"}, nil))
	event(chunk(map[string]string{"content": "ny in Paris."}, nil))
	event(chunk(map[string]string{}, "stop"))
	if req.StreamOptions.IncludeUsage {
		event(map[string]interface{}{"id": "chatcmpl-abc123", "object": "chat.completion.chunk",
			"created": 1764000000, "model": model, "choices": []interface{}{},
			"usage": usage})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

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
	fmt.Fprintln(os.Stderr, http.ServeTLS(ln, http.HandlerFunc(chat), os.Args[1], os.Args[2]))
	os.Exit(1)
}
