package k8stest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
)

// credentials are the files the API server is started with.
type credentials struct {
	caPEM             []byte // the CA that signed the serving certificate, for clients
	certFile          string // serving certificate for 127.0.0.1
	keyFile           string
	serviceAccountKey string // signs and verifies service account tokens
}

// writeCredentials creates a CA, a serving certificate for 127.0.0.1 and localhost signed by it
// (rather than the API server's self-signed one, whose names depend on its advertise address),
// and a service-account signing key, in dir.
func writeCredentials(dir string) (*credentials, error) {
	now := time.Now()
	ca, err := certs.New(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "nuncio-test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil)
	if err != nil {
		return nil, err
	}
	leaf, err := certs.New(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}, ca)
	if err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	c := &credentials{
		caPEM:             ca.CertPEM,
		certFile:          filepath.Join(dir, "apiserver.crt"),
		keyFile:           filepath.Join(dir, "apiserver.key"),
		serviceAccountKey: filepath.Join(dir, "service-account.key"),
	}
	for path, data := range map[string][]byte{
		c.certFile:          leaf.CertPEM,
		c.keyFile:           leaf.KeyPEM,
		c.serviceAccountKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return c, nil
}
