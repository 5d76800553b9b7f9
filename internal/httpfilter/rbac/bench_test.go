package rbac

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

type sink struct{}

func (sink) EncodeHeaders(*httpfilter.Stream, bool)                                           {}
func (sink) EncodeBody(*httpfilter.Stream, []byte, bool)                                      {}
func (sink) EncodeTrailers(*httpfilter.Stream)                                                {}
func (sink) ClearRouteCache(*httpfilter.Stream)                                               {}
func (sink) ResponseStarted(*httpfilter.Stream) bool                                          { return false }
func (sink) Hijack(*httpfilter.Stream) (net.Conn, []byte, bool)                               { return nil, nil, false }
func (sink) SendLocalReply(*httpfilter.Stream, int, string, httpfilter.ResponseFlags, string) {}

// hundredCIDRs is an ALLOW policy with 100 remote_ip principals (10.0.0.0/24, 10.0.2.0/24, …)
// and a GET permission.
func hundredCIDRs(tb testing.TB) httpfilter.Config {
	pol := &rbacconfigv3.Policy{Permissions: []*rbacconfigv3.Permission{{Rule: &rbacconfigv3.Permission_Any{Any: true}}}}
	for i := 0; i < 100; i++ {
		pol.Principals = append(pol.Principals, &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_RemoteIp{
			RemoteIp: &corev3.CidrRange{AddressPrefix: fmt.Sprintf("10.%d.%d.0", i*2/256, i*2%256), PrefixLen: wrapperspb.UInt32(24)},
		}})
	}
	c, err := Factory{}.NewConfig(&rbacv3.RBAC{Rules: &rbacconfigv3.RBAC{
		Action: rbacconfigv3.RBAC_ALLOW, Policies: map[string]*rbacconfigv3.Policy{"sources": pol},
	}})
	if err != nil {
		tb.Fatal(err)
	}
	return c.(*Config).WithScope(stats.NewStore().Scope("http.bench"))
}

func benchStream(remote string) *httpfilter.Stream {
	s := &httpfilter.Stream{Ctx: context.Background()}
	s.SetSink(sink{})
	s.Downstream.RemoteAddr = netip.MustParseAddrPort(remote)
	s.Downstream.DirectRemoteAddr = s.Downstream.RemoteAddr
	s.Request.Method, s.Request.Path = "GET", "/api/items"
	s.Request.Add("user-agent", "bench")
	return s
}

// BenchmarkHundredCIDRsAllowed is a request from the last of 100 allowed source ranges.
func BenchmarkHundredCIDRsAllowed(b *testing.B) {
	c := hundredCIDRs(b)
	s := benchStream("10.0.198.7:4000")
	b.ReportAllocs()
	for b.Loop() {
		if c.NewFilter(s, nil).OnRequestHeaders(s, &s.Request, true) != httpfilter.Continue {
			b.Fatal("denied")
		}
	}
}

// BenchmarkHundredCIDRsDenied is a request from outside them, answered 403.
func BenchmarkHundredCIDRsDenied(b *testing.B) {
	c := hundredCIDRs(b)
	s := benchStream("192.0.2.1:4000")
	b.ReportAllocs()
	for b.Loop() {
		if c.NewFilter(s, nil).OnRequestHeaders(s, &s.Request, true) != httpfilter.Stop {
			b.Fatal("allowed")
		}
	}
}

func TestHundredCIDRsNoAllocs(t *testing.T) {
	c := hundredCIDRs(t)
	for _, remote := range []string{"10.0.198.7:4000", "192.0.2.1:4000"} {
		s := benchStream(remote)
		if n := testing.AllocsPerRun(100, func() { c.NewFilter(s, nil).OnRequestHeaders(s, &s.Request, true) }); n != 0 {
			t.Errorf("%s: %v allocations per request", remote, n)
		}
	}
}

var _ httpfilter.Sink = sink{}
