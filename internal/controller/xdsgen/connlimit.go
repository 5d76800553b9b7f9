package xdsgen

import (
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	connlimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/connection_limit/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

const connLimitName = "envoy.filters.network.connection_limit"

// A listener's MaxConnections is the connection_limit network filter before the connection
// manager in each chain.
func init() {
	register(&feature{name: "connlimit", order: 10, networkFilters: func(l *ir.Listener) []*listenerv3.Filter {
		if l.MaxConnections == 0 {
			return nil
		}
		return []*listenerv3.Filter{{
			Name: connLimitName,
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: typed(&connlimitv3.ConnectionLimit{
				StatPrefix:     l.Name,
				MaxConnections: wrapperspb.UInt64(uint64(l.MaxConnections)),
			})},
		}}
	}})
}
