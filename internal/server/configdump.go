package server

import (
	"strconv"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
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
	}}
	if s.xds == nil {
		dump.Configs = append(dump.Configs, mustAny(listeners), mustAny(clusters))
	} else {
		dump.Configs = append(dump.Configs, s.dynamicDump(listeners, clusters)...)
	}
	return protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}.Marshal(dump)
}

// dynamicDump adds the resources the xDS client holds to the static sections and returns the
// sections: listeners, clusters, routes, secrets, endpoints. The listeners' and clusters' version_info becomes the last
// accepted LDS and CDS version, as in Envoy. Endpoints, which Envoy shows only with
// ?include_eds, are always shown: the admin API takes no such parameter.
func (s *Server) dynamicDump(listeners *adminv3.ListenersConfigDump, clusters *adminv3.ClustersConfigDump) []*anypb.Any {
	d := s.xds.client.Dump()
	listeners.VersionInfo, clusters.VersionInfo = d.ListenersVersion, d.ClustersVersion
	for _, r := range d.Clusters {
		if r.Message == nil {
			continue
		}
		dc := &adminv3.ClustersConfigDump_DynamicCluster{
			VersionInfo: r.Version, Cluster: mustAny(r.Message), LastUpdated: timestamp(r.LastUpdated),
		}
		if r.Warming {
			clusters.DynamicWarmingClusters = append(clusters.DynamicWarmingClusters, dc)
		} else {
			clusters.DynamicActiveClusters = append(clusters.DynamicActiveClusters, dc)
		}
	}
	byName := map[string]*adminv3.ListenersConfigDump_DynamicListener{}
	for _, r := range d.Listeners {
		dl := byName[r.Name]
		if dl == nil {
			dl = &adminv3.ListenersConfigDump_DynamicListener{Name: r.Name}
			byName[r.Name] = dl
			listeners.DynamicListeners = append(listeners.DynamicListeners, dl)
		}
		if r.Message != nil {
			st := &adminv3.ListenersConfigDump_DynamicListenerState{
				VersionInfo: r.Version, Listener: mustAny(r.Message), LastUpdated: timestamp(r.LastUpdated),
			}
			if r.Warming {
				dl.WarmingState = st
			} else {
				dl.ActiveState = st
			}
		}
		if f := r.Error; f != nil {
			dl.ErrorState = &adminv3.UpdateFailureState{
				LastUpdateAttempt: timestamp(f.At), Details: f.Details, VersionInfo: f.Version,
			}
			if f.Message != nil {
				dl.ErrorState.FailedConfiguration = mustAny(f.Message)
			}
		}
	}
	routes := &adminv3.RoutesConfigDump{}
	for _, r := range d.Routes {
		if r.Message != nil {
			routes.DynamicRouteConfigs = append(routes.DynamicRouteConfigs, &adminv3.RoutesConfigDump_DynamicRouteConfig{
				VersionInfo: r.Version, RouteConfig: mustAny(r.Message), LastUpdated: timestamp(r.LastUpdated),
			})
		}
	}
	secrets := &adminv3.SecretsConfigDump{}
	for _, r := range d.Secrets {
		if r.Message != nil {
			secrets.DynamicActiveSecrets = append(secrets.DynamicActiveSecrets, &adminv3.SecretsConfigDump_DynamicSecret{
				Name: r.Name, VersionInfo: r.Version, Secret: mustAny(redactSecret(r.Message)), LastUpdated: timestamp(r.LastUpdated),
			})
		}
	}
	endpoints := &adminv3.EndpointsConfigDump{}
	for _, r := range d.Endpoints {
		if r.Message != nil {
			endpoints.DynamicEndpointConfigs = append(endpoints.DynamicEndpointConfigs, &adminv3.EndpointsConfigDump_DynamicEndpointConfig{
				VersionInfo: r.Version, EndpointConfig: mustAny(r.Message), LastUpdated: timestamp(r.LastUpdated),
			})
		}
	}
	return []*anypb.Any{mustAny(listeners), mustAny(clusters), mustAny(routes), mustAny(secrets), mustAny(endpoints)}
}

// redacted replaces secret material in dumps, as Envoy writes it.
const redacted = "[redacted]"

// redactSecret returns a copy of a secret without its private parts, as Envoy's config dump
// shows it: private keys, key passwords, generic secrets and session ticket keys given inline
// become "[redacted]"; file names stay, since they reveal nothing.
func redactSecret(m proto.Message) proto.Message {
	sec, ok := m.(*tlsv3.Secret)
	if !ok {
		return m
	}
	sec = proto.Clone(sec).(*tlsv3.Secret)
	redact := func(ds *corev3.DataSource) {
		if ds == nil {
			return
		}
		if _, file := ds.GetSpecifier().(*corev3.DataSource_Filename); !file {
			ds.Specifier = &corev3.DataSource_InlineString{InlineString: redacted}
		}
	}
	if c := sec.GetTlsCertificate(); c != nil {
		redact(c.GetPrivateKey())
		redact(c.GetPassword())
	}
	if g := sec.GetGenericSecret(); g != nil {
		redact(g.GetSecret())
	}
	for _, k := range sec.GetSessionTicketKeys().GetKeys() {
		redact(k)
	}
	return sec
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		// Only messages of linked-in types reach here; failing to wrap one is a programming error.
		panic(err)
	}
	return a
}

func formatVersion(v uint64) string { return strconv.FormatUint(v, 10) }
