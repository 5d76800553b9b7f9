package xdsgen

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	bufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/buffer/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

const bufferName = "envoy.filters.http.buffer"

// MaxRequestBytes is the buffer filter, optional and enabled per route with the route's limit.
func init() {
	register(&feature{
		name: "buffer", order: 160,
		httpFilters: func(l *ir.Listener) []*hcmv3.HttpFilter {
			if !usedBy(l, func(r *ir.Route) bool { return r.MaxRequestBytes > 0 }) {
				return nil
			}
			return []*hcmv3.HttpFilter{optionalFilter(bufferName, &bufferv3.Buffer{MaxRequestBytes: wrapperspb.UInt32(1 << 20)})}
		},
		route: func(out *routev3.Route, r *ir.Route) {
			if r.MaxRequestBytes > 0 {
				enableOptional(out, bufferName, &bufferv3.BufferPerRoute{Override: &bufferv3.BufferPerRoute_Buffer{
					Buffer: &bufferv3.Buffer{MaxRequestBytes: wrapperspb.UInt32(r.MaxRequestBytes)},
				}})
			}
		},
	})
}
