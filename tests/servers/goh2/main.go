// A local HTTPS server that offers HTTP/2 (ALPN h2, then http/1.1), as the LLM APIs and Go's
// net/http do by default, for tests of clients whose requests travel as h2 frames: curl and
// libcurl with their defaults, Go's crypto/tls (tests/targets/gotls). llm_server.py speaks
// HTTP/1.1 only. It answers POSTs to .../chat/completions in OpenAI's wire format:
//
//   - the model is the request's, with "-2024-08-06" appended;
//   - usage: prompt_tokens 42, completion_tokens 7, cached 10;
//   - a request offering tools gets a call of get_weather (finish reason "tool_calls") in a
//     plain answer; a streamed one is the same either way;
//   - "stream": true gets Server-Sent Events (chunk deltas, the finish reason, the usage chunk
//     when "stream_options": {"include_usage": true}, then [DONE]), each event flushed as
//     its own DATA frame;
//   - the "proto" field of a plain answer names the protocol the request came over.
//
// and POSTs to .../messages in Anthropic's (the model as asked, a text block and a tool_use of
// get_weather when tools are offered, usage input_tokens 30, output_tokens 12). Every answer
// has the headers X-Proto (the protocol the request came over: HTTP/2.0 or HTTP/1.1) and
// X-Request-Bytes (the request body's length as received), for clients to report.
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
	"strconv"
	"strings"
)

type request struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Tools []json.RawMessage `json:"tools"`
}

var usage = map[string]interface{}{
	"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49,
	"prompt_tokens_details": map[string]int{"cached_tokens": 10},
}

func serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req request
	json.Unmarshal(body, &req)
	w.Header().Set("X-Proto", r.Proto)
	w.Header().Set("X-Request-Bytes", strconv.Itoa(len(body)))
	if strings.HasSuffix(r.URL.Path, "/messages") {
		messages(w, req)
		return
	}
	chat(w, r, req, len(body))
}

func messages(w http.ResponseWriter, req request) {
	content := []interface{}{map[string]string{"type": "text", "text": "Let me look that up."}}
	stop := "end_turn"
	if len(req.Tools) > 0 {
		content = append(content, map[string]interface{}{"type": "tool_use", "id": "toolu_01A",
			"name": "get_weather", "input": map[string]string{"city": "Paris"}})
		stop = "tool_use"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]interface{}{
		"id": "msg_01XYZ", "type": "message", "role": "assistant", "model": req.Model,
		"content": content, "stop_reason": stop, "stop_sequence": nil,
		"usage": map[string]int{"input_tokens": 30, "output_tokens": 12}})
}

func chat(w http.ResponseWriter, r *http.Request, req request, size int) {
	if req.Model == "" {
		req.Model = "gpt-4o"
	}
	model := req.Model + "-2024-08-06"
	if !req.Stream {
		message := map[string]interface{}{"role": "assistant",
			"content": "It is sunny in Paris."}
		finish := "stop"
		if len(req.Tools) > 0 {
			message["tool_calls"] = []interface{}{map[string]interface{}{
				"id": "call_weather_1", "type": "function",
				"function": map[string]string{"name": "get_weather",
					"arguments": `{"city":"Paris"}`}}}
			finish = "tool_calls"
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]interface{}{
			"id": "chatcmpl-abc123", "object": "chat.completion", "created": 1764000000,
			"model": model, "proto": r.Proto, "request_bytes": size,
			"choices": []interface{}{map[string]interface{}{
				"index": 0, "finish_reason": finish, "message": message}},
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
	fmt.Fprintln(os.Stderr, http.ServeTLS(ln, http.HandlerFunc(serve), os.Args[1], os.Args[2]))
	os.Exit(1)
}
