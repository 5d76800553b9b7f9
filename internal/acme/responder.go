package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// HTTPChallengePath is the path prefix of HTTP-01 validation requests (RFC 8555 section 8.3).
const HTTPChallengePath = "/.well-known/acme-challenge/"

// ALPNProto is the ALPN protocol of TLS-ALPN-01 validation handshakes (RFC 8737 section 6.2).
const ALPNProto = "acme-tls/1"

// idPeACMEIdentifier is the critical extension carrying SHA-256(key authorization) in a
// TLS-ALPN-01 certificate (RFC 8737 section 3).
var idPeACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// storeTimeout bounds a challenge lookup in the Store from a validation request.
const storeTimeout = 2 * time.Second

// Responder answers the CA's validation requests. One Responder serves the whole process: the
// data plane mounts it on its port-80 listeners (HTTP-01) and consults it in the TLS handshake
// of its port-443 listeners (TLS-ALPN-01); Managers publish their challenges in it. When a
// challenge is not known in memory, the Store is asked, so that a replica answers for an order
// another replica placed.
type Responder struct {
	store Store // may be nil

	mu   sync.RWMutex
	http map[string]string           // token → key authorization
	alpn map[string]*tls.Certificate // domain → challenge certificate
}

// NewResponder returns a Responder that falls back to store (which may be nil).
func NewResponder(store Store) *Responder {
	return &Responder{store: store, http: map[string]string{}, alpn: map[string]*tls.Certificate{}}
}

// Lookup returns the key authorization for an HTTP-01 token: the body to answer
// GET /.well-known/acme-challenge/<token> with (as text/plain, status 200). The HTTP
// connection manager calls it directly, without net/http.
func (r *Responder) Lookup(token string) (string, bool) {
	if !validToken(token) {
		return "", false
	}
	r.mu.RLock()
	ka, ok := r.http[token]
	r.mu.RUnlock()
	if ok || r.store == nil {
		return ka, ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	ka, err := r.store.GetChallenge(ctx, "http-01/"+token)
	return ka, err == nil && ka != ""
}

// ServeHTTP answers HTTP-01 validation requests and 404s everything else, so that it can be
// mounted on HTTPChallengePath or used as the whole handler of a challenge-only listener.
func (r *Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	token, ok := strings.CutPrefix(req.URL.Path, HTTPChallengePath)
	if !ok || (req.Method != http.MethodGet && req.Method != http.MethodHead) {
		http.NotFound(w, req)
		return
	}
	ka, ok := r.Lookup(token)
	if !ok {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(ka))
}

// IsChallengeHello reports whether a ClientHello is a TLS-ALPN-01 validation handshake: the
// CA offers acme-tls/1 and nothing else (RFC 8737 section 3).
func IsChallengeHello(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == ALPNProto
}

// GetCertificate returns the TLS-ALPN-01 certificate for a validation handshake, and nil
// without an error for any other hello so that a tls.Config falls back to its Certificates.
// The listener's tls.Config must list ALPNProto in NextProtos for the handshake to complete,
// and the connection is closed after it (the CA sends no data).
func (r *Responder) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if !slices.Contains(hello.SupportedProtos, ALPNProto) {
		return nil, nil
	}
	domain := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if domain == "" {
		return nil, errors.New("acme: tls-alpn-01 hello without server name")
	}
	r.mu.RLock()
	c, ok := r.alpn[domain]
	r.mu.RUnlock()
	if ok {
		return c, nil
	}
	if r.store != nil && validKey(domain) {
		parent := hello.Context()
		if parent == nil { // a hello not from crypto/tls
			parent = context.Background()
		}
		ctx, cancel := context.WithTimeout(parent, storeTimeout)
		defer cancel()
		if ka, err := r.store.GetChallenge(ctx, "tls-alpn-01/"+domain); err == nil {
			return alpnCertificate(domain, ka)
		}
	}
	return nil, fmt.Errorf("acme: no tls-alpn-01 challenge for %q", domain)
}

// put publishes a challenge in memory; the Manager writes it to the Store itself.
func (r *Responder) put(typ, id, keyAuth string) error {
	switch typ {
	case ChallengeHTTP01:
		r.mu.Lock()
		r.http[id] = keyAuth
		r.mu.Unlock()
	case ChallengeTLSALPN01:
		c, err := alpnCertificate(id, keyAuth)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.alpn[id] = c
		r.mu.Unlock()
	}
	return nil
}

func (r *Responder) remove(typ, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch typ {
	case ChallengeHTTP01:
		delete(r.http, id)
	case ChallengeTLSALPN01:
		delete(r.alpn, id)
	}
}

// alpnCertificate makes the self-signed certificate RFC 8737 section 3 asks for: the domain
// as its only SAN and the digest of the key authorization in a critical acmeIdentifier
// extension.
func alpnCertificate(domain, keyAuth string) (*tls.Certificate, error) {
	sum := sha256.Sum256([]byte(keyAuth))
	ext, err := asn1.Marshal(sum[:])
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tpl := &x509.Certificate{
		SerialNumber:    serial,
		Subject:         pkix.Name{CommonName: "ACME challenge"},
		NotBefore:       now.Add(-time.Hour),
		NotAfter:        now.Add(24 * time.Hour),
		DNSNames:        []string{domain},
		ExtraExtensions: []pkix.Extension{{Id: idPeACMEIdentifier, Critical: true, Value: ext}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// validToken admits base64url tokens (RFC 8555 section 8.3), which also keeps a token from
// naming a path in a directory store.
func validToken(t string) bool {
	if t == "" || len(t) > 256 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

var _ http.Handler = (*Responder)(nil)
