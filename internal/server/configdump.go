package server

import (
	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ConfigDump implements admin.Source: the configuration in force in the shape of Envoy's
// envoy.admin.v3.ConfigDump, so tools written for Envoy's /config_dump read it.
func (s *Server) ConfigDump() ([]byte, error) {
	snap := s.store.Load()
	if snap == nil {
		return nil, ErrNoConfig
	}
	src, _ := snap.Source.(*bootstrapv3.Bootstrap)
	if src == nil {
		return nil, ErrNoConfig
	}
	updated := timestamppb.New(snap.Built)
	version := formatVersion(snap.Version)
	listeners := &adminv3.ListenersConfigDump{VersionInfo: version}
	for _, l := range src.GetStaticResources().GetListeners() {
		listeners.StaticListeners = append(listeners.StaticListeners, &adminv3.ListenersConfigDump_StaticListener{
			Listener: mustAny(l), LastUpdated: updated,
		})
	}
	clusters := &adminv3.ClustersConfigDump{VersionInfo: version}
	for _, c := range src.GetStaticResources().GetClusters() {
		clusters.StaticClusters = append(clusters.StaticClusters, &adminv3.ClustersConfigDump_StaticCluster{
			Cluster: mustAny(c), LastUpdated: updated,
		})
	}
	dump := &adminv3.ConfigDump{Configs: []*anypb.Any{
		mustAny(&adminv3.BootstrapConfigDump{Bootstrap: src, LastUpdated: updated}),
		mustAny(listeners),
		mustAny(clusters),
	}}
	return protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}.Marshal(dump)
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		// Only messages of linked-in types reach here; failing to wrap one is a programming error.
		panic(err)
	}
	return a
}

func formatVersion(v uint64) string {
	return string(appendUint(nil, v))
}

func appendUint(b []byte, n uint64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}
