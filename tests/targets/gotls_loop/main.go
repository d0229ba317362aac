// Benchmark target: the cost of a probed crypto/tls call in a Go program. A TLS client and
// server in one process, over an in-memory pipe (no system calls), with a certificate made at
// start; "run N" makes N round trips of 64 bytes (client Write, server Read, server Write,
// client Read: four crypto/tls calls each) and prints the elapsed nanoseconds.
//
// Prints "ready PID", then answers one line per stdin command: "run N" -> "elapsed NS".
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

func pair() (*tls.Conn, *tls.Conn) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(),
		NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"bench"}}
	der, _ := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	a, b := net.Pipe()
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}})
	cli := tls.Client(b, &tls.Config{InsecureSkipVerify: true})
	done := make(chan error)
	go func() { done <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		panic(err)
	}
	if err := <-done; err != nil {
		panic(err)
	}
	return cli, srv
}

func main() {
	cli, srv := pair()
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	echo := make(chan int)
	go func() {
		b := make([]byte, 64)
		for n := range echo {
			for i := 0; i < n; i++ {
				io.ReadFull(srv, b)
				srv.Write(b)
			}
			echo <- 0
		}
	}()
	fmt.Printf("ready %d\n", os.Getpid())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) != 2 || f[0] != "run" {
			return
		}
		n, _ := strconv.Atoi(f[1])
		t0 := time.Now()
		echo <- n
		for i := 0; i < n; i++ {
			cli.Write(msg)
			io.ReadFull(cli, buf)
		}
		<-echo
		fmt.Printf("elapsed %d\n", time.Since(t0).Nanoseconds())
	}
}
