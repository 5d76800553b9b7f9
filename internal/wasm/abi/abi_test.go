package abi

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

func TestSplice(t *testing.T) {
	const orig = "[original body]"
	for _, tc := range []struct {
		name          string
		start, length uint64
		data, want    string
	}{
		{name: "prepend", start: 0, length: 0, data: "<", want: "<" + orig},
		{name: "append", start: 1 << 31, length: 0, data: ">", want: orig + ">"},
		{name: "replace", start: 0, length: 1 << 31, data: "new", want: "new"},
		{name: "middle", start: 1, length: 8, data: "X", want: "[X body]"},
		{name: "delete", start: 0, length: 10, data: "", want: "body]"},
		{name: "grow in the middle", start: 1, length: 0, data: "0123456789012345678901234567890123456789", want: "[0123456789012345678901234567890123456789original body]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, spare := range []int{0, 64} {
				buf := append(make([]byte, 0, len(orig)+spare), orig...)
				if got := splice(buf, tc.start, tc.length, []byte(tc.data)); string(got) != tc.want {
					t.Errorf("spare %d: got %q, want %q", spare, got, tc.want)
				}
			}
		})
	}
}

func TestPairsRoundTrip(t *testing.T) {
	m := &header.Map{Method: "GET", Path: "/a?b", Authority: "x"}
	m.Add("k", "v")
	m.Add("empty", "")
	h := HeadersOf(m)
	buf := make([]byte, pairsSize(h))
	encodePairs(buf, h)
	var got Pairs
	if !decodePairs(buf, func(n, v []byte) { got.Add(string(n), string(v)) }) {
		t.Fatal("decode failed")
	}
	want := Pairs{{Name: ":method", Value: "GET"}, {Name: ":authority", Value: "x"}, {Name: ":path", Value: "/a?b"}, {Name: "k", Value: "v"}, {Name: "empty"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("pair %d = %v, want %v", k, got[k], want[k])
		}
	}
}

// FuzzDecodePairs: whatever a guest hands over, decoding never reads outside it, and what
// decodes re-encodes to the same bytes when it was canonical.
func FuzzDecodePairs(f *testing.F) {
	p := Pairs{{Name: "a", Value: "b"}}
	seed := make([]byte, pairsSize(&p))
	encodePairs(seed, &p)
	f.Add(seed)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got Pairs
		if !decodePairs(b, func(n, v []byte) { got.Add(string(n), string(v)) }) {
			return
		}
		out := make([]byte, pairsSize(&got))
		encodePairs(out, &got)
		if len(b) > 0 && len(out) > len(b) {
			t.Fatalf("re-encoding is longer (%d) than the input (%d)", len(out), len(b))
		}
	})
}

func TestSharedDataCAS(t *testing.T) {
	d := NewSharedData()
	if _, _, ok := d.Get("vm", []byte("k"), nil); ok {
		t.Fatal("found a key never set")
	}
	if st := d.Set("vm", []byte("k"), []byte("1"), 0); st != StatusOK {
		t.Fatal(st)
	}
	v, cas, ok := d.Get("vm", []byte("k"), nil)
	if !ok || string(v) != "1" || cas == 0 {
		t.Fatalf("get = %q %d %v", v, cas, ok)
	}
	if st := d.Set("vm", []byte("k"), []byte("2"), cas+1); st != StatusCasMismatch {
		t.Errorf("stale cas: %v, want CasMismatch", st)
	}
	if st := d.Set("vm", []byte("k"), []byte("2"), cas); st != StatusOK {
		t.Errorf("current cas: %v", st)
	}
	if _, _, ok := d.Get("other-vm", []byte("k"), nil); ok {
		t.Error("a key leaked across vm ids")
	}
}

func TestQueues(t *testing.T) {
	q := NewQueues()
	notified := 0
	id := q.Register("vm", []byte("q"), func(uint32) { notified++ })
	if got, ok := q.Resolve("vm", []byte("q")); !ok || got != id {
		t.Fatalf("resolve = %d %v, want %d", got, ok, id)
	}
	if _, st := q.Dequeue(id, nil); st != StatusEmpty {
		t.Errorf("empty dequeue: %v", st)
	}
	q.Enqueue(id, []byte("a"))
	q.Enqueue(id, []byte("b"))
	if v, st := q.Dequeue(id, nil); st != StatusOK || string(v) != "a" || notified != 2 {
		t.Errorf("dequeue = %q %v, notified %d", v, st, notified)
	}
	if st := q.Enqueue(99, nil); st != StatusNotFound {
		t.Errorf("unknown queue: %v", st)
	}
}

func TestMetrics(t *testing.T) {
	store := stats.NewStore()
	m := NewMetrics()
	m.ExportTo(store.Scope(""))
	c, _ := m.Define(MetricCounter, []byte("requests"))
	if again, _ := m.Define(MetricCounter, []byte("requests")); again != c {
		t.Error("a metric defined twice got two ids")
	}
	g, _ := m.Define(MetricGauge, []byte("inflight"))
	hist, _ := m.Define(MetricHistogram, []byte("size"))
	for _, tc := range []struct {
		name string
		st   Status
		want Status
	}{
		{name: "counter up", st: m.increment(c, 2), want: StatusOK},
		{name: "counter down", st: m.increment(c, -1), want: StatusBadArgument},
		{name: "gauge down", st: m.increment(g, -3), want: StatusOK},
		{name: "histogram increment", st: m.increment(hist, 1), want: StatusBadArgument},
		{name: "histogram record", st: m.record(hist, 10), want: StatusOK},
		{name: "unknown", st: m.increment(42, 1), want: StatusNotFound},
	} {
		if tc.st != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.st, tc.want)
		}
	}
	if _, st := m.Define(7, []byte("x")); st != StatusBadArgument {
		t.Error("unknown metric type accepted")
	}
	if m.Get(c).Value.Load() != 2 || m.Get(g).Value.Load() != -3 || m.Get(hist).Count.Load() != 1 {
		t.Errorf("values %d %d %d", m.Get(c).Value.Load(), m.Get(g).Value.Load(), m.Get(hist).Count.Load())
	}
	got := map[string]int64{}
	for _, st := range store.All() {
		got[st.Name] = st.Value
	}
	if got["wasmcustom.requests"] != 2 || got["wasmcustom.inflight"] != -3 {
		t.Errorf("exported stats %v, want wasmcustom.requests 2 and wasmcustom.inflight -3", got)
	}
	if _, ok := got["wasmcustom.size"]; !ok {
		t.Errorf("histogram not exported: %v", got)
	}
}

func TestAttributes(t *testing.T) {
	req := &header.Map{Method: "POST", Scheme: "https", Authority: "example.com", Path: "/p/q?x=1"}
	req.Add("user-agent", "ua")
	a := &Attributes{
		Request:     HeadersOf(req),
		Source:      netip.MustParseAddrPort("127.0.0.1:5000"),
		Destination: netip.MustParseAddrPort("[::1]:8080"),
		Protocol:    "HTTP/1.1",
		Start:       time.Unix(1, 0),
	}
	le := func(v int64) string { return string(binary.LittleEndian.AppendUint64(nil, uint64(v))) }
	for _, tc := range []struct {
		path, want string
		found      bool
	}{
		{path: "request\x00path", want: "/p/q?x=1", found: true},
		{path: "request\x00url_path", want: "/p/q", found: true},
		{path: "request\x00query", want: "x=1", found: true},
		{path: "request\x00host", want: "example.com", found: true},
		{path: "request\x00method", want: "POST", found: true},
		{path: "request\x00useragent", want: "ua", found: true},
		{path: "request\x00headers\x00user-agent", want: "ua", found: true},
		{path: "request\x00protocol", want: "HTTP/1.1", found: true},
		{path: "request\x00time", want: le(1e9), found: true},
		{path: "source\x00address", want: "127.0.0.1:5000", found: true},
		{path: "source\x00port", want: le(5000), found: true},
		{path: "destination\x00address", want: "[::1]:8080", found: true},
		{path: "response\x00code"},
		{path: "nonsense"},
	} {
		got, ok := a.AppendProperty(nil, tc.path)
		if ok != tc.found || string(got) != tc.want {
			t.Errorf("%q = %q %v, want %q %v", tc.path, got, ok, tc.want, tc.found)
		}
	}
	if got, ok := a.AppendProperty([]byte("pre"), "request\x00method"); !ok || !bytes.Equal(got, []byte("prePOST")) {
		t.Errorf("append = %q", got)
	}
}
