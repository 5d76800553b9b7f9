package router_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

func TestKeepAliveReuse(t *testing.T) {
	checkGoroutines(t)
	up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "up", up)},
		routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "up"})},
	})
	c := h1Client(t)
	const n = 5
	for i := range n {
		id := fmt.Sprint("req", i)
		status, body, _ := get(t, c, "http://"+p.addr+"/k", id)
		if status != 200 || body != "ok /k" {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
		// The connection goes back to the pool when the stream is done, which may be just
		// after the client saw the response.
		p.rec.wait(t, id)
	}
	st := p.host(t, "up").Pool.Stats()
	if st.Connects != 1 || st.Reuses != n-1 {
		t.Errorf("connects %d reuses %d, want 1 and %d", st.Connects, st.Reuses, n-1)
	}
}

// TestStaleKeepAlive checks that a request still succeeds when the pooled connection it
// would use was closed by the upstream: noticed while idle, or only once the request was
// sent on it (the race every keep-alive client has with a server's idle timeout).
func TestStaleKeepAlive(t *testing.T) {
	tests := []struct {
		name string
		// serveSecond decides what the upstream does with a second request on the same
		// connection: answer it (true) or close without a word.
		closeAfterFirst bool
	}{
		{name: "closed while idle", closeAfterFirst: true},
		{name: "closed when the next request arrives", closeAfterFirst: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			var mu sync.Mutex
			conns := 0
			closed := make(chan struct{}, 4)
			up := rawUpstream(t, func(c net.Conn) {
				mu.Lock()
				conns++
				mu.Unlock()
				br := bufio.NewReader(c)
				if _, ok := readRequestHead(br); !ok {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				if tc.closeAfterFirst {
					c.Close()
					closed <- struct{}{}
					return
				}
				// Keep-alive promised, but the next request is dropped unanswered.
				readRequestHead(br)
			})
			p := newProxy(t, proxyOptions{
				clusters: []*model.Cluster{staticCluster(t, "up", up)},
				routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "up"})},
			})
			c := h1Client(t)
			if status, body, _ := get(t, c, "http://"+p.addr+"/", "first"); status != 200 || body != "ok" {
				t.Fatalf("first: %d %q", status, body)
			}
			p.rec.wait(t, "first")
			if tc.closeAfterFirst {
				<-closed
				time.Sleep(50 * time.Millisecond) // let the FIN reach the proxy's socket
			}
			status, body, _ := get(t, c, "http://"+p.addr+"/", "second")
			if status != 200 || body != "ok" {
				t.Fatalf("second: %d %q (flags %v)", status, body, p.rec.wait(t, "second").ResponseFlags)
			}
		})
	}
}

func TestUpstreamFailures(t *testing.T) {
	tests := []struct {
		name       string
		upstream   func(c net.Conn, br *bufio.Reader)
		wantStatus int
		wantBody   string
		wantFlag   httpfilter.ResponseFlags
	}{
		{
			name: "malformed status line",
			upstream: func(c net.Conn, br *bufio.Reader) {
				io.WriteString(c, "HTTP/1.1 2x0 OK\r\n\r\n")
			},
			wantStatus: 502, wantFlag: httpfilter.FlagUpstreamProtocolError,
		},
		{
			name: "conflicting framing",
			upstream: func(c net.Conn, br *bufio.Reader) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
			},
			wantStatus: 502, wantFlag: httpfilter.FlagUpstreamProtocolError,
		},
		{
			name: "closed before headers",
			upstream: func(c net.Conn, br *bufio.Reader) {
				c.Close()
			},
			wantStatus: 503, wantFlag: httpfilter.FlagUpstreamConnectionTermination,
			wantBody: "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
		},
		{
			name: "reset before headers",
			upstream: func(c net.Conn, br *bufio.Reader) {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			},
			wantStatus: 503, wantFlag: httpfilter.FlagUpstreamConnectionTermination,
		},
		{
			name: "closed in the middle of the head",
			upstream: func(c net.Conn, br *bufio.Reader) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-")
			},
			wantStatus: 503, wantFlag: httpfilter.FlagUpstreamConnectionTermination,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			up := rawUpstream(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				if _, ok := readRequestHead(br); ok {
					tc.upstream(c, br)
				}
			})
			p := newProxy(t, proxyOptions{
				clusters: []*model.Cluster{staticCluster(t, "up", up)},
				routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "up"})},
			})
			status, body, _ := get(t, h1Client(t), "http://"+p.addr+"/", "x")
			if status != tc.wantStatus {
				t.Errorf("status %d, want %d (%q)", status, tc.wantStatus, body)
			}
			if tc.wantBody != "" && body != tc.wantBody {
				t.Errorf("body %q, want %q", body, tc.wantBody)
			}
			if info := p.rec.wait(t, "x"); info.ResponseFlags&tc.wantFlag == 0 {
				t.Errorf("flags %v, want %v", info.ResponseFlags, tc.wantFlag)
			}
		})
	}
}

// TestTruncatedResponse checks that a response cut short after its headers went out
// reaches the client as an error, never as a complete (shorter) response.
func TestTruncatedResponse(t *testing.T) {
	tests := []struct {
		name string
		resp string
	}{
		{name: "content-length", resp: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"},
		{name: "chunked", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nonly part\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			up := rawUpstream(t, func(c net.Conn) {
				if _, ok := readRequestHead(bufio.NewReader(c)); ok {
					io.WriteString(c, tc.resp)
				}
			})
			p := newProxy(t, proxyOptions{
				clusters: []*model.Cluster{staticCluster(t, "up", up)},
				routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "up"})},
			})
			for _, client := range []struct {
				name string
				c    *http.Client
			}{{"h1", h1Client(t)}, {"h2c", h2cClient(t)}} {
				req, _ := http.NewRequest("GET", "http://"+p.addr+"/", nil)
				req.Header.Set("x-test-id", client.name)
				resp, err := client.c.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", client.name, err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil {
					t.Errorf("%s: body %q read without error", client.name, b)
				}
				if info := p.rec.wait(t, client.name); info.ResponseFlags&httpfilter.FlagUpstreamConnectionTermination == 0 {
					t.Errorf("%s: flags %v, want UC", client.name, info.ResponseFlags)
				}
			}
		})
	}
}

// TestDownstreamGoneStopsUpstream checks that when the client goes away in the middle of a
// streamed response, the proxy stops reading the upstream instead of draining it to its
// end (an endless event stream would otherwise hold the upstream connection forever).
func TestDownstreamGoneStopsUpstream(t *testing.T) {
	for _, proto := range []string{"h1", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			checkGoroutines(t)
			stopped := make(chan struct{})
			up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer close(stopped)
				rc := http.NewResponseController(w)
				chunk := []byte(strings.Repeat("x", 1024))
				for range 3000 { // bounded: 30 s at most
					if _, err := w.Write(chunk); err != nil {
						return
					}
					if rc.Flush() != nil {
						return
					}
					select {
					case <-r.Context().Done():
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
			}))
			p := newProxy(t, proxyOptions{
				clusters: []*model.Cluster{staticCluster(t, "up", up)},
				routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "up"})},
			})
			c := h1Client(t)
			if proto == "h2c" {
				c = h2cClient(t)
			}
			resp, err := c.Get("http://" + p.addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			io.ReadFull(resp.Body, make([]byte, 4096))
			resp.Body.Close()
			c.Transport.(interface{ CloseIdleConnections() }).CloseIdleConnections()
			select {
			case <-stopped:
			case <-time.After(testTimeout):
				t.Fatal("upstream still streaming after the client left")
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	tests := []struct {
		name        string
		timeout     time.Duration
		idleTimeout time.Duration
		// upstream behaviour
		headerDelay time.Duration
		chunks      int
		chunkGap    time.Duration
		wantStatus  int // 0: the response must fail after its headers
		wantFlag    httpfilter.ResponseFlags
	}{
		{name: "route timeout before headers", timeout: 100 * time.Millisecond, headerDelay: 2 * time.Second,
			wantStatus: 504, wantFlag: httpfilter.FlagUpstreamRequestTimeout},
		{name: "idle timeout before headers", idleTimeout: 100 * time.Millisecond, headerDelay: 2 * time.Second,
			wantStatus: 504, wantFlag: httpfilter.FlagUpstreamRequestTimeout},
		{name: "idle timeout while the body trickles", idleTimeout: 150 * time.Millisecond, chunks: 3, chunkGap: 2 * time.Second,
			wantStatus: 0, wantFlag: httpfilter.FlagUpstreamRequestTimeout},
		{name: "route timeout while the body trickles", timeout: 300 * time.Millisecond, chunks: 3, chunkGap: 2 * time.Second,
			wantStatus: 0, wantFlag: httpfilter.FlagUpstreamRequestTimeout},
		{name: "trickle within the idle timeout", idleTimeout: 2 * time.Second, chunks: 5, chunkGap: 20 * time.Millisecond,
			wantStatus: 200},
		{name: "timeouts disabled", headerDelay: 300 * time.Millisecond, chunks: 3, chunkGap: 100 * time.Millisecond,
			wantStatus: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(tc.headerDelay):
				case <-r.Context().Done():
					return
				}
				w.WriteHeader(200)
				http.NewResponseController(w).Flush()
				for i := range tc.chunks {
					if i > 0 {
						select {
						case <-time.After(tc.chunkGap):
						case <-r.Context().Done():
							return
						}
					}
					io.WriteString(w, "chunk\n")
					http.NewResponseController(w).Flush()
				}
			}))
			p := newProxy(t, proxyOptions{
				clusters: []*model.Cluster{staticCluster(t, "up", up)},
				routes: []*model.Route{prefixRoute("/", &model.RouteAction{
					Cluster: "up", Timeout: tc.timeout, IdleTimeout: tc.idleTimeout,
				})},
			})
			req, _ := http.NewRequest("GET", "http://"+p.addr+"/", nil)
			req.Header.Set("x-test-id", "x")
			resp, err := h1Client(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case tc.wantStatus == 0:
				if resp.StatusCode != 200 || err == nil {
					t.Errorf("status %d err %v body %q: want a broken 200", resp.StatusCode, err, b)
				}
			case resp.StatusCode != tc.wantStatus || err != nil:
				t.Errorf("status %d err %v body %q, want %d", resp.StatusCode, err, b, tc.wantStatus)
			case tc.wantStatus == 504 && string(b) != "upstream request timeout":
				t.Errorf("body %q", b)
			case tc.wantStatus == 200 && string(b) != strings.Repeat("chunk\n", tc.chunks):
				t.Errorf("body %q", b)
			}
			if info := p.rec.wait(t, "x"); tc.wantFlag != 0 && info.ResponseFlags&tc.wantFlag == 0 {
				t.Errorf("flags %v, want %v", info.ResponseFlags, tc.wantFlag)
			}
		})
	}
}

func TestClusterSelectionFailures(t *testing.T) {
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := ln.Addr().String()
		ln.Close()
		return a
	}()
	tests := []struct {
		name       string
		clusters   []*model.Cluster
		action     *model.RouteAction
		header     []string
		wantStatus int
		wantBody   string
		wantFlag   httpfilter.ResponseFlags
	}{
		{
			name:       "no endpoints",
			clusters:   []*model.Cluster{staticCluster(t, "empty")},
			action:     &model.RouteAction{Cluster: "empty"},
			wantStatus: 503, wantBody: "no healthy upstream", wantFlag: httpfilter.FlagNoHealthyUpstream,
		},
		{
			name:       "unknown cluster in cluster_header",
			action:     &model.RouteAction{ClusterHeader: "x-cluster"},
			header:     []string{"x-cluster", "nope"},
			wantStatus: 503, wantFlag: httpfilter.FlagNoClusterFound,
		},
		{
			name:       "missing cluster_header",
			action:     &model.RouteAction{ClusterHeader: "x-cluster"},
			wantStatus: 503, wantFlag: httpfilter.FlagNoClusterFound,
		},
		{
			name:       "unknown cluster answers 404 when asked",
			action:     &model.RouteAction{ClusterHeader: "x-cluster", ClusterNotFoundCode: 404},
			header:     []string{"x-cluster", "nope"},
			wantStatus: 404, wantFlag: httpfilter.FlagNoClusterFound,
		},
		{
			name:       "route names a cluster that does not exist",
			action:     &model.RouteAction{Cluster: "ghost"},
			wantStatus: 503, wantFlag: httpfilter.FlagNoClusterFound,
		},
		{
			name:       "connection refused",
			clusters:   []*model.Cluster{staticCluster(t, "down", refused)},
			action:     &model.RouteAction{Cluster: "down"},
			wantStatus: 503, wantFlag: httpfilter.FlagUpstreamConnectFailure,
			wantBody: "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			p := newProxy(t, proxyOptions{clusters: tc.clusters, routes: []*model.Route{prefixRoute("/", tc.action)}})
			status, body, _ := get(t, h1Client(t), "http://"+p.addr+"/", "x", tc.header...)
			if status != tc.wantStatus || (tc.wantBody != "" && body != tc.wantBody) {
				t.Errorf("got %d %q, want %d %q", status, body, tc.wantStatus, tc.wantBody)
			}
			if info := p.rec.wait(t, "x"); info.ResponseFlags&tc.wantFlag == 0 {
				t.Errorf("flags %v, want %v", info.ResponseFlags, tc.wantFlag)
			}
		})
	}
}

func TestCircuitBreakerOverflow(t *testing.T) {
	checkGoroutines(t)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "slow")
	}))
	cl := staticCluster(t, "up", up)
	cl.MaxConnections = 1
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{cl},
		routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "up"})},
	})
	c := h1Client(t)
	type result struct {
		status int
		body   string
	}
	first := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/", nil)
		resp, err := c.Do(req)
		if err != nil {
			first <- result{}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		first <- result{resp.StatusCode, string(b)}
	}()
	select {
	case <-entered:
	case <-time.After(testTimeout):
		t.Fatal("first request never reached the upstream")
	}
	status, body, _ := get(t, c, "http://"+p.addr+"/", "second")
	close(release)
	if status != 503 || body != "upstream connect error or disconnect/reset before headers. reset reason: overflow" {
		t.Errorf("second: %d %q", status, body)
	}
	if info := p.rec.wait(t, "second"); info.ResponseFlags&httpfilter.FlagUpstreamOverflow == 0 {
		t.Errorf("flags %v, want UO", info.ResponseFlags)
	}
	if n := statValue("cluster.up.upstream_cx_overflow"); n < 1 {
		t.Errorf("upstream_cx_overflow = %d, want the refused connection counted", n)
	}
	if r := <-first; r.status != 200 || r.body != "slow" {
		t.Errorf("first: %d %q", r.status, r.body)
	}
}

// statValue reads a counter or gauge from the process-wide stats store (0 when absent).
func statValue(name string) int64 {
	for _, st := range stats.Default.All() {
		if st.Name == name {
			return st.Value
		}
	}
	return 0
}
