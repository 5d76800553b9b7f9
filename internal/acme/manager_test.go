package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/nuncio-gw/nuncio/internal/acme/pebbletest"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
)

// wait bounds every wait on pebble; generous, since the machine is shared.
const wait = 90 * time.Second

// pebbleEnv is a pebble server validating against real loopback listeners that serve one
// Responder: HTTP-01 on one port, TLS-ALPN-01 on another.
type pebbleEnv struct {
	pebble *pebbletest.Server
	resp   *Responder
	dir    string // the directory store's root
}

func newPebbleEnv(t *testing.T, o pebbletest.Options) *pebbleEnv {
	t.Helper()
	leak.Check(t) // Managers, responders, pebble's processes and connections end with the test
	dir := t.TempDir()
	store, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The mounted Responder belongs to no Manager: every challenge reaches it through the
	// Store, as it reaches a replica that did not place the order.
	e := &pebbleEnv{resp: NewResponder(store), dir: dir}
	o.HTTPHandler, o.GetCertificate = e.resp, e.resp.GetCertificate
	e.pebble = pebbletest.Start(t, o)
	return e
}

// events records a Manager's events and certificates for a test to wait on.
type events struct {
	mu    sync.Mutex
	all   []Event
	certs []*Certificate
	ch    chan struct{} // signalled on each event
}

func newEvents() *events { return &events{ch: make(chan struct{}, 1)} }

func (ev *events) onEvent(e Event) {
	ev.mu.Lock()
	ev.all = append(ev.all, e)
	ev.mu.Unlock()
	select {
	case ev.ch <- struct{}{}:
	default:
	}
}

func (ev *events) onCertificate(c *Certificate) {
	ev.mu.Lock()
	ev.certs = append(ev.certs, c)
	ev.mu.Unlock()
}

func (ev *events) count(k EventKind) int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	n := 0
	for _, e := range ev.all {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func (ev *events) of(k EventKind) []Event {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	var out []Event
	for _, e := range ev.all {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// waitFor waits until cond holds over the events seen so far.
func (ev *events) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-ev.ch:
		case <-deadline.C:
			ev.mu.Lock()
			defer ev.mu.Unlock()
			t.Fatalf("no %s after %v; events: %+v", what, wait, ev.all)
		}
	}
}

// start runs a Manager on the env's pebble with test-sized intervals.
func (e *pebbleEnv) start(t *testing.T, o Options) (*Manager, *events) {
	t.Helper()
	ev := newEvents()
	o.DirectoryURL = e.pebble.DirectoryURL
	o.HTTPClient = e.pebble.HTTPClient
	if o.Store == nil {
		s, err := NewDirStore(e.dir)
		if err != nil {
			t.Fatal(err)
		}
		o.Store = s
	}
	o.OnEvent, o.OnCertificate = ev.onEvent, ev.onCertificate
	o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	o.CheckInterval = 50 * time.Millisecond
	o.LockPoll = 50 * time.Millisecond
	if o.Backoff.Min == 0 {
		o.Backoff = Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	}
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = m.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return m, ev
}

// verify checks c's chain against pebble's root for every name.
func (e *pebbleEnv) verify(t *testing.T, c *Certificate, names []string) {
	t.Helper()
	inter := x509.NewCertPool()
	for _, der := range c.Chain[1:] {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(ic)
	}
	roots := e.pebble.Roots(t)
	for _, n := range names {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

func TestIssue(t *testing.T) {
	e := newPebbleEnv(t, pebbletest.Options{})
	cases := []struct {
		name      string
		names     []string
		challenge string
		keyType   KeyType
	}{
		{name: "http-01 ecdsa", names: []string{"h1.nuncio.example.org", "www.h1.nuncio.example.org"}, challenge: ChallengeHTTP01},
		{name: "tls-alpn-01 ecdsa", names: []string{"t1.nuncio.example.org", "www.t1.nuncio.example.org"}, challenge: ChallengeTLSALPN01},
		{name: "http-01 rsa", names: []string{"r1.nuncio.example.org"}, challenge: ChallengeHTTP01, keyType: KeyRSA2048},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			m, ev := e.start(t, Options{
				Email:        "ops@nuncio.example.org",
				Certificates: []Request{{Names: tc.names, Challenge: tc.challenge, KeyType: tc.keyType}},
			})
			ev.waitFor(t, "issued certificate", func() bool { return ev.count(EventIssued) == 1 })
			t.Logf("issued in %v", time.Since(start).Round(time.Millisecond))
			c := m.Certificate(tc.names[0])
			if c == nil || len(ev.certs) != 1 || ev.certs[0] != c {
				t.Fatalf("Certificate() = %v, OnCertificate got %v", c, ev.certs)
			}
			e.verify(t, c, tc.names)
			switch c.Key.(type) {
			case *ecdsa.PrivateKey:
				if tc.keyType == KeyRSA2048 {
					t.Errorf("key is ECDSA, want RSA")
				}
			case *rsa.PrivateKey:
				if tc.keyType != KeyRSA2048 {
					t.Errorf("key is RSA, want ECDSA")
				}
			}
			for _, p := range []string{
				filepath.Join(e.dir, "certificates", tc.names[0]+".pem"),
				filepath.Join(e.dir, "accounts", accountID(e.pebble.DirectoryURL)+".key"),
			} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v, want 0600", p, fi.Mode().Perm())
				}
			}
			// A TLS client trusting pebble's root accepts the certificate.
			cfg := &tls.Config{Certificates: []tls.Certificate{*c.TLS()}}
			tlsHandshake(t, cfg, e.pebble.Roots(t), tc.names[0])
		})
	}
}

// tlsHandshake serves cfg on loopback and completes a handshake for name.
func tlsHandshake(t *testing.T, cfg *tls.Config, roots *x509.CertPool, name string) {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: roots, ServerName: name})
	if err != nil {
		t.Fatalf("handshake for %s: %v", name, err)
	}
	c.Close()
}

// TestRenewal moves the clock past two thirds of the lifetime: the Manager orders again and
// hands the new certificate to the callback; a Manager started later loads it from the Store.
func TestRenewal(t *testing.T) {
	e := newPebbleEnv(t, pebbletest.Options{})
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	names := []string{"renew.nuncio.example.org"}
	m, ev := e.start(t, Options{Certificates: []Request{{Names: names}}, Now: now})
	ev.waitFor(t, "first certificate", func() bool { return ev.count(EventIssued) == 1 })
	first := m.Certificate(names[0])

	offset.Store(int64(70 * 24 * time.Hour)) // of 90 days: 20 remain, less than a third
	ev.waitFor(t, "renewed certificate", func() bool { return ev.count(EventIssued) == 2 })
	second := m.Certificate(names[0])
	if second.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatal("renewal kept the serial number")
	}
	e.verify(t, second, names)
	if len(ev.certs) != 2 || ev.certs[1] != second {
		t.Errorf("OnCertificate got %d certificates, want the first and the renewed one", len(ev.certs))
	}

	m2, ev2 := e.start(t, Options{Certificates: []Request{{Names: names}}, Now: now})
	ev2.waitFor(t, "loaded certificate", func() bool { return ev2.count(EventLoaded) == 1 })
	if got := m2.Certificate(names[0]); got.Leaf.SerialNumber.Cmp(second.Leaf.SerialNumber) != 0 {
		t.Errorf("second Manager loaded serial %v, want %v", got.Leaf.SerialNumber, second.Leaf.SerialNumber)
	}
	if n := ev2.count(EventIssued); n != 0 {
		t.Errorf("second Manager ordered %d times, want 0", n)
	}
}

// TestRenewalInfo makes pebble's ARI suggest a window in the past: once the Manager asks again
// (after pebble's Retry-After), it renews long before two thirds of the lifetime.
func TestRenewalInfo(t *testing.T) {
	e := newPebbleEnv(t, pebbletest.Options{})
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	names := []string{"ari.nuncio.example.org"}
	m, ev := e.start(t, Options{Certificates: []Request{{Names: names}}, Now: now})
	ev.waitFor(t, "first certificate", func() bool { return ev.count(EventIssued) == 1 })
	first := m.Certificate(names[0])

	past := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
	end := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	e.pebble.SetRenewalInfo(t, pebbletest.LeafPEM(first.Chain[0]),
		`{"suggestedWindow":{"start":"`+past+`","end":"`+end+`"}}`)
	offset.Store(int64(7 * time.Hour)) // past pebble's Retry-After of 6h; far from 60 days
	ev.waitFor(t, "renewed certificate", func() bool { return ev.count(EventIssued) == 2 })
	if m.Certificate(names[0]).Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatal("renewal kept the serial number")
	}
}

// TestValidationFailure points the name at an address where nothing answers: the order fails
// with the CA's authorization error and the retries back off. Of two Managers sharing the
// store, the one that failed keeps the lease through its backoff; the other only waits.
func TestValidationFailure(t *testing.T) {
	e := newPebbleEnv(t, pebbletest.Options{})
	name := "unreachable.nuncio.example.org"
	e.pebble.AddA(t, name, "127.0.0.2") // the challenge listeners are on 127.0.0.1 only
	var ms [2]*Manager
	var evs [2]*events
	for i := range ms {
		ms[i], evs[i] = e.start(t, Options{
			Certificates: []Request{{Names: []string{name}}},
			Backoff:      Backoff{Min: 100 * time.Millisecond, Max: 400 * time.Millisecond},
		})
	}
	evs[0].waitFor(t, "three failures", func() bool { return evs[0].count(EventFailed)+evs[1].count(EventFailed) >= 3 })
	ev, other := evs[0], evs[1]
	if ev.count(EventFailed) == 0 {
		ev, other = other, ev
	}
	if n := other.count(EventFailed); n != 0 {
		t.Errorf("both Managers ordered: %d and %d failures", ev.count(EventFailed), n)
	}
	if other.count(EventWaiting) == 0 {
		t.Error("the second Manager never waited on the lease")
	}
	fails := ev.of(EventFailed)
	for i, f := range fails[:3] {
		var ae *acme.AuthorizationError
		if !errors.As(f.Err, &ae) || ae.Identifier != name {
			t.Errorf("failure %d: %v, want an authorization error for %s", i, f.Err, name)
		}
	}
	// 100ms, 200ms, 400ms with ±10% jitter.
	if !(fails[0].Retry < fails[1].Retry && fails[1].Retry < fails[2].Retry) {
		t.Errorf("retries %v, %v, %v do not grow", fails[0].Retry, fails[1].Retry, fails[2].Retry)
	}
	if fails[2].Retry > 440*time.Millisecond {
		t.Errorf("retry %v above the 400ms cap", fails[2].Retry)
	}
	for i := range ms {
		if ms[i].Certificate(name) != nil || evs[i].count(EventIssued) != 0 {
			t.Error("a certificate was issued")
		}
	}
}

// TestExternalAccountBinding runs against a CA that requires EAB: without it the account is
// refused, with it the certificate is issued.
func TestExternalAccountBinding(t *testing.T) {
	const kid, mac = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	e := newPebbleEnv(t, pebbletest.Options{EABKeys: map[string]string{kid: mac}})
	key, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"eab.nuncio.example.org"}

	_, ev := e.start(t, Options{Certificates: []Request{{Names: names}}})
	ev.waitFor(t, "failure", func() bool { return ev.count(EventFailed) > 0 })
	if err := ev.of(EventFailed)[0].Err; !strings.Contains(err.Error(), "externalAccountRequired") {
		t.Errorf("without EAB: %v, want externalAccountRequired", err)
	}

	m, ev := e.start(t, Options{Certificates: []Request{{Name: "eab", Names: names}},
		EAB: &ExternalAccountBinding{KeyID: kid, Key: key}})
	ev.waitFor(t, "issued certificate", func() bool { return ev.count(EventIssued) == 1 })
	e.verify(t, m.Certificate("eab"), names)
}

// TestLeaseOrdersOnce runs two Managers on one directory (two DirStores, as two processes
// would have): one orders, the other waits and loads the result.
func TestLeaseOrdersOnce(t *testing.T) {
	e := newPebbleEnv(t, pebbletest.Options{})
	names := []string{"shared.nuncio.example.org", "www.shared.nuncio.example.org"}
	var ms [2]*Manager
	var evs [2]*events
	for i := range ms {
		s, err := NewDirStore(e.dir)
		if err != nil {
			t.Fatal(err)
		}
		ms[i], evs[i] = e.start(t, Options{
			Store:        s,
			Responder:    NewResponder(s), // not mounted: validation reaches the env's through the Store
			Certificates: []Request{{Names: names, Challenge: ChallengeTLSALPN01}},
		})
	}
	for i := range ms {
		evs[i].waitFor(t, "certificate", func() bool { return ms[i].Certificate(names[0]) != nil })
	}
	issued := evs[0].count(EventIssued) + evs[1].count(EventIssued)
	loaded := evs[0].count(EventLoaded) + evs[1].count(EventLoaded)
	if issued != 1 || loaded != 1 {
		t.Errorf("issued %d, loaded %d; want 1 and 1", issued, loaded)
	}
	if a, b := ms[0].Certificate(names[0]), ms[1].Certificate(names[0]); a.Leaf.SerialNumber.Cmp(b.Leaf.SerialNumber) != 0 {
		t.Errorf("the Managers hold different certificates: %v and %v", a.Leaf.SerialNumber, b.Leaf.SerialNumber)
	}
	keys, _ := filepath.Glob(filepath.Join(e.dir, "accounts", "*.key"))
	if len(keys) != 1 {
		t.Errorf("%d account keys, want 1", len(keys))
	}
}

// testWriter sends a Manager's log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// TestRequestChangeReorders stores a certificate, then asks for the same name with another
// SAN set and key type: the stored one is not served, a new one is ordered.
func TestRequestChangeReorders(t *testing.T) {
	e := newPebbleEnv(t, pebbletest.Options{})
	req := Request{Name: "site", Names: []string{"site.nuncio.example.org"}}
	m, ev := e.start(t, Options{Certificates: []Request{req}})
	ev.waitFor(t, "first certificate", func() bool { return ev.count(EventIssued) == 1 })
	first := m.Certificate("site")

	for _, tc := range []struct {
		name string
		req  Request
	}{
		{name: "another name", req: Request{Name: "site", Names: []string{"site.nuncio.example.org", "www.site.nuncio.example.org"}}},
		{name: "another key type", req: Request{Name: "site", Names: []string{"site.nuncio.example.org", "www.site.nuncio.example.org"}, KeyType: KeyRSA2048}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m2, ev2 := e.start(t, Options{Certificates: []Request{tc.req}})
			ev2.waitFor(t, "new certificate", func() bool { return ev2.count(EventIssued) == 1 })
			if ev2.count(EventLoaded) != 0 {
				t.Error("the stored certificate was served")
			}
			c := m2.Certificate("site")
			if c.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 || !matches(c, m2.reqs[0]) {
				t.Errorf("certificate for %v does not match the request", c.Leaf.DNSNames)
			}
		})
	}
}
