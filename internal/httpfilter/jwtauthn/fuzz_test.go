package jwtauthn

import (
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzToken runs arbitrary tokens through the parser and the verifier: no input may panic,
// and none may verify unless it is the signed token itself (the keys are the test's own).
func FuzzToken(f *testing.F) {
	es := newSigner(f, jose.ES256, "es")
	hs := newSigner(f, jose.HS256, "hs")
	ks, err := parseJWKS([]byte(jwksOf(f, es, hs)))
	if err != nil {
		f.Fatal(err)
	}
	good := es.sign(f, defaults(nil))
	goodHS := hs.sign(f, defaults(nil))
	for _, seed := range []string{
		good, goodHS, "", ".", "..", "a.b.c", good + ".", rawToken(`{"alg":"none"}`, defaults(nil), nil),
		rawToken(`{"alg":"HS256","kid":"es"}`, defaults(nil), []byte("sig")), rawToken(`{"alg":"ES256","crit":[]}`, defaults(nil), []byte{1}),
		rawToken(`{"alg":"ES256"}`, claims{"aud": []any{1, "x"}, "exp": 1e300}, []byte{1}),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tok, st := parseToken(raw)
		if st != stOK {
			if tok != nil {
				t.Fatal("token returned with an error")
			}
			return
		}
		if tok.alg == "" || algKind(tok.alg) == 0 || len(tok.sig) == 0 {
			t.Fatalf("accepted header alg %q sig %d bytes", tok.alg, len(tok.sig))
		}
		if ks.verify(tok) == stOK && raw != good && raw != goodHS {
			// Another encoding of a signed token can only differ in what the signature does
			// not cover, which strict base64 rules out.
			t.Fatalf("a token the test did not sign verified: %q", raw)
		}
	})
}
