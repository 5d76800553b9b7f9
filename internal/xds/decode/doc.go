// Package decode turns Envoy v3 resources (listeners, route configurations, clusters, endpoint
// assignments, whole static bootstraps) into the validated values of package model.
//
// Decoding is strict. Each message type the decoders handle declares the fields it supports
// (allow, next to the code that reads them), and every resource is walked before it is decoded:
// a set field outside that subset is an error naming its full path, such as
// "filter_chains[1].filters[0].typed_config.route_config.virtual_hosts[0].routes[2].route.retry_policy:
// not supported". Nothing is silently ignored, so a config that loads does what it says.
//
// Envoy's semantics are kept where Nuncio implements the feature: its defaults are applied
// (connect_timeout 5s, route timeout 15s, stream_idle_timeout 5m, …) and what Envoy refuses at
// load time (duplicate names, addresses or domains, bad regexes, routes to missing clusters in a
// static route table) is refused here with the field's path. HTTP filter configs are compiled by
// the factories of an httpfilter.Registry; files named by data sources are read during decoding.
// A filter whose type URL no factory knows is refused unless it is_optional; a skipped
// optional filter is logged (slog's default logger) once per decoding call, by name, however
// many listeners and routes name it.
package decode
