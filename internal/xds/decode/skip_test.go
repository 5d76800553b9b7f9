package decode_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// recordHandler keeps every record logged through it.
type recordHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r.Clone())
	h.mu.Unlock()
	return nil
}

func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

// skipped returns the filter attribute of each "optional HTTP filter skipped" record.
func (h *recordHandler) skipped() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		if !strings.HasPrefix(r.Message, "optional HTTP filter skipped") {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "filter" {
				out = append(out, a.Value.String())
			}
			return true
		})
	}
	return out
}

// optionalListener is a listener whose chain has an unknown optional filter named name, and
// whose route has an optional override for it.
func optionalListener(listener string, port int, name string) string {
	return `
  - name: ` + listener + `
    address:
      socket_address: {address: 127.0.0.1, port_value: ` + strconv.Itoa(port) + `}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ` + listener + `
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /}
                typed_per_filter_config:
                  ` + name + `:
                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                    is_optional: true
                    config:
                      "@type": type.googleapis.com/xds.type.v3.TypedStruct
                      type_url: type.googleapis.com/example.future.v1.PerRoute
                direct_response: {status: 200}
          http_filters:
          - name: ` + name + `
            is_optional: true
            disabled: true
            typed_config:
              "@type": type.googleapis.com/xds.type.v3.TypedStruct
              type_url: type.googleapis.com/example.future.v1.Config
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
`
}

// TestOptionalFilterSkipLogged: an optional filter nobody registered is skipped, and the skip
// is logged once per decoded configuration with the filter's name, however many listeners and
// routes name it.
func TestOptionalFilterSkipLogged(t *testing.T) {
	h := &recordHandler{}
	prev := slog.Default()
	slog.SetDefault(slog.New(h))
	t.Cleanup(func() { slog.SetDefault(prev) })

	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "one listener",
			yaml: "static_resources:\n  listeners:" + optionalListener("a", 8081, "future.filter"),
			want: []string{"future.filter"},
		},
		{
			name: "two listeners naming the same filter",
			yaml: "static_resources:\n  listeners:" + optionalListener("a", 8081, "future.filter") + optionalListener("b", 8082, "future.filter"),
			want: []string{"future.filter"},
		},
		{
			name: "two filters",
			yaml: "static_resources:\n  listeners:" + optionalListener("a", 8081, "future.one") + optionalListener("b", 8082, "future.two"),
			want: []string{"future.one", "future.two"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.mu.Lock()
			h.records = nil
			h.mu.Unlock()
			b, err := decodeBytes([]byte(tc.yaml), testRegistry())
			if err != nil {
				t.Fatal(err)
			}
			if n := len(b.Listeners[0].FilterChains[0].HCM.HTTPFilters); n != 1 {
				t.Errorf("%d filters left, want the router alone", n)
			}
			if got := h.skipped(); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("logged skips %q, want %q", got, tc.want)
			}
		})
	}
}
