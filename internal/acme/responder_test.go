package acme

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestResponderHTTP01(t *testing.T) {
	store, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := NewResponder(store)
	if err := r.put(ChallengeHTTP01, "mem-token", "mem-token.thumb"); err != nil {
		t.Fatal(err)
	}
	// Placed by another replica: only in the Store.
	if err := store.PutChallenge(context.Background(), "http-01/stored-token", "stored-token.thumb"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	for _, tc := range []struct {
		name     string
		method   string
		path     string
		wantCode int
		wantBody string
	}{
		{name: "in memory", method: "GET", path: "/.well-known/acme-challenge/mem-token", wantCode: 200, wantBody: "mem-token.thumb"},
		{name: "from the store", method: "GET", path: "/.well-known/acme-challenge/stored-token", wantCode: 200, wantBody: "stored-token.thumb"},
		{name: "HEAD", method: "HEAD", path: "/.well-known/acme-challenge/mem-token", wantCode: 200},
		{name: "unknown token", method: "GET", path: "/.well-known/acme-challenge/nope", wantCode: 404},
		{name: "token that is not base64url", method: "GET", path: "/.well-known/acme-challenge/a.b", wantCode: 404},
		{name: "traversal", method: "GET", path: "/.well-known/acme-challenge/..%2Faccounts%2Fx", wantCode: 404},
		{name: "other path", method: "GET", path: "/mem-token", wantCode: 404},
		{name: "POST", method: "POST", path: "/.well-known/acme-challenge/mem-token", wantCode: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.wantCode || (tc.wantBody != "" && string(body) != tc.wantBody) {
				t.Errorf("%s %s = %d %q, want %d %q", tc.method, tc.path, res.StatusCode, body, tc.wantCode, tc.wantBody)
			}
		})
	}
	r.remove(ChallengeHTTP01, "mem-token")
	if _, ok := r.Lookup("mem-token"); ok {
		t.Error("Lookup found a removed token")
	}
}

func TestResponderTLSALPN01(t *testing.T) {
	store, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := NewResponder(store)
	if err := r.put(ChallengeTLSALPN01, "mem.example.org", "tok1.thumb"); err != nil {
		t.Fatal(err)
	}
	if err := store.PutChallenge(context.Background(), "tls-alpn-01/stored.example.org", "tok2.thumb"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		hello      *tls.ClientHelloInfo
		wantNil    bool
		wantErr    bool
		wantDomain string
		wantKA     string
	}{
		{name: "in memory", hello: &tls.ClientHelloInfo{ServerName: "mem.example.org", SupportedProtos: []string{ALPNProto}},
			wantDomain: "mem.example.org", wantKA: "tok1.thumb"},
		{name: "from the store", hello: &tls.ClientHelloInfo{ServerName: "Stored.Example.org", SupportedProtos: []string{ALPNProto}},
			wantDomain: "stored.example.org", wantKA: "tok2.thumb"},
		{name: "ordinary hello", hello: &tls.ClientHelloInfo{ServerName: "mem.example.org", SupportedProtos: []string{"h2", "http/1.1"}},
			wantNil: true},
		{name: "unknown domain", hello: &tls.ClientHelloInfo{ServerName: "nope.example.org", SupportedProtos: []string{ALPNProto}},
			wantErr: true},
		{name: "no server name", hello: &tls.ClientHelloInfo{SupportedProtos: []string{ALPNProto}}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := r.GetCertificate(tc.hello)
			switch {
			case tc.wantErr:
				if err == nil {
					t.Fatal("no error")
				}
				return
			case err != nil:
				t.Fatal(err)
			case tc.wantNil:
				if c != nil {
					t.Fatal("a certificate for an ordinary hello")
				}
				return
			}
			leaf, err := x509.ParseCertificate(c.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != tc.wantDomain {
				t.Errorf("SANs %v, want [%s]", leaf.DNSNames, tc.wantDomain)
			}
			var found bool
			for _, e := range leaf.Extensions {
				if !e.Id.Equal(idPeACMEIdentifier) {
					continue
				}
				found = true
				var digest []byte
				if _, err := asn1.Unmarshal(e.Value, &digest); err != nil {
					t.Fatal(err)
				}
				want := sha256.Sum256([]byte(tc.wantKA))
				if !e.Critical || string(digest) != string(want[:]) {
					t.Errorf("acmeIdentifier critical=%v digest %x, want critical and %x", e.Critical, digest, want)
				}
			}
			if !found {
				t.Error("no acmeIdentifier extension")
			}
		})
	}
}

func TestIsChallengeHello(t *testing.T) {
	for _, tc := range []struct {
		name   string
		protos []string
		want   bool
	}{
		{name: "acme-tls/1 alone", protos: []string{ALPNProto}, want: true},
		{name: "with h2", protos: []string{"h2", ALPNProto}},
		{name: "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsChallengeHello(&tls.ClientHelloInfo{SupportedProtos: tc.protos}); got != tc.want {
				t.Errorf("IsChallengeHello(%v) = %v", tc.protos, got)
			}
		})
	}
}

func BenchmarkResponderLookup(b *testing.B) {
	r := NewResponder(nil)
	if err := r.put(ChallengeHTTP01, "mem-token", "mem-token.thumb"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.Lookup("mem-token"); !ok {
			b.Fatal("not found")
		}
	}
}
