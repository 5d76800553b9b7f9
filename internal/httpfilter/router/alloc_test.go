package router_test

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// h1Path is a steady-state HTTP/1.1 keep-alive GET through the connection manager (two
// filters: the test recorder and the router), the route table, the cluster's load balancer,
// the upstream pool and both HTTP/1.1 codecs, with request and response header mutations.
type h1Path struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
}

// newH1Path builds the path. With edge, the connection manager is at the edge
// (use_remote_address) and the request carries an X-Forwarded-For the proxy appends to.
func newH1Path(t testing.TB, routes int, edge bool) *h1Path {
	up := fastUpstream(t)
	var rs []*model.Route
	for i := 0; i < routes-1; i++ {
		// Fillers that share the table's index buckets but never match the request.
		rs = append(rs, prefixRoute("/filler/"+strconv.Itoa(i)+"/", &model.RouteAction{Cluster: "up"}))
	}
	last := prefixRoute("/bench", &model.RouteAction{Cluster: "up"})
	last.Headers = model.HeaderMutation{
		RequestAdd:     []model.HeaderValueOption{{Name: "x-route", Value: "bench"}, {Name: "x-client", Value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}},
		RequestRemove:  []string{"x-drop"},
		ResponseAdd:    []model.HeaderValueOption{{Name: "x-served-by", Value: "nuncio", Action: model.OverwriteIfExistsOrAdd}},
		ResponseRemove: []string{"content-type"},
	}
	rs = append(rs, last)
	o := proxyOptions{clusters: []*model.Cluster{staticCluster(t, "up", up)}, routes: rs}
	req := "GET /bench HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\nAccept: */*\r\nX-Drop: 1\r\n\r\n"
	if edge {
		o.hcm = func(m *model.HTTPConnectionManager) { m.UseRemoteAddress = true }
		req = "GET /bench HTTP/1.1\r\nHost: bench.example\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.2\r\nX-Drop: 1\r\n\r\n"
	}
	p := newProxy(t, o)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &h1Path{
		c:   c,
		br:  bufio.NewReaderSize(c, 4096),
		req: []byte(req),
	}
}

func (h *h1Path) roundTrip(t testing.TB) {
	if _, err := h.c.Write(h.req); err != nil {
		t.Fatal(err)
	}
	if status, err := readResponse(h.br); err != nil || status != 200 {
		t.Fatalf("status %d, %v", status, err)
	}
}

// TestProxyH1DoesNotAllocate holds the proxy's own layers to zero heap allocations per
// request on the steady-state HTTP/1.1 path, with one route and with a thousand.
func TestProxyH1DoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("instrumentation allocates")
	}
	tests := []struct {
		name   string
		routes int
		edge   bool
	}{
		{name: "1 route", routes: 1},
		{name: "1000 routes", routes: 1000},
		{name: "edge with x-forwarded-for", routes: 1, edge: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			h := newH1Path(t, tc.routes, tc.edge)
			for range 200 { // warm the pools, the upstream connection and the buffers
				h.roundTrip(t)
			}
			if n := testing.AllocsPerRun(2000, func() { h.roundTrip(t) }); n != 0 {
				t.Errorf("%v allocations per request, want 0", n)
			}
		})
	}
}

// BenchmarkProxyH1Routes compares the per-request cost with one route and with a thousand
// (the request matching the last one).
func BenchmarkProxyH1Routes(b *testing.B) {
	for _, routes := range []int{1, 1000} {
		b.Run(strconv.Itoa(routes), func(b *testing.B) {
			h := newH1Path(b, routes, false)
			for range 100 {
				h.roundTrip(b)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				h.roundTrip(b)
			}
		})
	}
}

// An HTTP/2 GET, whose HEADERS frame ends the stream, reaches an HTTP/1.1 upstream without
// a body: no Transfer-Encoding, so the request stays replayable on a stale connection.
func TestH2GetForwardedWithoutBody(t *testing.T) {
	checkGoroutines(t)
	te := make(chan string, 1)
	up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		te <- strings.Join(r.TransferEncoding, ",") + "|" + strconv.FormatInt(r.ContentLength, 10)
	}))
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "up", up)},
		routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "up"})},
	})
	if code, _, _ := get(t, h2cClient(t), "http://"+p.addr+"/", "h2get"); code != 200 {
		t.Fatalf("status %d", code)
	}
	if got := <-te; got != "|0" {
		t.Fatalf("upstream saw transfer-encoding|content-length %q, want no body", got)
	}
}
