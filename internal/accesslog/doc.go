// Package accesslog writes Envoy-style HTTP access logs: the envoy.access_loggers.file,
// envoy.access_loggers.stdout and envoy.access_loggers.stderr loggers with Envoy's format
// strings (%START_TIME%, %REQ(X?Y):Z%, %RESPONSE_FLAGS%, …), json_format, and the access log
// filters (status code, duration, response flags, and/or, not health check).
//
// A format is compiled once, when configuration loads, into a list of literal and operator
// parts; formatting a finished stream appends to a byte slice without allocating. Lines are
// written by one goroutine per output file, off the request's path: a request formats its
// line into a pooled buffer and hands it over, and if the writer cannot keep up (a slow or
// full disk) lines are dropped and counted rather than making requests wait.
//
// Loggers are compiled from envoy.config.accesslog.v3.AccessLog through a Registry keyed by
// the typed_config type URL, like HTTP filters.
package accesslog
