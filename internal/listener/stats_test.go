package listener

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

func TestStatAddress(t *testing.T) {
	tests := []struct {
		name string
		addr string
		want string
	}{
		{name: "ipv4 any", addr: "0.0.0.0:8080", want: "0.0.0.0_8080"},
		{name: "ipv6 any", addr: "[::]:8080", want: "[__]_8080"},
		{name: "ipv6 loopback", addr: "[::1]:443", want: "[__1]_443"},
		{name: "ipv4-mapped", addr: "[::ffff:127.0.0.1]:80", want: "127.0.0.1_80"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := StatAddress(netip.MustParseAddrPort(tc.addr)); got != tc.want {
				t.Errorf("StatAddress(%s) = %q, want %q", tc.addr, got, tc.want)
			}
		})
	}
}

func statValue(st *stats.Store, name string) (int64, bool) {
	for _, s := range st.All() {
		if s.Name == name {
			if s.Kind == stats.KindHistogram {
				return int64(s.Histogram.Count), true
			}
			return s.Value, true
		}
	}
	return 0, false
}

// Connections move listener.<address>.* as Envoy's do, the connection limit counts
// downstream_cx_overflow, and a removed listener's stats leave the store once it drained.
func TestListenerStats(t *testing.T) {
	leak.Check(t)
	st := stats.NewStore()
	l := plainListener("counted", loopback(0), "c")
	l.ConnectionLimit = 1
	m := newTestManager(t, Options{Stats: st})
	if err := m.Apply([]*Compiled{mustCompile(t, l, nil)}); err != nil {
		t.Fatal(err)
	}
	addr := addrOf(t, m, "counted")
	prefix := "listener." + StatAddress(netip.MustParseAddrPort(addr)) + "."
	if !strings.HasPrefix(prefix, "listener.127.0.0.1_") {
		t.Fatalf("prefix %q", prefix)
	}
	held := dialPlain(t, addr)
	if got, _ := held.greeting(); got != "c" {
		t.Fatalf("greeting %q", got)
	}
	dialPlain(t, addr).expectClosed(t)
	wait.For(t, "the overflow to be counted", func() bool {
		v, _ := statValue(st, prefix+"downstream_cx_overflow")
		return v == 1
	})
	for name, want := range map[string]int64{"downstream_cx_total": 1, "downstream_cx_active": 1, "downstream_cx_destroy": 0} {
		if v, ok := statValue(st, prefix+name); !ok || v != want {
			t.Errorf("%s = %d (present %v), want %d", prefix+name, v, ok, want)
		}
	}
	held.Close()
	wait.For(t, "the connection to be destroyed", func() bool {
		v, _ := statValue(st, prefix+"downstream_cx_destroy")
		a, _ := statValue(st, prefix+"downstream_cx_active")
		n, _ := statValue(st, prefix+"downstream_cx_length_ms")
		return v == 1 && a == 0 && n == 1
	})

	if err := m.Apply(nil); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the removed listener's stats to leave the store", func() bool {
		_, ok := statValue(st, prefix+"downstream_cx_total")
		return !ok
	})
}
