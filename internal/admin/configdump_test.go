package admin

import (
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func mustAnyT(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// testDump is a config dump with two static clusters, a static listener and a dynamic one.
func testDump(t *testing.T) []byte {
	t.Helper()
	updated := &timestamppb.Timestamp{Seconds: 1700000000}
	addr := func(port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}}
	}
	dump := &adminv3.ConfigDump{Configs: []*anypb.Any{
		mustAnyT(t, &adminv3.ListenersConfigDump{
			VersionInfo: "3",
			StaticListeners: []*adminv3.ListenersConfigDump_StaticListener{{
				Listener: mustAnyT(t, &listenerv3.Listener{Name: "http", Address: addr(8080)}), LastUpdated: updated,
			}},
			DynamicListeners: []*adminv3.ListenersConfigDump_DynamicListener{{
				Name: "xds", ActiveState: &adminv3.ListenersConfigDump_DynamicListenerState{
					VersionInfo: "v7", Listener: mustAnyT(t, &listenerv3.Listener{Name: "xds", Address: addr(9090)}),
				},
			}},
		}),
		mustAnyT(t, &adminv3.ClustersConfigDump{
			VersionInfo: "3",
			StaticClusters: []*adminv3.ClustersConfigDump_StaticCluster{
				{Cluster: mustAnyT(t, &clusterv3.Cluster{Name: "a", ConnectTimeout: durationpb.New(1e9), AltStatName: "alt_a"}), LastUpdated: updated},
				{Cluster: mustAnyT(t, &clusterv3.Cluster{Name: "b", ConnectTimeout: durationpb.New(2e9)}), LastUpdated: updated},
			},
		}),
	}}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(dump)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConfigDumpQuery(t *testing.T) {
	src := newTestSource()
	src.dump = testDump(t)
	s := start(t, Options{Source: src})
	tests := []struct {
		name, path string
		wantCode   int
		wantBody   string // JSON, compared by value; or the text of an error
	}{
		{
			name: "resource static clusters", path: "/config_dump?resource=static_clusters", wantCode: 200,
			wantBody: `{"configs":[
				{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster",
				 "cluster":{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"a","connect_timeout":"1s","alt_stat_name":"alt_a"},
				 "last_updated":"2023-11-14T22:13:20Z"},
				{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster",
				 "cluster":{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"b","connect_timeout":"2s"},
				 "last_updated":"2023-11-14T22:13:20Z"}]}`,
		},
		{
			name: "resource with a mask into the Any", path: "/config_dump?resource=static_clusters&mask=cluster.name", wantCode: 200,
			wantBody: `{"configs":[
				{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster",
				 "cluster":{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"a"}},
				{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster",
				 "cluster":{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"b"}}]}`,
		},
		{
			name: "mask with several paths", path: "/config_dump?resource=static_clusters&mask=cluster.name,cluster.alt_stat_name,last_updated", wantCode: 200,
			wantBody: `{"configs":[
				{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster",
				 "cluster":{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"a","alt_stat_name":"alt_a"},
				 "last_updated":"2023-11-14T22:13:20Z"},
				{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster",
				 "cluster":{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"b"},
				 "last_updated":"2023-11-14T22:13:20Z"}]}`,
		},
		{
			name: "resource dynamic listeners", path: "/config_dump?resource=dynamic_listeners&mask=name", wantCode: 200,
			wantBody: `{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener","name":"xds"}]}`,
		},
		{
			name: "mask without resource trims each section", path: "/config_dump?mask=version_info", wantCode: 200,
			wantBody: `{"configs":[
				{"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump","version_info":"3"},
				{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump","version_info":"3"}]}`,
		},
		{
			name: "resource that is no repeated field", path: "/config_dump?resource=version_info", wantCode: 400,
			wantBody: "version_info is not a repeated field. Use ?mask=version_info to get only this field\n",
		},
		{
			name: "unknown resource", path: "/config_dump?resource=dynamic_secrets", wantCode: 404,
			wantBody: "dynamic_secrets not found in config dump\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, s, "GET", tc.path)
			if r.code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", r.code, tc.wantCode, r.body)
			}
			if tc.wantCode != 200 {
				if r.body != tc.wantBody {
					t.Errorf("body %q, want %q", r.body, tc.wantBody)
				}
				return
			}
			jsonEqual(t, r.body, tc.wantBody)
		})
	}
}

func TestMaskTree(t *testing.T) {
	tests := []struct {
		name  string
		paths []string
		want  maskTree
	}{
		{name: "single", paths: []string{"a"}, want: maskTree{"a": {}}},
		{name: "nested", paths: []string{"a.b", "a.c"}, want: maskTree{"a": {"b": {}, "c": {}}}},
		{name: "shorter path wins after", paths: []string{"a.b", "a"}, want: maskTree{"a": {}}},
		{name: "shorter path wins before", paths: []string{"a", "a.b"}, want: maskTree{"a": {}}},
		{name: "blanks ignored", paths: []string{" ", "x "}, want: maskTree{"x": {}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := newMaskTree(tc.paths)
			if !sameTree(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func sameTree(a, b maskTree) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !sameTree(v, w) {
			return false
		}
	}
	return true
}
