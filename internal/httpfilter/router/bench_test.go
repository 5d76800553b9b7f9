package router_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
)

// fastUpstream answers every request on a connection with the same 100-byte response,
// without net/http, so the benchmark measures the proxy rather than the upstream.
func fastUpstream(b testing.TB) string {
	b.Helper()
	return loopback.Fixed(b, []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("x", 100)))
}

// readResponse reads one response with a Content-Length body and returns its status.
func readResponse(br *bufio.Reader) (int, error) {
	status, length := 0, -1
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if first {
			if len(line) < 12 {
				return 0, io.ErrUnexpectedEOF
			}
			status, _ = strconv.Atoi(string(line[9:12]))
			continue
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > 16 && bytes.EqualFold(line[:15], []byte("content-length:")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
		}
	}
	if length < 0 {
		return 0, io.ErrUnexpectedEOF
	}
	_, err := br.Discard(length)
	return status, err
}

// BenchmarkProxyH1 measures one HTTP/1.1 GET through the connection manager, the router,
// the HTTP/1.1 codec and a keep-alive upstream pool.
func BenchmarkProxyH1(b *testing.B) {
	up := fastUpstream(b)
	p := newProxy(b, proxyOptions{
		clusters: []*model.Cluster{staticCluster(b, "up", up)},
		routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "up"})},
	})
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /bench HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReaderSize(c, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		status, err := readResponse(br)
		if err != nil || status != 200 {
			b.Fatalf("status %d, %v", status, err)
		}
	}
}
