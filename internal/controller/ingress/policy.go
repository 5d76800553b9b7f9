package ingress

import (
	"cmp"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// ingress-nginx's defaults.
const (
	defaultReadTimeout  = 60 * time.Second
	defaultTries        = 3
	defaultCookieName   = "INGRESSCOOKIE"
	defaultBurst        = 5
	defaultCORSMethods  = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
	defaultCORSHeaders  = "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization"
	defaultCORSMaxAge   = "1728000"
	clientCertHeader    = "ssl-client-cert"
	forwardedPrefixName = "x-forwarded-prefix"
)

// routePolicy reads the annotations that apply to every route of the Ingress.
func (t *ingressTranslation) routePolicy() error {
	p := &t.policy
	p.WebSocket = true // nginx passes upgrades everywhere
	// nginx has no limit on a whole request, only between reads and writes.
	p.Timeout = ir.NewDuration(0)
	read, okR := t.ann.seconds("proxy-read-timeout")
	send, okS := t.ann.seconds("proxy-send-timeout")
	idle := defaultReadTimeout
	if okR || okS {
		idle = max(read, send)
	}
	p.IdleTimeout = ir.NewDuration(idle)
	if d, ok := t.ann.seconds("proxy-next-upstream-timeout"); ok && d > 0 {
		p.Timeout = ir.NewDuration(d)
	}
	retry, err := t.retry()
	if err != nil {
		return err
	}
	p.Retry = retry
	if p.Hash, err = t.hash(); err != nil {
		return err
	}
	if v := t.ann.str("upstream-vhost"); v != "" {
		p.Rewrite = &ir.Rewrite{Host: v}
	}
	if v := t.ann.str("x-forwarded-prefix"); v != "" {
		p.RequestHeaders = append(p.RequestHeaders, ir.Header{Name: forwardedPrefixName, Value: v})
	}
	if v := t.ann.str("custom-headers"); v != "" {
		ns, name, ok := strings.Cut(v, "/")
		if !ok {
			ns, name = t.ing.Namespace, v
		}
		cm := t.ci.configMaps[ns+"/"+name]
		if cm == nil {
			return fmt.Errorf("annotation custom-headers: configmap %s/%s not found", ns, name)
		}
		keys := make([]string, 0, len(cm.Data))
		for k := range cm.Data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if strings.ContainsAny(cm.Data[k], "\x00\r\n") {
				return fmt.Errorf("annotation custom-headers: configmap %s/%s: %s: control characters in the value", ns, name, k)
			}
			p.ResponseHeaders = append(p.ResponseHeaders, ir.Header{Name: strings.ToLower(k), Value: cm.Data[k]})
		}
	}
	if v := t.ann.str("mirror-target"); v != "" {
		c, err := t.urlCluster("mirror-target", v)
		if err != nil {
			return err
		}
		p.Mirrors = []ir.Mirror{{Cluster: c.Name}}
	}
	p.DisableAccessLog = !t.ann.boolean("enable-access-log", true)
	if v := t.ann.str("proxy-body-size"); v != "" {
		n, err := byteSize(v)
		if err != nil {
			t.ann.errorf("proxy-body-size", "%v", err)
		} else if n > 0 {
			p.MaxRequestBytes = n
		}
	}
	if t.ann.boolean("auth-tls-pass-certificate-to-upstream", false) {
		// The data plane cannot send the certificate; at least a client cannot forge it.
		p.RemoveRequestHeaders = append(p.RemoveRequestHeaders, clientCertHeader)
	}
	if t.ann.boolean("enable-cors", false) {
		p.CORS = t.cors()
	}
	if err := t.rateLimit(); err != nil {
		return err
	}
	if err := t.ipFilter(); err != nil {
		return err
	}
	if err := t.auth(); err != nil {
		return err
	}
	if codes := t.ann.list("custom-http-errors"); len(codes) > 0 {
		ce := &ir.CustomErrors{}
		for _, c := range codes {
			n, err := strconv.Atoi(c)
			if err != nil || n < 400 || n > 599 {
				return fmt.Errorf("annotation custom-http-errors: %q is not a 4xx or 5xx code", c)
			}
			ce.Codes = append(ce.Codes, uint32(n))
		}
		if db := t.ann.str("default-backend"); db != "" {
			c, err := t.s.serviceCluster(t.ci, t.ing.Namespace, db, networkingv1.ServiceBackendPort{}, clusterSettings{protocol: "HTTP1", lb: "ROUND_ROBIN"}, false)
			if err == nil {
				t.out.clusters = append(t.out.clusters, c)
				ce.Cluster = c.Name
				p.CustomErrors = ce
			}
		}
	}
	return nil
}

// retry translates proxy-next-upstream. Only failures where the request was not sent are
// retried for every method; "reset"-style failures need non_idempotent, since Envoy, unlike
// nginx, cannot restrict its retries to idempotent methods.
func (t *ingressTranslation) retry() (*ir.Retry, error) {
	spec := cmp.Or(t.ann.str("proxy-next-upstream"), "error timeout")
	tries := t.ann.integer("proxy-next-upstream-tries", defaultTries, 0, 100)
	var on []string
	var codes []uint32
	nonIdempotent := strings.Contains(spec, "non_idempotent")
	add := func(s ...string) {
		for _, x := range s {
			if !slices.Contains(on, x) {
				on = append(on, x)
			}
		}
	}
	for _, tok := range strings.Fields(spec) {
		switch tok {
		case "off":
			return nil, nil
		case "error", "timeout":
			add("connect-failure", "refused-stream")
			if nonIdempotent {
				add("reset")
			}
		case "invalid_header":
			if nonIdempotent {
				add("reset")
			}
		case "non_idempotent":
		case "http_500", "http_502", "http_503", "http_504", "http_403", "http_404", "http_429":
			n, _ := strconv.Atoi(strings.TrimPrefix(tok, "http_"))
			codes = append(codes, uint32(n))
		default:
			return nil, fmt.Errorf("annotation proxy-next-upstream: %q unknown", tok)
		}
	}
	if len(codes) > 0 {
		add("retriable-status-codes")
	}
	if len(on) == 0 || tries <= 1 {
		return nil, nil
	}
	return &ir.Retry{On: on, StatusCodes: codes, NumRetries: uint32(tries - 1), HostPicks: nginxHostPicks}, nil
}

var hashVar = regexp.MustCompile(`^\$(remote_addr|binary_remote_addr|request_uri|uri|host|http_[a-z0-9_]+|arg_[A-Za-z0-9_]+|cookie_[A-Za-z0-9_]+)$`)

func (t *ingressTranslation) hash() ([]ir.Hash, error) {
	if t.ann.str("affinity") != "" {
		if a := t.ann.str("affinity"); a != "cookie" {
			return nil, fmt.Errorf("annotation affinity %q not supported (cookie)", a)
		}
		c := &ir.HashCookie{Name: cmp.Or(t.ann.str("session-cookie-name"), defaultCookieName), Path: t.ann.str("session-cookie-path")}
		ttl, ok := t.ann.seconds("session-cookie-max-age")
		if !ok {
			ttl, _ = t.ann.seconds("session-cookie-expires")
		}
		c.TTL = ir.NewDuration(ttl) // Envoy sets the cookie only when a TTL is given; 0 is a session cookie
		return []ir.Hash{{Cookie: c}}, nil
	}
	v := t.ann.str("upstream-hash-by")
	if v == "" {
		return nil, nil
	}
	m := hashVar.FindStringSubmatch(v)
	if m == nil {
		return nil, fmt.Errorf("annotation upstream-hash-by %q: only one variable of $remote_addr, $request_uri, $uri, $host, $http_NAME, $arg_NAME, $cookie_NAME", v)
	}
	switch name := m[1]; {
	case name == "remote_addr" || name == "binary_remote_addr":
		return []ir.Hash{{SourceIP: true}}, nil
	case name == "request_uri" || name == "uri":
		return []ir.Hash{{Header: ":path"}}, nil
	case name == "host":
		return []ir.Hash{{Header: ":authority"}}, nil
	case strings.HasPrefix(name, "http_"):
		return []ir.Hash{{Header: strings.ReplaceAll(strings.TrimPrefix(name, "http_"), "_", "-")}}, nil
	case strings.HasPrefix(name, "arg_"):
		return []ir.Hash{{Query: strings.TrimPrefix(name, "arg_")}}, nil
	default:
		// A cookie the application sets: hashing without a TTL never generates one.
		return []ir.Hash{{Cookie: &ir.HashCookie{Name: strings.TrimPrefix(name, "cookie_")}}}, nil
	}
}

// cookiePath defaults an affinity cookie's path to the route's path, as ingress-nginx.
func (t *ingressTranslation) cookiePath(hs []ir.Hash, m ir.Match) []ir.Hash {
	if len(hs) != 1 || hs[0].Cookie == nil || hs[0].Cookie.TTL == nil || hs[0].Cookie.Path != "" {
		return hs
	}
	c := *hs[0].Cookie
	c.Path = "/"
	if m.Kind == ir.PathExact || m.Kind == ir.PathPrefix || m.Kind == ir.PathStringPrefix {
		c.Path = m.Path
	}
	return []ir.Hash{{Cookie: &c}}
}

func cloneRewrite(rw *ir.Rewrite) *ir.Rewrite {
	if rw == nil {
		return &ir.Rewrite{}
	}
	c := *rw
	return &c
}

// urlCluster is a DNS cluster for the host and port of an http(s) URL.
func (t *ingressTranslation) urlCluster(key, raw string) (*ir.Cluster, error) {
	u, err := parseURL(strings.ReplaceAll(strings.ReplaceAll(raw, "$request_uri", ""), "$host", "host"))
	if err != nil {
		return nil, fmt.Errorf("annotation %s: %v", key, err)
	}
	port := u.port
	c := &ir.Cluster{Kind: ir.ClusterDNS, Protocol: "HTTP1", LB: "ROUND_ROBIN"}
	if u.scheme == "https" {
		if port == 0 {
			port = 443
		}
		c.TLS = &ir.UpstreamTLS{SNI: u.host, Verify: true, VerifyName: u.host}
	} else if port == 0 {
		port = 80
	}
	kind := ir.ClusterDNS
	if _, err := netip.ParseAddr(u.host); err == nil {
		kind = ir.ClusterEDS
	}
	c.Kind = kind
	c.Name = fmt.Sprintf("%s://%s:%d", u.scheme, u.host, port)
	c.Localities = []ir.Locality{{Weight: localityWeight, Zone: t.ci.name, Endpoints: []ir.Endpoint{{Address: u.host, Port: port}}}}
	t.out.clusters = append(t.out.clusters, c)
	return c, nil
}

// byteSize reads nginx sizes: 8, 8k, 8m, 1g.
func byteSize(v string) (uint32, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, strings.TrimSuffix(s, "m")
	case strings.HasSuffix(s, "g"):
		mult, s = 1<<30, strings.TrimSuffix(s, "g")
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n*mult > 1<<32-1 {
		return 0, fmt.Errorf("%q is not a size such as 8m (at most 4g)", v)
	}
	return uint32(n * mult), nil
}

func (t *ingressTranslation) cors() *ir.CORS {
	c := &ir.CORS{
		AllowMethods:     cmp.Or(t.ann.str("cors-allow-methods"), defaultCORSMethods),
		AllowHeaders:     cmp.Or(t.ann.str("cors-allow-headers"), defaultCORSHeaders),
		ExposeHeaders:    t.ann.str("cors-expose-headers"),
		AllowCredentials: t.ann.boolean("cors-allow-credentials", true),
		MaxAge:           cmp.Or(t.ann.str("cors-max-age"), defaultCORSMaxAge),
	}
	c.AllowOrigins = t.ann.list("cors-allow-origin")
	if len(c.AllowOrigins) == 0 {
		c.AllowOrigins = []string{"*"}
	}
	if _, err := strconv.Atoi(c.MaxAge); err != nil {
		t.ann.errorf("cors-max-age", "%q is not a number of seconds", c.MaxAge)
	}
	return c
}

func (t *ingressTranslation) rateLimit() error {
	rps := t.ann.integer("limit-rps", 0, 0, 1<<30)
	rpm := t.ann.integer("limit-rpm", 0, 0, 1<<30)
	conns := t.ann.integer("limit-connections", 0, 0, 1<<30)
	if rps == 0 && rpm == 0 && conns == 0 {
		return nil
	}
	burst := t.ann.integer("limit-burst-multiplier", defaultBurst, 1, 1000)
	rl := &ir.RateLimit{Connections: uint32(conns)}
	switch {
	case rps > 0:
		rl.Tokens, rl.Interval = uint32(rps), ir.Duration{Duration: time.Second}
	case rpm > 0:
		rl.Tokens, rl.Interval = uint32(rpm), ir.Duration{Duration: time.Minute}
	}
	rl.Burst = rl.Tokens * uint32(burst)
	exempt, err := cidrs(append(t.ann.list("limit-whitelist"), t.ann.list("limit-allowlist")...))
	if err != nil {
		return fmt.Errorf("annotation limit-allowlist: %w", err)
	}
	rl.Exempt = exempt
	t.policy.RateLimit = rl
	return nil
}

func (t *ingressTranslation) ipFilter() error {
	allow := append(t.ann.list("whitelist-source-range"), t.ann.list("allowlist-source-range")...)
	deny := t.ann.list("denylist-source-range")
	if len(allow) == 0 && len(deny) == 0 {
		return nil
	}
	a, err := cidrs(allow)
	if err != nil {
		return fmt.Errorf("annotation allowlist-source-range: %w", err)
	}
	d, err := cidrs(deny)
	if err != nil {
		return fmt.Errorf("annotation denylist-source-range: %w", err)
	}
	t.policy.IPFilter = &ir.IPFilter{Allow: a, Deny: d}
	return nil
}

func cidrs(in []string) ([]string, error) {
	var out []string
	for _, s := range in {
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or CIDR", s)
			}
			s = netip.PrefixFrom(a, a.BitLen()).String()
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", s)
		}
		out = append(out, p.Masked().String())
	}
	return out, nil
}

func (t *ingressTranslation) auth() error {
	switch typ := t.ann.str("auth-type"); typ {
	case "":
	case "basic":
		ref := t.ann.str("auth-secret")
		if ref == "" {
			return fmt.Errorf("annotation auth-type basic needs auth-secret")
		}
		sec, err := t.secret(ref, "auth-secret")
		if err != nil {
			return err
		}
		ba := &ir.BasicAuth{Realm: t.ann.str("auth-realm")}
		switch st := cmp.Or(t.ann.str("auth-secret-type"), "auth-file"); st {
		case "auth-file":
			for _, line := range strings.Split(string(sec.Data["auth"]), "\n") {
				if line = strings.TrimSpace(line); line != "" {
					ba.Users = append(ba.Users, line)
				}
			}
		case "auth-map":
			keys := make([]string, 0, len(sec.Data))
			for k := range sec.Data {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				ba.Users = append(ba.Users, k+":"+strings.TrimSpace(string(sec.Data[k])))
			}
		default:
			return fmt.Errorf("annotation auth-secret-type %q is not auth-file or auth-map", st)
		}
		if len(ba.Users) == 0 {
			return fmt.Errorf("annotation auth-secret: secret %s has no users", ref)
		}
		for i, u := range ba.Users {
			if err := htpasswdLine(u); err != nil {
				return fmt.Errorf("annotation auth-secret: secret %s, user %d: %w", ref, i+1, err)
			}
		}
		if strings.ContainsFunc(ba.Realm, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return fmt.Errorf("annotation auth-realm: control characters not allowed")
		}
		t.policy.BasicAuth = ba
	default:
		return fmt.Errorf("annotation auth-type %q not supported (basic)", typ)
	}
	if u := t.ann.str("auth-url"); u != "" {
		// The check goes to the URL's path as it is (ext_authz path_override): nginx
		// variables there cannot be expanded.
		if pu, err := url.Parse(u); err == nil && strings.Contains(pu.RequestURI(), "$") {
			return fmt.Errorf("annotation auth-url: nginx variables in the path or query (%q) are not supported", u)
		}
		c, err := t.urlCluster("auth-url", u)
		if err != nil {
			return err
		}
		t.policy.ExtAuth = &ir.ExtAuth{
			Cluster: c.Name, URL: u,
			Method:          t.ann.str("auth-method"),
			ResponseHeaders: t.ann.list("auth-response-headers"),
			SignIn:          t.ann.str("auth-signin"),
			RequestRedirect: t.ann.str("auth-request-redirect"),
		}
	}
	return nil
}

// canarySpec is how a canary Ingress's traffic is chosen.
type canarySpec struct {
	header, headerValue, headerPattern, cookie string
	weight, total                              int
}

func (t *ingressTranslation) canarySpec() *canarySpec {
	c := &canarySpec{
		header:        t.ann.str("canary-by-header"),
		headerValue:   t.ann.str("canary-by-header-value"),
		headerPattern: t.ann.str("canary-by-header-pattern"),
		cookie:        t.ann.str("canary-by-cookie"),
		total:         t.ann.integer("canary-weight-total", 100, 1, 1<<20),
	}
	c.weight = t.ann.integer("canary-weight", 0, 0, c.total)
	if c.headerPattern != "" && c.headerValue == "" {
		if _, err := regexp.Compile(c.headerPattern); err != nil {
			t.ann.errorf("canary-by-header-pattern", "not an RE2 expression: %v", err)
		}
	}
	return c
}

// attachCanaries joins each canary route to the main route of its host and path: header and
// cookie routes ahead of it, a weight split in it, in ingress-nginx's precedence (header,
// cookie, weight).
func (s *state) attachCanaries(h *hostState) {
	for _, cpr := range h.canary {
		main, ok := h.byKey[cpr.key]
		if !ok {
			s.problem(cpr.ci, cpr.ing, false, "CanaryWithoutMain", "canary path %q on host %q has no main Ingress; it is not served", cpr.path, h.vh.Name)
			continue
		}
		if len(main.canaries) > 0 || len(main.route.Backends) > 1 {
			s.problem(cpr.ci, cpr.ing, false, "CanaryConflict", "host %q path %q already has a canary; this one is not served", h.vh.Name, cpr.path)
			continue
		}
		if main.route.Backends == nil || cpr.route.Backends == nil {
			continue
		}
		spec := cpr.canary
		canaryB, mainB := cpr.route.Backends, main.route.Backends
		variant := func(suffix string, hm ir.HeaderMatch, bs []ir.WeightedBackend) *ir.Route {
			r := *main.route
			r.Name = main.route.Name + "/" + suffix
			r.Match.Headers = append(slices.Clone(r.Match.Headers), hm)
			r.Backends = bs
			if bs[0].Cluster == canaryB[0].Cluster {
				r.Source = cpr.route.Source
			}
			return &r
		}
		if spec.header != "" {
			name := strings.ToLower(spec.header)
			switch {
			case spec.headerValue != "":
				main.canaries = append(main.canaries, variant("canary-header", ir.HeaderMatch{Name: name, Exact: spec.headerValue}, canaryB))
			case spec.headerPattern != "":
				main.canaries = append(main.canaries, variant("canary-header", ir.HeaderMatch{Name: name, Regex: spec.headerPattern}, canaryB))
			default:
				main.canaries = append(main.canaries,
					variant("canary-header-never", ir.HeaderMatch{Name: name, Exact: "never"}, mainB),
					variant("canary-header", ir.HeaderMatch{Name: name, Exact: "always"}, canaryB))
			}
		}
		if spec.cookie != "" {
			q := regexp.QuoteMeta(spec.cookie)
			main.canaries = append(main.canaries,
				variant("canary-cookie-never", ir.HeaderMatch{Name: "cookie", Regex: `(.*;\s*)?` + q + `=never(;.*)?`}, mainB),
				variant("canary-cookie", ir.HeaderMatch{Name: "cookie", Regex: `(.*;\s*)?` + q + `=always(;.*)?`}, canaryB))
		}
		if spec.weight > 0 {
			r := *main.route
			switch {
			case spec.weight >= spec.total:
				r.Backends = canaryB
			default:
				r.Backends = []ir.WeightedBackend{
					{Cluster: mainB[0].Cluster, Weight: uint32(spec.total - spec.weight)},
					{Cluster: canaryB[0].Cluster, Weight: uint32(spec.weight)},
				}
			}
			main.route = &r
		}
	}
}

// htpasswdLine checks a "user:hash" line in a format the basic_auth filter reads: {SHA}, bcrypt
// or $apr1$ (htpasswd's default). Others (crypt, $5$, $6$, plain text) would make the data plane
// reject the whole route configuration, so the Ingress is refused instead. The hash itself is
// never quoted in the error.
func htpasswdLine(line string) error {
	name, hash, ok := strings.Cut(line, ":")
	switch {
	case !ok || name == "" || hash == "":
		return fmt.Errorf("not a user:hash line")
	case strings.HasPrefix(hash, "{SHA}"):
		if d, err := base64.StdEncoding.DecodeString(hash[5:]); err != nil || len(d) != sha1.Size {
			return fmt.Errorf("user %q: invalid {SHA} hash", name)
		}
		return nil
	case strings.HasPrefix(hash, "$2y$"), strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"):
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return fmt.Errorf("user %q: invalid bcrypt hash", name)
		}
		return nil
	case strings.HasPrefix(hash, "$apr1$"):
		salt, sum, ok := strings.Cut(hash[len("$apr1$"):], "$")
		if !ok || salt == "" || len(salt) > 8 || len(sum) != 22 {
			return fmt.Errorf("user %q: invalid $apr1$ hash", name)
		}
		return nil
	}
	return fmt.Errorf("user %q: hash format not supported (use {SHA}, bcrypt or $apr1$, as htpasswd -B or htpasswd writes)", name)
}
