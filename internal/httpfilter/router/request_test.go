package router_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// echoHandler describes the request it got, one "key=value" line each, so tests can check
// what reached the upstream after the proxy's rewrites and mutations.
func echoHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		sum := sha256.Sum256(body)
		var b strings.Builder
		fmt.Fprintf(&b, "upstream=%s\nproto=%s\nmethod=%s\npath=%s\nhost=%s\n", name, r.Proto, r.Method, r.RequestURI, r.Host)
		fmt.Fprintf(&b, "body-len=%d\nbody-sha=%s\n", len(body), hex.EncodeToString(sum[:]))
		if len(body) <= 64 {
			fmt.Fprintf(&b, "body=%s\n", body)
		}
		fmt.Fprintf(&b, "content-length=%d\nte=%s\n", r.ContentLength, strings.Join(r.TransferEncoding, ","))
		var lines []string
		for k, vs := range r.Header {
			lines = append(lines, "h:"+strings.ToLower(k)+"="+strings.Join(vs, ","))
		}
		for k, vs := range r.Trailer {
			lines = append(lines, "trailer:"+strings.ToLower(k)+"="+strings.Join(vs, ","))
		}
		slices.Sort(lines)
		b.WriteString(strings.Join(lines, "\n"))
		w.Header().Set("x-secret", "upstream-only")
		w.Header().Set("content-type", "text/plain")
		io.WriteString(w, b.String())
	})
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// rawExchange writes raw to the proxy and reads one response from the connection.
func rawExchange(t testing.TB, addr, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return resp, string(b)
}

func TestRequestBodies(t *testing.T) {
	checkGoroutines(t)
	up := serveHTTP(t, echoHandler("up"))
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "up", up)},
		routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "up"})},
	})
	mib := strings.Repeat("0123456789abcdef", 1<<16)
	chunked := func(body string, pieces int, trailer string) string {
		var b strings.Builder
		step := max(len(body)/pieces, 1)
		for i := 0; i < len(body); i += step {
			end := min(i+step, len(body))
			fmt.Fprintf(&b, "%x\r\n%s\r\n", end-i, body[i:end])
		}
		b.WriteString("0\r\n" + trailer + "\r\n")
		return b.String()
	}
	tests := []struct {
		name string
		raw  string
		want []string
	}{
		{
			name: "content-length",
			raw:  "POST /cl HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
			want: []string{"body=hello", "content-length=5"},
		},
		{
			name: "chunked",
			raw:  "POST /ch HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked("hello world", 3, ""),
			want: []string{"body=hello world", "te=chunked"},
		},
		{
			name: "chunked with trailers",
			raw:  "POST /tr HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked("abc", 1, "X-Checksum: 42\r\n"),
			want: []string{"body=abc", "trailer:x-checksum=42"},
		},
		{
			name: "one mebibyte with content-length",
			raw:  "PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: " + strconv.Itoa(len(mib)) + "\r\n\r\n" + mib,
			want: []string{"body-len=1048576", "body-sha=" + sha([]byte(mib))},
		},
		{
			name: "one mebibyte chunked",
			raw:  "POST /big HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(mib, 37, ""),
			want: []string{"body-len=1048576", "body-sha=" + sha([]byte(mib))},
		},
		{
			name: "empty post",
			raw:  "POST /empty HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
			want: []string{"body-len=0", "method=POST", "content-length=0"},
		},
		{
			// An HTTP/1.1 upstream needs a length where an HTTP/2 client just ends the stream.
			name: "post without any length",
			raw:  "POST /empty HTTP/1.1\r\nHost: h\r\n\r\n",
			want: []string{"body-len=0", "content-length=0"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawExchange(t, p.addr, tc.raw)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w+"\n") && !strings.HasSuffix(body, w) {
					t.Errorf("upstream saw no %q:\n%s", w, body)
				}
			}
		})
	}
}

func TestExpectContinue(t *testing.T) {
	checkGoroutines(t)
	up := serveHTTP(t, echoHandler("up"))
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "up", up)},
		routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "up"})},
	})
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	io.WriteString(c, "POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("interim response %q, %v", line, err)
	}
	if blank, _ := br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("100 Continue carries fields: %q", blank)
	}
	io.WriteString(c, "data")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "body=data\n") || strings.Contains(string(b), "h:expect") {
		t.Errorf("status %d:\n%s", resp.StatusCode, b)
	}
}

func TestResponseTrailers(t *testing.T) {
	checkGoroutines(t)
	up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "body")
		http.NewResponseController(w).Flush()
		w.Header().Set("X-Sum", "7")
	}))
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "up", up)},
		routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "up"})},
	})
	for _, client := range []struct {
		name string
		c    *http.Client
	}{{"h1", h1Client(t)}, {"h2c", h2cClient(t)}} {
		t.Run(client.name, func(t *testing.T) {
			resp, err := client.c.Get("http://" + p.addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != "body" {
				t.Fatalf("body %q %v", b, err)
			}
			if got := resp.Trailer.Get("X-Sum"); got != "7" {
				t.Errorf("trailer x-sum %q, want 7 (trailers %v)", got, resp.Trailer)
			}
		})
	}
}

func TestWeightedClusters(t *testing.T) {
	checkGoroutines(t)
	a := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") }))
	b := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") }))
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "a", a), staticCluster(t, "b", b)},
		routes: []*model.Route{prefixRoute("/", &model.RouteAction{WeightedClusters: []model.WeightedCluster{
			{Name: "a", Weight: 30, Headers: model.HeaderMutation{ResponseAdd: []model.HeaderValueOption{{Name: "x-picked", Value: "a"}}}},
			{Name: "b", Weight: 70, Headers: model.HeaderMutation{ResponseAdd: []model.HeaderValueOption{{Name: "x-picked", Value: "b"}}}},
		}})},
	})
	c := h1Client(t)
	counts := map[string]int{}
	const n = 1000
	for i := range n {
		status, body, hdr := get(t, c, "http://"+p.addr+"/", strconv.Itoa(i))
		if status != 200 || hdr.Get("x-picked") != body {
			t.Fatalf("request %d: %d %q picked %q", i, status, body, hdr.Get("x-picked"))
		}
		counts[body]++
	}
	// Expected 300 and 700; the bounds are many standard deviations (about 14) wide.
	if counts["a"] < 150 || counts["a"] > 450 || counts["a"]+counts["b"] != n {
		t.Errorf("distribution %v, want about 300/700", counts)
	}
}

func TestRewritesAndHeaders(t *testing.T) {
	checkGoroutines(t)
	up := serveHTTP(t, echoHandler("up"))
	named := staticCluster(t, "named", up)
	named.Localities[0].Endpoints[0].Hostname = "backend.internal"
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "up", up), named},
		routes: []*model.Route{
			prefixRoute("/api/", &model.RouteAction{Cluster: "up", PrefixRewrite: "/v2/"}),
			{
				Match: model.RouteMatch{PathKind: model.PathRegex, Path: `/re/[a-z]+/[0-9]+`},
				Route: &model.RouteAction{Cluster: "up", RegexRewrite: &model.RegexRewrite{Pattern: `^/re/([a-z]+)/([0-9]+)$`, Substitution: `/\2/\1`}},
			},
			prefixRoute("/literal", &model.RouteAction{Cluster: "up", HostRewriteLiteral: "rewritten.example"}),
			prefixRoute("/auto", &model.RouteAction{Cluster: "named", AutoHostRewrite: true}),
			{
				Match: model.RouteMatch{PathKind: model.PathPrefix, Path: "/mut"},
				Route: &model.RouteAction{Cluster: "up"},
				Headers: model.HeaderMutation{
					RequestAdd: []model.HeaderValueOption{
						{Name: "x-client", Value: "%DOWNSTREAM_REMOTE_ADDRESS%"},
						{Name: "x-copied", Value: "%REQ(x-in)%"},
						{Name: "x-set", Value: "new", Action: model.OverwriteIfExistsOrAdd},
					},
					RequestRemove:  []string{"x-drop"},
					ResponseAdd:    []model.HeaderValueOption{{Name: "x-echo", Value: "%REQ(x-in)%"}},
					ResponseRemove: []string{"x-secret"},
				},
			},
			prefixRoute("/", &model.RouteAction{Cluster: "up"}),
		},
	})
	c := h1Client(t)
	tests := []struct {
		name     string
		path     string
		header   []string
		want     []string
		notWant  []string
		wantResp map[string]string // response header → value ("" = absent)
	}{
		{name: "prefix rewrite keeps the query", path: "/api/users?id=7", want: []string{"path=/v2/users?id=7"}},
		{name: "regex rewrite", path: "/re/abc/123", want: []string{"path=/123/abc"}},
		{name: "host rewrite literal", path: "/literal/x", want: []string{"host=rewritten.example"}},
		{name: "auto host rewrite", path: "/auto/x", want: []string{"host=backend.internal"}},
		{name: "host kept", path: "/plain", want: []string{"host=" + p.addr}},
		{
			name: "header mutations", path: "/mut",
			header:   []string{"x-in", "hello", "x-drop", "1", "x-set", "old"},
			want:     []string{"h:x-client=127.0.0.1:", "h:x-copied=hello", "h:x-set=new", "h:x-in=hello"},
			notWant:  []string{"h:x-drop", "x-set=old"},
			wantResp: map[string]string{"x-echo": "hello", "x-secret": ""},
		},
		{name: "no mutations elsewhere", path: "/plain", wantResp: map[string]string{"x-secret": "upstream-only"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := get(t, c, "http://"+p.addr+tc.path, tc.name, tc.header...)
			if status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("upstream saw no %q:\n%s", w, body)
				}
			}
			for _, nw := range tc.notWant {
				if strings.Contains(body, nw) {
					t.Errorf("upstream saw %q:\n%s", nw, body)
				}
			}
			for k, v := range tc.wantResp {
				if got := hdr.Get(k); got != v {
					t.Errorf("response %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestUpstreamServiceTime(t *testing.T) {
	tests := []struct {
		name     string
		suppress bool
	}{
		{name: "present", suppress: false},
		{name: "suppressed", suppress: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
			h2 := serveH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
			h2c := staticCluster(t, "h2", h2)
			h2c.Protocol = model.UpstreamHTTP2
			p := newProxy(t, proxyOptions{
				clusters: []*model.Cluster{staticCluster(t, "up", up), h2c},
				routes: []*model.Route{
					prefixRoute("/h2", &model.RouteAction{Cluster: "h2"}),
					prefixRoute("/", &model.RouteAction{Cluster: "up"}),
				},
				router: &routerv3.Router{SuppressEnvoyHeaders: tc.suppress},
			})
			for _, path := range []string{"/h1", "/h2"} {
				_, _, hdr := get(t, h1Client(t), "http://"+p.addr+path, path)
				v := hdr.Get("x-envoy-upstream-service-time")
				if tc.suppress && v != "" {
					t.Errorf("%s: suppressed header present: %q", path, v)
				}
				if _, err := strconv.Atoi(v); !tc.suppress && err != nil {
					t.Errorf("%s: x-envoy-upstream-service-time %q", path, v)
				}
			}
		})
	}
}

func TestDirectResponseAndRedirect(t *testing.T) {
	checkGoroutines(t)
	p := newProxy(t, proxyOptions{routes: []*model.Route{
		{Match: model.RouteMatch{PathKind: model.PathExact, Path: "/direct"}, DirectResponse: &model.DirectResponseAction{Status: 418, Body: []byte("teapot")}},
		{Match: model.RouteMatch{PathKind: model.PathExact, Path: "/empty"}, DirectResponse: &model.DirectResponseAction{Status: 204}},
		{Match: model.RouteMatch{PathKind: model.PathPrefix, Path: "/old"}, Redirect: &model.RedirectAction{PrefixRewrite: "/new", Code: 301}},
	}})
	tests := []struct {
		name         string
		path         string
		wantStatus   int
		wantBody     string
		wantLocation string
	}{
		{name: "direct response", path: "/direct", wantStatus: 418, wantBody: "teapot"},
		{name: "empty direct response", path: "/empty", wantStatus: 204},
		{name: "redirect", path: "/old/x?q=1", wantStatus: 301, wantLocation: "http://" + p.addr + "/new/x?q=1"},
		{name: "no route", path: "/nowhere", wantStatus: 404},
	}
	c := h1Client(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := get(t, c, "http://"+p.addr+tc.path, tc.name)
			if status != tc.wantStatus || body != tc.wantBody || hdr.Get("location") != tc.wantLocation {
				t.Errorf("got %d %q location %q", status, body, hdr.Get("location"))
			}
		})
	}
}

func TestWebSocket(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name       string
		hcmAllows  bool
		route      *bool
		wantStatus int
	}{
		{name: "allowed by the connection manager", hcmAllows: true, wantStatus: 101},
		{name: "not configured", hcmAllows: false, wantStatus: 403},
		{name: "route enables", hcmAllows: false, route: &yes, wantStatus: 101},
		{name: "route disables", hcmAllows: true, route: &no, wantStatus: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			up := rawUpstream(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				req, ok := readRequestHead(br)
				if !ok || !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") || !strings.EqualFold(req.Header.Get("Connection"), "upgrade") {
					io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
					return
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
				// Echo, as a stand-in for frames, until the client closes.
				io.Copy(c, br)
			})
			p := newProxy(t, proxyOptions{
				clusters: []*model.Cluster{staticCluster(t, "up", up)},
				routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "up", UpgradeWebSocket: tc.route})},
				hcm:      func(m *model.HTTPConnectionManager) { m.UpgradeWebSocket = tc.hcmAllows },
			})
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(testTimeout))
			io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantStatus != 101 {
				return
			}
			for _, msg := range []string{"ping", "pong"} {
				io.WriteString(c, msg)
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
					t.Fatalf("tunnel echoed %q, %v", got, err)
				}
			}
		})
	}
}
