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
