// Package route compiles route configurations into immutable tables and matches requests
// against them without allocating.
//
// A Table is built once per route configuration by Compile: domains go into an exact-host map
// and length-grouped wildcard maps, path matchers into a per-virtual-host index, and every
// regular expression, template, lower-cased name and header literal is prepared up front. The
// request path (Select, PickCluster, RewriteRequest, Mutation.ApplyRequest with literal values)
// then reads only those compiled values and allocates nothing. A Table is safe for concurrent
// use; nothing in it changes after Compile returns.
package route

import (
	"time"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/header"
)

// The declarations below are the contract the connection manager and the router rely on; the
// compiler and matchers that fill them live beside this file.

// ActionKind is what a matched route does with the request.
type ActionKind uint8

const (
	// ActionForward proxies to a cluster (Envoy's route).
	ActionForward ActionKind = iota
	// ActionRedirect answers with a redirect (Envoy's redirect).
	ActionRedirect
	// ActionDirect answers locally with a fixed status and body (Envoy's direct_response).
	ActionDirect
)

// String returns the Envoy field name of the action.
func (k ActionKind) String() string {
	switch k {
	case ActionForward:
		return "route"
	case ActionRedirect:
		return "redirect"
	case ActionDirect:
		return "direct_response"
	}
	return "unknown"
}

// Entry is one compiled route.
type Entry struct {
	Name string
	Kind ActionKind
	// Forward is set when Kind is ActionForward.
	Forward *Forward

	perFilter overrides

	vhost   *VirtualHost
	match   routeMatch
	rewrite pathRewrite
	// mutations are the route, virtual host and route-config header mutations in the order
	// Envoy applies them; a weighted cluster's own mutation goes before them.
	mutations []*Mutation
	headers   *Mutation // this route's own mutation, nil when empty

	redirect *redirect
	direct   direct
}

// VirtualHost is one compiled virtual host.
type VirtualHost struct {
	Name      string
	perFilter overrides

	routes  []*Entry
	index   pathIndex
	headers *Mutation // nil when empty
}

// Forward is a compiled route action: where and how to proxy a matched request.
type Forward struct {
	// Timeout is the whole-request timeout (0 disables it).
	Timeout time.Duration
	// IdleTimeout is the per-stream idle timeout (0 keeps the connection manager's).
	IdleTimeout time.Duration
	// ClusterHeader names the request header that carries the cluster name, or "".
	ClusterHeader string
	// ClusterNotFoundCode is the status to answer with when the cluster does not exist (503 by
	// default, or 404).
	ClusterNotFoundCode int
	// HostRewriteLiteral replaces :authority when forwarding ("" keeps it).
	HostRewriteLiteral string
	// AutoHostRewrite replaces :authority with the chosen endpoint's hostname.
	AutoHostRewrite bool
	// UpgradeWebSocket overrides the connection manager's websocket setting when non-nil.
	UpgradeWebSocket *bool
	// MaxStreamDuration bounds the whole stream (0: none).
	MaxStreamDuration time.Duration
	// HighPriority routes use the cluster's HIGH circuit-breaker thresholds.
	HighPriority bool
	// GrpcTimeoutHeaderMax, when non-nil, makes a grpc-timeout request header the stream's
	// maximum duration, capped at the value (0: no cap); GrpcTimeoutHeaderOffset is
	// subtracted from the header's value.
	GrpcTimeoutHeaderMax    *time.Duration
	GrpcTimeoutHeaderOffset time.Duration

	// Retry is the route's retry policy, else its virtual host's (nil: no retries).
	Retry *RetryPolicy
	// BufferLimit bounds the request body kept for retries and mirrors; 0 means the
	// listener's buffer limit.
	BufferLimit uint32
	// IncludeAttemptCount adds x-envoy-attempt-count to upstream requests;
	// IncludeAttemptCountInResponse adds it to downstream responses.
	IncludeAttemptCount           bool
	IncludeAttemptCountInResponse bool
	// Mirrors are the request_mirror_policies.
	Mirrors []Mirror

	hash []hashPolicy

	cluster  string
	ref      *cluster.Ref
	weighted []weightedCluster
	total    uint64
	byName   map[string]*cluster.Ref // shared by the whole table; for cluster_header
	resolve  func(string) *cluster.Ref
}

// weightedCluster is one weighted_clusters entry; end is the running total of weights up to and
// including it, so a pick is the first entry with end > rnd%total.
type weightedCluster struct {
	name    string
	ref     *cluster.Ref
	end     uint64
	headers *Mutation
}

// Table is a compiled route configuration.
type Table struct {
	name    string
	vhosts  []*VirtualHost
	domains domainIndex
	headers *Mutation // route-config level, nil when empty
}

// Name is the route configuration's name (the RDS resource name).
func (t *Table) Name() string {
	if t == nil {
		return ""
	}
	return t.name
}

// VirtualHosts returns the table's virtual hosts in configuration order. The slice is shared:
// do not modify it.
func (t *Table) VirtualHosts() []*VirtualHost { return t.vhosts }

// Routes returns the virtual host's routes in match order. The slice is shared: do not modify
// it.
func (v *VirtualHost) Routes() []*Entry { return v.routes }

// VirtualHost returns the entry's virtual host.
func (e *Entry) VirtualHost() *VirtualHost { return e.vhost }

// Select finds the virtual host for the request's :authority and the first of its routes that
// matches the request. It returns a nil Entry when the virtual host has no matching route, and
// nil for both when no virtual host serves the authority.
func (t *Table) Select(h *header.Map) (*VirtualHost, *Entry) {
	if t == nil {
		return nil, nil
	}
	vh := t.domains.find(h.Authority)
	if vh == nil {
		return nil, nil
	}
	return vh, vh.Match(h)
}

// FindVirtualHost returns the virtual host serving authority, or nil. Matching is
// case-insensitive and follows Envoy's precedence: exact domains, then the longest suffix
// wildcard, then the longest prefix wildcard, then "*". A port in authority is ignored unless
// some domain of the table names a port.
func (t *Table) FindVirtualHost(authority string) *VirtualHost {
	if t == nil {
		return nil
	}
	return t.domains.find(authority)
}

// Match returns the first route of the virtual host that matches h, or nil.
func (v *VirtualHost) Match(h *header.Map) *Entry {
	if v == nil {
		return nil
	}
	path := pathOnly(h.Path)
	if i := v.index.first(v.routes, path, h); i >= 0 {
		return v.routes[i]
	}
	return nil
}

// RequestMutations returns the header mutations of the route, its virtual host and the route
// configuration in the order Envoy applies them: most specific first, so the route
// configuration's overwrites win, unless most_specific_header_mutations_wins reverses it. The
// mutation PickCluster returns for a weighted cluster is applied before all of these. vh is
// accepted for symmetry with Select; an entry always belongs to one virtual host. The slice is
// shared: do not modify it.
func (t *Table) RequestMutations(vh *VirtualHost, e *Entry) []*Mutation {
	if e == nil {
		return nil
	}
	return e.mutations
}

// ResponseMutations returns the mutations whose response parts apply to e's responses, in the
// same order as RequestMutations.
func (t *Table) ResponseMutations(vh *VirtualHost, e *Entry) []*Mutation {
	return t.RequestMutations(vh, e)
}

// ApplyRequestHeaders applies the request parts of wc (a weighted cluster's mutation from
// PickCluster, may be nil) and then of the route, virtual host and route-config mutations, in
// Envoy's order.
func (e *Entry) ApplyRequestHeaders(h *header.Map, wc *Mutation, v Vars) {
	if wc != nil {
		wc.ApplyRequest(h, v)
	}
	for _, m := range e.mutations {
		m.ApplyRequest(h, v)
	}
}

// ApplyResponseHeaders is ApplyRequestHeaders for the response.
func (e *Entry) ApplyResponseHeaders(h *header.Map, wc *Mutation, v Vars) {
	if wc != nil {
		wc.ApplyResponse(h, v)
	}
	for _, m := range e.mutations {
		m.ApplyResponse(h, v)
	}
}

// Direct returns a direct_response route's status and body. The body is shared: do not modify
// it.
func (e *Entry) Direct() (status int, body []byte) { return e.direct.status, e.direct.body }

type direct struct {
	status int
	body   []byte
}

// pathOnly strips the query and fragment: Envoy matches paths without them.
func pathOnly(p string) string {
	for i := 0; i < len(p); i++ {
		if p[i] == '?' || p[i] == '#' {
			return p[:i]
		}
	}
	return p
}
