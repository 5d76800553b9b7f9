package extauthz

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

// benchGateway measures HTTP/1.1 GETs of path on one keep-alive connection through a whole
// gateway whose ext_authz service and upstream answer fixed responses without net/http.
func benchGateway(b *testing.B, path string, grpc bool) {
	up := loopback.Fixed(b, []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("x", 100)))
	var yaml string
	if grpc {
		_, auth := serveGRPCAuth(b)
		yaml = grpcBootstrap(b, auth, up)
	} else {
		auth := loopback.Fixed(b, []byte("HTTP/1.1 200 OK\r\nX-User: alice\r\nContent-Length: 0\r\n\r\n"))
		yaml = bootstrap(b, auth, up, "")
	}
	gw := gateway(b, yaml)
	c, err := net.Dial("tcp", gw)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\nAccept: */*\r\nAuthorization: Bearer abc\r\n\r\n")
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

// BenchmarkCheck is a request allowed by the authorization service (one check over a
// keep-alive pool, an upstream header added).
func BenchmarkCheck(b *testing.B) { benchGateway(b, "/allow", false) }

// BenchmarkCheckGRPC is the same through a grpc-go Authorization server (whose own cost,
// in this process, is counted too).
func BenchmarkCheckGRPC(b *testing.B) { benchGateway(b, "/allow", true) }

// BenchmarkDisabled is the same request on a route that disables the check: the
// difference is the check's cost.
func BenchmarkDisabled(b *testing.B) { benchGateway(b, "/off", false) }
