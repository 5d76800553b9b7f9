package jwtauthn

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// localProvider compiles a provider "p" with an inline JWKS.
func localProvider(t *testing.T, jwks, extra string) *provider {
	t.Helper()
	c, err := compile(t, `
providers:
  p:
    issuer: `+testIssuer+`
    audiences: [api]
    local_jwks: {inline_string: '`+jwks+`'}
`+extra)
	if err != nil {
		t.Fatal(err)
	}
	return c.byName["p"]
}

func verifyNow(p *provider, tok string) status {
	st, _ := p.verify(context.Background(), tok, nil, unscoped, time.Now().Unix())
	return st
}

// TestAlgorithms signs a token with go-jose in every supported algorithm and verifies it
// against a JWKS holding the key; a changed signature byte must fail.
func TestAlgorithms(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{
		jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
		jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.HS256, jose.HS384, jose.HS512,
	} {
		t.Run(string(alg), func(t *testing.T) {
			s := newSigner(t, alg, "k1")
			p := localProvider(t, jwksOf(t, s), "")
			tok := s.sign(t, defaults(nil))
			if st := verifyNow(p, tok); st != stOK {
				t.Fatalf("valid %s token: %v", alg, st)
			}
			i := strings.LastIndexByte(tok, '.')
			sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
			sig[len(sig)/2] ^= 1
			flipped := tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
			if st := verifyNow(p, flipped); st != stVerificationFail {
				t.Fatalf("tampered %s token: %v, want a signature failure", alg, st)
			}
		})
	}
}

// TestRejects covers the tokens that must never pass: malformed, out of time, for someone
// else, and the classic JOSE attacks (alg none, an RSA public key used as an HMAC secret,
// an algorithm the key is not for).
func TestRejects(t *testing.T) {
	es := newSigner(t, jose.ES256, "es")
	rs := newSigner(t, jose.RS256, "rs")
	p := localProvider(t, jwksOf(t, es, rs), "")
	now := time.Now().Unix()

	// An HS256 token whose "secret" is the RSA public key, as an attacker who knows the
	// JWKS would forge one against a verifier that lets the token pick the algorithm.
	der, _ := x509.MarshalPKIXPublicKey(rs.pub)
	hsHeader := `{"alg":"HS256","kid":"rs"}`
	hsPayload, _ := json.Marshal(defaults(nil))
	input := base64.RawURLEncoding.EncodeToString([]byte(hsHeader)) + "." + base64.RawURLEncoding.EncodeToString(hsPayload)
	mac := hmac.New(sha256.New, der)
	mac.Write([]byte(input))
	confused := input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	valid := es.sign(t, defaults(nil))
	parts := strings.Split(valid, ".")
	tests := []struct {
		name  string
		token string
		want  status
	}{
		{name: "one segment", token: "abc", want: stBadFormat},
		{name: "two segments", token: "a.b", want: stBadFormat},
		{name: "four segments", token: valid + ".x", want: stBadFormat},
		{name: "empty header", token: "." + parts[1] + "." + parts[2], want: stBadFormat},
		{name: "header not base64url", token: "e*." + parts[1] + "." + parts[2], want: stHeaderBadBase64},
		{name: "padded header", token: parts[0] + "=." + parts[1] + "." + parts[2], want: stHeaderBadBase64},
		{name: "header not JSON", token: rawToken(`nope`, defaults(nil), []byte{1}), want: stHeaderBadJSON},
		{name: "header a JSON array", token: rawToken(`["alg"]`, defaults(nil), []byte{1}), want: stHeaderBadJSON},
		{name: "alg missing", token: rawToken(`{"kid":"es"}`, defaults(nil), []byte{1}), want: stHeaderBadAlg},
		{name: "alg not a string", token: rawToken(`{"alg":256}`, defaults(nil), []byte{1}), want: stHeaderBadAlg},
		{name: "alg none", token: rawToken(`{"alg":"none"}`, defaults(nil), nil), want: stHeaderNotImplementedAlg},
		{name: "alg none with a signature", token: rawToken(`{"alg":"none"}`, defaults(nil), []byte{1}), want: stHeaderNotImplementedAlg},
		{name: "alg None", token: rawToken(`{"alg":"None"}`, defaults(nil), []byte{1}), want: stHeaderNotImplementedAlg},
		{name: "kid not a string", token: rawToken(`{"alg":"ES256","kid":7}`, defaults(nil), []byte{1}), want: stHeaderBadKid},
		{name: "crit header", token: rawToken(`{"alg":"ES256","crit":["b64"],"b64":false}`, defaults(nil), []byte{1}), want: stHeaderCrit},
		{name: "payload not base64url", token: parts[0] + ".*." + parts[2], want: stPayloadBadBase64},
		{name: "signature missing", token: parts[0] + "." + parts[1] + ".", want: stSignatureBadBase64},
		{name: "signature not base64url", token: parts[0] + "." + parts[1] + ".***", want: stSignatureBadBase64},
		{name: "iss not a string", token: rawToken(`{"alg":"ES256"}`, defaults(claims{"iss": 1}), []byte{1}), want: stPayloadIssNotString},
		{name: "aud a number", token: rawToken(`{"alg":"ES256"}`, defaults(claims{"aud": 1}), []byte{1}), want: stPayloadAudNotString},
		{name: "aud list with a number", token: rawToken(`{"alg":"ES256"}`, defaults(claims{"aud": []any{"api", 2}}), []byte{1}), want: stPayloadAudNotString},
		{name: "exp a string", token: rawToken(`{"alg":"ES256"}`, defaults(claims{"exp": "tomorrow"}), []byte{1}), want: stPayloadExpNotInteger},
		{name: "nbf negative", token: rawToken(`{"alg":"ES256"}`, defaults(claims{"nbf": -5}), []byte{1}), want: stPayloadNbfNotInteger},
		{name: "expired", token: es.sign(t, defaults(claims{"exp": now - 3600})), want: stExpired},
		{name: "expired beyond the skew", token: es.sign(t, defaults(claims{"exp": now - 61})), want: stExpired},
		{name: "not yet valid", token: es.sign(t, defaults(claims{"nbf": now + 3600})), want: stNotYetValid},
		{name: "wrong audience", token: es.sign(t, defaults(claims{"aud": "other"})), want: stAudienceNotAllowed},
		{name: "no audience", token: es.sign(t, defaults(claims{"aud": nil})), want: stAudienceNotAllowed},
		{name: "wrong issuer", token: es.sign(t, defaults(claims{"iss": "https://evil.test"})), want: stUnknownIssuer},
		{name: "unknown kid", token: newSigner(t, jose.ES256, "other").sign(t, defaults(nil)), want: stKidAlgMismatch},
		{name: "key of the kid, other key material", token: newSigner(t, jose.ES256, "es").sign(t, defaults(nil)), want: stVerificationFail},
		{name: "HS256 with the RSA public key as secret", token: confused, want: stKidAlgMismatch},
		{name: "ES384 token for a P-256 key", token: newSigner(t, jose.ES384, "es").sign(t, defaults(nil)), want: stKidAlgMismatch},
		{name: "PS256 token for an RS256 key", token: newSigner(t, jose.PS256, "rs").sign(t, defaults(nil)), want: stKidAlgMismatch},
		{name: "oversized", token: es.sign(t, defaults(claims{"pad": strings.Repeat("x", maxTokenBytes)})), want: stBadFormat},
		{name: "valid", token: valid, want: stOK},
		{name: "expired within the skew", token: es.sign(t, defaults(claims{"exp": now - 30})), want: stOK},
		{name: "aud list", token: es.sign(t, defaults(claims{"aud": []string{"x", "api"}})), want: stOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := verifyNow(p, tc.token); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCache: a verified token is served from the cache, whose time and audience checks
// still apply, and the cache stays within its size.
func TestCache(t *testing.T) {
	es := newSigner(t, jose.ES256, "es")
	p := localProvider(t, jwksOf(t, es), "")
	p.cache.size = 4
	tok := es.sign(t, defaults(claims{"exp": time.Now().Unix() + 100}))
	if st := verifyNow(p, tok); st != stOK {
		t.Fatal(st)
	}
	if p.cache.get(tok) == nil {
		t.Fatal("verified token not cached")
	}
	if st, _ := p.verify(context.Background(), tok, nil, unscoped, time.Now().Unix()+1000); st != stExpired {
		t.Fatalf("cached token past exp: %v", st)
	}
	if st, _ := p.verify(context.Background(), tok, []string{"other"}, unscoped, time.Now().Unix()); st != stAudienceNotAllowed {
		t.Fatalf("cached token for another audience: %v", st)
	}
	for i := range 10 {
		if st := verifyNow(p, es.sign(t, defaults(claims{"n": i}))); st != stOK {
			t.Fatal(st)
		}
	}
	if n := len(p.cache.m); n > 4 {
		t.Fatalf("cache holds %d tokens, size is 4", n)
	}
}

// TestJWKS covers key sets that must be refused, or whose keys must be skipped.
func TestJWKS(t *testing.T) {
	es := newSigner(t, jose.ES256, "es")
	ok := jwksOf(t, es)
	tests := []struct {
		name    string
		jwks    string
		wantErr string
		keys    int
	}{
		{name: "valid", jwks: ok, keys: 1},
		{name: "not JSON", jwks: "<html>", wantErr: "jwks:"},
		{name: "no keys", jwks: `{"keys":[]}`, wantErr: "no usable"},
		{name: "keys not a list", jwks: `{"keys":{}}`, wantErr: "jwks:"},
		{name: "only an encryption key", jwks: strings.Replace(ok, `"use":"sig"`, `"use":"enc"`, 1), wantErr: "no usable"},
		{name: "unknown kty skipped", jwks: `{"keys":[{"kty":"XYZ"},` + ok[len(`{"keys":[`):], keys: 1},
		{name: "EC point off the curve", jwks: `{"keys":[{"kty":"EC","crv":"P-256","x":"` + strings.Repeat("A", 43) + `","y":"` + strings.Repeat("A", 42) + `E"}]}`, wantErr: "x, y"},
		{name: "short RSA key", jwks: `{"keys":[{"kty":"RSA","n":"` + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 128)) + `","e":"AQAB"}]}`, wantErr: "bits"},
		{name: "alg not for the key type", jwks: strings.Replace(ok, `"alg":"ES256"`, `"alg":"RS256"`, 1), wantErr: "does not fit"},
		{name: "empty oct", jwks: `{"keys":[{"kty":"oct","k":""}]}`, wantErr: "k: required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := parseJWKS([]byte(tc.jwks))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(ks.keys) != tc.keys {
				t.Fatalf("err %v, %d keys; want %d", err, len(ks.keys), tc.keys)
			}
		})
	}
}
