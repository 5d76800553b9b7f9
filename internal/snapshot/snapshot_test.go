package snapshot

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/router"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/route"
	"github.com/nuncio-gw/nuncio/internal/xds/decode"
)

// hcmYAML is an http_connection_manager whose route config is named rc and whose one virtual
// host is named vh, so tests can tell which build a route table came from.
func hcmYAML(rc, vh string) string {
	return `
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: t
          route_config:
            name: ` + rc + `
            virtual_hosts:
            - name: ` + vh + `
              domains: ["*"]
              routes:
              - match: {prefix: /}
                direct_response: {status: 200}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
`
}

// listenerYAML is one listener on 127.0.0.1 with the given filter chains (each the YAML of a
// chain's fields after "- ").
func listenerYAML(name string, chains ...string) string {
	s := `
  - name: ` + name + `
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:`
	for _, c := range chains {
		s += "\n    - " + c
	}
	return s
}

// chainYAML is a filter chain, named unless name is "".
func chainYAML(name, rc, vh string) string {
	s := ""
	if name != "" {
		s = "name: " + name + "\n      "
	}
	return s + "filters:" + hcmYAML(rc, vh)
}

// portChainYAML is a named filter chain matching one destination port, so that several can
// share a listener.
func portChainYAML(name string, port int, rc, vh string) string {
	return "name: " + name + "\n      filter_chain_match: {destination_port: " + strconv.Itoa(port) + "}\n      " + "filters:" + hcmYAML(rc, vh)
}

func decodeModel(t *testing.T, listeners ...string) *model.Bootstrap {
	t.Helper()
	src, err := envoyconfig.UnmarshalBootstrap([]byte("static_resources:\n  listeners:" + strings.Join(listeners, "")))
	if err != nil {
		t.Fatal(err)
	}
	b, err := decode.Bootstrap(src, httpfilter.Default)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newOptions(t *testing.T, slots *RouteSlots) Options {
	t.Helper()
	cm := cluster.NewManager(cluster.Options{})
	t.Cleanup(cm.Close)
	return Options{Clusters: cm, Routes: slots}
}

// vhostOf names the first virtual host of the table in s, or "" for an empty slot.
func vhostOf(s *route.Slot) string {
	t := s.Load()
	if t == nil || len(t.VirtualHosts()) == 0 {
		return ""
	}
	return t.VirtualHosts()[0].Name
}

func slotKeys(r *RouteSlots) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var keys []string
	for k := range r.m {
		keys = append(keys, k)
	}
	return keys
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name      string
		model     func(t *testing.T) *model.Bootstrap
		wantErr   string // substring; "" for success
		listeners int
		keys      []string // route slot keys after the build
	}{
		{
			name: "one listener, unnamed chain",
			model: func(t *testing.T) *model.Bootstrap {
				return decodeModel(t, listenerYAML("a", chainYAML("", "rc", "v1")))
			},
			listeners: 1,
			keys:      []string{"a/index:0/rc"},
		},
		{
			name: "slots are per listener and chain even for one route config name",
			model: func(t *testing.T) *model.Bootstrap {
				return decodeModel(t,
					listenerYAML("a", chainYAML("", "rc", "v1")),
					listenerYAML("b", chainYAML("east", "rc", "v1")))
			},
			listeners: 2,
			keys:      []string{"a/index:0/rc", "b/name:east/rc"},
		},
		{
			name: "default filter chain",
			model: func(t *testing.T) *model.Bootstrap {
				b := decodeModel(t, listenerYAML("a", chainYAML("", "rc", "v1")))
				l := b.Listeners[0]
				l.DefaultFilterChain, l.FilterChains = l.FilterChains[0], nil
				return b
			},
			listeners: 1,
			keys:      []string{"a/default/rc"},
		},
		{
			name: "chain without a connection manager",
			model: func(t *testing.T) *model.Bootstrap {
				b := decodeModel(t, listenerYAML("a", chainYAML("c", "rc", "v1")))
				b.Listeners[0].FilterChains[0].HCM = nil
				return b
			},
			wantErr: `listeners[0] "a": `,
		},
		{
			name: "connection manager without route_config",
			model: func(t *testing.T) *model.Bootstrap {
				b := decodeModel(t, listenerYAML("a", chainYAML("c", "rc", "v1")))
				b.Listeners[0].FilterChains[0].HCM.RouteConfig = nil
				return b
			},
			wantErr: "has no route_config",
		},
		{
			name: "second listener fails",
			model: func(t *testing.T) *model.Bootstrap {
				b := decodeModel(t,
					listenerYAML("a", chainYAML("", "rc", "v1")),
					listenerYAML("b", chainYAML("", "rc", "v1")))
				b.Listeners[1].Address.Host = "localhost"
				return b
			},
			wantErr: `listeners[1] "b": `,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			slots := NewRouteSlots()
			b := tc.model(t)
			snap, err := Build(b, "source", newOptions(t, slots))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if snap != nil {
					t.Errorf("a failed build returned a snapshot")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(snap.Listeners) != tc.listeners {
				t.Errorf("%d listeners, want %d", len(snap.Listeners), tc.listeners)
			}
			if snap.Model != b || snap.Source != "source" || snap.Built.IsZero() {
				t.Errorf("snapshot does not carry its model, source and build time: %+v", snap)
			}
			keys := slotKeys(slots)
			if slices.Sort(keys); !slices.Equal(keys, tc.keys) {
				t.Errorf("slot keys %v, want %v", keys, tc.keys)
			}
			// A first build fills its fresh slots at once: nothing reads them before the
			// listeners start, and hcm.New needs a table.
			for _, k := range keys {
				if vhostOf(slots.m[k]) != "v1" {
					t.Errorf("slot %s holds %q, want the v1 table", k, vhostOf(slots.m[k]))
				}
			}
			if len(snap.routes) != 0 {
				t.Errorf("%d pending routes on a first build, want 0", len(snap.routes))
			}
		})
	}
}

func TestBuildVersionsIncrease(t *testing.T) {
	opts := newOptions(t, nil)
	var last uint64
	for i := range 3 {
		snap, err := Build(decodeModel(t, listenerYAML("a", chainYAML("", "rc", "v1"))), nil, opts)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Version <= last {
			t.Fatalf("build %d: version %d after %d", i, snap.Version, last)
		}
		last = snap.Version
	}
}

// TestCommit follows one route slot through successive builds: a build does not touch a slot
// in use, Commit publishes, the rollback restores, and a failed build leaves slots alone.
func TestCommit(t *testing.T) {
	slots := NewRouteSlots()
	opts := newOptions(t, slots)
	build := func(vh string) (*Snapshot, error) {
		return Build(decodeModel(t, listenerYAML("a", chainYAML("web", "rc", vh))), nil, opts)
	}
	if _, err := build("v1"); err != nil {
		t.Fatal(err)
	}
	slot := slots.m["a/name:web/rc"]
	if slot == nil {
		t.Fatalf("no slot for a/name:web/rc; have %v", slotKeys(slots))
	}

	s2, err := build("v2")
	if err != nil {
		t.Fatal(err)
	}
	if got := vhostOf(slot); got != "v1" {
		t.Fatalf("after building v2, slot holds %q: a build must not publish", got)
	}
	rollback := s2.Commit()
	if got := vhostOf(slot); got != "v2" {
		t.Fatalf("after Commit, slot holds %q, want v2", got)
	}
	rollback()
	if got := vhostOf(slot); got != "v1" {
		t.Fatalf("after rollback, slot holds %q, want v1", got)
	}
	s2.Commit()

	// A build that fails on a later listener must leave the slot of an earlier one alone.
	b := decodeModel(t,
		listenerYAML("a", chainYAML("web", "rc", "v3")),
		listenerYAML("b", chainYAML("", "rc", "v3")))
	b.Listeners[1].Address.Host = "not-an-ip"
	if _, err := Build(b, nil, opts); err == nil {
		t.Fatal("build with a bad listener address succeeded")
	}
	if got := vhostOf(slot); got != "v2" {
		t.Fatalf("after a failed build, slot holds %q, want v2", got)
	}
}

// TestRouteSlotKeys checks which changes keep a connection's slot: a named chain keeps it when
// chains are reordered, an unnamed one is keyed by position, and a renamed route config gets a
// new slot.
func TestRouteSlotKeys(t *testing.T) {
	tests := []struct {
		name      string
		first     string
		second    string
		wantReuse map[string]bool // key in the first build → whether the second build reuses it
	}{
		{
			name:      "named chains reordered",
			first:     listenerYAML("a", portChainYAML("east", 1, "rc", "v1"), portChainYAML("west", 2, "rc", "v1")),
			second:    listenerYAML("a", portChainYAML("west", 2, "rc", "v2"), portChainYAML("east", 1, "rc", "v2")),
			wantReuse: map[string]bool{"a/name:east/rc": true, "a/name:west/rc": true},
		},
		{
			name:      "route config renamed",
			first:     listenerYAML("a", chainYAML("east", "rc", "v1")),
			second:    listenerYAML("a", chainYAML("east", "other", "v2")),
			wantReuse: map[string]bool{"a/name:east/rc": false},
		},
		{
			name:      "listener renamed",
			first:     listenerYAML("a", chainYAML("", "rc", "v1")),
			second:    listenerYAML("b", chainYAML("", "rc", "v2")),
			wantReuse: map[string]bool{"a/index:0/rc": false},
		},
		{
			name:      "unnamed chain keeps its position",
			first:     listenerYAML("a", chainYAML("", "rc", "v1")),
			second:    listenerYAML("a", chainYAML("", "rc", "v2")),
			wantReuse: map[string]bool{"a/index:0/rc": true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			slots := NewRouteSlots()
			opts := newOptions(t, slots)
			if _, err := Build(decodeModel(t, tc.first), nil, opts); err != nil {
				t.Fatal(err)
			}
			before := map[string]*route.Slot{}
			for k, s := range slots.m {
				before[k] = s
			}
			s2, err := Build(decodeModel(t, tc.second), nil, opts)
			if err != nil {
				t.Fatal(err)
			}
			s2.Commit()
			for k, reuse := range tc.wantReuse {
				s, ok := before[k]
				if !ok {
					t.Fatalf("first build made no slot %q; have %v", k, slotKeys(slots))
				}
				if got := vhostOf(s) == "v2"; got != reuse {
					t.Errorf("slot %q holds %q after the second commit; reused = %v, want %v", k, vhostOf(s), got, reuse)
				}
			}
		})
	}
}

func TestStore(t *testing.T) {
	var s Store
	if s.Load() != nil {
		t.Fatal("a new Store holds a snapshot")
	}
	a, b := &Snapshot{Version: 1}, &Snapshot{Version: 2}
	if prev := s.Swap(a); prev != nil {
		t.Errorf("first Swap returned %v, want nil", prev)
	}
	if prev := s.Swap(b); prev != a {
		t.Errorf("second Swap returned %v, want the first snapshot", prev)
	}
	if s.Load() != b {
		t.Errorf("Load does not return the last swapped snapshot")
	}
}
