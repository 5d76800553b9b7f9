package extauthz

import (
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// FuzzDecision feeds arbitrary answers to both decoders: a CheckResponse's bytes and an HTTP
// answer's header value. Neither may panic, and no decision may carry a header the filter
// must never copy.
func FuzzDecision(f *testing.F) {
	ok, _ := proto.Marshal(&authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{HeadersToRemove: []string{"x-a", ":path", "host"}}}})
	f.Add(ok, 200, "x-a, x-b")
	f.Add([]byte{0xff, 0x01}, 403, ",,, :path ,content-length")
	c := &Config{}
	f.Fuzz(func(t *testing.T, msg []byte, status int, remove string) {
		var r authv3.CheckResponse
		if proto.Unmarshal(msg, &r) == nil {
			if d, err := grpcDecision(&r); err == nil {
				checkDecision(t, d)
			}
		}
		d := c.httpDecision(&answer{status: status, headers: []header.Field{{Name: hdrHeadersToRemove, Value: remove}}})
		checkDecision(t, d)
	})
}

func checkDecision(t *testing.T, d *decision) {
	for _, list := range [][]header.Field{d.set, d.add, d.respHeaders} {
		for _, hf := range list {
			if !forwardable(hf.Name) {
				t.Fatalf("decision copies %q", hf.Name)
			}
		}
	}
	for _, n := range d.remove {
		if !forwardable(n) || n == "host" {
			t.Fatalf("decision removes %q", n)
		}
	}
}
