package jwtauthn

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"math"
	"math/big"
	"strings"
)

// maxTokenBytes bounds a token: beyond it the token is refused before any decoding, so a
// huge header cannot make the filter decode and hash megabytes.
const maxTokenBytes = 16 << 10

// status is the outcome of extracting and verifying a token, as Envoy's jwt_verify Status.
// Its message is the local reply body and, spaces turned into underscores, the response
// details.
type status uint8

const (
	stOK status = iota
	stMissed
	stNotYetValid
	stExpired
	stBadFormat
	stHeaderBadBase64
	stHeaderBadJSON
	stHeaderBadAlg
	stHeaderNotImplementedAlg
	stHeaderBadKid
	stHeaderCrit
	stPayloadBadBase64
	stPayloadBadJSON
	stPayloadIssNotString
	stPayloadSubNotString
	stPayloadIatNotInteger
	stPayloadNbfNotInteger
	stPayloadExpNotInteger
	stPayloadAudNotString
	stSignatureBadBase64
	stUnknownIssuer
	stAudienceNotAllowed
	stVerificationFail
	stKidAlgMismatch
	stJwksFetchFail
	stNoExpiration
	stLifetimeTooLong
	numStatus
)

var statusMessages = [numStatus]string{
	stOK:                      "OK",
	stMissed:                  "Jwt is missing",
	stNotYetValid:             "Jwt not yet valid",
	stExpired:                 "Jwt is expired",
	stBadFormat:               "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
	stHeaderBadBase64:         "Jwt header is an invalid Base64url encoded",
	stHeaderBadJSON:           "Jwt header is an invalid JSON",
	stHeaderBadAlg:            "Jwt header [alg] field is required and must be a string",
	stHeaderNotImplementedAlg: "Jwt header [alg] is not supported",
	stHeaderBadKid:            "Jwt header [kid] field is not a string",
	stHeaderCrit:              "Jwt header [crit] is not supported",
	stPayloadBadBase64:        "Jwt payload is an invalid Base64url encoded",
	stPayloadBadJSON:          "Jwt payload is an invalid JSON",
	stPayloadIssNotString:     "Jwt payload [iss] field is not a string",
	stPayloadSubNotString:     "Jwt payload [sub] field is not a string",
	stPayloadIatNotInteger:    "Jwt payload [iat] field is not an integer",
	stPayloadNbfNotInteger:    "Jwt payload [nbf] field is not an integer",
	stPayloadExpNotInteger:    "Jwt payload [exp] field is not an integer",
	stPayloadAudNotString:     "Jwt payload [aud] field is not a string or string list",
	stSignatureBadBase64:      "Jwt signature is an invalid Base64url encoded",
	stUnknownIssuer:           "Jwt issuer is not configured",
	stAudienceNotAllowed:      "Audiences in Jwt are not allowed",
	stVerificationFail:        "Jwt verification fails",
	stKidAlgMismatch:          "Jwks doesn't have key to match kid or alg from Jwt",
	stJwksFetchFail:           "Jwks remote fetch is failed",
	stNoExpiration:            "Jwt doesn't have expiration time",
	stLifetimeTooLong:         "Jwt lifetime exceeds max_lifetime",
}

// details are the response details of each status, computed once.
var statusDetails = func() (d [numStatus]string) {
	for i, m := range statusMessages {
		d[i] = "jwt_authn_access_denied{" + strings.ReplaceAll(m, " ", "_") + "}"
	}
	return d
}()

func (s status) String() string { return statusMessages[s] }

// token is a parsed, not yet verified JWT (JWS compact serialization).
type token struct {
	alg, kid     string
	signingInput string // header.payload, what the signature covers
	payload      string // the payload segment as sent (base64url)
	sig          []byte

	iss, sub       string
	aud            []string
	exp, nbf, iat  int64
	hasExp, hasNbf bool
	hasIat         bool
	claims         map[string]any
}

// algKind maps a JWS alg to the only key kind that may verify it. Tying each alg to one key
// kind is what defeats key confusion: an RSA or EC public key can never serve as an HMAC
// secret, since HS* algorithms look only at "oct" keys. "none" has no kind.
func algKind(alg string) keyKind {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return kindRSA
	case "ES256":
		return kindP256
	case "ES384":
		return kindP384
	case "ES512":
		return kindP521
	case "EdDSA":
		return kindEd25519
	case "HS256", "HS384", "HS512":
		return kindOct
	}
	return 0
}

func algHash(alg string) (crypto.Hash, func() hash.Hash) {
	switch alg[len(alg)-3:] {
	case "384":
		return crypto.SHA384, sha512.New384
	case "512":
		return crypto.SHA512, sha512.New
	}
	return crypto.SHA256, sha256.New
}

var strict = base64.RawURLEncoding.Strict()

// parseToken parses a compact JWS strictly: three unpadded base64url segments, a header
// with a supported alg and no critical extensions, and a JSON object payload whose
// registered claims have their RFC 7519 types.
func parseToken(raw string) (*token, status) {
	if len(raw) > maxTokenBytes {
		return nil, stBadFormat
	}
	h, rest, ok := strings.Cut(raw, ".")
	if !ok {
		return nil, stBadFormat
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(s, '.') >= 0 || h == "" || p == "" {
		return nil, stBadFormat
	}
	t := &token{signingInput: raw[:len(h)+1+len(p)], payload: p}
	hb, err := strict.DecodeString(h)
	if err != nil {
		return nil, stHeaderBadBase64
	}
	if st := t.parseHeader(hb); st != stOK {
		return nil, st
	}
	pb, err := strict.DecodeString(p)
	if err != nil {
		return nil, stPayloadBadBase64
	}
	if st := t.parsePayload(pb); st != stOK {
		return nil, st
	}
	if t.sig, err = strict.DecodeString(s); err != nil || len(t.sig) == 0 {
		return nil, stSignatureBadBase64
	}
	return t, stOK
}

func (t *token) parseHeader(b []byte) status {
	var hdr map[string]json.RawMessage
	if !jsonObject(b) || json.Unmarshal(b, &hdr) != nil {
		return stHeaderBadJSON
	}
	a, ok := hdr["alg"]
	if !ok || json.Unmarshal(a, &t.alg) != nil || a[0] != '"' {
		return stHeaderBadAlg
	}
	if algKind(t.alg) == 0 {
		return stHeaderNotImplementedAlg // "none" among them
	}
	if k, ok := hdr["kid"]; ok {
		if k[0] != '"' || json.Unmarshal(k, &t.kid) != nil {
			return stHeaderBadKid
		}
	}
	// RFC 7515 §4.1.11: a recipient must refuse a token whose critical extensions it does
	// not understand, and we understand none.
	if _, ok := hdr["crit"]; ok {
		return stHeaderCrit
	}
	return stOK
}

func (t *token) parsePayload(b []byte) status {
	if !jsonObject(b) {
		return stPayloadBadJSON
	}
	d := json.NewDecoder(bytes.NewReader(b))
	if d.Decode(&t.claims) != nil || d.More() {
		return stPayloadBadJSON
	}
	var ok bool
	if v, found := t.claims["iss"]; found {
		if t.iss, ok = v.(string); !ok {
			return stPayloadIssNotString
		}
	}
	if v, found := t.claims["sub"]; found {
		if t.sub, ok = v.(string); !ok {
			return stPayloadSubNotString
		}
	}
	switch v := t.claims["aud"].(type) {
	case nil:
		if _, found := t.claims["aud"]; found {
			return stPayloadAudNotString
		}
	case string:
		t.aud = []string{v}
	case []any:
		for _, a := range v {
			s, ok := a.(string)
			if !ok {
				return stPayloadAudNotString
			}
			t.aud = append(t.aud, s)
		}
	default:
		return stPayloadAudNotString
	}
	var st status
	if t.exp, t.hasExp, st = numericDate(t.claims, "exp", stPayloadExpNotInteger); st != stOK {
		return st
	}
	if t.nbf, t.hasNbf, st = numericDate(t.claims, "nbf", stPayloadNbfNotInteger); st != stOK {
		return st
	}
	if t.iat, t.hasIat, st = numericDate(t.claims, "iat", stPayloadIatNotInteger); st != stOK {
		return st
	}
	return stOK
}

// numericDate reads an RFC 7519 NumericDate: seconds since the epoch, fractions dropped.
func numericDate(claims map[string]any, name string, bad status) (int64, bool, status) {
	v, found := claims[name]
	if !found {
		return 0, false, stOK
	}
	f, ok := v.(float64)
	if !ok || f < 0 || f > math.MaxInt64/2 || math.IsNaN(f) {
		return 0, false, bad
	}
	return int64(f), true, stOK
}

// jsonObject reports whether b, less leading white space, starts an object: a header or
// payload that is a JSON string or array is malformed however it decodes.
func jsonObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// verify checks t's signature against the keys of ks that may verify its alg: the key's kind
// must be the alg's, the key's own alg (when it has one) must be the token's, and when both
// carry a kid they must agree.
func (ks *keySet) verify(t *token) status {
	kind := algKind(t.alg)
	matched := false
	for i := range ks.keys {
		k := &ks.keys[i]
		if k.kind != kind || (k.alg != "" && k.alg != t.alg) || (t.kid != "" && k.kid != "" && k.kid != t.kid) {
			continue
		}
		matched = true
		if k.verify(t) {
			return stOK
		}
	}
	if !matched {
		return stKidAlgMismatch
	}
	return stVerificationFail
}

func (k *key) verify(t *token) bool {
	ch, newHash := algHash(t.alg)
	if k.kind == kindEd25519 {
		return ed25519.Verify(k.ed, []byte(t.signingInput), t.sig)
	}
	if k.kind == kindOct {
		m := hmac.New(newHash, k.oct)
		m.Write([]byte(t.signingInput))
		return hmac.Equal(m.Sum(nil), t.sig)
	}
	hh := newHash()
	hh.Write([]byte(t.signingInput))
	digest := hh.Sum(nil)
	switch k.kind {
	case kindRSA:
		if t.alg[0] == 'P' {
			return rsa.VerifyPSS(k.rsa, ch, digest, t.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(k.rsa, ch, digest, t.sig) == nil
	case kindP256, kindP384, kindP521:
		// JWS ECDSA signatures are R and S, each the curve's size, concatenated (RFC 7518
		// §3.4); DER or any other length is refused.
		size := (k.ec.Curve.Params().BitSize + 7) / 8
		if len(t.sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(t.sig[:size])
		s := new(big.Int).SetBytes(t.sig[size:])
		return ecdsa.Verify(k.ec, digest, r, s)
	}
	return false
}
