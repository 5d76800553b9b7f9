package certs

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"
)

func TestSelfSignedVerifies(t *testing.T) {
	c := SelfSigned(t, "a.test", "b.test")
	for _, name := range []string{"a.test", "b.test", "127.0.0.1"} {
		if _, err := c.Cert.Verify(x509.VerifyOptions{DNSName: name, Roots: c.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
		t.Errorf("PEM pair: %v", err)
	}
}

func TestNewSignedByParent(t *testing.T) {
	ca := SelfSigned(t, "ca.test")
	leaf, err := New(&x509.Certificate{
		Subject:   pkix.Name{CommonName: "leaf.test"},
		DNSNames:  []string{"leaf.test"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: "leaf.test", Roots: ca.Pool()}); err != nil {
		t.Fatal(err)
	}
	if leaf.Cert.SerialNumber.Cmp(ca.Cert.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
}

func TestIssue(t *testing.T) {
	ca := CA(t, "ca.test")
	tests := []struct {
		name  string
		usage x509.ExtKeyUsage
		names []string
		check string // a name the certificate must verify for
	}{
		{name: "server by DNS name", usage: x509.ExtKeyUsageServerAuth, names: []string{"a.test"}, check: "a.test"},
		{name: "server by IP address", usage: x509.ExtKeyUsageServerAuth, names: []string{"a.test", "127.0.0.1"}, check: "127.0.0.1"},
		{name: "client", usage: x509.ExtKeyUsageClientAuth, names: nil, check: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ca.Issue(t, "leaf", tc.usage, tc.names...)
			opts := x509.VerifyOptions{DNSName: tc.check, Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{tc.usage}}
			if _, err := c.Cert.Verify(opts); err != nil {
				t.Fatal(err)
			}
			if _, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
				t.Errorf("PEM pair: %v", err)
			}
			if got := c.TLS(); got.Leaf != c.Cert || len(got.Certificate) != 1 {
				t.Errorf("TLS() = %+v", got)
			}
		})
	}
}
