package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ErrNotFound is returned by a Store for a key it does not hold.
var ErrNotFound = errors.New("acme: not found in store")

// ErrLocked is returned by Locker.TryLock when another holder has the lock.
var ErrLocked = errors.New("acme: locked by another holder")

// Store keeps what must outlive a process and be shared by the replicas that serve the same
// names: the account key, the certificates and, while an order is in flight, the challenge
// responses (the CA may send its validation request to any replica, not only to the one that
// ordered). Keys and certificates are PEM. Implementations are safe for concurrent use.
//
// The directory store (DirStore) serves `nuncio run`; a Kubernetes Secret store is meant to
// implement the same interface, one Secret per certificate (tls.crt, tls.key) and one for the
// account.
type Store interface {
	LoadAccountKey(ctx context.Context, id string) (keyPEM []byte, err error)
	SaveAccountKey(ctx context.Context, id string, keyPEM []byte) error

	// LoadCertificate returns the chain (leaf first) and the private key saved together by
	// SaveCertificate; a reader never sees the chain of one and the key of another.
	LoadCertificate(ctx context.Context, name string) (chainPEM, keyPEM []byte, err error)
	SaveCertificate(ctx context.Context, name string, chainPEM, keyPEM []byte) error

	// Challenge ids are "http-01/<token>" and "tls-alpn-01/<domain>"; the value is the key
	// authorization (RFC 8555 section 8.1).
	PutChallenge(ctx context.Context, id, keyAuth string) error
	GetChallenge(ctx context.Context, id string) (string, error)
	DeleteChallenge(ctx context.Context, id string) error
}

// Locker hands out leases so that of many replicas sharing a Store only one orders a given
// certificate (or creates the account) while the others wait for the result to appear.
type Locker interface {
	// TryLock takes the lease on name without waiting; it returns ErrLocked when another
	// holder has it. A lease with an expiry (a Kubernetes Lease) is renewed by the
	// implementation until Release, so a holder that dies frees it after the expiry.
	TryLock(ctx context.Context, name string) (Lease, error)
}

// Lease is a held lock.
type Lease interface {
	Release() error
}

// Certificate is an issued certificate with its private key.
type Certificate struct {
	Name  string            // the request's name, the key in the Store
	Chain [][]byte          // DER, leaf first
	Key   crypto.Signer     // *ecdsa.PrivateKey or *rsa.PrivateKey
	Leaf  *x509.Certificate // parsed Chain[0]
}

// TLS returns c for a tls.Config.
func (c *Certificate) TLS() *tls.Certificate {
	return &tls.Certificate{Certificate: c.Chain, PrivateKey: c.Key, Leaf: c.Leaf}
}

// PEM encodes the chain and the key (PKCS #8) as the Store keeps them.
func (c *Certificate) PEM() (chainPEM, keyPEM []byte, err error) {
	for _, der := range c.Chain {
		chainPEM = append(chainPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		return nil, nil, err
	}
	return chainPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// ParseCertificate reads what Certificate.PEM wrote (the key may also be PKCS #1 or SEC 1)
// and checks that the key belongs to the leaf.
func ParseCertificate(name string, chainPEM, keyPEM []byte) (*Certificate, error) {
	c := &Certificate{Name: name}
	for rest := chainPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			c.Chain = append(c.Chain, b.Bytes)
		}
	}
	if len(c.Chain) == 0 {
		return nil, fmt.Errorf("acme: certificate %q: no CERTIFICATE block", name)
	}
	leaf, err := x509.ParseCertificate(c.Chain[0])
	if err != nil {
		return nil, fmt.Errorf("acme: certificate %q: %w", name, err)
	}
	c.Leaf = leaf
	if c.Key, err = parseKey(keyPEM); err != nil {
		return nil, fmt.Errorf("acme: certificate %q: %w", name, err)
	}
	if !publicKeyEqual(leaf.PublicKey, c.Key.Public()) {
		return nil, fmt.Errorf("acme: certificate %q: private key does not match the certificate", name)
	}
	return c, nil
}

func parseKey(keyPEM []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("no PEM key")
	}
	var k any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("unsupported key block %q", b.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", k)
}

func marshalKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}
