package route

import (
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
)

type overrideConfig struct{ v int }

func (*overrideConfig) Phases() httpfilter.Phases { return 0 }

func (*overrideConfig) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter {
	return nil
}

func TestFilterOverride(t *testing.T) {
	vcfg, rcfg := &overrideConfig{1}, &overrideConfig{2}
	rpf := map[string]any{
		"cors":   rcfg,
		"off":    model.DisabledFilter{},
		"on":     model.EnabledFilter{},
		"vh-off": model.EnabledFilter{}, // the route turns on what its virtual host turns off
	}
	rc := &model.RouteConfig{VirtualHosts: []*model.VirtualHost{{
		Name: "vh", Domains: []string{"*"},
		TypedPerFilterConfig: map[string]any{"cors": vcfg, "vh-only": vcfg, "vh-off": model.DisabledFilter{}},
		Routes: []*model.Route{{
			Name: "r", Match: prefix("/"), DirectResponse: &model.DirectResponseAction{Status: 200},
			TypedPerFilterConfig: rpf,
		}},
	}}}
	tbl := mustCompile(t, rc)
	_, e := tbl.Select(request("h", "/"))
	rpf["cors"] = nil // the table holds its own copy
	for _, tc := range []struct {
		name   string
		filter string
		want   Override
	}{
		{name: "route beats virtual host", filter: "cors", want: Override{Mode: OverrideEnable, Config: rcfg}},
		{name: "virtual host when the route has none", filter: "vh-only", want: Override{Mode: OverrideEnable, Config: vcfg}},
		{name: "disabled", filter: "off", want: Override{Mode: OverrideDisable}},
		{name: "enabled without config", filter: "on", want: Override{Mode: OverrideEnable}},
		{name: "route enables what the virtual host disables", filter: "vh-off", want: Override{Mode: OverrideEnable}},
		{name: "no entry", filter: "unconfigured-filter-name", want: Override{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.FilterOverride(FilterSlot(tc.filter)); got != tc.want {
				t.Fatalf("FilterOverride(%q) = %+v, want %+v", tc.filter, got, tc.want)
			}
		})
	}
	if got := e.RouteName(); got != "r" {
		t.Fatalf("RouteName() = %q", got)
	}
}

func TestFilterSlotStable(t *testing.T) {
	a, b := FilterSlot("slot-test-a"), FilterSlot("slot-test-b")
	if a == b || FilterSlot("slot-test-a") != a {
		t.Fatalf("slots a=%d b=%d, a again=%d", a, b, FilterSlot("slot-test-a"))
	}
}

func TestFilterOverrideRejectsUncompiled(t *testing.T) {
	rc := oneHost(&model.Route{Name: "r", Match: prefix("/"), DirectResponse: &model.DirectResponseAction{Status: 200},
		TypedPerFilterConfig: map[string]any{"x": "not a config"}})
	_, err := Compile(rc, nil)
	if err == nil || !strings.Contains(err.Error(), `typed_per_filter_config["x"]`) {
		t.Fatalf("err = %v", err)
	}
}
