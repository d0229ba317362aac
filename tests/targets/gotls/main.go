// Integration-test target in Go: an "agent" that calls an LLM-like HTTPS server through
// crypto/tls, the way Go programs do (no libssl), so agtrace's Go TLS probes have something to
// see. Built twice by the Makefile: with .symtab (build/tests/gotls) and stripped with
// -ldflags='-s -w' (build/tests/gotls-stripped), where only .gopclntab names the functions.
//
// It trusts the CA in SSL_CERT_FILE (Go reads it on Linux). Requests go through
// http.DefaultClient, which negotiates HTTP/2 when the server offers it; with -http1 (or
// GODEBUG=http2client=0) they go over HTTP/1.1 instead. Connections are kept alive.
//
// With -call URL it makes one call at once (POST -body, default "{}"), prints "status CODE PROTO
// BYTES" and exits: a program whose first TLS calls come a few milliseconds after its exec.
//
// Otherwise it prints "ready PID", then one line per stdin command:
//
//	call URL BODY      POST BODY (JSON) to URL -> "status CODE PROTO BYTES"
//	par N URL BODY     N POSTs at once, each in its own goroutine; "#I" in BODY becomes the
//	                   request's index -> "par N" (N answers received)
//	raw ADDR MODEL     a chat request by hand on a new connection to ADDR (host:port), read
//	                   until the server closes, then the TCP connection closed under the
//	                   *tls.Conn (its Close never called) -> "got N bytes"
//	quit               exit
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
)

func post(c *http.Client, url, body string) (int, string, int, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return 0, "", 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-test-SECRET0123456789")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Proto, len(data), err
}

// A request on a *tls.Conn whose own Close is never called: the TCP connection under it is
// closed, and the *tls.Conn is left to the garbage collector.
func raw(addr, model string) (int, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	t := tls.Client(c, &tls.Config{ServerName: "localhost"})
	body := `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]}`
	req := "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n" +
		"Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) +
		"\r\n\r\n" + body
	if _, err := t.Write([]byte(req)); err != nil {
		return 0, err
	}
	data, err := io.ReadAll(t)
	if len(data) > 0 {
		err = nil // the server closed without close_notify
	}
	return len(data), err
}

func main() {
	http1 := flag.Bool("http1", false, "never negotiate HTTP/2 (a Transport whose TLSNextProto is empty)")
	once := flag.String("call", "", "make one call to this URL at once, print its status and exit")
	onceBody := flag.String("body", "{}", "the body of the -call request")
	flag.Parse()
	client := http.DefaultClient
	if *http1 {
		client = &http.Client{Transport: &http.Transport{
			TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
		}}
	}
	if *once != "" {
		code, proto, n, err := post(client, *once, *onceBody)
		if err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("status %d %s %d\n", code, proto, n)
		return
	}
	fmt.Printf("ready %d\n", os.Getpid())
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		f := strings.SplitN(in.Text(), " ", 4)
		switch {
		case f[0] == "quit":
			return
		case f[0] == "call" && len(f) >= 2:
			body := "{}"
			if len(f) >= 3 {
				body = strings.Join(f[2:], " ")
			}
			code, proto, n, err := post(client, f[1], body)
			if err != nil {
				fmt.Printf("error %v\n", err)
				continue
			}
			fmt.Printf("status %d %s %d\n", code, proto, n)
		case f[0] == "raw" && len(f) == 3:
			n, err := raw(f[1], f[2])
			if err != nil && n == 0 && err != io.EOF && err != io.ErrUnexpectedEOF {
				fmt.Printf("error %v\n", err)
				continue
			}
			fmt.Printf("got %d bytes\n", n)
		case f[0] == "par" && len(f) >= 3:
			n, _ := strconv.Atoi(f[1])
			body := "{}"
			if len(f) == 4 {
				body = f[3]
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			ok := 0
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					b := strings.ReplaceAll(body, "#I", strconv.Itoa(i))
					if code, _, _, err := post(client, f[2], b); err == nil && code > 0 {
						mu.Lock()
						ok++
						mu.Unlock()
					}
				}(i)
			}
			wg.Wait()
			fmt.Printf("par %d\n", ok)
		default:
			fmt.Println("unknown")
		}
	}
}
