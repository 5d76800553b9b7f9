// Command upstream is the origin server behind every proxy in the side-by-side benchmark. It
// answers GET requests with a fixed body (100 B, or 16 KiB when the path contains "16k") so that
// the proxy, not the origin, is what the benchmark measures.
//
// HTTP/1.1 keep-alive is served by a minimal hand-written responder: net/http costs several
// times more CPU per request, and the origin shares its core with the load generator. h2c is
// served by net/http on a second address, for proxies that reach upstreams over HTTP/2.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

const (
	smallSize = 100
	largeSize = 16 << 10
)

func main() {
	h1 := flag.String("h1", "127.0.0.1:18000", "HTTP/1.1 listen address")
	h2c := flag.String("h2c", "127.0.0.1:18001", "h2c (HTTP/2 without TLS) listen address; empty to disable")
	flag.Parse()

	ln, err := net.Listen("tcp", *h1)
	if err != nil {
		log.Fatalf("upstream: %v", err)
	}
	go serveH1(ln)

	if *h2c != "" {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		p.SetHTTP1(true)
		srv := &http.Server{Addr: *h2c, Handler: http.HandlerFunc(serveHTTP), Protocols: &p}
		ln2, err := net.Listen("tcp", *h2c)
		if err != nil {
			log.Fatalf("upstream: %v", err)
		}
		go func() {
			if err := srv.Serve(ln2); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Fatalf("upstream: h2c: %v", err)
			}
		}()
	}
	fmt.Println("ready")

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}

var (
	smallBody = bytes.Repeat([]byte("x"), smallSize)
	largeBody = bytes.Repeat([]byte("x"), largeSize)
	smallResp = response(smallBody)
	largeResp = response(largeBody)
)

func response(body []byte) []byte {
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	return append([]byte(head), body...)
}

func serveH1(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatalf("upstream: accept: %v", err)
		}
		go serveConn(c)
	}
}

// serveConn answers each request head on c with a canned response. Only what the benchmark
// sends is understood: a request line, headers, and a body only when Content-Length says so.
func serveConn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 8<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		large := bytes.Contains(line, []byte("16k"))
		var bodyLen int64
		for {
			h, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(h) <= 2 {
				break
			}
			if len(h) > 15 && bytes.EqualFold(h[:15], []byte("content-length:")) {
				n, err := strconv.ParseInt(string(bytes.TrimSpace(h[15:])), 10, 64)
				if err != nil || n < 0 {
					return
				}
				bodyLen = n
			}
		}
		if bodyLen > 0 {
			if _, err := io.CopyN(io.Discard, br, bodyLen); err != nil {
				return
			}
		}
		resp := smallResp
		if large {
			resp = largeResp
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

func serveHTTP(w http.ResponseWriter, r *http.Request) {
	body := smallBody
	if bytes.Contains([]byte(r.URL.Path), []byte("16k")) {
		body = largeBody
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}
