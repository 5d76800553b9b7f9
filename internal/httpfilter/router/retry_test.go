package router_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// retryRoute forwards everything to cluster with policy p.
func retryRoute(clusterName string, p *model.RetryPolicy) *model.Route {
	return prefixRoute("/", &model.RouteAction{Cluster: clusterName, Timeout: 5 * time.Second, RetryPolicy: p})
}

func policy(on model.RetryOn, n uint32) *model.RetryPolicy {
	return &model.RetryPolicy{RetryOn: on, NumRetries: n, BackOffBase: time.Millisecond, BackOffMax: 2 * time.Millisecond}
}

func routerStats(p *proxy, name string) *cluster.RouterStats {
	return p.clusters.Ref(name).RouterStats()
}

// flaky answers status for the first fails requests, then 200 with the request body.
func flaky(fails int32, status int) (http.Handler, *atomic.Int32) {
	var n atomic.Int32
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("x-attempt", r.Header.Get("x-envoy-attempt-count"))
		if n.Add(1) <= fails {
			w.WriteHeader(status)
			return
		}
		w.Write(b)
	}), &n
}

func TestRetryOn5xx(t *testing.T) {
	checkGoroutines(t)
	h, n := flaky(2, 503)
	up := serveHTTP(t, h)
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "retry5xx", up)},
		routes:   []*model.Route{retryRoute("retry5xx", policy(model.Retry5xx, 2))},
	})
	code, _, _ := get(t, h1Client(t), "http://"+p.addr+"/", "a")
	if code != 200 || n.Load() != 3 {
		t.Fatalf("status %d after %d attempts, want 200 after 3", code, n.Load())
	}
	st := routerStats(p, "retry5xx")
	if st.RqRetry.Value() != 2 || st.RqRetrySuccess.Value() != 1 || st.RqTotal.Value() != 3 {
		t.Errorf("retry %d, retry_success %d, total %d; want 2, 1, 3", st.RqRetry.Value(), st.RqRetrySuccess.Value(), st.RqTotal.Value())
	}
}

func TestRetryExhaustedRelaysLastResponse(t *testing.T) {
	checkGoroutines(t)
	h, n := flaky(10, 502)
	up := serveHTTP(t, h)
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "exhaust", up)},
		routes:   []*model.Route{retryRoute("exhaust", policy(model.RetryGatewayError, 1))},
	})
	code, _, _ := get(t, h1Client(t), "http://"+p.addr+"/", "exhausted")
	if code != 502 || n.Load() != 2 {
		t.Fatalf("status %d after %d attempts, want 502 after 2", code, n.Load())
	}
	if f := p.rec.wait(t, "exhausted").ResponseFlags.String(); f != "URX" {
		t.Errorf("flags %s, want URX", f)
	}
}

func TestRetryNotOnOtherStatus(t *testing.T) {
	checkGoroutines(t)
	h, n := flaky(1, 404)
	up := serveHTTP(t, h)
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "notretried", up)},
		routes:   []*model.Route{retryRoute("notretried", policy(model.Retry5xx|model.RetryRetriable4xx, 3))},
	})
	if code, _, _ := get(t, h1Client(t), "http://"+p.addr+"/", "a"); code != 404 || n.Load() != 1 {
		t.Fatalf("status %d after %d attempts, want 404 after 1", code, n.Load())
	}
}

func TestRetriableStatusCodesAndHeaders(t *testing.T) {
	checkGoroutines(t)
	var n atomic.Int32
	up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.WriteHeader(418)
		case 2:
			w.Header().Set("x-upstream-retry", "please")
			w.WriteHeader(200)
		default:
			w.Write([]byte("ok"))
		}
	}))
	pol := policy(model.RetryRetriableStatusCodes|model.RetryRetriableHeaders, 3)
	pol.RetriableStatusCodes = []uint32{418}
	pol.RetriableHeaders = []model.HeaderMatcher{{Name: "x-upstream-retry", Kind: model.HeaderPresent, Present: true}}
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "codes", up)},
		routes:   []*model.Route{retryRoute("codes", pol)},
	})
	if code, body, _ := get(t, h1Client(t), "http://"+p.addr+"/", "a"); code != 200 || body != "ok" || n.Load() != 3 {
		t.Fatalf("status %d body %q after %d attempts, want 200 ok after 3", code, body, n.Load())
	}
}

func TestRetryPostBodyReplayed(t *testing.T) {
	checkGoroutines(t)
	var mu sync.Mutex
	var bodies []string
	var n atomic.Int32
	up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if n.Add(1) == 1 {
			w.WriteHeader(503)
			return
		}
		w.Write(b)
	}))
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "post", up)},
		routes:   []*model.Route{retryRoute("post", policy(model.Retry5xx, 1))},
	})
	payload := strings.Repeat("body-", 2000)
	for _, chunked := range []bool{false, true} {
		n.Store(0)
		var r io.Reader = strings.NewReader(payload)
		if chunked {
			r = io.MultiReader(strings.NewReader(payload[:10]), strings.NewReader(payload[10:]))
		}
		req, _ := http.NewRequest("POST", "http://"+p.addr+"/", r)
		if chunked {
			req.ContentLength = -1
		}
		resp, err := h1Client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != payload {
			t.Fatalf("chunked=%v: status %d, body of %d bytes; want 200 and the payload", chunked, resp.StatusCode, len(b))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, b := range bodies {
		if b != payload {
			t.Errorf("attempt %d got %d bytes, want the whole payload", i, len(b))
		}
	}
}

func TestRetryBodyOverBufferLimitNotRetried(t *testing.T) {
	checkGoroutines(t)
	h, n := flaky(1, 503)
	up := serveHTTP(t, h)
	limit := uint32(16)
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "biglimit", up)},
		routes: []*model.Route{{
			Name: "r", Match: model.RouteMatch{PathKind: model.PathPrefix, Path: "/"},
			Route:                      &model.RouteAction{Cluster: "biglimit", Timeout: 5 * time.Second, RetryPolicy: policy(model.Retry5xx, 2)},
			PerRequestBufferLimitBytes: &limit,
		}},
	})
	resp, err := h1Client(t).Post("http://"+p.addr+"/", "text/plain", strings.NewReader(strings.Repeat("x", 100)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || n.Load() != 1 {
		t.Fatalf("status %d after %d attempts, want 503 after 1", resp.StatusCode, n.Load())
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func TestRetryConnectFailureOnOtherHost(t *testing.T) {
	checkGoroutines(t)
	h, _ := flaky(0, 200)
	up := serveHTTP(t, h)
	pol := policy(model.RetryConnectFailure, 2)
	pol.PreviousHosts = true
	pol.HostSelectionMaxAttempts = 5
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "connfail", deadAddr(t), up)},
		routes:   []*model.Route{retryRoute("connfail", pol)},
	})
	c := h1Client(t)
	for i := range 10 {
		if code, _, _ := get(t, c, "http://"+p.addr+"/", "a"); code != 200 {
			t.Fatalf("request %d: status %d, want 200", i, code)
		}
	}
	if st := routerStats(p, "connfail"); st.RqRetry.Value() == 0 {
		t.Error("no retries counted")
	}
}

func TestRetryOnReset(t *testing.T) {
	checkGoroutines(t)
	var n atomic.Int32
	up := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, ok := readRequestHead(br); !ok {
				return
			}
			if n.Add(1) == 1 {
				return // close without answering
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
		}
	})
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "reset", up)},
		routes:   []*model.Route{retryRoute("reset", policy(model.RetryReset, 1))},
	})
	// POST: not replayed by the stale keep-alive rule, so only the retry policy helps.
	resp, err := h1Client(t).Post("http://"+p.addr+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" || n.Load() != 2 {
		t.Fatalf("status %d body %q after %d attempts; want 200 ok after 2", resp.StatusCode, b, n.Load())
	}
}

func TestPerTryTimeoutRetried(t *testing.T) {
	checkGoroutines(t)
	var n atomic.Int32
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Write([]byte("fast"))
	}))
	pol := policy(model.Retry5xx, 1)
	pol.PerTryTimeout = 100 * time.Millisecond
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "pertry", up)},
		routes:   []*model.Route{retryRoute("pertry", pol)},
	})
	code, body, _ := get(t, h1Client(t), "http://"+p.addr+"/", "a")
	if code != 200 || body != "fast" {
		t.Fatalf("status %d body %q, want 200 fast", code, body)
	}
	if st := routerStats(p, "pertry"); st.RqPerTryTimeout.Value() != 1 {
		t.Errorf("upstream_rq_per_try_timeout = %d, want 1", st.RqPerTryTimeout.Value())
	}
}

func TestRouteTimeoutNotRetried(t *testing.T) {
	checkGoroutines(t)
	var n atomic.Int32
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "globaltimeout", up)},
		routes: []*model.Route{prefixRoute("/", &model.RouteAction{
			Cluster: "globaltimeout", Timeout: 150 * time.Millisecond, RetryPolicy: policy(model.Retry5xx|model.RetryReset, 3),
		})},
	})
	code, _, _ := get(t, h1Client(t), "http://"+p.addr+"/", "timeout")
	info := p.rec.wait(t, "timeout")
	if code != 504 || n.Load() != 1 || info.ResponseFlags.String() != "UT" {
		t.Fatalf("status %d flags %s after %d attempts; want 504 UT after 1", code, info.ResponseFlags, n.Load())
	}
	if st := routerStats(p, "globaltimeout"); st.RqTimeout.Value() != 1 {
		t.Errorf("upstream_rq_timeout = %d, want 1", st.RqTimeout.Value())
	}
}

func TestMaxStreamDuration(t *testing.T) {
	checkGoroutines(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "msd", up)},
		routes: []*model.Route{prefixRoute("/", &model.RouteAction{
			Cluster: "msd", Timeout: 5 * time.Second, MaxStreamDuration: 100 * time.Millisecond,
		})},
	})
	code, _, _ := get(t, h1Client(t), "http://"+p.addr+"/", "msd")
	info := p.rec.wait(t, "msd")
	if code != 408 || info.ResponseFlags.String() != "DT" {
		t.Fatalf("status %d flags %s, want 408 DT", code, info.ResponseFlags)
	}
}

func TestRetryRequestHeaders(t *testing.T) {
	checkGoroutines(t)
	h, n := flaky(2, 500)
	up := serveHTTP(t, h)
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "hdrs", up)},
		routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "hdrs", Timeout: 5 * time.Second})},
	})
	code, _, _ := get(t, h1Client(t), "http://"+p.addr+"/", "a", "x-envoy-retry-on", "5xx", "x-envoy-max-retries", "2")
	if code != 200 || n.Load() != 3 {
		t.Fatalf("status %d after %d attempts, want 200 after 3", code, n.Load())
	}
}

func TestAttemptCountHeaders(t *testing.T) {
	checkGoroutines(t)
	h, _ := flaky(1, 503)
	up := serveHTTP(t, h)
	rc := []*model.Route{retryRoute("attempts", policy(model.Retry5xx, 1))}
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "attempts", up)},
		routes:   rc,
		vhost: func(v *model.VirtualHost) {
			v.IncludeRequestAttemptCount = true
			v.IncludeAttemptCountInResponse = true
		},
	})
	_, _, hdr := get(t, h1Client(t), "http://"+p.addr+"/", "a")
	if hdr.Get("x-attempt") != "2" || hdr.Get("x-envoy-attempt-count") != "2" {
		t.Fatalf("upstream saw attempt %q, response says %q; want 2 and 2", hdr.Get("x-attempt"), hdr.Get("x-envoy-attempt-count"))
	}
}

func TestRetryOverflow(t *testing.T) {
	checkGoroutines(t)
	h, n := flaky(1, 503)
	up := serveHTTP(t, h)
	c := staticCluster(t, "retryoverflow", up)
	c.CircuitBreakers = &model.CircuitBreakers{Default: model.Thresholds{MaxConnections: 1024, MaxPendingRequests: 1024, MaxRequests: 1024, MaxRetries: 0}}
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{c},
		routes:   []*model.Route{retryRoute("retryoverflow", policy(model.Retry5xx, 3))},
	})
	code, _, _ := get(t, h1Client(t), "http://"+p.addr+"/", "overflow")
	if code != 503 || n.Load() != 1 {
		t.Fatalf("status %d after %d attempts, want 503 after 1", code, n.Load())
	}
	if f := p.rec.wait(t, "overflow").ResponseFlags.String(); f != "UO" {
		t.Errorf("flags %s, want UO", f)
	}
	if st := routerStats(p, "retryoverflow"); st.RqRetryOverflow.Value() != 1 {
		t.Errorf("upstream_rq_retry_overflow = %d, want 1", st.RqRetryOverflow.Value())
	}
}

func TestMaxRequestsOverflow(t *testing.T) {
	checkGoroutines(t)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	started := make(chan struct{}, 1)
	up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
	}))
	c := staticCluster(t, "rqoverflow", up)
	c.CircuitBreakers = &model.CircuitBreakers{Default: model.Thresholds{MaxConnections: 1024, MaxPendingRequests: 1024, MaxRequests: 1, MaxRetries: 3}}
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{c},
		routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "rqoverflow", Timeout: 5 * time.Second})},
	})
	done := make(chan int)
	go func() {
		resp, err := h1Client(t).Get("http://" + p.addr + "/")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-started
	code, _, _ := get(t, h1Client(t), "http://"+p.addr+"/", "over")
	info := p.rec.wait(t, "over")
	once.Do(func() { close(release) })
	if first := <-done; first != 200 {
		t.Errorf("first request: status %d, want 200", first)
	}
	if code != 503 || info.ResponseFlags.String() != "UO" {
		t.Fatalf("second request: status %d flags %s, want 503 UO", code, info.ResponseFlags)
	}
	if st := routerStats(p, "rqoverflow"); st.RqPendingOverflow.Value() != 1 {
		t.Errorf("upstream_rq_pending_overflow = %d, want 1", st.RqPendingOverflow.Value())
	}
}

// TestHighPriorityBreakers checks that a HIGH priority route counts against the cluster's HIGH
// thresholds: the DEFAULT limit of one request does not stop it.
func TestHighPriorityBreakers(t *testing.T) {
	checkGoroutines(t)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	started := make(chan struct{}, 2)
	up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
	}))
	c := staticCluster(t, "prio", up)
	c.CircuitBreakers = &model.CircuitBreakers{
		Default: model.Thresholds{MaxConnections: 1024, MaxPendingRequests: 1024, MaxRequests: 1, MaxRetries: 3},
		High:    model.Thresholds{MaxConnections: 1024, MaxPendingRequests: 1024, MaxRequests: 1024, MaxRetries: 3},
	}
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{c},
		routes: []*model.Route{
			prefixRoute("/high", &model.RouteAction{Cluster: "prio", Timeout: 5 * time.Second, HighPriority: true}),
			prefixRoute("/", &model.RouteAction{Cluster: "prio", Timeout: 5 * time.Second}),
		},
	})
	done := make(chan int)
	go func() {
		resp, err := h1Client(t).Get("http://" + p.addr + "/slow")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-started
	tests := []struct {
		name       string
		path       string
		wantStatus int
	}{
		{name: "default priority over its limit", path: "/other", wantStatus: 503},
		{name: "high priority within its own limit", path: "/high", wantStatus: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, _ := get(t, h1Client(t), "http://"+p.addr+tc.path, tc.name); code != tc.wantStatus {
				t.Fatalf("status %d, want %d", code, tc.wantStatus)
			}
		})
	}
	once.Do(func() { close(release) })
	if first := <-done; first != 200 {
		t.Errorf("first request: status %d, want 200", first)
	}
}

func TestMirror(t *testing.T) {
	checkGoroutines(t)
	type seen struct{ host, body string }
	got := make(chan seen, 4)
	mirror := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Host, string(b)}
		w.WriteHeader(500) // ignored
	}))
	h, _ := flaky(0, 200)
	up := serveHTTP(t, h)
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "main", up), staticCluster(t, "mirror", mirror)},
		routes: []*model.Route{prefixRoute("/", &model.RouteAction{
			Cluster: "main", Timeout: 5 * time.Second,
			RequestMirrorPolicies: []model.MirrorPolicy{{Cluster: "mirror"}},
		})},
	})
	req, _ := http.NewRequest("POST", "http://"+p.addr+"/", strings.NewReader("hello"))
	req.Host = "example.com:8080"
	resp, err := h1Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Fatalf("main response %d %q, want 200 hello", resp.StatusCode, b)
	}
	select {
	case s := <-got:
		if s.host != "example.com-shadow:8080" || s.body != "hello" {
			t.Fatalf("mirror saw host %q body %q", s.host, s.body)
		}
	case <-time.After(testTimeout):
		t.Fatal("mirror never received the request")
	}
}

func TestHashCookieGenerated(t *testing.T) {
	checkGoroutines(t)
	h, _ := flaky(0, 200)
	up := serveHTTP(t, h)
	ttl := time.Hour
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "sticky", up)},
		routes: []*model.Route{prefixRoute("/", &model.RouteAction{
			Cluster: "sticky", Timeout: 5 * time.Second,
			HashPolicy: []model.HashPolicy{{Kind: model.HashCookie, Name: "session", CookieTTL: &ttl, CookiePath: "/"}},
		})},
	})
	_, _, hdr := get(t, h1Client(t), "http://"+p.addr+"/", "a")
	sc := hdr.Get("set-cookie")
	if !strings.HasPrefix(sc, "session=") || !strings.Contains(sc, "Max-Age=3600") || !strings.Contains(sc, "Path=/") {
		t.Fatalf("set-cookie %q", sc)
	}
	_, _, hdr = get(t, h1Client(t), "http://"+p.addr+"/", "b", "cookie", "session=abc")
	if sc := hdr.Get("set-cookie"); sc != "" {
		t.Fatalf("set-cookie %q although the request had the cookie", sc)
	}
}

func TestRetryH2Upstream(t *testing.T) {
	checkGoroutines(t)
	h, n := flaky(1, 503)
	up := serveH2C(t, h)
	c := staticCluster(t, "h2retry", up)
	c.Protocol = model.UpstreamHTTP2
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{c},
		routes:   []*model.Route{retryRoute("h2retry", policy(model.Retry5xx, 1))},
	})
	if code, _, _ := get(t, h1Client(t), "http://"+p.addr+"/", "a"); code != 200 || n.Load() != 2 {
		t.Fatalf("status %d after %d attempts, want 200 after 2", code, n.Load())
	}
}
