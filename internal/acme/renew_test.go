package acme

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Min: time.Minute, Max: 6 * time.Hour}
	limited := &acme.Error{StatusCode: 429, ProblemType: "urn:ietf:params:acme:error:rateLimited",
		Header: http.Header{"Retry-After": []string{"36000"}}}
	for _, tc := range []struct {
		name     string
		failures int
		err      error
		lo, hi   time.Duration
	}{
		{name: "first failure", failures: 1, err: errors.New("x"), lo: 54 * time.Second, hi: 66 * time.Second},
		{name: "third failure", failures: 3, err: errors.New("x"), lo: 216 * time.Second, hi: 264 * time.Second},
		{name: "capped", failures: 20, err: errors.New("x"), lo: 324 * time.Minute, hi: 396 * time.Minute},
		{name: "no overflow", failures: 1000, err: errors.New("x"), lo: 324 * time.Minute, hi: 396 * time.Minute},
		{name: "rate limit beyond the cap", failures: 1, err: fmt.Errorf("acme: new order: %w", limited), lo: 10 * time.Hour, hi: 10 * time.Hour},
		{name: "rate limit in an order", failures: 1, err: &acme.OrderError{Problem: limited}, lo: 10 * time.Hour, hi: 10 * time.Hour},
		{name: "rate limit without Retry-After", failures: 2,
			err: &acme.Error{StatusCode: 429, ProblemType: "urn:ietf:params:acme:error:rateLimited"}, lo: 108 * time.Second, hi: 132 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 20 {
				if d := backoff(b, tc.failures, tc.err); d < tc.lo || d > tc.hi {
					t.Fatalf("backoff = %v, want in [%v, %v]", d, tc.lo, tc.hi)
				}
			}
		})
	}
}

func TestRequestBackoff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		status int
		header string
		want   time.Duration
	}{
		{name: "rate limit goes back to the Manager", n: 1, status: 429, header: "60", want: 0},
		{name: "server error, first retry", n: 1, status: 503, want: 250 * time.Millisecond},
		{name: "server error, Retry-After honoured", n: 1, status: 503, header: "3", want: 3 * time.Second},
		{name: "server error, long Retry-After bounded", n: 1, status: 503, header: "3600", want: 10 * time.Second},
		{name: "gives up", n: 5, status: 503, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &http.Response{StatusCode: tc.status, Header: http.Header{}}
			if tc.header != "" {
				res.Header.Set("Retry-After", tc.header)
			}
			if got := requestBackoff(tc.n, nil, res); got != tc.want {
				t.Errorf("requestBackoff = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		v    string
		want time.Duration
	}{
		{name: "empty", v: "", want: 0},
		{name: "seconds", v: "120", want: 2 * time.Minute},
		{name: "negative", v: "-5", want: 0},
		{name: "date", v: now.Add(time.Hour).Format(http.TimeFormat), want: time.Hour},
		{name: "past date", v: now.Add(-time.Hour).Format(http.TimeFormat), want: 0},
		{name: "junk", v: "soon", want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseRetryAfter(tc.v, now); got != tc.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.v, got, tc.want)
			}
		})
	}
}

func TestARICertID(t *testing.T) {
	for _, tc := range []struct {
		name   string
		aki    []byte
		serial int64
		want   string
		wantOK bool
	}{
		// RFC 9773 section 4.1's example: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 0x87654321.
		{name: "sign bit set", aki: []byte{0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4},
			serial: 0x87654321, want: "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", wantOK: true},
		{name: "sign bit clear", aki: []byte{1, 2}, serial: 0x0102, want: "AQI.AQI", wantOK: true},
		{name: "no AKI", serial: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ariCertID(&x509.Certificate{AuthorityKeyId: tc.aki, SerialNumber: big.NewInt(tc.serial)})
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("ariCertID = %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestRenewalTime(t *testing.T) {
	m := &Manager{opts: Options{RenewRemaining: 1.0 / 3}}
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Certificate{Leaf: &x509.Certificate{NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}}
	for range 50 {
		at := m.renewalTime(c)
		if lo, hi := nb.Add(57*24*time.Hour), nb.Add(60*24*time.Hour); at.Before(lo) || at.After(hi) {
			t.Fatalf("renewal at %v, want between %v and %v", at, lo, hi)
		}
	}
}

func TestNewRejects(t *testing.T) {
	store, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ok := []Request{{Names: []string{"a.example.org"}}}
	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "no store", opts: Options{Certificates: ok}, wantErr: "acme: store: required"},
		{name: "plain http directory", opts: Options{Store: store, DirectoryURL: "http://ca/dir", Certificates: ok}, wantErr: "directory_url"},
		{name: "bad email", opts: Options{Store: store, Email: "ops", Certificates: ok}, wantErr: "email"},
		{name: "half an EAB", opts: Options{Store: store, EAB: &ExternalAccountBinding{KeyID: "k"}, Certificates: ok}, wantErr: "eab"},
		{name: "no certificates", opts: Options{Store: store}, wantErr: "certificates: at least one"},
		{name: "no names", opts: Options{Store: store, Certificates: []Request{{}}}, wantErr: "certificates[0]: names"},
		{name: "wildcard", opts: Options{Store: store, Certificates: []Request{{Names: []string{"a.example.org", "*.example.org"}}}},
			wantErr: "certificates[0]: names[1]: \"*.example.org\": a wildcard needs the dns-01 challenge"},
		{name: "single label", opts: Options{Store: store, Certificates: []Request{{Names: []string{"localhost"}}}}, wantErr: "names[0]"},
		{name: "bad character", opts: Options{Store: store, Certificates: []Request{{Names: []string{"a_b.example.org"}}}}, wantErr: "names[0]"},
		{name: "key type", opts: Options{Store: store, Certificates: []Request{{Names: []string{"a.example.org"}, KeyType: "ed25519"}}},
			wantErr: "certificates[0]: key_type"},
		{name: "challenge", opts: Options{Store: store, Certificates: []Request{{Names: []string{"a.example.org"}, Challenge: "dns-01"}}},
			wantErr: "certificates[0]: challenge"},
		{name: "name for a file", opts: Options{Store: store, Certificates: []Request{{Name: "../a", Names: []string{"a.example.org"}}}},
			wantErr: "certificates[0]: name"},
		{name: "duplicate name", opts: Options{Store: store, Certificates: []Request{{Names: []string{"a.example.org"}}, {Names: []string{"A.example.org."}}}},
			wantErr: "certificates[1]: name: \"a.example.org\" is used twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New: %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}
