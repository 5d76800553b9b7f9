package ingress

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// Defaults of Options.
const (
	DefaultIngressClass   = "nuncio"
	DefaultControllerName = "nuncio.dev/ingress-controller"
	// legacyClassAnnotation predates spec.ingressClassName and is still widely used.
	legacyClassAnnotation  = "kubernetes.io/ingress.class"
	defaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"
	// MulticlusterLabel opts a Service in to endpoints from every cluster that has it.
	MulticlusterLabel = "nuncio.dev/multicluster"
	// MulticlusterPriorityLabel sets the failover priority of one cluster's copy of a
	// multicluster Service (0, the default, is tried first).
	MulticlusterPriorityLabel = "nuncio.dev/multicluster-priority"
)

// Options are the controller's flags that translation depends on.
type Options struct {
	// IngressClass is the class this controller serves (--ingress-class).
	IngressClass string
	// ControllerName is the spec.controller value of the IngressClasses this controller owns.
	ControllerName string
	// DefaultBackendService ("namespace/name", port 80 or its first port) serves requests no
	// rule matches (--default-backend-service); without it they get 404.
	DefaultBackendService string
	// DefaultSSLCertificate ("namespace/name") is served to TLS clients whose SNI matches no
	// host (--default-ssl-certificate); without it the first certificate is.
	DefaultSSLCertificate string
	// AllowUnenforced serves Ingresses with security annotations this data plane version does
	// not enforce, emitting the standard Envoy filters as optional (--allow-unenforced).
	AllowUnenforced bool
	// HTTPPort and HTTPSPort are the listener ports (80 and 443 by default).
	HTTPPort, HTTPSPort uint32
}

func (o *Options) defaults() {
	if o.IngressClass == "" {
		o.IngressClass = DefaultIngressClass
	}
	if o.ControllerName == "" {
		o.ControllerName = DefaultControllerName
	}
	if o.HTTPPort == 0 {
		o.HTTPPort = 80
	}
	if o.HTTPSPort == 0 {
		o.HTTPSPort = 443
	}
}

// Problem is something about one Ingress (or the global options when Name is empty) that the
// provider reports as an Event on it and a log line.
type Problem struct {
	Cluster, Namespace, Name string
	// Refused means the Ingress is not served at all.
	Refused bool
	// Reason is the Event reason: AnnotationIgnored, AnnotationNotEnforced, AnnotationRefused,
	// AnnotationUnknown, TranslationFailed, BackendNotFound, PathConflict, SecretNotFound.
	Reason  string
	Message string
}

func (p Problem) String() string {
	s := p.Reason + ": " + p.Message
	if p.Name != "" {
		s = p.Cluster + "/" + p.Namespace + "/" + p.Name + ": " + s
	}
	if p.Refused {
		s += " (Ingress refused)"
	}
	return s
}

// Result is a translation.
type Result struct {
	Config   *ir.Config
	Problems []Problem
	// Served are the Ingresses translated (refused ones are not), whose status the provider
	// keeps.
	Served []IngressRef
}

// IngressRef names an Ingress in a cluster.
type IngressRef struct {
	Cluster, Namespace, Name string
}

// state is one translation in progress.
type state struct {
	opts     Options
	global   *globalOptions
	clusters []*clusterIndex
	byName   map[string]*clusterIndex
	out      *ir.Config
	problems []Problem
	served   []IngressRef

	irClusters   map[string]*ir.Cluster
	clusterCache map[string]cachedCluster
	secrets      map[string]*ir.Secret
	hosts        map[string]*hostState
	passthru     map[string]*passthroughHost
	// defaultBackend is the catch-all backend from the oldest Ingress's spec.defaultBackend.
	defaultBackend []ir.WeightedBackend
	defaultSource  string
}

// hostState gathers one host's routes across Ingresses.
type hostState struct {
	vh      *ir.VirtualHost
	regex   bool // some Ingress on the host uses regex paths
	routes  []*pathRoute
	byKey   map[string]*pathRoute
	canary  []*pathRoute
	tls     *hostTLS
	tlsFrom string // Ingress that set the certificate
	aliases []string
}

// pathRoute is a route with what ordering and canary merging need.
type pathRoute struct {
	route  *ir.Route
	key    string // match kind, path and headers
	kind   string // the Ingress pathType
	path   string
	order  int // Ingress age order, for ties
	canary *canarySpec
	// canaries are routes placed just before this one, for canary Ingresses on its path.
	canaries []*ir.Route
	// ci and ing are where the route comes from, for problems found when merging.
	ci  *clusterIndex
	ing *networkingv1.Ingress
}

// Translate turns the objects into an IR config, with the problems found on the way.
func Translate(in Input, opts Options) Result {
	opts.defaults()
	s := &state{
		opts:         opts,
		byName:       map[string]*clusterIndex{},
		out:          &ir.Config{},
		irClusters:   map[string]*ir.Cluster{},
		clusterCache: map[string]cachedCluster{},
		secrets:      map[string]*ir.Secret{},
		hosts:        map[string]*hostState{},
		passthru:     map[string]*passthroughHost{},
	}
	s.global = s.readGlobal(in.ConfigMap)
	for i := range in.Clusters {
		ci := newClusterIndex(&in.Clusters[i])
		s.clusters = append(s.clusters, ci)
		s.byName[ci.name] = ci
	}

	// Older Ingresses win conflicts, as in ingress-nginx.
	type owned struct {
		ci  *clusterIndex
		ing *networkingv1.Ingress
	}
	var ings []owned
	for _, ci := range s.clusters {
		for _, ing := range ci.objs.Ingresses {
			if s.owns(ci, ing) {
				ings = append(ings, owned{ci, ing})
			}
		}
	}
	slices.SortStableFunc(ings, func(a, b owned) int {
		if c := a.ing.CreationTimestamp.Compare(b.ing.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.ci.name, b.ci.name), cmp.Compare(a.ing.Namespace, b.ing.Namespace), cmp.Compare(a.ing.Name, b.ing.Name))
	})
	for i, o := range ings {
		s.ingress(o.ci, o.ing, i)
	}
	s.finish()
	return Result{Config: s.out, Problems: s.problems, Served: s.served}
}

// owns reports whether the Ingress is for this controller: its class names an IngressClass
// this controller owns (or, before the class exists, the configured class name), its legacy
// annotation names the class, or it has no class and the default IngressClass is ours.
func (s *state) owns(ci *clusterIndex, ing *networkingv1.Ingress) bool {
	if c := ing.Spec.IngressClassName; c != nil {
		if ic, ok := ci.classes[*c]; ok {
			return ic.Spec.Controller == s.opts.ControllerName
		}
		return *c == s.opts.IngressClass
	}
	if c, ok := ing.Annotations[legacyClassAnnotation]; ok {
		return c == s.opts.IngressClass
	}
	for _, ic := range ci.objs.IngressClasses {
		if ic.Spec.Controller == s.opts.ControllerName && ic.Annotations[defaultClassAnnotation] == "true" {
			return true
		}
	}
	return false
}

func (s *state) problem(ci *clusterIndex, ing *networkingv1.Ingress, refused bool, reason, format string, args ...any) {
	p := Problem{Refused: refused, Reason: reason, Message: fmt.Sprintf(format, args...)}
	if ing != nil {
		p.Cluster, p.Namespace, p.Name = ci.name, ing.Namespace, ing.Name
	}
	s.problems = append(s.problems, p)
}

// ingressOut is what one Ingress contributes, merged only if the whole Ingress translated.
type ingressOut struct {
	routes   []hostRoute
	clusters []*ir.Cluster
	secrets  []*ir.Secret
	tls      map[string]*hostTLS // host → certificate
	aliases  map[string][]string
	redirect map[string]string // www host → host (from-to-www-redirect)
	passthru []*passthroughHost
	defaultB []ir.WeightedBackend
}

type hostRoute struct {
	host  string
	regex bool
	pr    *pathRoute
}

func (s *state) ingress(ci *clusterIndex, ing *networkingv1.Ingress, order int) {
	t := &ingressTranslation{s: s, ci: ci, ing: ing, order: order,
		ann: newAnnotations(ing.Annotations, s.global.values),
		out: &ingressOut{tls: map[string]*hostTLS{}, aliases: map[string][]string{}, redirect: map[string]string{}}}
	if !t.checkAnnotations() {
		return
	}
	if err := t.translate(); err != nil {
		s.problem(ci, ing, true, "TranslationFailed", "%v", err)
		return
	}
	if len(t.ann.errs) > 0 {
		for _, err := range t.ann.errs {
			s.problem(ci, ing, true, "TranslationFailed", "%v", err)
		}
		return
	}
	s.merge(ci, ing, t.out)
	s.served = append(s.served, IngressRef{Cluster: ci.name, Namespace: ing.Namespace, Name: ing.Name})
}

// merge adds an Ingress's output. Paths another (older) Ingress already serves on a host are
// dropped with a PathConflict problem, as ingress-nginx keeps the first.
func (s *state) merge(ci *clusterIndex, ing *networkingv1.Ingress, o *ingressOut) {
	for _, c := range o.clusters {
		s.irClusters[c.Name] = c
	}
	for _, sec := range o.secrets {
		s.secrets[sec.Name] = sec
	}
	for _, hr := range o.routes {
		h := s.host(hr.host)
		if hr.regex {
			h.regex = true
		}
		if hr.pr.canary != nil {
			h.canary = append(h.canary, hr.pr)
			continue
		}
		if prev, ok := h.byKey[hr.pr.key]; ok {
			s.problem(ci, ing, false, "PathConflict", "host %q path %q (%s) is already served by %s; this one is ignored",
				hr.host, hr.pr.path, hr.pr.kind, prev.route.Source)
			continue
		}
		h.byKey[hr.pr.key] = hr.pr
		h.routes = append(h.routes, hr.pr)
	}
	for host, t := range o.tls {
		h := s.host(host)
		if h.tls != nil && h.tls.Secret != t.Secret {
			s.problem(ci, ing, false, "TLSConflict", "host %q already has certificate %s from %s; %s is not used", host, h.tls.Secret, h.tlsFrom, t.Secret)
			continue
		}
		if h.tls == nil {
			h.tls = t
			h.tlsFrom = ci.name + "/" + ing.Namespace + "/" + ing.Name
		} else if t.ClientCA != "" && h.tls.ClientCA == "" {
			h.tls.ClientCA, h.tls.RequireClientCert = t.ClientCA, t.RequireClientCert
		}
	}
	for host, as := range o.aliases {
		s.host(host).aliases = append(s.host(host).aliases, as...)
	}
	for from, to := range o.redirect {
		if _, ok := s.hosts[from]; ok {
			continue // the other name is served in its own right
		}
		h := s.host(from)
		h.routes = append(h.routes, &pathRoute{route: &ir.Route{
			Name: "from-to-www", Source: ci.name + "/" + ing.Namespace + "/" + ing.Name,
			Match:    ir.Match{Kind: ir.PathAny},
			Redirect: &ir.Redirect{Host: to, Code: 308},
		}, key: "from-to-www", kind: "Prefix", path: "/", order: -1})
	}
	for _, p := range o.passthru {
		if _, ok := s.passthru[p.Host]; !ok {
			s.passthru[p.Host] = p
		}
	}
	if o.defaultB != nil && s.defaultBackend == nil {
		s.defaultBackend = o.defaultB
		s.defaultSource = ci.name + "/" + ing.Namespace + "/" + ing.Name
	}
}

func (s *state) host(name string) *hostState {
	h, ok := s.hosts[name]
	if !ok {
		h = &hostState{vh: &ir.VirtualHost{Name: name, Domains: []string{name}}, byKey: map[string]*pathRoute{}}
		s.hosts[name] = h
	}
	return h
}

// finish attaches canaries, orders routes, adds default backends and fills the config.
func (s *state) finish() {
	// The default backend of requests no rule matches.
	var def []ir.WeightedBackend
	if s.defaultBackend != nil {
		def = s.defaultBackend
	} else if s.opts.DefaultBackendService != "" {
		def = s.defaultBackendService()
	}
	catchAll := s.host("*")
	hostNames := make([]string, 0, len(s.hosts))
	for n := range s.hosts {
		hostNames = append(hostNames, n)
	}
	slices.Sort(hostNames)
	// Aliases another Ingress serves as a host of its own stay with that host.
	for _, n := range hostNames {
		h := s.hosts[n]
		for _, a := range h.aliases {
			if _, taken := s.hosts[a]; taken || slices.Contains(h.vh.Domains, a) {
				continue
			}
			h.vh.Domains = append(h.vh.Domains, a)
		}
	}
	var hosts []*hostState
	for _, n := range hostNames {
		h := s.hosts[n]
		s.attachCanaries(h)
		if h.regex {
			regexHost(h)
		}
		orderRoutes(h)
		for _, pr := range h.routes {
			h.vh.Routes = append(h.vh.Routes, pr.canaries...)
			h.vh.Routes = append(h.vh.Routes, pr.route)
		}
		if def != nil && !hasCatchAll(h.vh.Routes) {
			h.vh.Routes = append(h.vh.Routes, &ir.Route{Name: "default-backend", Source: s.defaultSource,
				Match: ir.Match{Kind: ir.PathAny}, Backends: def, Policy: ir.Policy{Timeout: ir.NewDuration(0)}})
		}
		if h == catchAll && len(h.vh.Routes) == 0 {
			// ingress-nginx's default backend answers 404.
			h.vh.Routes = append(h.vh.Routes, &ir.Route{Name: "default-backend", Match: ir.Match{Kind: ir.PathAny},
				Respond: &ir.Respond{Status: 404, Body: "default backend - 404\n"}})
		}
		hosts = append(hosts, h)
	}
	for _, c := range s.irClusters {
		s.out.Clusters = append(s.out.Clusters, c)
	}
	for _, sec := range s.secrets {
		s.out.Secrets = append(s.out.Secrets, sec)
	}
	var passthru []*passthroughHost
	for _, p := range s.passthru {
		passthru = append(passthru, p)
	}
	slices.SortFunc(passthru, func(a, b *passthroughHost) int { return cmp.Compare(a.Host, b.Host) })
	s.out.Sort()
	var defaultCert string
	if s.opts.DefaultSSLCertificate != "" {
		defaultCert = s.defaultCertificate()
	}
	if defaultCert == "" {
		for _, sec := range s.out.Secrets {
			if sec.Cert != "" {
				defaultCert = sec.Name
				break
			}
		}
	}
	s.out.Listeners = s.listeners(hosts, passthru, defaultCert)
}

func hasCatchAll(rs []*ir.Route) bool {
	for _, r := range rs {
		if len(r.Match.Headers) > 0 {
			continue
		}
		switch r.Match.Kind {
		case ir.PathAny:
			return true
		case ir.PathPrefix, ir.PathStringPrefix:
			if r.Match.Path == "/" {
				return true
			}
		}
	}
	return false
}

// regexHost makes the string-prefix paths of a host regexes when some Ingress on the host uses
// them: ingress-nginx turns every location of the server into a regex location then.
func regexHost(h *hostState) {
	conv := func(r *ir.Route) {
		if r.Match.Kind != ir.PathStringPrefix {
			return
		}
		if _, err := regexp.Compile("(?i)" + r.Match.Path); err != nil {
			return // not a regex: stays a prefix, which is what nginx would match for it too
		}
		r.Match.Kind, r.Match.CaseInsensitive = ir.PathRegexPrefix, true
	}
	for _, pr := range h.routes {
		conv(pr.route)
		for _, c := range pr.canaries {
			conv(c)
		}
	}
}

// orderRoutes sorts a host's routes as nginx matches locations: exact paths first, then the
// longest path first, regex or prefix; ties keep Ingress age order.
func orderRoutes(h *hostState) {
	rank := func(pr *pathRoute) int {
		switch pr.route.Match.Kind {
		case ir.PathExact:
			return 0
		case ir.PathAny:
			return 2
		}
		return 1
	}
	slices.SortStableFunc(h.routes, func(a, b *pathRoute) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(len(b.path), len(a.path)), cmp.Compare(a.order, b.order))
	})
}

func (s *state) defaultBackendService() []ir.WeightedBackend {
	ns, name, ok := strings.Cut(s.opts.DefaultBackendService, "/")
	if !ok {
		s.problem(nil, nil, false, "DefaultBackendNotFound", "--default-backend-service %q is not namespace/name", s.opts.DefaultBackendService)
		return nil
	}
	for _, ci := range s.clusters {
		svc := ci.services[ns+"/"+name]
		if svc == nil || len(svc.Spec.Ports) == 0 {
			continue
		}
		port := networkingv1.ServiceBackendPort{Number: svc.Spec.Ports[0].Port}
		for _, p := range svc.Spec.Ports {
			if p.Port == 80 {
				port.Number = 80
			}
		}
		c, err := s.serviceCluster(ci, ns, name, port, clusterSettings{protocol: "HTTP1", lb: "ROUND_ROBIN"}, false)
		if err != nil || c == nil {
			continue
		}
		s.irClusters[c.Name] = c
		return []ir.WeightedBackend{{Cluster: c.Name, Weight: 1}}
	}
	s.problem(nil, nil, false, "DefaultBackendNotFound", "--default-backend-service %s: no such Service with ports", s.opts.DefaultBackendService)
	return nil
}

func (s *state) defaultCertificate() string {
	ns, name, _ := strings.Cut(s.opts.DefaultSSLCertificate, "/")
	for _, ci := range s.clusters {
		if sec := ci.secrets[ns+"/"+name]; sec != nil {
			if is, err := tlsSecret(ci, sec); err == nil {
				s.secrets[is.Name] = is
				s.out.Secrets = append(s.out.Secrets, is)
				s.out.Sort()
				return is.Name
			}
		}
	}
	s.problem(nil, nil, false, "SecretNotFound", "--default-ssl-certificate %s: no such TLS Secret", s.opts.DefaultSSLCertificate)
	return ""
}

// clusterIndex looks objects of one cluster up by namespace/name.
type clusterIndex struct {
	name       string
	objs       *Objects
	classes    map[string]*networkingv1.IngressClass
	services   map[string]*corev1.Service
	slices     map[string][]*discoveryv1.EndpointSlice // by namespace/service
	secrets    map[string]*corev1.Secret
	configMaps map[string]*corev1.ConfigMap
}

func newClusterIndex(o *Objects) *clusterIndex {
	ci := &clusterIndex{
		name: o.Cluster, objs: o,
		classes:    map[string]*networkingv1.IngressClass{},
		services:   map[string]*corev1.Service{},
		slices:     map[string][]*discoveryv1.EndpointSlice{},
		secrets:    map[string]*corev1.Secret{},
		configMaps: map[string]*corev1.ConfigMap{},
	}
	if ci.name == "" {
		ci.name = DefaultCluster
	}
	for _, c := range o.IngressClasses {
		ci.classes[c.Name] = c
	}
	for _, svc := range o.Services {
		ci.services[svc.Namespace+"/"+svc.Name] = svc
	}
	for _, es := range o.EndpointSlices {
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		k := es.Namespace + "/" + svc
		ci.slices[k] = append(ci.slices[k], es)
	}
	for _, sec := range o.Secrets {
		ci.secrets[sec.Namespace+"/"+sec.Name] = sec
	}
	for _, cm := range o.ConfigMaps {
		ci.configMaps[cm.Namespace+"/"+cm.Name] = cm
	}
	return ci
}

// pathKey identifies a path for merging and conflicts.
func pathKey(m ir.Match) string {
	var b strings.Builder
	b.WriteString(string(m.Kind))
	b.WriteByte(' ')
	b.WriteString(m.Path)
	for _, h := range m.Headers {
		b.WriteString(" " + h.Name + "=" + h.Exact + "~" + h.Regex + strconv.FormatBool(h.Present))
	}
	return b.String()
}
