package route

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/model"
)

type testVars struct {
	remote, local, upstream, proto string
	start                          time.Time
	req                            *header.Map
}

func (v *testVars) DownstreamRemoteAddress() string { return v.remote }
func (v *testVars) DownstreamLocalAddress() string  { return v.local }
func (v *testVars) UpstreamRemoteAddress() string   { return v.upstream }
func (v *testVars) Protocol() string                { return v.proto }
func (v *testVars) StartTime() time.Time            { return v.start }
func (v *testVars) RequestHeaders() *header.Map     { return v.req }

func TestMutationAppendActions(t *testing.T) {
	add := func(name, value string, action model.AppendAction) model.HeaderValueOption {
		return model.HeaderValueOption{Name: name, Value: value, Action: action}
	}
	tests := []struct {
		name    string
		mut     model.HeaderMutation
		headers []string
		want    []string
	}{
		{name: "append to existing", mut: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{add("x", "2", model.AppendIfExistsOrAdd)}},
			headers: []string{"x", "1"}, want: []string{"x=1", "x=2"}},
		{name: "append adds when absent", mut: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{add("x", "2", model.AppendIfExistsOrAdd)}},
			want: []string{"x=2"}},
		{name: "add if absent, present", mut: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{add("x", "2", model.AddIfAbsent)}},
			headers: []string{"x", "1"}, want: []string{"x=1"}},
		{name: "add if absent, absent", mut: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{add("x", "2", model.AddIfAbsent)}},
			headers: []string{"y", "1"}, want: []string{"y=1", "x=2"}},
		{name: "overwrite or add, several present", mut: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{add("x", "3", model.OverwriteIfExistsOrAdd)}},
			headers: []string{"x", "1", "y", "0", "x", "2"}, want: []string{"x=3", "y=0"}},
		{name: "overwrite or add, absent", mut: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{add("x", "3", model.OverwriteIfExistsOrAdd)}},
			want: []string{"x=3"}},
		{name: "overwrite if exists, absent", mut: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{add("x", "3", model.OverwriteIfExists)}},
			headers: []string{"y", "1"}, want: []string{"y=1"}},
		{name: "overwrite if exists, present", mut: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{add("x", "3", model.OverwriteIfExists)}},
			headers: []string{"x", "1"}, want: []string{"x=3"}},
		{name: "empty value skipped", mut: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{add("x", "", model.AppendIfExistsOrAdd)}},
			want: nil},
		{name: "keep empty value", mut: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{{Name: "x", KeepEmptyValue: true}}},
			want: []string{"x="}},
		{name: "empty dynamic value skipped", mut: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{add("x", "%REQ(missing)%", model.AppendIfExistsOrAdd)}},
			want: nil},
		{name: "empty dynamic value kept", mut: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{{Name: "x", Value: "%REQ(missing)%", KeepEmptyValue: true}}},
			want: []string{"x="}},
		{name: "remove before add", mut: model.HeaderMutation{
			RequestRemove: []string{"X"},
			RequestAdd:    []model.HeaderValueOption{add("x", "new", model.AddIfAbsent)}},
			headers: []string{"x", "old"}, want: []string{"x=new"}},
		{name: "decisions see headers before this level's additions", mut: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{
			add("x", "a", model.OverwriteIfExistsOrAdd),
			add("x", "b", model.AddIfAbsent),
			add("y", "c", model.OverwriteIfExists),
			add("y", "d", model.AppendIfExistsOrAdd),
		}}, want: []string{"x=a", "x=b", "y=d"}},
		{name: "overwrites go before appends", mut: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{
			add("x", "appended", model.AppendIfExistsOrAdd),
			add("x", "set", model.OverwriteIfExistsOrAdd),
		}}, headers: []string{"x", "old"}, want: []string{"x=set", "x=appended"}},
		{name: "names lower-cased", mut: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{add("X-Up", "1", model.AppendIfExistsOrAdd)}},
			want: []string{"x-up=1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := compileMutation(&tc.mut)
			if err != nil {
				t.Fatal(err)
			}
			h := request("h", "/", tc.headers...)
			m.ApplyRequest(h, nil)
			if got := fields(h); !slices.Equal(got, tc.want) {
				t.Fatalf("headers = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMutationManyAdds(t *testing.T) {
	var mut model.HeaderMutation
	var want []string
	for i := 0; i < inlineAdds+5; i++ {
		name := "h" + strings.Repeat("x", i)
		mut.RequestAdd = append(mut.RequestAdd, model.HeaderValueOption{Name: name, Value: "v"})
		want = append(want, name+"=v")
	}
	m, err := compileMutation(&mut)
	if err != nil {
		t.Fatal(err)
	}
	h := request("h", "/")
	m.ApplyRequest(h, nil)
	if got := fields(h); !slices.Equal(got, want) {
		t.Fatalf("got %d headers, want %d", len(got), len(want))
	}
}

func TestMutationOrderAcrossLevels(t *testing.T) {
	level := func(value string, action model.AppendAction) model.HeaderMutation {
		return model.HeaderMutation{
			RequestAdd:  []model.HeaderValueOption{{Name: "x", Value: value, Action: action}},
			ResponseAdd: []model.HeaderValueOption{{Name: "x", Value: value, Action: action}},
		}
	}
	build := func(action model.AppendAction, mostSpecificWins bool) *Table {
		rc := &model.RouteConfig{
			Name: "rc", Headers: level("config", action), MostSpecificHeaderMutationsWins: mostSpecificWins,
			VirtualHosts: []*model.VirtualHost{{
				Name: "vh", Domains: []string{"*"}, Headers: level("vhost", action),
				Routes: []*model.Route{{
					Name: "r", Match: prefix("/"), Headers: level("route", action),
					Route: &model.RouteAction{WeightedClusters: []model.WeightedCluster{
						{Name: "c", Weight: 1, Headers: level("cluster", action)},
					}},
				}},
			}},
		}
		return mustCompile(t, rc)
	}
	tests := []struct {
		name             string
		action           model.AppendAction
		mostSpecificWins bool
		want             []string
	}{
		{name: "append order", action: model.AppendIfExistsOrAdd,
			want: []string{"x=cluster", "x=route", "x=vhost", "x=config"}},
		{name: "overwrite: route config wins", action: model.OverwriteIfExistsOrAdd,
			want: []string{"x=config"}},
		{name: "add if absent: most specific wins", action: model.AddIfAbsent,
			want: []string{"x=cluster"}},
		{name: "most specific wins reverses order", action: model.AppendIfExistsOrAdd, mostSpecificWins: true,
			want: []string{"x=cluster", "x=config", "x=vhost", "x=route"}},
		{name: "most specific wins: route overwrites", action: model.OverwriteIfExistsOrAdd, mostSpecificWins: true,
			want: []string{"x=route"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl := build(tc.action, tc.mostSpecificWins)
			req := request("h", "/")
			vh, e := tbl.Select(req)
			_, _, wc := e.Forward.PickCluster(req, 0)
			if wc == nil {
				t.Fatal("weighted cluster mutation missing")
			}
			e.ApplyRequestHeaders(req, wc, nil)
			if got := fields(req); !slices.Equal(got, tc.want) {
				t.Fatalf("request headers = %q, want %q", got, tc.want)
			}
			resp := &header.Map{Status: 200}
			e.ApplyResponseHeaders(resp, wc, nil)
			if got := fields(resp); !slices.Equal(got, tc.want) {
				t.Fatalf("response headers = %q, want %q", got, tc.want)
			}
			// RequestMutations exposes the same order for callers that drive it themselves.
			manual := request("h", "/")
			wc.ApplyRequest(manual, nil)
			for _, m := range tbl.RequestMutations(vh, e) {
				m.ApplyRequest(manual, nil)
			}
			if got := fields(manual); !slices.Equal(got, tc.want) {
				t.Fatalf("via RequestMutations = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMutationVariables(t *testing.T) {
	start := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))
	vars := &testVars{
		remote: "10.0.0.1:5555", local: "10.0.0.2:8080", upstream: "10.0.0.3:80", proto: "HTTP/1.1",
		start: start, req: request("h", "/r", "x-req", "from-request"),
	}
	tests := []struct {
		name     string
		value    string
		response bool
		vars     Vars
		want     string
	}{
		{name: "remote address", value: "%DOWNSTREAM_REMOTE_ADDRESS%", vars: vars, want: "10.0.0.1:5555"},
		{name: "remote without port", value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", vars: vars, want: "10.0.0.1"},
		{name: "remote v6 without port", value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
			vars: &testVars{remote: "[2001:db8::1]:443"}, want: "2001:db8::1"},
		{name: "local address", value: "%DOWNSTREAM_LOCAL_ADDRESS%", vars: vars, want: "10.0.0.2:8080"},
		{name: "protocol", value: "%PROTOCOL%", vars: vars, want: "HTTP/1.1"},
		{name: "upstream", value: "%UPSTREAM_REMOTE_ADDRESS%", vars: vars, want: "10.0.0.3:80"},
		{name: "hostname", value: "%HOSTNAME%", want: hostname()},
		{name: "start time", value: "%START_TIME%", vars: vars, want: "2024-05-06T06:08:09.123Z"},
		{name: "start time format", value: "%START_TIME(%Y/%m/%d %H:%M:%E3S)%", vars: vars, want: "2024/05/06 06:08:09.123"},
		{name: "start time seconds", value: "%START_TIME(%s)%", vars: vars, want: "1714975689"},
		{name: "request header", value: "%REQ(X-In)%", want: "in"},
		{name: "request header alternative", value: "%REQ(x-nope?x-in)%", want: "in"},
		{name: "request header truncated", value: "%REQ(x-long):3%", want: "abc"},
		{name: "request header in response", value: "%REQ(x-req)%", response: true, vars: vars, want: "from-request"},
		{name: "response header", value: "%RESP(x-resp)%", response: true, vars: vars, want: "r"},
		{name: "mixed literal and variables", value: "for=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%;proto=%PROTOCOL%", vars: vars,
			want: "for=10.0.0.1;proto=HTTP/1.1"},
		{name: "escaped percent", value: "100%%", want: "100%"},
		{name: "no vars", value: "ip=%DOWNSTREAM_REMOTE_ADDRESS%", want: "ip="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt := []model.HeaderValueOption{{Name: "x-out", Value: tc.value}}
			mut := model.HeaderMutation{RequestAdd: opt}
			if tc.response {
				mut = model.HeaderMutation{ResponseAdd: opt}
			}
			m, err := compileMutation(&mut)
			if err != nil {
				t.Fatal(err)
			}
			var h *header.Map
			if tc.response {
				h = &header.Map{Status: 200}
				h.Add("x-resp", "r")
				m.ApplyResponse(h, tc.vars)
			} else {
				h = request("h", "/", "x-in", "in", "x-long", "abcdef")
				m.ApplyRequest(h, tc.vars)
			}
			if got := h.Value("x-out"); got != tc.want {
				t.Fatalf("x-out = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMutationLiteralsPrecompiled(t *testing.T) {
	m, err := compileMutation(&model.HeaderMutation{RequestAdd: []model.HeaderValueOption{
		{Name: "a", Value: "plain"}, {Name: "b", Value: "50%%"}, {Name: "c", Value: "%HOSTNAME%"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range m.reqAdd {
		if a.format != nil {
			t.Fatalf("%s: value %q was not compiled to a literal", a.name, a.value)
		}
	}
	if m.reqAdd[1].value != "50%" {
		t.Fatalf("b = %q", m.reqAdd[1].value)
	}
}

func TestFormatErrors(t *testing.T) {
	for _, v := range []string{"%", "%NOPE%", "%REQ()%", "%REQ(x%", "%REQ(x):0%", "%START_TIME(%Q)%", "a%b"} {
		t.Run(v, func(t *testing.T) {
			if _, err := parseFormat(v); err == nil {
				t.Fatalf("parseFormat(%q) succeeded", v)
			}
		})
	}
}
