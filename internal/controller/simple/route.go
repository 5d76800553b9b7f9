package simple

import (
	"cmp"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

const (
	// retryHostPicks is how many endpoints a retry tries to find one not tried yet: enough
	// picks to find an untried endpoint in small backends.
	retryHostPicks = 5
	// defaultRetryBase is Envoy's retry_back_off base when only max is given.
	defaultRetryBase = 25 * time.Millisecond
)

// virtualHosts groups a listener's routes into one virtual host per distinct host set, in the
// order each set first appears, keeping the routes' order within each. Validation guarantees a
// host is in one set only, so domain matching picks the same routes the config lists.
func (t *translator) virtualHosts(l *v1alpha1.Listener) []*ir.VirtualHost {
	var out []*ir.VirtualHost
	bySet := map[string]*ir.VirtualHost{}
	for i := range l.Routes {
		r := &l.Routes[i]
		domains := v1alpha1.HostSet(r.Hosts)
		k := strings.Join(domains, ",")
		vh, ok := bySet[k]
		if !ok {
			// Host sets are disjoint, so any one host names its virtual host uniquely; the
			// first as written reads best.
			name := "*"
			if len(r.Hosts) > 0 {
				name = strings.ToLower(r.Hosts[0])
			}
			vh = &ir.VirtualHost{Name: name, Domains: domains}
			bySet[k] = vh
			out = append(out, vh)
		}
		vh.Routes = append(vh.Routes, t.route(r))
	}
	return out
}

func (t *translator) route(r *v1alpha1.Route) *ir.Route {
	out := &ir.Route{Name: r.Name, Match: match(r.Match)}
	switch {
	case r.Redirect != nil:
		rd := r.Redirect
		out.Redirect = &ir.Redirect{HTTPS: rd.HTTPS, Host: rd.Host, Port: rd.Port, Path: rd.Path, Code: rd.Code, StripQuery: rd.StripQuery}
	case r.Respond != nil:
		out.Respond = &ir.Respond{Status: r.Respond.Status, Body: r.Respond.Body}
	default:
		t.forward(out, r)
	}
	out.Fault = fault(r.Fault)
	out.RateLimit = rateLimit(r.RateLimit)
	out.JWT = jwt(r.Auth)
	out.ExtAuth = extAuth(r.Auth)
	auth(&out.Policy, r.Auth)
	out.Plugins = t.plugins(r.Plugins)
	if h := r.Headers; h != nil {
		if h.Request != nil {
			out.RequestHeaders, out.RemoveRequestHeaders = headerOps(h.Request)
		}
		if h.Response != nil {
			out.ResponseHeaders, out.RemoveResponseHeaders = headerOps(h.Response)
		}
	}
	return out
}

func match(m *v1alpha1.Match) ir.Match {
	out := ir.Match{Kind: ir.PathAny}
	if m == nil {
		return out
	}
	switch {
	case m.Prefix != "":
		out.Kind, out.Path = ir.PathStringPrefix, m.Prefix
	case m.Path != "":
		out.Kind, out.Path = ir.PathExact, m.Path
	case m.Regex != "":
		out.Kind, out.Path = ir.PathRegex, m.Regex
	}
	switch len(m.Methods) {
	case 0:
	case 1:
		out.Headers = append(out.Headers, ir.HeaderMatch{Name: ":method", Exact: m.Methods[0]})
	default:
		// One header matcher cannot list alternatives, but a regex can; methods are validated
		// as upper-case letters, so they need no escaping.
		out.Headers = append(out.Headers, ir.HeaderMatch{Name: ":method", Regex: strings.Join(m.Methods, "|")})
	}
	for _, k := range byHeaderName(m.Headers) {
		hm := ir.HeaderMatch{Name: strings.ToLower(k), Exact: m.Headers[k]}
		hm.Present = hm.Exact == ""
		out.Headers = append(out.Headers, hm)
	}
	for _, k := range sortedKeys(m.Query) {
		out.Query = append(out.Query, ir.QueryMatch{Name: k, Exact: m.Query[k], Present: m.Query[k] == ""})
	}
	return out
}

// forward fills a forwarding route: its backends, rewrites, timeouts, retries, mirror and
// hash policy.
func (t *translator) forward(out *ir.Route, r *v1alpha1.Route) {
	if r.Backend != "" {
		out.Backends = []ir.WeightedBackend{{Cluster: r.Backend, Weight: 1}}
	} else {
		for _, b := range r.Backends {
			out.Backends = append(out.Backends, ir.WeightedBackend{Cluster: b.Name, Weight: b.EffectiveWeight()})
		}
	}
	out.Timeout, out.IdleTimeout = duration(r.Timeout), duration(r.IdleTimeout)
	if rw := r.Rewrite; rw != nil {
		out.Rewrite = &ir.Rewrite{Prefix: rw.Prefix, Host: rw.Host}
		if rw.Regex != nil {
			out.Rewrite.Pattern, out.Rewrite.Substitution = rw.Regex.Pattern, rw.Regex.Substitution
		}
	}
	out.Retry = retry(r.Retries)
	if m := r.Mirror; m != nil {
		out.Mirrors = []ir.Mirror{{Cluster: m.Backend, Percent: m.Percent}}
	}
	for _, h := range r.Hash {
		ih := ir.Hash{Header: strings.ToLower(h.Header), SourceIP: h.SourceIP, Query: h.Query}
		if c := h.Cookie; c != nil {
			ih.Cookie = &ir.HashCookie{Name: c.Name, Path: c.Path, TTL: duration(c.TTL)}
		}
		out.Hash = append(out.Hash, ih)
	}
}

func retry(rt *v1alpha1.Retries) *ir.Retry {
	if rt == nil {
		return nil
	}
	on := rt.On
	if len(on) == 0 {
		on = v1alpha1.DefaultRetryOn
	}
	if len(rt.StatusCodes) > 0 {
		on = append(append([]string(nil), on...), "retriable-status-codes")
	}
	out := &ir.Retry{On: on, StatusCodes: rt.StatusCodes, NumRetries: 1, PerTry: duration(rt.PerTryTimeout), HostPicks: retryHostPicks}
	if rt.Attempts != nil {
		out.NumRetries = *rt.Attempts
	}
	if b := rt.Backoff; b != nil {
		out.BackoffBase, out.BackoffMax = duration(b.Base), duration(b.Max)
		if out.BackoffBase == nil {
			out.BackoffBase = ir.NewDuration(defaultRetryBase)
		}
	}
	return out
}

func jwt(a *v1alpha1.Auth) *ir.JWT {
	if a == nil || a.JWT == nil {
		return nil
	}
	j := a.JWT
	out := &ir.JWT{
		Issuer: j.Issuer, Audiences: j.Audiences, JWKSURI: j.JWKSURI, JWKSCluster: j.JWKSBackend,
		JWKS: j.JWKS, PayloadHeader: strings.ToLower(j.PayloadHeader), Optional: j.Optional,
	}
	if d := j.JWKSCacheDuration; d != nil {
		out.CacheDuration = ir.NewDuration(d.Duration)
	}
	for _, h := range sortedKeys(j.ClaimHeaders) {
		out.ClaimHeaders = append(out.ClaimHeaders, ir.JWTHeader{Header: strings.ToLower(h), Claim: j.ClaimHeaders[h]})
	}
	return out
}

// extAuth is the IR of a route's auth.extAuth: the service is reached over its backend's
// cluster, named in the URL's host.
func extAuth(a *v1alpha1.Auth) *ir.ExtAuth {
	if a == nil || a.ExtAuth == nil {
		return nil
	}
	e := a.ExtAuth
	return &ir.ExtAuth{Cluster: e.Backend, URL: "http://" + e.Backend + cmp.Or(e.Path, "/"), ResponseHeaders: e.ResponseHeaders}
}

func fault(f *v1alpha1.Fault) *ir.Fault {
	if f == nil {
		return nil
	}
	out := &ir.Fault{}
	if d := f.Delay; d != nil {
		out.Delay = &ir.FaultDelay{Duration: ir.Duration{Duration: d.Duration.Duration}, Percent: d.Percent}
	}
	if a := f.Abort; a != nil {
		out.Abort = &ir.FaultAbort{Status: a.Status, GRPCStatus: a.GRPCStatus, Percent: a.Percent}
	}
	return out
}

// rateLimit is a bucket per client address: burst tokens (default requests), refilled by
// requests every per (default 1s).
func rateLimit(rl *v1alpha1.RateLimit) *ir.RateLimit {
	if rl == nil {
		return nil
	}
	out := &ir.RateLimit{Tokens: rl.Requests, Interval: ir.Duration{Duration: time.Second}, Burst: rl.Requests}
	if rl.Per != nil {
		out.Interval.Duration = rl.Per.Duration
	}
	if rl.Burst != nil {
		out.Burst = *rl.Burst
	}
	return out
}

// auth fills the route's basic auth, IP filter and CORS policies.
func auth(out *ir.Policy, a *v1alpha1.Auth) {
	if a == nil {
		return
	}
	if b := a.Basic; b != nil {
		out.BasicAuth = &ir.BasicAuth{Users: b.Users, Realm: b.Realm}
	}
	if a.Allow != nil || a.Deny != nil {
		out.IPFilter = &ir.IPFilter{Allow: prefixes(a.Allow), Deny: prefixes(a.Deny)}
	}
	if c := a.CORS; c != nil {
		// "*" answers a preflight with the method and headers it asks for (Envoy's meaning).
		out.CORS = &ir.CORS{
			AllowOrigins: c.AllowOrigins, AllowMethods: cmp.Or(c.AllowMethods, "*"), AllowHeaders: cmp.Or(c.AllowHeaders, "*"),
			ExposeHeaders: c.ExposeHeaders, AllowCredentials: c.AllowCredentials,
		}
		if c.MaxAge != nil {
			out.CORS.MaxAge = strconv.FormatInt(int64(c.MaxAge.Duration/time.Second), 10)
		}
	}
}

// prefixes turns validated addresses and ranges into masked CIDR ranges.
func prefixes(in []string) []string {
	var out []string
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a := netip.MustParseAddr(s)
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked().String())
	}
	return out
}

// headerOps turns set and add into headers to set (overwriting) and append, names
// lower-cased as HTTP/2 requires, and lists the names to remove.
func headerOps(ops *v1alpha1.HeaderOps) ([]ir.Header, []string) {
	var add []ir.Header
	for _, k := range byHeaderName(ops.Set) {
		add = append(add, ir.Header{Name: strings.ToLower(k), Value: ops.Set[k]})
	}
	for _, k := range byHeaderName(ops.Add) {
		add = append(add, ir.Header{Name: strings.ToLower(k), Value: ops.Add[k], Append: true})
	}
	var remove []string
	for _, k := range ops.Remove {
		remove = append(remove, strings.ToLower(k))
	}
	return add, remove
}

// byHeaderName returns the keys of a header map in the order of their lower-cased names, the
// names the output uses. Validation has ruled out two keys differing only in case.
func byHeaderName(m map[string]string) []string {
	keys := sortedKeys(m)
	sort.SliceStable(keys, func(i, j int) bool { return strings.ToLower(keys[i]) < strings.ToLower(keys[j]) })
	return keys
}

func (t *translator) plugins(ps []v1alpha1.Plugin) []ir.Plugin {
	var out []ir.Plugin
	for _, p := range ps {
		out = append(out, ir.Plugin{Name: p.Name, File: t.file(p.File), RootID: p.RootID, Config: p.Config, FailOpen: p.FailOpen})
	}
	return out
}
