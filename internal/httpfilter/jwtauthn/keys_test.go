package jwtauthn

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
)

// signer is a test issuer's key: tokens are signed with go-jose, the JWKS carries its
// public half (or the secret, for HS algorithms).
type signer struct {
	alg  jose.SignatureAlgorithm
	kid  string
	priv any
	pub  any
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// sharedRSA is one 2048-bit key for every RSA signer: generating RSA keys is slow, and
// which key signs matters less than the kid and alg around it.
func sharedRSA(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	return rsaKey
}

func newSigner(t testing.TB, alg jose.SignatureAlgorithm, kid string) *signer {
	t.Helper()
	s := &signer{alg: alg, kid: kid}
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		k := sharedRSA(t)
		s.priv, s.pub = k, &k.PublicKey
	case jose.ES256, jose.ES384, jose.ES512:
		c := map[jose.SignatureAlgorithm]elliptic.Curve{jose.ES256: elliptic.P256(), jose.ES384: elliptic.P384(), jose.ES512: elliptic.P521()}[alg]
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s.priv, s.pub = k, &k.PublicKey
	case jose.EdDSA:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s.priv, s.pub = priv, pub
	case jose.HS256, jose.HS384, jose.HS512:
		secret := make([]byte, 64)
		rand.Read(secret)
		s.priv, s.pub = secret, secret
	default:
		t.Fatalf("no key for %s", alg)
	}
	return s
}

// claims are a token's payload; defaults() fills a valid one for the test issuer.
type claims map[string]any

const testIssuer = "https://issuer.test"

func defaults(over claims) claims {
	now := time.Now().Unix()
	c := claims{"iss": testIssuer, "sub": "alice", "aud": "api", "iat": now, "exp": now + 3600}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func (s *signer) sign(t testing.TB, c claims) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: jose.JSONWebKey{Key: s.priv, KeyID: s.kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(c)
	obj, err := sg.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *signer) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: s.pub, KeyID: s.kid, Algorithm: string(s.alg), Use: "sig"}
}

// jwksOf is the JWKS JSON of the signers' keys.
func jwksOf(t testing.TB, ss ...*signer) string {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, s := range ss {
		set.Keys = append(set.Keys, s.jwk())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rawToken assembles a token from a header and payload as given and a signature, for the
// tokens no careful library would produce.
func rawToken(header string, payload claims, sig []byte) string {
	p, _ := json.Marshal(payload)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString(p) + "." + enc.EncodeToString(sig)
}

// compile builds a Config from a JwtAuthentication in YAML.
func compile(t testing.TB, yaml string) (*Config, error) {
	t.Helper()
	m := &jwtv3.JwtAuthentication{}
	if err := envoyconfig.Unmarshal([]byte(yaml), m); err != nil {
		t.Fatal(err)
	}
	c, err := Factory{}.NewConfig(m)
	if err != nil {
		return nil, err
	}
	return c.(*Config), nil
}
