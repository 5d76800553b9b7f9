package v1alpha1

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (v *validator) route(p string, r *Route, backends map[string]int) {
	if r.Name != "" {
		v.name(p+".name", r.Name)
	}
	for i, h := range r.Hosts {
		v.host(idx(p+".hosts", i), h)
	}
	if r.Match != nil {
		v.match(p+".match", r.Match)
	}

	var actions []string
	if r.Backend != "" {
		actions = append(actions, "backend")
	}
	if r.Backends != nil {
		actions = append(actions, "backends")
	}
	if r.Redirect != nil {
		actions = append(actions, "redirect")
	}
	if r.Respond != nil {
		actions = append(actions, "respond")
	}
	switch len(actions) {
	case 0:
		v.fail(p, "needs one of backend, backends, redirect or respond")
	case 1:
	default:
		v.fail(p, "has %s; give exactly one of backend, backends, redirect or respond", strings.Join(actions, " and "))
	}
	forwards := r.Backend != "" || r.Backends != nil

	if r.Backend != "" {
		if _, ok := backends[r.Backend]; !ok {
			v.fail(p+".backend", "backend %q is not defined", r.Backend)
		}
	}
	if r.Backends != nil {
		v.weighted(p+".backends", r.Backends, backends)
	}
	if r.Redirect != nil {
		v.redirect(p+".redirect", r.Redirect)
	}
	if r.Respond != nil && (r.Respond.Status < 200 || r.Respond.Status > 599) {
		v.fail(p+".respond.status", "must be from 200 to 599, got %d", r.Respond.Status)
	}
	if r.Rewrite != nil {
		if !forwards {
			v.fail(p+".rewrite", "only applies to routes with backend or backends")
		}
		v.rewrite(p+".rewrite", r.Rewrite, r.Match)
	}
	if r.Headers != nil {
		if r.Headers.Request != nil {
			if !forwards {
				v.fail(p+".headers.request", "only applies to routes with backend or backends")
			}
			v.headerOps(p+".headers.request", r.Headers.Request, true)
		}
		if r.Headers.Response != nil {
			v.headerOps(p+".headers.response", r.Headers.Response, false)
		}
	}
	if r.Timeout != nil && !forwards {
		v.fail(p+".timeout", "only applies to routes with backend or backends")
	}
	if r.IdleTimeout != nil && !forwards {
		v.fail(p+".idleTimeout", "only applies to routes with backend or backends")
	}
	v.duration(p+".timeout", r.Timeout)
	v.duration(p+".idleTimeout", r.IdleTimeout)
	for _, f := range []struct {
		set  bool
		name string
	}{{r.Retries != nil, "retries"}, {r.Mirror != nil, "mirror"}, {r.Hash != nil, "hash"}} {
		if f.set && !forwards {
			v.fail(p+"."+f.name, "only applies to routes with backend or backends")
		}
	}
	if r.Retries != nil {
		v.retries(p+".retries", r.Retries)
	}
	if m := r.Mirror; m != nil {
		if _, ok := backends[m.Backend]; !ok {
			v.fail(p+".mirror.backend", "backend %q is not defined", m.Backend)
		}
		v.percent(p+".mirror.percent", m.Percent)
	}
	for i := range r.Hash {
		v.hash(idx(p+".hash", i), &r.Hash[i])
	}
	if r.Fault != nil {
		v.fault(p+".fault", r.Fault)
	}
	if r.RateLimit != nil {
		v.rateLimit(p+".rateLimit", r.RateLimit)
	}
	if r.Auth != nil {
		v.auth(p+".auth", r.Auth, backends)
	}
	seen := map[string]bool{}
	for i := range r.Plugins {
		pl, pp := &r.Plugins[i], idx(p+".plugins", i)
		switch {
		case !namePattern.MatchString(pl.Name):
			v.fail(pp+".name", "%q is not a name (letters, digits, '.', '_', '-')", pl.Name)
		case seen[pl.Name]:
			v.fail(pp+".name", "plugin %q is named twice", pl.Name)
		}
		seen[pl.Name] = true
		if pl.File == "" {
			v.fail(pp+".file", "required")
		}
	}
}

func (v *validator) rateLimit(p string, rl *RateLimit) {
	if rl.Requests == 0 {
		v.fail(p+".requests", "must be at least 1")
	}
	if rl.Per != nil && rl.Per.Duration < 50*time.Millisecond {
		v.fail(p+".per", "must be at least 50ms, got %s", rl.Per.Duration)
	}
	if rl.Burst != nil && *rl.Burst == 0 {
		v.fail(p+".burst", "must be at least 1")
	}
}

func (v *validator) jwt(p string, j *JWTAuth, backends map[string]int) {
	switch {
	case j.JWKSURI != "" && j.JWKS != "":
		v.fail(p, "give one of jwksURI and jwks, not both")
	case j.JWKSURI != "":
		if u, err := url.Parse(j.JWKSURI); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.fail(p+".jwksURI", "%q is not an absolute http or https URL", j.JWKSURI)
		}
		if j.JWKSBackend == "" {
			v.fail(p+".jwksBackend", "is required with jwksURI")
		} else if _, ok := backends[j.JWKSBackend]; !ok {
			v.fail(p+".jwksBackend", "backend %q is not defined", j.JWKSBackend)
		}
		if d := j.JWKSCacheDuration; d != nil && d.Duration <= 0 {
			v.fail(p+".jwksCacheDuration", "must be positive, got %s", d.Duration)
		}
	case j.JWKS != "":
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal([]byte(j.JWKS), &set); err != nil || len(set.Keys) == 0 {
			v.fail(p+".jwks", "is not a JSON Web Key Set with keys")
		}
		if j.JWKSBackend != "" || j.JWKSCacheDuration != nil {
			v.fail(p, "jwksBackend and jwksCacheDuration go with jwksURI, not jwks")
		}
	default:
		v.fail(p, "needs jwksURI (with jwksBackend) or jwks")
	}
	for i, a := range j.Audiences {
		if a == "" {
			v.fail(idx(p+".audiences", i), "must not be empty")
		}
	}
	v.headerNames(p+".claimHeaders", j.ClaimHeaders)
	for _, k := range sortedKeys(j.ClaimHeaders) {
		if c := j.ClaimHeaders[k]; c == "" || strings.HasPrefix(c, ".") || strings.HasSuffix(c, ".") || strings.Contains(c, "..") {
			v.fail(key(p+".claimHeaders", k), "%q is not a claim name", c)
		}
	}
	if h := j.PayloadHeader; h != "" {
		if !headerName.MatchString(h) {
			v.fail(p+".payloadHeader", "%q is not a valid header name", h)
		} else if _, dup := j.ClaimHeaders[h]; dup {
			v.fail(p+".payloadHeader", "%q is also in claimHeaders", h)
		}
	}
}

func (v *validator) auth(p string, a *Auth, backends map[string]int) {
	if a.JWT == nil && a.ExtAuth == nil && a.Basic == nil && a.Allow == nil && a.Deny == nil && a.CORS == nil {
		v.fail(p, "needs one of jwt, extAuth, basic, allow, deny, cors")
		return
	}
	if a.JWT != nil {
		v.jwt(p+".jwt", a.JWT, backends)
	}
	if a.ExtAuth != nil {
		v.extAuth(p+".extAuth", a.ExtAuth, backends)
	}
	v.access(p, a)
}

// access checks the basic, allow, deny and cors parts of an auth block.
func (v *validator) access(p string, a *Auth) {
	if b := a.Basic; b != nil {
		if len(b.Users) == 0 {
			v.fail(p+".basic.users", "needs at least one user")
		}
		seen := map[string]bool{}
		for i, u := range b.Users {
			name, err := htpasswdLine(u)
			if err != nil {
				v.fail(idx(p+".basic.users", i), "%v", err)
				continue
			}
			if seen[name] {
				v.fail(idx(p+".basic.users", i), "user %q listed twice", name)
			}
			seen[name] = true
		}
		if strings.ContainsFunc(b.Realm, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			v.fail(p+".basic.realm", "must not contain control characters")
		}
	}
	for _, l := range []struct {
		field string
		list  []string
	}{{"allow", a.Allow}, {"deny", a.Deny}} {
		if l.list != nil && len(l.list) == 0 {
			v.fail(p+"."+l.field, "needs at least one address or range")
		}
		for i, c := range l.list {
			if _, err := netip.ParsePrefix(c); err != nil {
				if _, err := netip.ParseAddr(c); err != nil {
					v.fail(idx(p+"."+l.field, i), "%q is not an IP address or CIDR range", c)
				}
			}
		}
	}
	if c := a.CORS; c != nil {
		if len(c.AllowOrigins) == 0 {
			v.fail(p+".cors.allowOrigins", "needs at least one origin")
		}
		for i, o := range c.AllowOrigins {
			if o == "*" {
				continue
			}
			scheme, host, ok := strings.Cut(o, "://")
			if !ok || (scheme != "http" && scheme != "https") || host == "" || strings.ContainsAny(host, "/?# ") {
				v.fail(idx(p+".cors.allowOrigins", i), "must be \"*\" or an origin such as https://app.example, got %q", o)
			}
		}
		for _, h := range []struct{ field, v string }{
			{"allowMethods", c.AllowMethods}, {"allowHeaders", c.AllowHeaders}, {"exposeHeaders", c.ExposeHeaders},
		} {
			if strings.ContainsAny(h.v, "\r\n\x00") {
				v.fail(p+".cors."+h.field, "must not contain CR, LF or NUL")
			}
		}
		if c.MaxAge != nil && c.MaxAge.Duration < 0 {
			v.fail(p+".cors.maxAge", "must not be negative, got %s", c.MaxAge.Duration)
		}
	}
}

// htpasswdLine checks a "user:hash" line in a format the gateway reads and returns the user.
// The hash is never quoted in errors.
func htpasswdLine(line string) (string, error) {
	name, hash, ok := strings.Cut(line, ":")
	if !ok || name == "" || hash == "" {
		return "", fmt.Errorf("must be user:hash")
	}
	switch {
	case strings.HasPrefix(hash, "{SHA}"):
		if d, err := base64.StdEncoding.DecodeString(hash[5:]); err != nil || len(d) != 20 {
			return "", fmt.Errorf("user %q: invalid {SHA} hash", name)
		}
	case strings.HasPrefix(hash, "$2y$"), strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"):
		if cost, err := strconv.Atoi(hash[4:6]); len(hash) != 60 || hash[6] != '$' || err != nil || cost < 4 || cost > 31 {
			return "", fmt.Errorf("user %q: invalid bcrypt hash", name)
		}
	case strings.HasPrefix(hash, "$apr1$"):
		salt, sum, ok := strings.Cut(hash[len("$apr1$"):], "$")
		if !ok || salt == "" || len(salt) > 8 || len(sum) != 22 {
			return "", fmt.Errorf("user %q: invalid $apr1$ hash", name)
		}
	default:
		return "", fmt.Errorf("user %q: hash must be {SHA}, bcrypt or $apr1$ (htpasswd -B or htpasswd makes them)", name)
	}
	return name, nil
}

func (v *validator) extAuth(p string, e *ExtAuth, backends map[string]int) {
	if _, ok := backends[e.Backend]; !ok {
		v.fail(p+".backend", "backend %q is not defined", e.Backend)
	}
	if e.Path != "" {
		if u, err := url.ParseRequestURI(e.Path); err != nil || !strings.HasPrefix(e.Path, "/") || u.Host != "" || strings.ContainsAny(e.Path, "# \t") {
			v.fail(p+".path", "%q is not a path (with an optional query)", e.Path)
		}
	}
	for i, h := range e.ResponseHeaders {
		if h == "" || strings.ContainsAny(h, ":() \t\r\n,;") {
			v.fail(idx(p+".responseHeaders", i), "%q is not a header name", h)
		}
	}
}

// RetryOn lists the retries.on values, as Envoy's retry_on names them.
var RetryOn = []string{"5xx", "gateway-error", "reset", "connect-failure", "retriable-4xx", "refused-stream"}

// DefaultRetryOn is retries.on when it is not given: failures where the backend did not
// handle the request, or said so.
var DefaultRetryOn = []string{"connect-failure", "refused-stream", "reset", "gateway-error"}

func (v *validator) retries(p string, r *Retries) {
	for i, on := range r.On {
		if !slices.Contains(RetryOn, on) {
			v.fail(idx(p+".on", i), "must be one of %s, got %q", strings.Join(RetryOn, ", "), on)
		}
	}
	for i, c := range r.StatusCodes {
		if c < 100 || c > 599 {
			v.fail(idx(p+".statusCodes", i), "must be from 100 to 599, got %d", c)
		}
	}
	if r.Attempts != nil && *r.Attempts > 100 {
		v.fail(p+".attempts", "must be at most 100, got %d", *r.Attempts)
	}
	if r.PerTryTimeout != nil && r.PerTryTimeout.Duration <= 0 {
		v.fail(p+".perTryTimeout", "must be positive, got %s", r.PerTryTimeout.Duration)
	}
	if b := r.Backoff; b != nil {
		if b.Base != nil && b.Base.Duration < time.Millisecond {
			v.fail(p+".backoff.base", "must be at least 1ms, got %s", b.Base.Duration)
		}
		if b.Max != nil && b.Max.Duration <= 0 {
			v.fail(p+".backoff.max", "must be positive, got %s", b.Max.Duration)
		}
		if b.Base != nil && b.Max != nil && b.Max.Duration < b.Base.Duration {
			v.fail(p+".backoff.max", "must not be below base")
		}
		if b.Base == nil && b.Max != nil && b.Max.Duration < 25*time.Millisecond {
			v.fail(p+".backoff.max", "must not be below base (default 25ms)")
		}
	}
}

func (v *validator) percent(p string, pct *uint32) {
	if pct != nil && *pct > 100 {
		v.fail(p, "must be from 0 to 100, got %d", *pct)
	}
}

func (v *validator) hash(p string, h *Hash) {
	n := 0
	for _, set := range []bool{h.Header != "", h.Cookie != nil, h.SourceIP, h.Query != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		v.fail(p, "needs exactly one of header, cookie, sourceIP and query")
	}
	if h.Header != "" && !headerName.MatchString(h.Header) {
		v.fail(p+".header", "%q is not a header name", h.Header)
	}
	if c := h.Cookie; c != nil {
		if c.Name == "" || !headerName.MatchString(c.Name) || strings.HasPrefix(c.Name, ":") {
			v.fail(p+".cookie.name", "%q is not a cookie name", c.Name)
		}
		if c.TTL != nil && c.TTL.Duration < 0 {
			v.fail(p+".cookie.ttl", "must not be negative, got %s", c.TTL.Duration)
		}
		if strings.ContainsAny(c.Path, "; ,%\r\n") {
			v.fail(p+".cookie.path", "%q is not a cookie path", c.Path)
		}
	}
}

func (v *validator) fault(p string, f *Fault) {
	if f.Delay == nil && f.Abort == nil {
		v.fail(p, "needs delay, abort or both")
	}
	if d := f.Delay; d != nil {
		if d.Duration.Duration <= 0 {
			v.fail(p+".delay.duration", "must be positive, got %s", d.Duration.Duration)
		}
		v.percent(p+".delay.percent", d.Percent)
	}
	if a := f.Abort; a != nil {
		switch {
		case a.Status != 0 && a.GRPCStatus != nil:
			v.fail(p+".abort", "give one of status and grpcStatus, not both")
		case a.GRPCStatus != nil:
			if *a.GRPCStatus > 16 {
				v.fail(p+".abort.grpcStatus", "must be from 0 to 16, got %d", *a.GRPCStatus)
			}
		case a.Status < 200 || a.Status > 599:
			v.fail(p+".abort.status", "must be from 200 to 599, got %d", a.Status)
		}
		v.percent(p+".abort.percent", a.Percent)
	}
}

// headerName accepts an HTTP field name (RFC 9110 token); a leading ':' allows matching
// pseudo-headers such as :authority.
var headerName = regexp.MustCompile("^:?[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")

var methodPattern = regexp.MustCompile(`^[A-Z]+$`)

func (v *validator) match(p string, m *Match) {
	var paths []string
	if m.Prefix != "" {
		paths = append(paths, "prefix")
		v.path(p+".prefix", m.Prefix)
	}
	if m.Path != "" {
		paths = append(paths, "path")
		v.path(p+".path", m.Path)
	}
	if m.Regex != "" {
		paths = append(paths, "regex")
		v.regex(p+".regex", m.Regex)
	}
	if len(paths) > 1 {
		v.fail(p, "has %s; give at most one of prefix, path and regex", strings.Join(paths, " and "))
	}
	v.headerNames(p+".headers", m.Headers)
	v.headerValues(p+".headers", m.Headers)
	for _, k := range sortedKeys(m.Query) {
		if k == "" {
			v.fail(p+".query", "parameter names must not be empty")
		}
	}
	seen := map[string]bool{}
	for i, meth := range m.Methods {
		mp := idx(p+".methods", i)
		switch {
		case !methodPattern.MatchString(meth):
			v.fail(mp, "%q must be an upper-case method name such as GET", meth)
		case seen[meth]:
			v.fail(mp, "%s is listed twice", meth)
		}
		seen[meth] = true
	}
}

// path checks a URL path as routes match and write it: absolute, and without spaces or control
// characters, which no valid request path contains.
func (v *validator) path(p, s string) {
	if !strings.HasPrefix(s, "/") {
		v.fail(p, "%q must start with \"/\"", s)
		return
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
		v.fail(p, "%q must not contain spaces or control characters (escape them as %%20 and the like)", s)
	}
}

// headerValues rejects values that cannot be sent in a header: CR and LF would split it, and
// NUL is refused by every HTTP implementation.
func (v *validator) headerValues(p string, m map[string]string) {
	for _, k := range sortedKeys(m) {
		if strings.ContainsAny(m[k], "\r\n\x00") {
			v.fail(key(p, k), "value must not contain line breaks or NUL")
		}
	}
}

func (v *validator) headerNames(p string, m map[string]string) {
	lower := map[string]string{}
	for _, k := range sortedKeys(m) {
		if !headerName.MatchString(k) {
			v.fail(key(p, k), "is not a valid header name")
			continue
		}
		if prev, dup := lower[strings.ToLower(k)]; dup {
			v.fail(key(p, k), "is the same header as %q (header names ignore case)", prev)
		}
		lower[strings.ToLower(k)] = k
	}
}

// regex checks a pattern with Go's regexp, whose syntax is RE2's: what compiles here compiles
// in Envoy's RE2 engine.
func (v *validator) regex(p, pattern string) {
	if _, err := regexp.Compile(pattern); err != nil {
		v.fail(p, "invalid regular expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
}

func (v *validator) weighted(p string, ws []WeightedBackend, backends map[string]int) {
	if len(ws) == 0 {
		v.fail(p, "at least one backend is required")
		return
	}
	var total uint64
	seen := map[string]int{}
	for i, w := range ws {
		wp := idx(p, i)
		switch _, ok := backends[w.Name]; {
		case w.Name == "":
			v.fail(wp+".name", "is required")
		case !ok:
			v.fail(wp+".name", "backend %q is not defined", w.Name)
		}
		if j, dup := seen[w.Name]; dup && w.Name != "" {
			v.fail(wp+".name", "backend %q is already listed at backends[%d]", w.Name, j)
		}
		seen[w.Name] = i
		total += uint64(w.EffectiveWeight())
	}
	if total == 0 {
		v.fail(p, "weights must not all be 0")
	}
	if total > 1<<32-1 {
		v.fail(p, "weights must add up to at most %d", uint32(1<<32-1))
	}
}

// EffectiveWeight is the weight with its default applied.
func (w WeightedBackend) EffectiveWeight() uint32 {
	if w.Weight == nil {
		return 1
	}
	return *w.Weight
}

var redirectCodes = []int{301, 302, 303, 307, 308}

func (v *validator) redirect(p string, r *Redirect) {
	if !r.HTTPS && r.Host == "" && r.Port == 0 && r.Path == "" {
		v.fail(p, "needs at least one of https, host, port and path; otherwise it redirects to itself")
	}
	if r.Host != "" && !isDNSName(r.Host) {
		if _, err := netip.ParseAddr(r.Host); err != nil {
			v.fail(p+".host", "%q must be a DNS name or IP address (use port for the port)", r.Host)
		}
	}
	if r.Port > 65535 {
		v.fail(p+".port", "must be from 1 to 65535, got %d", r.Port)
	}
	if r.Path != "" {
		v.path(p+".path", r.Path)
	}
	if r.Code != 0 && !slices.Contains(redirectCodes, r.Code) {
		v.fail(p+".code", "must be 301, 302, 303, 307 or 308, got %d", r.Code)
	}
}

func (v *validator) rewrite(p string, r *Rewrite, m *Match) {
	if r.Prefix != "" && r.Regex != nil {
		v.fail(p, "has prefix and regex; give at most one")
	}
	if r.Prefix != "" {
		v.path(p+".prefix", r.Prefix)
		if m != nil && m.Regex != "" {
			v.fail(p+".prefix", "needs match.prefix or match.path, not match.regex; use rewrite.regex instead")
		}
	}
	if r.Regex != nil {
		if r.Regex.Pattern == "" {
			v.fail(p+".regex.pattern", "is required")
		} else {
			v.regex(p+".regex.pattern", r.Regex.Pattern)
		}
	}
	if r.Host != "" {
		host := r.Host
		if h, port, err := net.SplitHostPort(r.Host); err == nil {
			host = h
			v.port(p+".host", port, r.Host)
		}
		if !isDNSName(host) {
			if _, err := netip.ParseAddr(host); err != nil {
				v.fail(p+".host", "%q must be a DNS name or IP address, optionally with :port", r.Host)
			}
		}
	}
	if r.Prefix == "" && r.Regex == nil && r.Host == "" {
		v.fail(p, "needs at least one of prefix, regex and host")
	}
}

func (v *validator) headerOps(p string, ops *HeaderOps, request bool) {
	// Envoy refuses to modify pseudo-headers, and Host only through rewrite.host, so catch both
	// here rather than as a rejected xDS update.
	check := func(path, name string) {
		switch {
		case strings.HasPrefix(name, ":"):
			v.fail(path, "pseudo-headers cannot be changed")
		case request && strings.EqualFold(name, "host"):
			v.fail(path, "use rewrite.host to change the Host header")
		}
	}
	v.headerNames(p+".set", ops.Set)
	v.headerNames(p+".add", ops.Add)
	v.headerValues(p+".set", ops.Set)
	v.headerValues(p+".add", ops.Add)
	for _, k := range sortedKeys(ops.Set) {
		check(key(p+".set", k), k)
	}
	for _, k := range sortedKeys(ops.Add) {
		check(key(p+".add", k), k)
		for _, s := range sortedKeys(ops.Set) {
			if strings.EqualFold(s, k) {
				v.fail(key(p+".add", k), "is also in set; give a header in one of set and add")
			}
		}
	}
	for i, k := range ops.Remove {
		rp := idx(p+".remove", i)
		if !headerName.MatchString(k) {
			v.fail(rp, "%q is not a valid header name", k)
			continue
		}
		check(rp, k)
	}
}
