package vm_test

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/wasm/abi"
	"github.com/nuncio-gw/nuncio/internal/wasm/vm"
)

func TestHelloworld(t *testing.T) {
	_, log := load(t, "helloworld", vm.Config{})
	// What the SDK's e2e test waits for: the start message, then ticks.
	log.waitLog(t, "OnPluginStart from Go!", "It's")
}

func TestHTTPHeaders(t *testing.T) {
	p, log := load(t, "http_headers", vm.Config{Config: []byte(`{"header": "x-wasm-header", "value": "demo-wasm"}`)})
	s, err := p.NewStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req := requestHeaders("this-is-key", "this-is-value", "test", "worst")
	if a := s.OnRequestHeaders(abi.HeadersOf(req), true); a != vm.ActionContinue {
		t.Fatalf("request headers: %v (%v)", a, s.Err())
	}
	if got := req.Value("test"); got != "best" {
		t.Errorf("request header test = %q, want best", got)
	}
	resp := &header.Map{Status: 200}
	resp.Add("server", "envoy")
	if a := s.OnResponseHeaders(abi.HeadersOf(resp), false); a != vm.ActionContinue {
		t.Fatalf("response headers: %v (%v)", a, s.Err())
	}
	for name, want := range map[string]string{"x-wasm-header": "demo-wasm", "x-proxy-wasm-go-sdk-example": "http_headers"} {
		if got := resp.Value(name); got != want {
			t.Errorf("response header %s = %q, want %q", name, got, want)
		}
	}
	s.Close()
	log.waitLog(t, "this-is-key", "this-is-value", ":path: /uuid", "server: envoy",
		"x-wasm-header", "x-proxy-wasm-go-sdk-example", "finished")
}

func TestHTTPBody(t *testing.T) {
	p, log := load(t, "http_body", vm.Config{})
	for _, mode := range []string{"request", "response"} {
		for _, tc := range []struct {
			name, op, want string
		}{
			{name: "append", op: "append", want: "[original body][this is appended body]"},
			{name: "prepend", op: "prepend", want: "[this is prepended body][original body]"},
			{name: "replace", op: "replace", want: "[this is replaced body]"},
			{name: "invalid falls back to replace", op: "invalid", want: "[this is replaced body]"},
		} {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				s, err := p.NewStream(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				req := requestHeaders("content-length", "15", "buffer-replace-at", mode, "buffer-operation", tc.op)
				req.Method = "PUT"
				if a := s.OnRequestHeaders(abi.HeadersOf(req), false); a != vm.ActionContinue {
					t.Fatalf("request headers: %v (%v)", a, s.Err())
				}
				if req.Has("content-length") {
					t.Error("content-length not removed from the request")
				}
				body := []byte("[original body]")
				// A first chunk without the end: the plugin keeps buffering.
				half := body[:5:5]
				if mode == "request" {
					if a := s.OnRequestBody(&half, false); a != vm.ActionPause {
						t.Fatalf("partial body: %v, want pause", a)
					}
				}
				if a := s.OnRequestBody(&body, true); a != vm.ActionContinue {
					t.Fatalf("request body: %v (%v)", a, s.Err())
				}
				if mode == "response" {
					resp := &header.Map{Status: 200}
					resp.Add("content-length", "15")
					if a := s.OnResponseHeaders(abi.HeadersOf(resp), false); a != vm.ActionContinue {
						t.Fatalf("response headers: %v", a)
					}
					body = []byte("[original body]")
					if a := s.OnResponseBody(&body, true); a != vm.ActionContinue {
						t.Fatalf("response body: %v (%v)", a, s.Err())
					}
				}
				if string(body) != tc.want {
					t.Errorf("%s body = %q, want %q", mode, body, tc.want)
				}
				log.waitLog(t, "original "+mode+" body: [original body]")
			})
		}
	}
	t.Run("no content-length gets a local 400", func(t *testing.T) {
		s, err := p.NewStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if a := s.OnRequestHeaders(abi.HeadersOf(requestHeaders()), true); a != vm.ActionRespond {
			t.Fatalf("request headers: %v, want respond", a)
		}
		if l := s.Local(); l.Status != 400 || string(l.Body) != "content must be provided" {
			t.Errorf("local response = %d %q", l.Status, l.Body)
		}
	})
}

func TestSharedData(t *testing.T) {
	// Two plugins on the same vm_id count into the same key, concurrently: compare-and-swap
	// across VMs keeps every increment.
	cfg := vm.Config{VMID: "shared-" + t.Name(), MinInstances: 2}
	a, logA := load(t, "shared_data", cfg)
	b, logB := load(t, "shared_data", cfg)
	const perPlugin = 10
	var wg sync.WaitGroup
	for _, p := range []*vm.Plugin{a, b} {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perPlugin / 2 {
					s, err := p.NewStream(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					if act := s.OnRequestHeaders(abi.HeadersOf(requestHeaders()), true); act != vm.ActionContinue {
						t.Errorf("request headers: %v (%v)", act, s.Err())
					}
					s.Close()
				}
			}()
		}
	}
	wg.Wait()
	want := fmt.Sprintf("shared value: %d", 2*perPlugin)
	if !logA.has(want) && !logB.has(want) {
		t.Fatalf("no %q; logs:\n%s\n%s", want, logA, logB)
	}
}

func TestHTTPAuthRandom(t *testing.T) {
	// The plugin's "httpbin" cluster is a real loopback server answering the request path,
	// so that the plugin's hash decides differently for different paths.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-seen-key", r.Header.Get("this-is-key"))
		fmt.Fprintf(w, "path=%s", r.URL.Path)
	}))
	defer srv.Close()
	caller := &loopbackCaller{clusters: map[string]string{"httpbin": srv.Listener.Addr().String()}}
	p, log := load(t, "http_auth_random", vm.Config{Caller: caller})
	granted, forbidden := 0, 0
	for n := range 16 {
		path := fmt.Sprintf("/uuid/%d", n)
		h := fnv.New32a()
		h.Write([]byte("path=" + path))
		wantGranted := h.Sum32()%2 == 0
		s, err := p.NewStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		req := requestHeaders("this-is-key", "this-is-value")
		req.Path = path
		a := s.OnRequestHeaders(abi.HeadersOf(req), true)
		switch {
		case wantGranted && a == vm.ActionContinue:
			granted++
		case !wantGranted && a == vm.ActionRespond:
			forbidden++
			l := s.Local()
			if l.Status != 403 || string(l.Body) != "access forbidden" || len(l.Headers) != 1 ||
				l.Headers[0] != (header.Field{Name: "powered-by", Value: "proxy-wasm-go-sdk!!"}) {
				t.Errorf("local response = %d %q %v", l.Status, l.Body, l.Headers)
			}
		default:
			t.Errorf("%s: action %v (%v), want granted=%v", path, a, s.Err(), wantGranted)
		}
		s.Close()
	}
	if granted == 0 || forbidden == 0 {
		t.Errorf("granted %d, forbidden %d: want some of each", granted, forbidden)
	}
	log.waitLog(t, "access forbidden", "access granted", "response header from httpbin: :status: 200",
		"response header from httpbin: x-seen-key: this-is-value")
}

// loopbackCaller sends plugin HTTP calls with net/http to loopback servers named by cluster.
type loopbackCaller struct{ clusters map[string]string }

func (c *loopbackCaller) HTTPCall(ctx context.Context, req *abi.HTTPCallRequest) (*abi.HTTPCallResponse, error) {
	addr, ok := c.clusters[req.Cluster]
	if !ok {
		return nil, fmt.Errorf("no cluster %q", req.Cluster)
	}
	hs := abi.Pairs(req.Headers)
	method, _ := hs.Get(":method")
	path, _ := hs.Get(":path")
	r, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(req.Body))
	if err != nil {
		return nil, err
	}
	for _, f := range req.Headers {
		if !strings.HasPrefix(f.Name, ":") {
			r.Header.Add(f.Name, f.Value)
		}
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	out := &abi.HTTPCallResponse{Body: body, Headers: []header.Field{{Name: ":status", Value: strconv.Itoa(res.StatusCode)}}}
	for name, vs := range res.Header {
		for _, v := range vs {
			out.Headers = append(out.Headers, header.Field{Name: strings.ToLower(name), Value: v})
		}
	}
	return out, nil
}

func TestHostCalls(t *testing.T) {
	reverse := func(dst, args []byte) ([]byte, error) {
		for k := len(args) - 1; k >= 0; k-- {
			dst = append(dst, args[k])
		}
		return dst, nil
	}
	p, log := load(t, "host_calls", vm.Config{
		Name: "my-plugin", RootID: "my-root", VMID: "vm-" + t.Name(),
		Foreign: map[string]abi.ForeignFunc{"reverse": reverse},
	})
	for n := 1; n <= 2; n++ {
		s, err := p.NewStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		req := requestHeaders()
		s.Properties = &abi.Attributes{Request: abi.HeadersOf(req), Source: netip.MustParseAddrPort("127.0.0.1:4242")}
		if a := s.OnRequestHeaders(abi.HeadersOf(req), true); a != vm.ActionContinue {
			t.Fatalf("action %v (%v)", a, s.Err())
		}
		s.Close()
	}
	log.waitLog(t,
		"plugin_name=my-plugin", "plugin_root_id=my-root", "request.path=/uuid",
		"source.address=127.0.0.1:4242", "source.port=4242", "missing=error: error status returned by host: not found",
		"my.state=kept", "counter=1", "counter=2",
		"foreign reverse=cba <nil>", "foreign nonexistent: error status returned by host: not found",
		"dequeued: hello queue <nil>")
	if m := p.Metrics.All(); len(m) != 1 || m[0].Name != "host_calls_requests" || m[0].Value.Load() != 2 {
		t.Errorf("metrics %v", m)
	}
}
