package fault_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/hcm"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/fault"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/router"
	"github.com/nuncio-gw/nuncio/internal/listener"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/route"
	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
)

// flags records each stream's response flags by its x-test-id header.
type flags struct {
	httpfilter.PassThrough
	mu sync.Mutex
	m  map[string]httpfilter.ResponseFlags
}

func (f *flags) Phases() httpfilter.Phases { return httpfilter.PhaseStreamDone }

func (f *flags) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter { return f }

func (f *flags) OnStreamDone(s *httpfilter.Stream) {
	f.mu.Lock()
	f.m[s.Request.Value("x-test-id")] = s.Info.ResponseFlags
	f.mu.Unlock()
}

// get waits for the stream tagged id to finish: the client may see its response before the
// connection manager ends the stream.
func (f *flags) get(id string) httpfilter.ResponseFlags {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		f.mu.Lock()
		v, ok := f.m[id]
		f.mu.Unlock()
		if ok || time.Now().After(deadline) {
			return v
		}
	}
}

// serve runs a connection manager with the fault filter configured by yaml in front of a
// direct response (200 "ok"); perRoute, when set, is the route's typed_per_filter_config.
func serve(t *testing.T, yaml, perRoute string) (string, *flags) {
	t.Helper()
	compile := func(y string) httpfilter.Config {
		m := &faultv3.HTTPFault{}
		if err := envoyconfig.Unmarshal([]byte(y), m); err != nil {
			t.Fatal(err)
		}
		c, err := fault.Factory{}.NewConfig(m)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	r := &model.Route{Name: "r", Match: model.RouteMatch{PathKind: model.PathPrefix, Path: "/"},
		DirectResponse: &model.DirectResponseAction{Status: 200, Body: []byte("ok")}}
	if perRoute != "" {
		r.TypedPerFilterConfig = map[string]any{fault.Name: compile(perRoute)}
	}
	rc := &model.RouteConfig{Name: "t", VirtualHosts: []*model.VirtualHost{{Name: "v", Domains: []string{"*"}, Routes: []*model.Route{r}}}}
	rt, err := route.Compile(rc, nil)
	if err != nil {
		t.Fatal(err)
	}
	slot := new(route.Slot)
	slot.Store(rt)
	routerCfg, _ := router.Factory{}.NewConfig(&routerv3.Router{})
	fl := &flags{m: map[string]httpfilter.ResponseFlags{}}
	m := &model.HTTPConnectionManager{
		StatPrefix: "t", RouteConfig: rc, MaxRequestHeadersBytes: 60 << 10, MaxHeadersCount: 100,
		HTTPFilters: []model.HTTPFilter{
			{Name: "flags", Config: fl},
			{Name: fault.Name, TypeURL: fault.TypeURL, Config: compile(yaml)},
			{Name: router.Name, TypeURL: router.TypeURL, Config: routerCfg},
		},
	}
	cfg, err := hcm.New(m, slot, hcm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := loopback.Serve(t, func(ctx context.Context, c net.Conn) {
		cfg.ServeConn(ctx, c, listener.ConnInfo{
			RemoteAddr: netip.MustParseAddrPort(c.RemoteAddr().String()),
			LocalAddr:  netip.MustParseAddrPort(c.LocalAddr().String()),
		})
	})
	return "http://" + addr + "/", fl
}

func do(t *testing.T, url, id string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("x-test-id", id)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestFixedDelay(t *testing.T) {
	url, fl := serve(t, `{delay: {fixed_delay: 0.15s, percentage: {numerator: 100}}}`, "")
	start := time.Now()
	resp, body := do(t, url, "d")
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Error("request not delayed")
	}
	if f := fl.get("d"); f.String() != "DI" {
		t.Errorf("flags %s, want DI", f)
	}
}

func TestAbortHTTP(t *testing.T) {
	url, fl := serve(t, `{abort: {http_status: 503, percentage: {numerator: 100}}}`, "")
	resp, body := do(t, url, "a")
	if resp.StatusCode != 503 || body != "fault filter abort" || fl.get("a").String() != "FI" {
		t.Fatalf("%d %q %s", resp.StatusCode, body, fl.get("a"))
	}
}

func TestAbortZeroPercentPasses(t *testing.T) {
	url, _ := serve(t, `{abort: {http_status: 503}}`, "")
	if resp, _ := do(t, url, "a"); resp.StatusCode != 200 {
		t.Fatalf("status %d: an unset percentage is 0%%", resp.StatusCode)
	}
}

func TestAbortGRPC(t *testing.T) {
	url, _ := serve(t, `{abort: {grpc_status: 14, percentage: {numerator: 100}}}`, "")
	resp, _ := do(t, url, "g")
	if resp.StatusCode != 200 || resp.Header.Get("grpc-status") != "14" || resp.Header.Get("content-type") != "application/grpc" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}

func TestHeaderControlled(t *testing.T) {
	url, fl := serve(t, `{delay: {header_delay: {}, percentage: {numerator: 100}}, abort: {header_abort: {}, percentage: {numerator: 100}}}`, "")
	if resp, _ := do(t, url, "none"); resp.StatusCode != 200 || fl.get("none") != 0 {
		t.Fatalf("without headers: %d %s", resp.StatusCode, fl.get("none"))
	}
	if resp, _ := do(t, url, "abort", "x-envoy-fault-abort-request", "429"); resp.StatusCode != 429 {
		t.Fatalf("abort header: status %d", resp.StatusCode)
	}
	if resp, _ := do(t, url, "zero", "x-envoy-fault-abort-request", "429", "x-envoy-fault-abort-request-percentage", "0"); resp.StatusCode != 200 {
		t.Fatalf("0%% header: status %d", resp.StatusCode)
	}
	if resp, _ := do(t, url, "grpc", "x-envoy-fault-abort-grpc-request", "8"); resp.Header.Get("grpc-status") != "8" {
		t.Fatalf("grpc abort header: %v", resp.Header)
	}
	start := time.Now()
	do(t, url, "delay", "x-envoy-fault-delay-request", "120")
	if time.Since(start) < 120*time.Millisecond || fl.get("delay").String() != "DI" {
		t.Fatalf("delay header: %v, flags %s", time.Since(start), fl.get("delay"))
	}
}

func TestPerRouteOverride(t *testing.T) {
	url, _ := serve(t, `{abort: {http_status: 503, percentage: {numerator: 100}}}`, `{abort: {http_status: 418, percentage: {numerator: 100}}}`)
	if resp, _ := do(t, url, "o"); resp.StatusCode != 418 {
		t.Fatalf("status %d, want the route's 418", resp.StatusCode)
	}
}

func TestMaxActiveFaults(t *testing.T) {
	url, fl := serve(t, `{delay: {fixed_delay: 0.3s, percentage: {numerator: 100}}, max_active_faults: 1}`, "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		do(t, url, "slow")
	}()
	// Wait until the first request holds the one fault slot.
	deadline := time.Now().Add(10 * time.Second)
	for statValue("fault.active_faults") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first request never became an active fault")
		}
		time.Sleep(5 * time.Millisecond)
	}
	overflow := statValue("fault.faults_overflow")
	do(t, url, "fast")
	if f := fl.get("fast"); f&httpfilter.FlagDelayInjected != 0 {
		t.Errorf("second request delayed (flags %s) beyond max_active_faults", f)
	}
	if got := statValue("fault.faults_overflow") - overflow; got != 1 {
		t.Errorf("faults_overflow grew by %d, want 1", got)
	}
	<-done
}

// statValue reads a counter or gauge from the process-wide store (0 when absent).
func statValue(name string) int64 {
	for _, st := range stats.Default.All() {
		if st.Name == name {
			return st.Value
		}
	}
	return 0
}
