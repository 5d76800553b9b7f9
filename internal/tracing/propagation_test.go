package tracing

import (
	"encoding/hex"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
)

func TestExtract(t *testing.T) {
	for _, tc := range []struct {
		name     string
		headers  map[string]string
		valid    bool
		traceID  string
		spanID   string
		decided  bool
		sampled  bool
		wantProp propagation
	}{
		{name: "traceparent", headers: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
			valid: true, traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "00f067aa0ba902b7", decided: true, sampled: true},
		{name: "traceparent unsampled", headers: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
			valid: true, traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "00f067aa0ba902b7", decided: true},
		{name: "future version with extra field", headers: map[string]string{"traceparent": "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what"},
			valid: true, traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "00f067aa0ba902b7", decided: true, sampled: true},
		{name: "version 00 with extra field", headers: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"}},
		{name: "zero trace id", headers: map[string]string{"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}},
		{name: "upper case", headers: map[string]string{"traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}},
		{name: "version ff", headers: map[string]string{"traceparent": "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
		{name: "bad traceparent falls back to b3", headers: map[string]string{"traceparent": "junk", "b3": "463ac35c9f6413ad-a2fb4a1d1a96d312-0"},
			valid: true, traceID: "0000000000000000463ac35c9f6413ad", spanID: "a2fb4a1d1a96d312", decided: true, wantProp: propB3Single},
		{name: "b3 single with parent", headers: map[string]string{"b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d-05e3ac9a4f6e3b90"},
			valid: true, traceID: "80f198ee56343ba864fe8b2a57d3eff7", spanID: "e457b5a2e4d86bd1", decided: true, sampled: true, wantProp: propB3Single},
		{name: "b3 single no decision", headers: map[string]string{"b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1"},
			valid: true, traceID: "80f198ee56343ba864fe8b2a57d3eff7", spanID: "e457b5a2e4d86bd1", wantProp: propB3Single},
		{name: "b3 deny only", headers: map[string]string{"b3": "0"}, decided: true, wantProp: propB3Single},
		{name: "b3 bad sampled", headers: map[string]string{"b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-x"}, wantProp: propB3Single},
		{name: "b3 multi", headers: map[string]string{"x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "x-b3-spanid": "e457b5a2e4d86bd1", "x-b3-sampled": "true"},
			valid: true, traceID: "80f198ee56343ba864fe8b2a57d3eff7", spanID: "e457b5a2e4d86bd1", decided: true, sampled: true, wantProp: propB3Multi},
		{name: "b3 multi debug", headers: map[string]string{"x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "x-b3-spanid": "e457b5a2e4d86bd1", "x-b3-flags": "1"},
			valid: true, traceID: "80f198ee56343ba864fe8b2a57d3eff7", spanID: "e457b5a2e4d86bd1", decided: true, sampled: true, wantProp: propB3Multi},
		{name: "b3 multi bad span", headers: map[string]string{"x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "x-b3-spanid": "short"}, wantProp: propB3Multi},
		{name: "nothing", headers: map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h header.Map
			for k, v := range tc.headers {
				h.Add(k, v)
			}
			sc, prop := extract(&h)
			if sc.valid != tc.valid || sc.decided != tc.decided || sc.sampled != tc.sampled || prop != tc.wantProp {
				t.Fatalf("got valid=%v decided=%v sampled=%v prop=%v", sc.valid, sc.decided, sc.sampled, prop)
			}
			if tc.valid {
				if got := hex.EncodeToString(sc.traceID[:]); got != tc.traceID {
					t.Errorf("trace id %s", got)
				}
				if got := hex.EncodeToString(sc.spanID[:]); got != tc.spanID {
					t.Errorf("span id %s", got)
				}
			}
		})
	}
}

func TestInjectRoundTrip(t *testing.T) {
	var tid [16]byte
	var sid, pid [8]byte
	hex.Decode(tid[:], []byte("4bf92f3577b34da6a3ce929d0e0e4736"))
	hex.Decode(sid[:], []byte("00f067aa0ba902b7"))
	hex.Decode(pid[:], []byte("a2fb4a1d1a96d312"))
	var h header.Map
	h.Add("x-b3-flags", "1")
	inject(&h, tid, sid, pid, true, propB3Single|propB3Multi)
	for name, want := range map[string]string{
		"traceparent":       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"b3":                "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1-a2fb4a1d1a96d312",
		"x-b3-traceid":      "4bf92f3577b34da6a3ce929d0e0e4736",
		"x-b3-spanid":       "00f067aa0ba902b7",
		"x-b3-parentspanid": "a2fb4a1d1a96d312",
		"x-b3-sampled":      "1",
	} {
		if got := h.Value(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if h.Has("x-b3-flags") {
		t.Error("x-b3-flags kept")
	}
	sc, _ := extract(&h)
	if !sc.valid || sc.traceID != tid || sc.spanID != sid || !sc.sampled {
		t.Errorf("round trip: %+v", sc)
	}
}
