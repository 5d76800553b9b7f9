package vm_test

import (
	"context"
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
