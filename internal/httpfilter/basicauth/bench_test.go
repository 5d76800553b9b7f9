package basicauth

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	basicauthv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/basic_auth/v3"
	"golang.org/x/crypto/bcrypt"

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

func benchConfig(tb testing.TB) httpfilter.Config {
	d := sha1.Sum([]byte("alice-pw"))
	h, _ := bcrypt.GenerateFromPassword([]byte("bob-pw"), bcrypt.MinCost)
	users := "alice:{SHA}" + base64.StdEncoding.EncodeToString(d[:]) + "\nbob:" + string(h)
	c, err := Factory{}.NewConfig(&basicauthv3.BasicAuth{
		Users:                 &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: users}},
		ForwardUsernameHeader: "x-user",
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c.(*Config).WithScope(stats.NewStore().Scope("http.bench"))
}

func benchRequest(user, password string) *httpfilter.Stream {
	s := &httpfilter.Stream{Ctx: context.Background()}
	s.SetSink(sink{})
	s.Request.Method, s.Request.Path, s.Request.Authority = "GET", "/x", "example"
	s.Request.Add("authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
	return s
}

// BenchmarkSHA is a request by a {SHA} user.
func BenchmarkSHA(b *testing.B) {
	c := benchConfig(b)
	s := benchRequest("alice", "alice-pw")
	b.ReportAllocs()
	for b.Loop() {
		if c.NewFilter(s, nil).OnRequestHeaders(s, &s.Request, true) != httpfilter.Continue {
			b.Fatal("denied")
		}
	}
}

// BenchmarkBcryptRemembered is a request by a bcrypt user whose password was verified before.
func BenchmarkBcryptRemembered(b *testing.B) {
	c := benchConfig(b)
	s := benchRequest("bob", "bob-pw")
	b.ReportAllocs()
	for b.Loop() {
		if c.NewFilter(s, nil).OnRequestHeaders(s, &s.Request, true) != httpfilter.Continue {
			b.Fatal("denied")
		}
	}
}

func TestAllowedNoAllocs(t *testing.T) {
	c := benchConfig(t)
	for _, user := range []string{"alice", "bob"} {
		s := benchRequest(user, user+"-pw")
		if n := testing.AllocsPerRun(50, func() { c.NewFilter(s, nil).OnRequestHeaders(s, &s.Request, true) }); n != 0 {
			t.Errorf("%s: %v allocations per request", user, n)
		}
	}
}

// FuzzHtpasswd checks that no htpasswd file makes the parser panic, and that every user it
// accepts has exactly one kind of hash.
func FuzzHtpasswd(f *testing.F) {
	f.Add("alice:{SHA}2jmj7l5rSw0yVb/vlWAYkK/YBwk=\n# c\n\nbob:$2y$05$abcdefghijklmnopqrstuuKkLzL9hVjW4oC5f5kL1sY9vCkC8R1zK\r\n")
	f.Add(":\n:x\nx:\n")
	f.Add("carol:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0\ndave:$apr1$$x\n")
	f.Fuzz(func(t *testing.T, text string) {
		users, err := parseHtpasswd(text)
		if err != nil {
			return
		}
		for name, u := range users {
			kinds := 0
			for _, h := range [][]byte{u.sha, u.bcrypt, u.apr1} {
				if h != nil {
					kinds++
				}
			}
			if name == "" || kinds != 1 {
				t.Fatalf("user %q: sha %v bcrypt %q", name, u.sha, u.bcrypt)
			}
		}
	})
}

var _ httpfilter.Sink = sink{}
