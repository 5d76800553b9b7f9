package server

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

func adminGet(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	a := s.adminLive.Load()
	if a == nil {
		return 0, ""
	}
	resp, err := http.Get("http://" + a.Addr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestXDSReadyAndConfigDump checks that an xDS data plane is INITIALIZING until its first
// listeners and clusters have warmed, and that /config_dump shows the dynamic resources in
// Envoy's shape: active and warming listeners and clusters, route tables, endpoints, secrets
// with the private key redacted, a refused listener's error_state, and ?resource= and ?mask=
// reaching into them.
func TestXDSReadyAndConfigDump(t *testing.T) {
	m := startMgmt(t, "")
	port := freePort(t)
	m.set(res{
		resourcev3.ListenerType: {tlsListener(t, "web", port, "main", "cert")},
		resourcev3.ClusterType:  {edsCluster("backend")},
	})
	s := runXDS(t, m.addr, false)
	wait.For(t, "the admin API serves", func() bool { code, _ := adminGet(t, s, "/ready"); return code != 0 })
	if code, body := adminGet(t, s, "/ready"); code != http.StatusServiceUnavailable || strings.TrimSpace(body) != "INITIALIZING" {
		t.Fatalf("/ready while the listener and cluster warm: %d %q", code, body)
	}
	wait.For(t, "the warming listener is in the dump", func() bool {
		_, d := adminGet(t, s, "/config_dump?resource=dynamic_listeners")
		return strings.Contains(d, "warming_state")
	})
	if _, d := adminGet(t, s, "/config_dump?resource=dynamic_listeners"); strings.Contains(d, "active_state") {
		t.Fatalf("warming listener shown active:\n%s", d)
	}
	if code, body := adminGet(t, s, "/ready"); code != http.StatusServiceUnavailable || strings.TrimSpace(body) != "INITIALIZING" {
		t.Fatalf("/ready while the listener and cluster warm: %d %q", code, body)
	}
	_, dump := adminGet(t, s, "/config_dump?resource=dynamic_warming_clusters")
	// protojson varies its spacing from build to build on purpose.
	if !strings.Contains(strings.Join(strings.Fields(dump), " "), `"name": "backend"`) {
		t.Fatalf("warming cluster in the dump:\n%s", dump)
	}

	m.set(res{
		resourcev3.ListenerType: {tlsListener(t, "web", port, "main", "cert")},
		resourcev3.RouteType:    {routes("main", "/", "direct:ok")},
		resourcev3.ClusterType:  {edsCluster("backend")},
		resourcev3.EndpointType: {cla("backend", "127.0.0.1:9")},
		resourcev3.SecretType:   {certSecret(t, "cert", "one.test")},
	})
	wait.For(t, "the server is live", func() bool { code, _ := adminGet(t, s, "/ready"); return code == http.StatusOK })

	_, body := adminGet(t, s, "/config_dump")
	var cd adminv3.ConfigDump
	if err := protojson.Unmarshal([]byte(body), &cd); err != nil {
		t.Fatal(err)
	}
	var l *adminv3.ListenersConfigDump
	var c *adminv3.ClustersConfigDump
	var r *adminv3.RoutesConfigDump
	var e *adminv3.EndpointsConfigDump
	var sec *adminv3.SecretsConfigDump
	for _, a := range cd.GetConfigs() {
		msg, err := a.UnmarshalNew()
		if err != nil {
			t.Fatal(err)
		}
		switch v := msg.(type) {
		case *adminv3.ListenersConfigDump:
			l = v
		case *adminv3.ClustersConfigDump:
			c = v
		case *adminv3.RoutesConfigDump:
			r = v
		case *adminv3.EndpointsConfigDump:
			e = v
		case *adminv3.SecretsConfigDump:
			sec = v
		}
	}
	version := fmt.Sprint(m.ver)
	switch {
	case len(l.GetDynamicListeners()) != 1 || l.GetDynamicListeners()[0].GetActiveState().GetVersionInfo() != "1" || l.GetDynamicListeners()[0].GetWarmingState() != nil:
		t.Errorf("dynamic listeners: %v", l)
	case len(c.GetDynamicActiveClusters()) != 1 || len(c.GetDynamicWarmingClusters()) != 0:
		t.Errorf("dynamic clusters: %v", c)
	case len(r.GetDynamicRouteConfigs()) != 1 || r.GetDynamicRouteConfigs()[0].GetVersionInfo() != version:
		t.Errorf("dynamic route configs: %v", r)
	case len(e.GetDynamicEndpointConfigs()) != 1:
		t.Errorf("dynamic endpoint configs: %v", e)
	case len(sec.GetDynamicActiveSecrets()) != 1:
		t.Errorf("dynamic secrets: %v", sec)
	}
	_, secrets := adminGet(t, s, "/config_dump?resource=dynamic_active_secrets")
	if !strings.Contains(strings.Join(strings.Fields(secrets), " "), `"inline_string": "[redacted]"`) || strings.Contains(secrets, "PRIVATE KEY") {
		t.Errorf("secret not redacted:\n%s", secrets)
	}
	_, masked := adminGet(t, s, "/config_dump?resource=dynamic_listeners&mask=name,active_state.listener.name")
	if !strings.Contains(strings.Join(strings.Fields(masked), " "), `"name": "web"`) || strings.Contains(masked, "filter_chains") || strings.Contains(masked, "last_updated") {
		t.Errorf("masked listeners:\n%s", masked)
	}

	// A refused listener shows its error_state; the good one stays active.
	bad := xdsListener(t, "bad", freePort(t), "main")
	bad.TcpFastOpenQueueLength = wrapperspb.UInt32(5)
	m.set(res{
		resourcev3.ListenerType: {tlsListener(t, "web", port, "main", "cert"), bad},
		resourcev3.RouteType:    {routes("main", "/", "direct:ok")},
		resourcev3.ClusterType:  {edsCluster("backend")},
		resourcev3.EndpointType: {cla("backend", "127.0.0.1:9")},
		resourcev3.SecretType:   {certSecret(t, "cert", "one.test")},
	})
	wait.For(t, "the refused listener shows its error", func() bool {
		_, d := adminGet(t, s, "/config_dump?resource=dynamic_listeners")
		return strings.Contains(d, "error_state") && strings.Contains(d, "tcp_fast_open_queue_length")
	})
}
