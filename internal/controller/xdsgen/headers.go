package xdsgen

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// A route's header changes are its request and response headers to add and remove.
func init() {
	register(&feature{name: "headers", order: 200, route: func(out *routev3.Route, r *ir.Route) {
		for _, h := range r.RequestHeaders {
			out.RequestHeadersToAdd = append(out.RequestHeadersToAdd, headerOption(h))
		}
		for _, h := range r.ResponseHeaders {
			out.ResponseHeadersToAdd = append(out.ResponseHeadersToAdd, headerOption(h))
		}
		out.RequestHeadersToRemove = r.RemoveRequestHeaders
		out.ResponseHeadersToRemove = r.RemoveResponseHeaders
	}})
}

func headerOption(h ir.Header) *corev3.HeaderValueOption {
	action := corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
	if h.Append {
		action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
	}
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: h.Name, Value: h.Value}, AppendAction: action}
}
