package cluster

import "testing"

// Reference values from the xxHash project's XXH64 (and github.com/cespare/xxhash); "long"
// exercises the 32-byte stripe loop.
func TestXXHash64(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		seed uint64
		want uint64
	}{
		{name: "empty", in: "", want: 0xef46db3751d8e999},
		{name: "a", in: "a", want: 0xd24ec4f1a98c6e5b},
		{name: "as", in: "as", want: 0x1c330fb2d66be179},
		{name: "asd", in: "asd", want: 0x631c37ce72a97393},
		{name: "asdf", in: "asdf", want: 0x415872f599cea71e},
		{name: "abc", in: "abc", want: 0x44bc2cf5ad770999},
		{name: "long", in: "Nobody inspects the spammish repetition", want: 0xfbcea83c8a378bf1},
		{name: "seeded empty", in: "", seed: 1, want: 0xd5afba1336a3be4b},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := xxhash64([]byte(tc.in), tc.seed); got != tc.want {
				t.Errorf("xxhash64(%q, %d) = %#x, want %#x", tc.in, tc.seed, got, tc.want)
			}
		})
	}
}
