package jwtauthn

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// minRSABits is the smallest RSA modulus accepted in a JWKS. Smaller keys are factorable
// enough that a token signed with one proves little.
const minRSABits = 2048

// maxJWKSBytes bounds a JWKS document, local or fetched.
const maxJWKSBytes = 1 << 20

// keyKind is a JWK's key type, with the curve for EC and OKP keys.
type keyKind uint8

const (
	kindRSA keyKind = iota + 1
	kindP256
	kindP384
	kindP521
	kindEd25519
	kindOct
)

// key is one verification key of a JWKS.
type key struct {
	kid  string
	alg  string // the JWK's alg; "" accepts every algorithm of its kind
	kind keyKind
	rsa  *rsa.PublicKey
	ec   *ecdsa.PublicKey
	ed   ed25519.PublicKey
	oct  []byte
}

// keySet is a parsed JWKS; immutable.
type keySet struct {
	keys []key
}

// jwk is the JSON form of a key (RFC 7517, 7518, 8037). Members of the wrong JSON type fail
// the decode, which fails the set.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	K   string `json:"k"`
}

// parseJWKS parses a JSON Web Key Set. Keys for encryption (use "enc") and of key types
// that cannot verify a JWS are skipped; a malformed key of a supported type fails the whole
// set, since a JWKS that is half wrong is not to be trusted. At least one key must remain.
func parseJWKS(b []byte) (*keySet, error) {
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("jwks: larger than %d bytes", maxJWKSBytes)
	}
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("jwks: %v", err)
	}
	ks := &keySet{}
	for i := range doc.Keys {
		j := &doc.Keys[i]
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		k, ok, err := parseKey(j)
		if err != nil {
			return nil, fmt.Errorf("jwks: keys[%d] (kid %q): %v", i, j.Kid, err)
		}
		if ok {
			ks.keys = append(ks.keys, k)
		}
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("jwks: no usable signature key")
	}
	return ks, nil
}

// parseKey decodes one JWK; ok is false for a key type that cannot verify a JWS.
func parseKey(j *jwk) (key, bool, error) {
	k := key{kid: j.Kid, alg: j.Alg}
	if k.alg != "" && algKind(k.alg) == 0 {
		return k, false, fmt.Errorf("alg %q: not supported", k.alg)
	}
	switch j.Kty {
	case "RSA":
		n, err := b64("n", j.N)
		if err != nil {
			return k, false, err
		}
		e, err := b64("e", j.E)
		if err != nil {
			return k, false, err
		}
		if len(e) > 4 || len(n) == 0 || n[0] == 0 || e[0] == 0 {
			return k, false, errors.New("n or e: not a minimal big-endian integer")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minRSABits {
			return k, false, fmt.Errorf("n: %d bits, below %d", pub.N.BitLen(), minRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return k, false, errors.New("e: must be odd and at least 3")
		}
		k.kind, k.rsa = kindRSA, pub
	case "EC":
		var c elliptic.Curve
		switch j.Crv {
		case "P-256":
			c, k.kind = elliptic.P256(), kindP256
		case "P-384":
			c, k.kind = elliptic.P384(), kindP384
		case "P-521":
			c, k.kind = elliptic.P521(), kindP521
		default:
			return k, false, fmt.Errorf("crv %q: not supported", j.Crv)
		}
		size := (c.Params().BitSize + 7) / 8
		x, err := b64("x", j.X)
		if err != nil {
			return k, false, err
		}
		y, err := b64("y", j.Y)
		if err != nil {
			return k, false, err
		}
		if len(x) != size || len(y) != size {
			return k, false, fmt.Errorf("x, y: must be %d bytes each", size)
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(c, point)
		if err != nil {
			return k, false, fmt.Errorf("x, y: %v", err)
		}
		k.ec = pub
	case "OKP":
		if j.Crv != "Ed25519" {
			return k, false, fmt.Errorf("crv %q: not supported", j.Crv)
		}
		x, err := b64("x", j.X)
		if err != nil {
			return k, false, err
		}
		if len(x) != ed25519.PublicKeySize {
			return k, false, fmt.Errorf("x: must be %d bytes", ed25519.PublicKeySize)
		}
		k.kind, k.ed = kindEd25519, ed25519.PublicKey(x)
	case "oct":
		s, err := b64("k", j.K)
		if err != nil {
			return k, false, err
		}
		if len(s) == 0 {
			return k, false, errors.New("k: empty")
		}
		k.kind, k.oct = kindOct, s
	case "":
		return k, false, errors.New("kty: required")
	default:
		return k, false, nil
	}
	if k.alg != "" && algKind(k.alg) != k.kind {
		return k, false, fmt.Errorf("alg %q does not fit kty %q crv %q", k.alg, j.Kty, j.Crv)
	}
	return k, true, nil
}

func b64(field, s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("%s: required", field)
	}
	// Some issuers pad key members; the padding carries nothing.
	b, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("%s: not base64url: %v", field, err)
	}
	return b, nil
}
