// Package certs makes ECDSA certificates for tests that need TLS peers, so that no test
// depends on key files that expire.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

// Cert is a certificate and its private key.
type Cert struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte // SEC 1 ("EC PRIVATE KEY")
}

// Pool returns a pool trusting c alone.
func (c *Cert) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}

// TLS returns c as a certificate a tls.Config can serve or present.
func (c *Cert) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
}

// New issues tpl with a new P-256 key, signed by parent, or self-signed when parent is nil.
// A nil SerialNumber is filled in with a random one.
func New(tpl *x509.Certificate, parent *Cert) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if tpl.SerialNumber == nil {
		if tpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64)); err != nil {
			return nil, err
		}
	}
	issuer, signer := tpl, key
	if parent != nil {
		issuer, signer = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, issuer, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Cert{
		Cert: cert, Key: key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}, nil
}

// SelfSigned returns a certificate for names and 127.0.0.1, valid from an hour ago for a
// day, named after names[0]. It is its own CA and serves for both server and client
// authentication, so one certificate can stand for either peer and for what trusts it.
func SelfSigned(t testing.TB, names ...string) *Cert {
	t.Helper()
	now := time.Now()
	c, err := New(&x509.Certificate{
		Subject:               pkix.Name{CommonName: names[0]},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// CA returns a certificate authority named cn, valid from an hour ago for a day, for
// certificates issued by Issue.
func CA(t testing.TB, cn string) *Cert {
	t.Helper()
	now := time.Now()
	c, err := New(&x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		IsCA:                  true,
		BasicConstraintsValid: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Issue returns a certificate named cn signed by c, valid as long as c, for usage
// (x509.ExtKeyUsageServerAuth or ClientAuth) and names: each is an IP address when it
// parses as one and a DNS name otherwise.
func (c *Cert) Issue(t testing.TB, cn string, usage x509.ExtKeyUsage, names ...string) *Cert {
	t.Helper()
	tpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		NotBefore:   c.Cert.NotBefore,
		NotAfter:    c.Cert.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tpl.IPAddresses = append(tpl.IPAddresses, ip)
		} else {
			tpl.DNSNames = append(tpl.DNSNames, n)
		}
	}
	leaf, err := New(tpl, c)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}
