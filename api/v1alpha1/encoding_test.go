package v1alpha1

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr string
	}{
		{name: "seconds", in: `"5s"`, want: 5 * time.Second},
		{name: "compound", in: `"1h30m"`, want: 90 * time.Minute},
		{name: "zero", in: `"0s"`, want: 0},
		{name: "bare number", in: `30`, wantErr: `duration must be a string`},
		{name: "no unit", in: `"30"`, wantErr: `invalid duration "30"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(tc.in), &d)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Duration != tc.want {
				t.Errorf("got %v, want %v", d.Duration, tc.want)
			}
			out, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			var back Duration
			if err := json.Unmarshal(out, &back); err != nil || back != d {
				t.Errorf("round trip: %s gives %v, %v", out, back, err)
			}
		})
	}
}

func TestEndpointJSON(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     Endpoint
		wantJSON string
		wantErr  string
	}{
		{name: "short form", in: `"10.0.0.1:80"`, want: Endpoint{Address: "10.0.0.1:80"}, wantJSON: `"10.0.0.1:80"`},
		{name: "object with weight", in: `{"address":"a:80","weight":2}`, want: Endpoint{Address: "a:80", Weight: 2}, wantJSON: `{"address":"a:80","weight":2}`},
		{name: "object without weight marshals short", in: `{"address":"a:80"}`, want: Endpoint{Address: "a:80"}, wantJSON: `"a:80"`},
		{name: "misspelt field", in: `{"address":"a:80","wieght":2}`, wantErr: `unknown field "wieght"`},
		{name: "number", in: `80`, wantErr: `endpoint must be`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e Endpoint
			err := json.Unmarshal([]byte(tc.in), &e)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e != tc.want {
				t.Errorf("got %+v, want %+v", e, tc.want)
			}
			out, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.wantJSON {
				t.Errorf("marshal: got %s, want %s", out, tc.wantJSON)
			}
		})
	}
}
