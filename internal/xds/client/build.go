package client

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// plan is a configuration built from the static and dynamic resources.
type plan struct {
	model   *model.Bootstrap
	applied applied
	// want are the names to subscribe to per type, with the config source that named them.
	want [numKinds]map[string]model.ConfigSource
	// warming lists the resources left out until what they name arrives.
	warming []string
}

// build merges the static resources with res. A listener or cluster whose route table,
// endpoints or secrets are missing is left out (it warms), unless an earlier version of it
// is running: that one keeps serving until the new one is ready.
func (c *Client) build(res resources) (*plan, error) {
	p := &plan{applied: applied{
		listeners: newInForce[model.Listener](), clusters: newInForce[model.Cluster](),
		routes: map[string]*model.RouteConfig{},
	}}
	for k := range p.want {
		p.want[k] = map[string]model.ConfigSource{}
	}
	st := c.static
	p.model = &model.Bootstrap{Admin: st.Admin, Node: st.Node, Dynamic: st.Dynamic}
	b := &building{c: c, p: p, res: res, secretsUsed: map[string]*model.Secret{}}

	var err error
	if p.model.Clusters, err = merge(b, clusterKind, st.Clusters, res.clusters, c.applied.clusters, p.applied.clusters); err != nil {
		return nil, err
	}
	if p.model.Listeners, err = merge(b, listenerKind, st.Listeners, res.listeners, c.applied.listeners, p.applied.listeners); err != nil {
		return nil, err
	}
	for _, l := range p.model.Listeners {
		for _, name := range rdsNames(l) {
			rc := res.routes[name]
			if rc == nil {
				// The fetch timed out (else the listener would be warming): serve an empty
				// table until the real one arrives.
				rc = &model.RouteConfig{Name: name}
			}
			p.applied.routes[name] = rc
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.applied.routes)) {
		p.model.RouteConfigs = append(p.model.RouteConfigs, p.applied.routes[name])
	}
	for _, name := range slices.Sorted(maps.Keys(b.secretsUsed)) {
		fmt.Fprintf(&b.sig, "s:%s:%p;", name, b.secretsUsed[name])
	}
	p.applied.sig = b.sig.String()
	return p, nil
}

// building is the state of one call to build.
type building struct {
	c           *Client
	p           *plan
	res         resources
	secretsUsed map[string]*model.Secret
	sig         strings.Builder
}

// warmable describes listeners or clusters for merge: both run only once what they name has
// arrived.
type warmable[T any] struct {
	kind    kind
	label   string // in errors and in plan.warming
	sigTag  string // marks its entries in applied.sig
	name    func(*T) string
	want    func(*plan, *T)
	resolve func(c *Client, src *T, res resources, used map[string]*model.Secret) (eff *T, ready bool, err error)
}

var (
	clusterKind = warmable[model.Cluster]{
		kind: kindCDS, label: "cluster", sigTag: "c",
		name: func(cl *model.Cluster) string { return cl.Name },
		want: (*plan).wantCluster, resolve: (*Client).resolveCluster,
	}
	listenerKind = warmable[model.Listener]{
		kind: kindLDS, label: "listener", sigTag: "l",
		name: func(l *model.Listener) string { return l.Name },
		want: (*plan).wantListener, resolve: (*Client).resolveListener,
	}
)

// merge resolves the static resources, then the dynamic ones by name, and returns those to
// run, recording them in into. One that is not ready runs the version in running if there
// is one, else it is listed in plan.warming.
func merge[T any](b *building, w warmable[T], static []*T, dynamic map[string]*T, running, into inForce[T]) ([]*T, error) {
	all := slices.Clone(static)
	for _, name := range slices.Sorted(maps.Keys(dynamic)) {
		all = append(all, dynamic[name])
	}
	var out []*T
	for _, src := range all {
		name := w.name(src)
		w.want(b.p, src)
		eff, ready, err := w.resolve(b.c, src, b.res, b.secretsUsed)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", w.label, name, err)
		}
		if !ready {
			prev, ok := running.versions[name]
			if !ok {
				b.p.warming = append(b.p.warming, w.label+" "+name)
				continue
			}
			w.want(b.p, prev.src)
			if eff, ready, err = w.resolve(b.c, prev.src, b.res, b.secretsUsed); err != nil || !ready {
				eff = prev.eff
			}
			src = prev.src
			if m, ok := running.meta[name]; ok {
				into.meta[name] = m
			}
		} else if dynamic[name] == src {
			into.meta[name] = b.res.meta[w.kind][name]
		}
		out = append(out, eff)
		into.versions[name] = version[T]{src: src, eff: eff}
		fmt.Fprintf(&b.sig, "%s:%s:%p;", w.sigTag, name, src)
	}
	return out, nil
}

func (p *plan) wantCluster(c *model.Cluster) {
	if c.EDS != nil {
		p.want[kindEDS][c.EDS.ServiceName] = c.EDS.ConfigSource
	}
	if t := c.TLS; t != nil {
		for _, ref := range []*model.SecretRef{t.ClientCertSecret, t.ValidationSecret} {
			if ref != nil {
				p.want[kindSDS][ref.Name] = ref.ConfigSource
			}
		}
	}
}

func (p *plan) wantListener(l *model.Listener) {
	for _, fc := range chains(l) {
		if fc.HCM != nil && fc.HCM.RDS != nil {
			p.want[kindRDS][fc.HCM.RDS.RouteConfigName] = fc.HCM.RDS.ConfigSource
		}
		if t := fc.TLS; t != nil {
			for _, ref := range t.CertificateSecrets {
				p.want[kindSDS][ref.Name] = ref.ConfigSource
			}
			if t.ValidationSecret != nil {
				p.want[kindSDS][t.ValidationSecret.Name] = t.ValidationSecret.ConfigSource
			}
		}
	}
}

func chains(l *model.Listener) []*model.FilterChain {
	out := l.FilterChains
	if l.DefaultFilterChain != nil {
		out = append(slices.Clip(out), l.DefaultFilterChain)
	}
	return out
}

func rdsNames(l *model.Listener) []string {
	var out []string
	for _, fc := range chains(l) {
		if fc.HCM != nil && fc.HCM.RDS != nil && !slices.Contains(out, fc.HCM.RDS.RouteConfigName) {
			out = append(out, fc.HCM.RDS.RouteConfigName)
		}
	}
	return out
}

// resolveCluster returns the cluster to run for src: with its secrets filled in and, for an
// EDS cluster, the endpoints it starts with. ready is false while something is missing.
func (c *Client) resolveCluster(src *model.Cluster, res resources, used map[string]*model.Secret) (*model.Cluster, bool, error) {
	eff := src
	if src.EDS != nil {
		ls, ok := res.endpoints[src.EDS.ServiceName]
		if !ok && !c.expired[watchKey{kindEDS, src.EDS.ServiceName}] {
			return nil, false, nil
		}
		// A running cluster keeps the endpoints it was built with in its model: EDS updates
		// reach it by SetEndpoints, and a model that differs only there would rebuild it.
		if prev, ok := c.applied.clusters.versions[src.Name]; ok && prev.eff.EDS != nil && prev.eff.EDS.ServiceName == src.EDS.ServiceName {
			ls = prev.eff.Localities
		}
		cp := *src
		cp.Localities = ls
		eff = &cp
	}
	t := src.TLS
	if t == nil || (t.ClientCertSecret == nil && t.ValidationSecret == nil) {
		return eff, true, nil
	}
	tls := *t
	if ref := t.ClientCertSecret; ref != nil {
		s, ready, err := secret(res, used, ref.Name, "tls_certificate")
		if !ready {
			return nil, false, err
		}
		tls.ClientCert = s.Certificate
	}
	if ref := t.ValidationSecret; ref != nil {
		s, ready, err := secret(res, used, ref.Name, "validation_context")
		if !ready {
			return nil, false, err
		}
		v := s.Validation
		tls.TrustedCAPEM, tls.SystemRoots = v.TrustedCAPEM, v.SystemRoots
		tls.MatchSANs, tls.MatchTypedSANs = v.MatchSANs, v.MatchTypedSANs
		if (len(v.MatchSANs) > 0 || len(v.MatchTypedSANs) > 0) && v.TrustedCAPEM == nil && !v.SystemRoots {
			return nil, false, fmt.Errorf("secret %q: subject alt names are matched without trusted_ca or system_root_certs", ref.Name)
		}
	}
	if eff == src {
		cp := *src
		eff = &cp
	}
	eff.TLS = &tls
	return eff, true, nil
}

// resolveListener returns the listener to run for src, with its secrets filled in. ready is
// false while a route table or secret it names is missing.
func (c *Client) resolveListener(src *model.Listener, res resources, used map[string]*model.Secret) (*model.Listener, bool, error) {
	for _, name := range rdsNames(src) {
		if _, ok := res.routes[name]; !ok && !c.expired[watchKey{kindRDS, name}] {
			return nil, false, nil
		}
	}
	needs := false
	for _, fc := range chains(src) {
		if fc.TLS != nil && (len(fc.TLS.CertificateSecrets) > 0 || fc.TLS.ValidationSecret != nil) {
			needs = true
		}
	}
	if !needs {
		return src, true, nil
	}
	eff := *src
	eff.FilterChains = nil
	var resolve = func(fc *model.FilterChain) (*model.FilterChain, bool, error) {
		t := fc.TLS
		if t == nil || (len(t.CertificateSecrets) == 0 && t.ValidationSecret == nil) {
			return fc, true, nil
		}
		tls := *t
		tls.Certificates = slices.Clone(t.Certificates)
		for _, ref := range t.CertificateSecrets {
			s, ready, err := secret(res, used, ref.Name, "tls_certificate")
			if !ready {
				return nil, false, err
			}
			tls.Certificates = append(tls.Certificates, *s.Certificate)
		}
		if ref := t.ValidationSecret; ref != nil {
			s, ready, err := secret(res, used, ref.Name, "validation_context")
			if !ready {
				return nil, false, err
			}
			v := s.Validation
			switch {
			case v.TrustedCAPEM == nil:
				return nil, false, fmt.Errorf("secret %q: client certificates are verified against trusted_ca, which it lacks", ref.Name)
			case v.SystemRoots || len(v.MatchSANs) > 0 || len(v.MatchTypedSANs) > 0:
				return nil, false, fmt.Errorf("secret %q: only trusted_ca is supported for client certificates", ref.Name)
			}
			tls.ClientCAPEM = v.TrustedCAPEM
		}
		cp := *fc
		cp.TLS = &tls
		return &cp, true, nil
	}
	for _, fc := range src.FilterChains {
		r, ok, err := resolve(fc)
		if err != nil || !ok {
			return nil, ok, err
		}
		eff.FilterChains = append(eff.FilterChains, r)
	}
	if src.DefaultFilterChain != nil {
		r, ok, err := resolve(src.DefaultFilterChain)
		if err != nil || !ok {
			return nil, ok, err
		}
		eff.DefaultFilterChain = r
	}
	return &eff, true, nil
}

// secret returns the secret name, which must be of kind ("tls_certificate" or
// "validation_context"), and records it in used. ready is false while the secret has not
// arrived, or with an error.
func secret(res resources, used map[string]*model.Secret, name, kind string) (s *model.Secret, ready bool, err error) {
	s = res.secrets[name]
	switch {
	case s == nil:
		return nil, false, nil
	case kind == "tls_certificate" && s.Certificate == nil, kind == "validation_context" && s.Validation == nil:
		return nil, false, fmt.Errorf("secret %q is not a %s", name, kind)
	}
	used[name] = s
	return s, true, nil
}
