package acme

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
)

func TestDirStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadAccountKey(ctx, "ca-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LoadAccountKey before save: %v, want ErrNotFound", err)
	}
	if err := s.SaveAccountKey(ctx, "ca-1", []byte("key")); err != nil {
		t.Fatal(err)
	}
	if b, err := s.LoadAccountKey(ctx, "ca-1"); err != nil || string(b) != "key" {
		t.Fatalf("LoadAccountKey = %q, %v", b, err)
	}

	c := certs.SelfSigned(t, "a.example.org")
	if err := s.SaveCertificate(ctx, "a.example.org", c.CertPEM, c.KeyPEM); err != nil {
		t.Fatal(err)
	}
	chain, key, err := s.LoadCertificate(ctx, "a.example.org")
	if err != nil || !bytes.Equal(chain, c.CertPEM) || !bytes.Equal(key, c.KeyPEM) {
		t.Fatalf("LoadCertificate = %q, %q, %v", chain, key, err)
	}
	pc, err := ParseCertificate("a.example.org", chain, key)
	if err != nil || pc.Leaf.Subject.CommonName != "a.example.org" {
		t.Fatalf("ParseCertificate: %v", err)
	}

	if err := s.PutChallenge(ctx, "http-01/tok_en-1", "tok_en-1.thumb"); err != nil {
		t.Fatal(err)
	}
	if ka, err := s.GetChallenge(ctx, "http-01/tok_en-1"); err != nil || ka != "tok_en-1.thumb" {
		t.Fatalf("GetChallenge = %q, %v", ka, err)
	}
	if err := s.DeleteChallenge(ctx, "http-01/tok_en-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetChallenge(ctx, "http-01/tok_en-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetChallenge after delete: %v, want ErrNotFound", err)
	}
	if err := s.DeleteChallenge(ctx, "http-01/tok_en-1"); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}

	entries := 0
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			if p != dir && fi != nil && fi.IsDir() && fi.Mode().Perm() != 0o700 {
				t.Errorf("%s: mode %v, want 0700", p, fi.Mode().Perm())
			}
			return err
		}
		entries++
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil || entries != 2 {
		t.Errorf("%d files (%v), want the account key and the certificate, no temporary files", entries, err)
	}
}

func TestDirStoreRejectsKeys(t *testing.T) {
	s, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		key  string
	}{
		{name: "empty", key: ""},
		{name: "parent", key: "../x"},
		{name: "slash", key: "a/b"},
		{name: "hidden", key: ".lock"},
		{name: "space", key: "a b"},
		{name: "nul", key: "a\x00b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.SaveCertificate(ctx, tc.key, []byte("c"), []byte("k")); err == nil {
				t.Error("SaveCertificate accepted the key")
			}
			if _, err := s.TryLock(ctx, tc.key); err == nil {
				t.Error("TryLock accepted the key")
			}
		})
	}
	for _, id := range []string{"http-01/../x", "http-01/a/b", "tls-alpn-01/a b"} {
		if _, err := s.GetChallenge(ctx, id); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("GetChallenge(%q): %v, want an invalid key error", id, err)
		}
	}
}

func TestDirStoreLock(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	la, err := a.TryLock(ctx, "cert-x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.TryLock(ctx, "cert-x"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second holder: %v, want ErrLocked", err)
	}
	if _, err := a.TryLock(ctx, "cert-x"); !errors.Is(err, ErrLocked) {
		t.Fatalf("same store, second lease: %v, want ErrLocked", err)
	}
	lo, err := b.TryLock(ctx, "cert-y")
	if err != nil {
		t.Fatalf("another name: %v", err)
	}
	lo.Release()
	if err := la.Release(); err != nil {
		t.Fatal(err)
	}
	lb, err := b.TryLock(ctx, "cert-x")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	lb.Release()
}

func TestParseCertificateRejects(t *testing.T) {
	c := certs.SelfSigned(t, "a.example.org")
	other := certs.SelfSigned(t, "b.example.org")
	for _, tc := range []struct {
		name       string
		chain, key []byte
	}{
		{name: "no certificate", chain: []byte("junk"), key: c.KeyPEM},
		{name: "no key", chain: c.CertPEM, key: nil},
		{name: "key of another certificate", chain: c.CertPEM, key: other.KeyPEM},
		{name: "bad DER", chain: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), key: c.KeyPEM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseCertificate("a", tc.chain, tc.key); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestCertificatePEMRoundTrip(t *testing.T) {
	for _, kt := range []KeyType{KeyECDSAP256, KeyRSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			key, err := newKey(kt)
			if err != nil {
				t.Fatal(err)
			}
			ca := certs.SelfSigned(t, "ca.example.org")
			der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: ca.Cert.SerialNumber,
				DNSNames: []string{"a.example.org"}, NotBefore: ca.Cert.NotBefore, NotAfter: ca.Cert.NotAfter},
				ca.Cert, key.Public(), ca.Key)
			if err != nil {
				t.Fatal(err)
			}
			leaf, _ := x509.ParseCertificate(der)
			c := &Certificate{Name: "a", Chain: [][]byte{der, ca.Cert.Raw}, Key: key, Leaf: leaf}
			chain, keyPEM, err := c.PEM()
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseCertificate("a", chain, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Chain) != 2 || !matches(got, Request{Names: []string{"a.example.org"}, KeyType: kt}) {
				t.Errorf("round trip lost something: %d certificates, names %v", len(got.Chain), got.Leaf.DNSNames)
			}
		})
	}
}

func FuzzParseCertificate(f *testing.F) {
	c := certs.SelfSigned(f, "a.example.org")
	f.Add(c.CertPEM, c.KeyPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, chain, key []byte) {
		got, err := ParseCertificate("a", chain, key)
		if err == nil && (got.Leaf == nil || got.Key == nil) {
			t.Fatal("no error and no certificate")
		}
	})
}
