package localratelimit_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	lrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/localratelimit"
)

// replies is the connection manager's side of a stream reduced to recording the local
// reply: enough to run the filter's phases outside a connection.
type replies struct{ code int }

func (r *replies) EncodeHeaders(*httpfilter.Stream, bool)             {}
func (r *replies) EncodeBody(*httpfilter.Stream, []byte, bool)        {}
func (r *replies) EncodeTrailers(*httpfilter.Stream)                  {}
func (r *replies) ClearRouteCache(*httpfilter.Stream)                 {}
func (r *replies) ResponseStarted(*httpfilter.Stream) bool            { return false }
func (r *replies) Hijack(*httpfilter.Stream) (net.Conn, []byte, bool) { return nil, nil, false }
func (r *replies) SendLocalReply(s *httpfilter.Stream, code int, _ string, f httpfilter.ResponseFlags, _ string) {
	r.code = code
	s.Info.ResponseFlags |= f
}

// perClient is the shape the controller emits for Ingress limit-rps: a generous default
// bucket and a bucket per client address.
const perClient = `{stat_prefix: local_rate_limit,
  filter_enabled: {default_value: {numerator: 100}}, filter_enforced: {default_value: {numerator: 100}},
  token_bucket: {max_tokens: 1073741824, tokens_per_fill: 1073741824, fill_interval: 1s},
  rate_limits: [{actions: [{remote_address: {}}]}],
  descriptors: [{entries: [{key: remote_address}], token_bucket: {max_tokens: %d, tokens_per_fill: %d, fill_interval: 1s}}],
  max_dynamic_descriptors: 10000}`

func newConfig(tb testing.TB, yaml string) httpfilter.Config {
	tb.Helper()
	m := &lrlv3.LocalRateLimit{}
	if err := envoyconfig.Unmarshal([]byte(yaml), m); err != nil {
		tb.Fatal(err)
	}
	c, err := localratelimit.Factory{}.NewConfig(m)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// request runs one request through the filter's phases and returns the local reply's
// status, 0 when the request went on.
func request(c httpfilter.Config, s *httpfilter.Stream, r *replies) int {
	r.code = 0
	s.Info.ResponseFlags = 0
	f := c.NewFilter(s, nil)
	if f.OnRequestHeaders(s, &s.Request, true) == httpfilter.Continue {
		f.OnResponseHeaders(s, &s.Response, true)
	}
	f.OnStreamDone(s)
	return r.code
}

func newStream(r *replies) *httpfilter.Stream {
	s := &httpfilter.Stream{}
	s.SetSink(r)
	s.Downstream.RemoteAddr = netip.MustParseAddrPort("192.0.2.7:40000")
	s.Request.Set("x-client", "a")
	return s
}

func TestPerClientAllocs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		yaml     string
		wantCode int
	}{
		{name: "allowed per client", yaml: sprintf(perClient, 1<<30, 1<<30), wantCode: 0},
		{name: "refused per client", yaml: sprintf(perClient, 1, 1), wantCode: 429},
		{name: "default bucket only", yaml: `{stat_prefix: s, filter_enabled: {default_value: {numerator: 100}}, filter_enforced: {default_value: {numerator: 100}},
			token_bucket: {max_tokens: 1073741824, tokens_per_fill: 1073741824, fill_interval: 1s}}`, wantCode: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConfig(t, tc.yaml)
			r := &replies{}
			s := newStream(r)
			request(c, s, r) // makes the client's bucket
			var code int
			allocs := testing.AllocsPerRun(1000, func() { code = request(c, s, r) })
			if code != tc.wantCode {
				t.Errorf("status %d, want %d", code, tc.wantCode)
			}
			if tc.wantCode != 0 && s.Info.ResponseFlags != httpfilter.FlagRateLimited {
				t.Errorf("flags %v, want RL", s.Info.ResponseFlags)
			}
			if allocs != 0 {
				t.Errorf("%v allocations per request, want 0", allocs)
			}
		})
	}
}

// BenchmarkPerClient is a request checked against its client's bucket and the default one.
func BenchmarkPerClient(b *testing.B) {
	c := newConfig(b, sprintf(perClient, 1<<30, 1<<30))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := &replies{}
		s := newStream(r)
		for pb.Next() {
			if request(c, s, r) != 0 {
				b.Fatal("refused")
			}
		}
	})
}

// BenchmarkDefaultBucket is a request checked against the filter's one bucket.
func BenchmarkDefaultBucket(b *testing.B) {
	c := newConfig(b, `{stat_prefix: s, filter_enabled: {default_value: {numerator: 100}}, filter_enforced: {default_value: {numerator: 100}},
		token_bucket: {max_tokens: 1073741824, tokens_per_fill: 1073741824, fill_interval: 1s}}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := &replies{}
		s := newStream(r)
		for pb.Next() {
			request(c, s, r)
		}
	})
}

func sprintf(f string, a ...any) string { return fmt.Sprintf(f, a...) }
