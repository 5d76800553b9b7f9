package ir

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
)

var errDuration = errors.New("ir: duration must be a quoted string such as \"1.5s\"")

// Validate checks what the Envoy encoding relies on: unique names, references that resolve,
// exactly one action per route, regexes that compile (RE2, as the data plane's), and addresses
// that parse. Errors name the object and field.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ir: "+format, args...)) }

	clusters := map[string]bool{}
	for i, cl := range c.Clusters {
		if cl.Name == "" {
			add("clusters[%d]: name is empty", i)
		}
		if clusters[cl.Name] {
			add("clusters[%d] (%s): duplicate name", i, cl.Name)
		}
		clusters[cl.Name] = true
		for _, err := range cl.validate() {
			add("clusters[%d] (%s): %v", i, cl.Name, err)
		}
	}
	secrets := map[string]bool{}
	for i, s := range c.Secrets {
		if secrets[s.Name] {
			add("secrets[%d] (%s): duplicate name", i, s.Name)
		}
		secrets[s.Name] = true
		if (s.Cert == "") != (s.Key == "") {
			add("secrets[%d] (%s): a certificate needs its key", i, s.Name)
		}
		if s.Cert == "" && s.CA == "" {
			add("secrets[%d] (%s): neither a certificate nor a CA bundle", i, s.Name)
		}
	}
	for i, cl := range c.Clusters {
		if t := cl.TLS; t != nil && t.ClientSecret != "" && !secrets[t.ClientSecret] {
			add("clusters[%d] (%s): tls.clientSecret %q not found", i, cl.Name, t.ClientSecret)
		}
	}
	listeners := map[string]bool{}
	routeNames := map[string]bool{}
	checked := map[*VirtualHost]bool{}
	for i, l := range c.Listeners {
		where := fmt.Sprintf("listeners[%d] (%s)", i, l.Name)
		if l.Name == "" {
			add("listeners[%d]: name is empty", i)
		}
		if listeners[l.Name] {
			add("%s: duplicate name", where)
		}
		listeners[l.Name] = true
		if _, err := netip.ParseAddr(l.Address); err != nil {
			add("%s: address: %v", where, err)
		}
		if l.Port == 0 || l.Port > 65535 {
			add("%s: port %d out of range", where, l.Port)
		}
		if len(l.Chains) == 0 && l.DefaultChain == nil {
			add("%s: no filter chains", where)
		}
		needHTTP := false
		chain := func(cw string, fc *FilterChain) {
			if fc.Passthrough != "" {
				if !clusters[fc.Passthrough] {
					add("%s: %s: passthrough cluster %q not found", where, cw, fc.Passthrough)
				}
				if fc.TLS != nil {
					add("%s: %s: a passthrough chain does not terminate TLS", where, cw)
				}
				return
			}
			needHTTP = true
			if t := fc.TLS; t != nil {
				switch {
				case t.Secret != "" && !secrets[t.Secret]:
					add("%s: %s: tls.secret %q not found", where, cw, t.Secret)
				case t.Secret == "" && (t.CertFile == "" || t.KeyFile == ""):
					add("%s: %s: tls needs a secret or a certificate and key file", where, cw)
				}
				if t.ClientCA != "" && !secrets[t.ClientCA] {
					add("%s: %s: tls.clientCA %q not found", where, cw, t.ClientCA)
				}
			}
		}
		for j, fc := range l.Chains {
			chain(fmt.Sprintf("chains[%d] (%s)", j, fc.Name), fc)
		}
		if l.DefaultChain != nil {
			chain("defaultChain", l.DefaultChain)
		}
		if needHTTP && l.HTTP == nil {
			add("%s: a chain runs HTTP but the listener has no http", where)
		}
		if h := l.HTTP; h != nil {
			if h.RDS {
				if routeNames[h.RouteName] {
					add("%s: http.routeName %q is another listener's", where, h.RouteName)
				}
				routeNames[h.RouteName] = true
			}
			if h.Codec != CodecHTTP1 && h.Codec != CodecAuto {
				add("%s: http.codec %q is neither HTTP1 nor AUTO", where, h.Codec)
			}
			hosts := map[string]bool{}
			for j, vh := range h.VirtualHosts {
				// Errors are rare: where they are is spelled out only when there is one.
				vw := func() string { return fmt.Sprintf("%s: virtualHosts[%d] (%s)", where, j, vh.Name) }
				if hosts[vh.Name] {
					add("%s: duplicate name", vw())
				}
				hosts[vh.Name] = true
				// Listeners may share a virtual host; its content is checked once.
				if checked[vh] {
					continue
				}
				checked[vh] = true
				if len(vh.Domains) == 0 {
					add("%s: no domains", vw())
				}
				names := make(map[string]bool, len(vh.Routes))
				for k, r := range vh.Routes {
					rw := func() string { return fmt.Sprintf("%s: routes[%d] (%s)", vw(), k, r.Name) }
					if r.Name != "" && names[r.Name] {
						add("%s: duplicate name", rw())
					}
					names[r.Name] = true
					for _, err := range r.validate(clusters) {
						add("%s: %v", rw(), err)
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (cl *Cluster) validate() []error {
	var errs []error
	switch cl.Kind {
	case ClusterEDS, ClusterStatic:
		for j, l := range cl.Localities {
			for k, e := range l.Endpoints {
				if _, err := netip.ParseAddr(e.Address); err != nil {
					errs = append(errs, fmt.Errorf("localities[%d].endpoints[%d]: %v", j, k, err))
				}
			}
		}
	case ClusterDNS:
		n := 0
		for _, l := range cl.Localities {
			n += len(l.Endpoints)
		}
		if n == 0 {
			errs = append(errs, errors.New("a DNS cluster needs a host"))
		}
	default:
		errs = append(errs, fmt.Errorf("kind %q is not EDS, Static or DNS", cl.Kind))
	}
	switch cl.Protocol {
	case ProtocolHTTP1, ProtocolHTTP2, ProtocolAuto:
	default:
		errs = append(errs, fmt.Errorf("protocol %q is not HTTP1, HTTP2 or AUTO", cl.Protocol))
	}
	for j, l := range cl.Localities {
		for k, e := range l.Endpoints {
			if e.Port == 0 || e.Port > 65535 {
				errs = append(errs, fmt.Errorf("localities[%d].endpoints[%d]: port %d out of range", j, k, e.Port))
			}
		}
	}
	if hc := cl.HealthCheck; hc != nil {
		n := 0
		if hc.HTTP != nil {
			n++
		}
		if hc.TCP {
			n++
		}
		if hc.GRPC != nil {
			n++
		}
		if n != 1 {
			errs = append(errs, errors.New("healthCheck needs exactly one of http, tcp and grpc"))
		}
	}
	return errs
}

func (r *Route) validate(clusters map[string]bool) []error {
	var errs []error
	n := 0
	if len(r.Backends) > 0 {
		n++
	}
	if r.Redirect != nil {
		n++
	}
	if r.Respond != nil {
		n++
	}
	if n != 1 {
		errs = append(errs, errors.New("needs exactly one of backends, redirect and respond"))
	}
	for _, b := range r.Backends {
		if !clusters[b.Cluster] {
			errs = append(errs, fmt.Errorf("cluster %q not found", b.Cluster))
		}
	}
	switch r.Match.Kind {
	case PathExact, PathPrefix, PathStringPrefix:
		if !strings.HasPrefix(r.Match.Path, "/") {
			errs = append(errs, fmt.Errorf("match.path %q does not start with /", r.Match.Path))
		}
	case PathRegex, PathRegexPrefix:
		if _, err := regexp.Compile(r.Match.Path); err != nil {
			errs = append(errs, fmt.Errorf("match.path: %v", err))
		}
	case PathAny:
	default:
		errs = append(errs, fmt.Errorf("match.kind %q unknown", r.Match.Kind))
	}
	for _, h := range r.Match.Headers {
		if h.Regex != "" {
			if _, err := regexp.Compile(h.Regex); err != nil {
				errs = append(errs, fmt.Errorf("match.headers (%s): %v", h.Name, err))
			}
		}
	}
	if rw := r.Rewrite; rw != nil && rw.Pattern != "" {
		if _, err := regexp.Compile(rw.Pattern); err != nil {
			errs = append(errs, fmt.Errorf("rewrite.pattern: %v", err))
		}
	}
	for _, m := range r.Mirrors {
		if !clusters[m.Cluster] {
			errs = append(errs, fmt.Errorf("mirror cluster %q not found", m.Cluster))
		}
	}
	if a := r.ExtAuth; a != nil {
		if !clusters[a.Cluster] {
			errs = append(errs, fmt.Errorf("extAuth cluster %q not found", a.Cluster))
		}
		if u, err := url.Parse(a.URL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, fmt.Errorf("extAuth url %q: not an http(s) URL", a.URL))
		} else if strings.Contains(u.RequestURI(), "$") {
			errs = append(errs, fmt.Errorf("extAuth url %q: nginx variables in the path or query are not supported", a.URL))
		}
	}
	if j := r.JWT; j != nil {
		switch {
		case (j.JWKSURI == "") == (j.JWKS == ""):
			errs = append(errs, errors.New("jwt: one of jwksURI and jwks is required"))
		case j.JWKSURI != "" && !clusters[j.JWKSCluster]:
			errs = append(errs, fmt.Errorf("jwt jwks cluster %q not found", j.JWKSCluster))
		}
	}
	if ce := r.CustomErrors; ce != nil && !clusters[ce.Cluster] {
		errs = append(errs, fmt.Errorf("customErrors cluster %q not found", ce.Cluster))
	}
	seen := map[string]bool{}
	for i, p := range r.Plugins {
		switch {
		case p.Name == "":
			errs = append(errs, fmt.Errorf("plugins[%d]: name required", i))
		case p.File == "":
			errs = append(errs, fmt.Errorf("plugins[%d] (%s): file required", i, p.Name))
		case seen[p.Name]:
			errs = append(errs, fmt.Errorf("plugins[%d] (%s): named twice", i, p.Name))
		}
		seen[p.Name] = true
	}
	return errs
}
