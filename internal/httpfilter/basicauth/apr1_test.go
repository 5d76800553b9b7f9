package basicauth

import "testing"

// The expected hashes come from `openssl passwd -apr1 -salt SALT PASSWORD`.
func TestAPR1(t *testing.T) {
	for _, tc := range []struct {
		name, password, salt, want string
	}{
		{name: "eight-byte salt", password: "secret", salt: "saltsalt", want: "$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0"},
		{name: "one-byte password", password: "x", salt: "ab", want: "$apr1$ab$eIePjsejfBGR8ITtu2z0U1"},
		{name: "password over 16 bytes", password: "a-much-longer-password-than-sixteen-bytes", salt: "q1", want: "$apr1$q1$v3u2SAPxXhQsJtaM1nCGY1"},
		{name: "UTF-8 password", password: "pässwörd", salt: "Zz./9", want: "$apr1$Zz./9$36TBRP3bGFHBDWGUdAD880"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(apr1(nil, []byte(tc.password), tc.salt)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
