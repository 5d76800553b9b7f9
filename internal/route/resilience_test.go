package route

import (
	"net/netip"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/model"
)

func hashForward(t *testing.T, ps ...model.HashPolicy) *Forward {
	t.Helper()
	rc := &model.RouteConfig{Name: "h", VirtualHosts: []*model.VirtualHost{{Name: "v", Domains: []string{"*"}, Routes: []*model.Route{{
		Match: model.RouteMatch{PathKind: model.PathPrefix, Path: "/"},
		Route: &model.RouteAction{Cluster: "c", HashPolicy: ps},
	}}}}}
	tb, err := Compile(rc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tb.VirtualHosts()[0].Routes()[0].Forward
}

func TestHashPolicies(t *testing.T) {
	src := netip.MustParseAddr("10.1.2.3")
	var h header.Map
	h.Path = "/x?session=abc&y=1"
	h.Add("x-user", "alice")
	h.Add("cookie", "a=1; sticky=\"s1\"")

	user := model.HashPolicy{Kind: model.HashHeader, Name: "X-User"}
	cookie := model.HashPolicy{Kind: model.HashCookie, Name: "sticky"}
	query := model.HashPolicy{Kind: model.HashQueryParameter, Name: "session"}
	ip := model.HashPolicy{Kind: model.HashSourceIP}

	tests := []struct {
		name   string
		ps     []model.HashPolicy
		want   uint64
		wantOK bool
	}{
		{name: "header", ps: []model.HashPolicy{user}, want: HashString("alice"), wantOK: true},
		{name: "cookie unquoted", ps: []model.HashPolicy{cookie}, want: HashString("s1"), wantOK: true},
		{name: "query", ps: []model.HashPolicy{query}, want: HashString("abc"), wantOK: true},
		{name: "missing", ps: []model.HashPolicy{{Kind: model.HashHeader, Name: "x-none"}}},
		{name: "combined", ps: []model.HashPolicy{user, query}, want: CombineHash(HashString("alice"), HashString("abc"), true), wantOK: true},
		{name: "terminal stops", ps: []model.HashPolicy{{Kind: model.HashHeader, Name: "x-user", Terminal: true}, query}, want: HashString("alice"), wantOK: true},
		{name: "terminal without value continues", ps: []model.HashPolicy{{Kind: model.HashHeader, Name: "x-none", Terminal: true}, query}, want: HashString("abc"), wantOK: true},
		{name: "source ip", ps: []model.HashPolicy{ip}, want: hashBytes([]byte{10, 1, 2, 3}), wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, gen := hashForward(t, tc.ps...).Hash(&h, src)
			if got != tc.want || ok != tc.wantOK || gen != nil {
				t.Fatalf("Hash = %x, %v, %v; want %x, %v", got, ok, gen, tc.want, tc.wantOK)
			}
		})
	}
	ttl := time.Minute
	f := hashForward(t, model.HashPolicy{Kind: model.HashCookie, Name: "new", CookieTTL: &ttl, CookiePath: "/"})
	if _, ok, gen := f.Hash(&h, src); ok || gen == nil || gen.Name != "new" || gen.TTL != ttl {
		t.Fatalf("missing TTL cookie: ok %v gen %+v", ok, gen)
	}
}

func TestHashDoesNotAllocate(t *testing.T) {
	f := hashForward(t,
		model.HashPolicy{Kind: model.HashHeader, Name: "x-user"},
		model.HashPolicy{Kind: model.HashCookie, Name: "sticky"},
		model.HashPolicy{Kind: model.HashQueryParameter, Name: "session"},
		model.HashPolicy{Kind: model.HashSourceIP})
	var h header.Map
	h.Path = "/x?session=abc"
	h.Add("x-user", "alice")
	h.Add("cookie", "sticky=s1")
	src := netip.MustParseAddr("2001:db8::1")
	if n := testing.AllocsPerRun(100, func() { f.Hash(&h, src) }); n != 0 {
		t.Fatalf("Hash allocates %v times", n)
	}
}

func TestParseRetryOn(t *testing.T) {
	if got := ParseRetryOn("5xx, reset,unknown,connect-failure"); got != model.Retry5xx|model.RetryReset|model.RetryConnectFailure {
		t.Fatalf("ParseRetryOn = %b", got)
	}
	if n := testing.AllocsPerRun(100, func() { ParseRetryOn("gateway-error,retriable-4xx") }); n != 0 {
		t.Fatalf("ParseRetryOn allocates %v times", n)
	}
}

func TestRetryPolicyInheritance(t *testing.T) {
	vhPolicy := &model.RetryPolicy{RetryOn: model.RetryReset, NumRetries: 4}
	limit := uint32(100)
	rc := &model.RouteConfig{Name: "r", VirtualHosts: []*model.VirtualHost{{
		Name: "v", Domains: []string{"*"}, RetryPolicy: vhPolicy, PerRequestBufferLimitBytes: &limit,
		IncludeRequestAttemptCount: true,
		Routes: []*model.Route{
			{Match: model.RouteMatch{PathKind: model.PathPrefix, Path: "/own"}, Route: &model.RouteAction{Cluster: "c", RetryPolicy: &model.RetryPolicy{RetryOn: model.Retry5xx, NumRetries: 2}}},
			{Match: model.RouteMatch{PathKind: model.PathPrefix, Path: "/"}, Route: &model.RouteAction{Cluster: "c"}},
		},
	}}}
	tb, err := Compile(rc, nil)
	if err != nil {
		t.Fatal(err)
	}
	own, inherited := tb.VirtualHosts()[0].Routes()[0].Forward, tb.VirtualHosts()[0].Routes()[1].Forward
	if own.Retry.On != model.Retry5xx || own.Retry.NumRetries != 2 || own.Retry.BackOffBase != 25*time.Millisecond || own.Retry.BackOffMax != 250*time.Millisecond {
		t.Errorf("route policy %+v", own.Retry)
	}
	if inherited.Retry.On != model.RetryReset || inherited.Retry.NumRetries != 4 {
		t.Errorf("inherited policy %+v", inherited.Retry)
	}
	if !own.IncludeAttemptCount || own.BufferLimit != 100 {
		t.Errorf("virtual host settings not inherited: %+v", own)
	}
}

func TestShadowSampling(t *testing.T) {
	m := Mirror{numerator: 25, denominator: 100}
	n := 0
	for i := range uint64(1000) {
		if m.Sampled(i) {
			n++
		}
	}
	if n != 250 {
		t.Fatalf("sampled %d of 1000, want 250", n)
	}
}
