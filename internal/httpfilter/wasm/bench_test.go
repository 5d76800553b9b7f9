package wasm_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
)

// BenchmarkRequest measures one keep-alive HTTP/1.1 GET through a real listener, connection
// manager and router to a fixed-answer upstream, without a plugin and through the
// header_rewrite plugin (which reads a request header, replaces another and adds a response
// header): the difference is what a header-rewriting plugin costs a request.
func BenchmarkRequest(b *testing.B) {
	dir := b.TempDir()
	rewrite := pluginFile(b, dir, "header_rewrite")
	up := loopback.Fixed(b, []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("x", 100)))
	_, upPort, _ := net.SplitHostPort(up)
	plain := strings.Replace(listenerYAML("plain", false, "{}", nil),
		"          - name: plugin\n            disabled: false\n            typed_config: {}\n", "", 1)
	yaml := "static_resources:\n  listeners:" + plain +
		listenerYAML("wasm", false, wasmConfig("rewrite", rewrite, "", ""), nil) +
		clustersYAML(upPort, "1")
	r := run(b, dir, yaml)
	req := []byte("GET /bench HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\nx-tenant: t1\r\n\r\n")
	for _, name := range []string{"plain", "wasm"} {
		b.Run(name, func(b *testing.B) {
			c, err := net.Dial("tcp", r.addr(name))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReaderSize(c, 4096)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				status, rewritten, err := readResponse(br)
				if err != nil || status != 200 || rewritten != (name == "wasm") {
					b.Fatalf("status %d, rewritten %t, %v", status, rewritten, err)
				}
			}
		})
	}
}

// readResponse reads one response with a Content-Length body: its status and whether the
// plugin's x-rewritten header is there.
func readResponse(br *bufio.Reader) (status int, rewritten bool, err error) {
	length := -1
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		if first {
			if len(line) < 12 {
				return 0, false, io.ErrUnexpectedEOF
			}
			status, _ = strconv.Atoi(string(line[9:12]))
			continue
		}
		if len(line) <= 2 {
			break
		}
		if bytes.HasPrefix(line, []byte("x-rewritten:")) {
			rewritten = true
		}
		if len(line) > 16 && bytes.EqualFold(line[:15], []byte("content-length:")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
		}
	}
	if length < 0 {
		return 0, false, io.ErrUnexpectedEOF
	}
	_, err = br.Discard(length)
	return status, rewritten, err
}
