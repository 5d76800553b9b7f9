package ir

import (
	"errors"
	"fmt"
	"net/netip"
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
		switch cl.Kind {
		case ClusterEDS:
			for j, l := range cl.Localities {
				for k, e := range l.Endpoints {
					if _, err := netip.ParseAddr(e.Address); err != nil {
						add("clusters[%d] (%s): localities[%d].endpoints[%d]: %v", i, cl.Name, j, k, err)
					}
				}
			}
		case ClusterDNS:
			if len(cl.Localities) != 1 || len(cl.Localities[0].Endpoints) != 1 {
				add("clusters[%d] (%s): a DNS cluster has exactly one host", i, cl.Name)
			}
		default:
			add("clusters[%d] (%s): kind %q is neither EDS nor DNS", i, cl.Name, cl.Kind)
		}
		for j, l := range cl.Localities {
			for k, e := range l.Endpoints {
				if e.Port == 0 || e.Port > 65535 {
					add("clusters[%d] (%s): localities[%d].endpoints[%d]: port %d out of range", i, cl.Name, j, k, e.Port)
				}
			}
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
	if c.DefaultCertificate != "" && !secrets[c.DefaultCertificate] {
		add("defaultCertificate: secret %q not found", c.DefaultCertificate)
	}
	hosts := map[string]bool{}
	for i, vh := range c.VirtualHosts {
		if hosts[vh.Name] {
			add("virtualHosts[%d] (%s): duplicate name", i, vh.Name)
		}
		hosts[vh.Name] = true
		if len(vh.Domains) == 0 {
			add("virtualHosts[%d] (%s): no domains", i, vh.Name)
		}
		if t := vh.TLS; t != nil {
			if !secrets[t.Secret] {
				add("virtualHosts[%d] (%s): tls.secret %q not found", i, vh.Name, t.Secret)
			}
			if t.ClientCA != "" && !secrets[t.ClientCA] {
				add("virtualHosts[%d] (%s): tls.clientCA %q not found", i, vh.Name, t.ClientCA)
			}
		}
		names := map[string]bool{}
		for j, r := range vh.Routes {
			where := fmt.Sprintf("virtualHosts[%d] (%s): routes[%d] (%s)", i, vh.Name, j, r.Name)
			if names[r.Name] {
				add("%s: duplicate name", where)
			}
			names[r.Name] = true
			for _, err := range r.validate(clusters) {
				add("%s: %v", where, err)
			}
		}
	}
	for i, p := range c.Passthrough {
		if !clusters[p.Cluster] {
			add("passthrough[%d] (%s): cluster %q not found", i, p.Host, p.Cluster)
		}
	}
	return errors.Join(errs...)
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
	case PathRegex:
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
		if !clusters[m] {
			errs = append(errs, fmt.Errorf("mirror cluster %q not found", m))
		}
	}
	if a := r.ExtAuth; a != nil && !clusters[a.Cluster] {
		errs = append(errs, fmt.Errorf("extAuth cluster %q not found", a.Cluster))
	}
	if ce := r.CustomErrors; ce != nil && !clusters[ce.Cluster] {
		errs = append(errs, fmt.Errorf("customErrors cluster %q not found", ce.Cluster))
	}
	return errs
}
