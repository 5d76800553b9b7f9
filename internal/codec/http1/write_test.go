package http1

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
)

func TestWriteResponse(t *testing.T) {
	tests := []struct {
		name      string
		request   string // read first, so the response can adapt to it
		status    int
		fields    []header.Field
		framing   Framing
		keepAlive bool
		body      []string
		trailers  []header.Field
		want      string
		wantErr   error
	}{
		{
			name:    "length",
			request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			status:  200, fields: []header.Field{{Name: "content-type", Value: "text/plain"}},
			framing: Framing{Kind: Length, Length: 5}, keepAlive: true, body: []string{"he", "llo"},
			want: "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello",
		},
		{
			name:    "framing fields in the map are replaced",
			request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			status:  200, fields: []header.Field{{Name: "content-length", Value: "999"}, {Name: "transfer-encoding", Value: "gzip"}},
			framing: Framing{Kind: Length, Length: 2}, keepAlive: true, body: []string{"ok"},
			want: "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
		},
		{
			name:    "chunked with trailers",
			request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			status:  200, framing: Framing{Kind: Chunked}, keepAlive: true,
			body:     []string{"hello", "", strings.Repeat("x", 20)},
			trailers: []header.Field{{Name: "grpc-status", Value: "0"}, {Name: "content-length", Value: "1"}},
			want:     "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n14\r\n" + strings.Repeat("x", 20) + "\r\n0\r\ngrpc-status: 0\r\n\r\n",
		},
		{
			name:    "close",
			request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			status:  503, fields: []header.Field{{Name: "connection", Value: "keep-alive"}},
			framing: Framing{Kind: Length}, keepAlive: false,
			want: "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
		},
		{
			name:    "HTTP/1.0 keep-alive is explicit",
			request: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
			status:  200, framing: Framing{Kind: Length, Length: 1}, keepAlive: true, body: []string{"x"},
			want: "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: keep-alive\r\n\r\nx",
		},
		{
			name:    "HTTP/1.0 gets no chunked",
			request: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
			status:  200, framing: Framing{Kind: Chunked}, keepAlive: true, body: []string{"abc"},
			want: "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nabc",
		},
		{
			name:    "HEAD keeps length and drops body",
			request: "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
			status:  200, framing: Framing{Kind: Length, Length: 5}, keepAlive: true, body: []string{"hello"},
			want: "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
		},
		{
			name:    "HEAD passes upstream length through with no framing",
			request: "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
			status:  200, fields: []header.Field{{Name: "content-length", Value: "42"}}, keepAlive: true,
			want: "HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n",
		},
		{
			name:    "204 has no framing",
			request: "DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n",
			status:  204, fields: []header.Field{{Name: "content-length", Value: "0"}},
			framing: Framing{Kind: Length}, keepAlive: true,
			want: "HTTP/1.1 204 No Content\r\n\r\n",
		},
		{
			name:    "101 keeps the upgrade fields",
			request: "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
			status:  101, fields: []header.Field{{Name: "connection", Value: "upgrade"}, {Name: "upgrade", Value: "websocket"}},
			keepAlive: false,
			want:      "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n",
		},
		{
			name:    "unknown status has empty reason",
			request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			status:  299, framing: Framing{Kind: Length}, keepAlive: true,
			want: "HTTP/1.1 299 \r\ncontent-length: 0\r\n\r\n",
		},
		{
			name:    "CRLF in a value is refused",
			request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			status:  200, fields: []header.Field{{Name: "x", Value: "a\r\nset-cookie: evil"}},
			framing: Framing{Kind: Length}, keepAlive: true, wantErr: ErrInvalidField,
		},
		{
			name:    "non-token name is refused",
			request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			status:  200, fields: []header.Field{{Name: "x y", Value: "1"}},
			framing: Framing{Kind: Length}, keepAlive: true, wantErr: ErrInvalidField,
		},
		{
			name:    "body longer than announced",
			request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			status:  200, framing: Framing{Kind: Length, Length: 2}, keepAlive: true, body: []string{"abc"},
			wantErr: ErrBodyLength,
		},
		{
			name:    "body shorter than announced",
			request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			status:  200, framing: Framing{Kind: Length, Length: 4}, keepAlive: true, body: []string{"abc"},
			wantErr: ErrBodyLength,
		},
		{
			name:    "large field bypasses the buffer",
			request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			status:  200, fields: []header.Field{{Name: "x-big", Value: strings.Repeat("v", 20000)}},
			framing: Framing{Kind: Length}, keepAlive: true,
			want: "HTTP/1.1 200 OK\r\nx-big: " + strings.Repeat("v", 20000) + "\r\ncontent-length: 0\r\n\r\n",
		},
		{
			name:    "large chunk goes out by writev",
			request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			status:  200, framing: Framing{Kind: Chunked}, keepAlive: true, body: []string{strings.Repeat("z", 70000)},
			want: "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n11170\r\n" + strings.Repeat("z", 70000) + "\r\n0\r\n\r\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mc := &memConn{in: []byte(tc.request)}
			c := NewServerConn(mc, Limits{})
			defer c.Release()
			var req header.Map
			var rh RequestHead
			if err := c.ReadRequest(&req, &rh); err != nil {
				t.Fatal(err)
			}
			var h header.Map
			h.Status = tc.status
			for _, f := range tc.fields {
				h.Add(f.Name, f.Value)
			}
			err := c.WriteResponseHead(&h, tc.framing, tc.keepAlive)
			checkWrite(t, c, err, tc.body, tc.trailers, &mc.out, tc.want, tc.wantErr)
		})
	}
}

func TestWriteRequest(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		path     string
		auth     string
		fields   []header.Field
		framing  Framing
		body     []string
		trailers []header.Field
		want     string
		wantErr  error
	}{
		{
			name: "GET", method: "GET", path: "/a?b", auth: "up:8080",
			fields: []header.Field{{Name: "host", Value: "ignored"}, {Name: "accept", Value: "*/*"}},
			want:   "GET /a?b HTTP/1.1\r\nhost: up:8080\r\naccept: */*\r\n\r\n",
		},
		{
			name: "empty path", method: "GET", auth: "up",
			want: "GET / HTTP/1.1\r\nhost: up\r\n\r\n",
		},
		{
			name: "POST length", method: "POST", path: "/p", auth: "up",
			fields:  []header.Field{{Name: "content-length", Value: "7"}},
			framing: Framing{Kind: Length, Length: 3}, body: []string{"abc"},
			want: "POST /p HTTP/1.1\r\nhost: up\r\ncontent-length: 3\r\n\r\nabc",
		},
		{
			name: "POST chunked with trailers", method: "POST", path: "/p", auth: "up",
			framing: Framing{Kind: Chunked}, body: []string{"abc", "defg"},
			trailers: []header.Field{{Name: "x-sum", Value: "1"}},
			want:     "POST /p HTTP/1.1\r\nhost: up\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\nx-sum: 1\r\n\r\n",
		},
		{
			name: "CONNECT uses the authority", method: "CONNECT", auth: "db:5432",
			want: "CONNECT db:5432 HTTP/1.1\r\nhost: db:5432\r\n\r\n",
		},
		{name: "bad method", method: "G T", path: "/", auth: "up", wantErr: ErrInvalidField},
		{name: "space in path", method: "GET", path: "/a b", auth: "up", wantErr: ErrInvalidField},
		{name: "CRLF in authority", method: "GET", path: "/", auth: "a\r\nx: y", wantErr: ErrInvalidField},
		{name: "until-close request", method: "POST", path: "/", auth: "a", framing: Framing{Kind: UntilClose}, wantErr: ErrInvalidField},
		{name: "body without framing", method: "GET", path: "/", auth: "a", body: []string{"x"}, wantErr: ErrBodyNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mc := &memConn{}
			c := NewClientConn(mc, Limits{})
			defer c.Release()
			h := header.Map{Method: tc.method, Path: tc.path, Authority: tc.auth}
			for _, f := range tc.fields {
				h.Add(f.Name, f.Value)
			}
			err := c.WriteRequestHead(&h, tc.framing)
			checkWrite(t, c, err, tc.body, tc.trailers, &mc.out, tc.want, tc.wantErr)
		})
	}
}

// checkWrite finishes a message whose head was written with headErr: the body pieces, the
// trailers and a flush, stopping at the first error. It then wants wantErr, or (when nil)
// exactly want in out.
func checkWrite(t *testing.T, w messageWriter, headErr error, body []string, trailers []header.Field, out *bytes.Buffer, want string, wantErr error) {
	t.Helper()
	err := headErr
	for _, b := range body {
		if err != nil {
			break
		}
		err = w.WriteBody([]byte(b))
	}
	if err == nil {
		var tr header.Map
		for _, f := range trailers {
			tr.Add(f.Name, f.Value)
		}
		err = w.WriteEnd(&tr)
	}
	if err == nil {
		err = w.Flush()
	}
	if wantErr != nil {
		if err != wantErr {
			t.Fatalf("err = %v, want %v", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != want {
		t.Fatalf("wrote\n%q\nwant\n%q", got, want)
	}
}
