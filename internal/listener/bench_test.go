package listener

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
)

// closeHandler writes one byte and returns, so a benchmark iteration is accept, listener
// filters, chain selection, ServeConn and close.
type closeHandler struct{}

func (closeHandler) ServeConn(_ context.Context, c net.Conn, _ ConnInfo) { c.Write([]byte{'x'}) }

func benchListener(b *testing.B, l *model.Listener) string {
	cc, err := Compile(l, func(*model.FilterChain) (ChainHandler, error) { return closeHandler{}, nil })
	if err != nil {
		b.Fatal(err)
	}
	m := NewManager(Options{})
	b.Cleanup(m.Close)
	if err := m.Apply([]*Compiled{cc}); err != nil {
		b.Fatal(err)
	}
	return m.Listeners()[0].Address.String()
}

func BenchmarkAcceptSelect(b *testing.B) {
	pki := certs.CA(b, "ca")
	sniffing := matchListener()
	sniffing.Address = loopback(0)
	for _, bc := range []struct {
		name  string
		l     *model.Listener
		hello []byte
	}{
		// One plaintext chain: nothing to inspect, no byte peeked.
		{name: "plain/single-chain", l: plainListener("p", loopback(0), "p")},
		// Many chains: the first byte is peeked to tell TLS from plaintext.
		{name: "plain/sniffed", l: sniffing, hello: []byte("GET / HTTP/1.1\r\n\r\n")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			addr := benchListener(b, bc.l)
			buf := make([]byte, 1)
			b.ReportAllocs()
			for b.Loop() {
				c, err := net.Dial("tcp4", addr)
				if err != nil {
					b.Fatal(err)
				}
				if bc.hello != nil {
					c.Write(bc.hello)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
	b.Run("tls/sni", func(b *testing.B) {
		l := &model.Listener{Name: "t", Address: loopback(0)}
		for _, n := range []string{"a.test", "b.test", "c.test"} {
			l.FilterChains = append(l.FilterChains, &model.FilterChain{Name: n, Match: model.FilterChainMatch{ServerNames: []string{n}},
				TLS: &model.DownstreamTLS{Certificates: []model.Certificate{issue(b, pki, n, []string{n}, false)}}})
		}
		addr := benchListener(b, l)
		cfg := &tls.Config{ServerName: "b.test", RootCAs: pki.Pool(), ClientSessionCache: tls.NewLRUClientSessionCache(1)}
		buf := make([]byte, 1)
		b.ReportAllocs()
		for b.Loop() {
			c, err := tls.Dial("tcp4", addr, cfg)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}

func BenchmarkSelectChain(b *testing.B) {
	cc := mustCompile(b, matchListener(), nil)
	alpn := []string{"h2", "http/1.1"}
	b.ReportAllocs()
	for b.Loop() {
		cc.selectChain(443, "v1.api.example.com", TransportTLS, alpn)
	}
}
