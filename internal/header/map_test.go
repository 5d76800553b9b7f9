package header

import "testing"

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   int64
		wantOK bool
	}{
		{name: "zero", in: "0", want: 0, wantOK: true},
		{name: "number", in: "1048576", want: 1048576, wantOK: true},
		{name: "eighteen digits", in: "999999999999999999", want: 999999999999999999, wantOK: true},
		{name: "nineteen digits", in: "1000000000000000000"},
		{name: "empty", in: ""},
		{name: "sign", in: "+5"},
		{name: "negative", in: "-1"},
		{name: "space", in: " 5"},
		{name: "list", in: "5,5"},
		{name: "hex", in: "0x5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseDecimal(tc.in)
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("ParseDecimal(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
