package ingress

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// clusterSettings are the annotations that shape a cluster rather than a route. Ingresses that
// reference one Service port with different settings get different clusters.
type clusterSettings struct {
	protocol        string // HTTP1 or HTTP2
	lb              string
	connectTimeout  time.Duration
	tls             *ir.UpstreamTLS
	serviceUpstream bool
	defaultBackend  string // default-backend annotation: Service used when there are no endpoints
}

// suffix distinguishes a cluster with non-default settings.
func (c clusterSettings) suffix() string {
	if c.protocol == "HTTP1" && c.lb == "ROUND_ROBIN" && c.connectTimeout == 0 && c.tls == nil && !c.serviceUpstream {
		return ""
	}
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%s|%s|%v|%s", c.protocol, c.lb, c.connectTimeout, c.serviceUpstream, tlsKey(c.tls))
	return fmt.Sprintf("~%08x", h.Sum32())
}

// tlsKey spells the upstream TLS settings for the cluster name's hash. It is written out
// field by field so that cluster names, which data planes key their state by, stay the same
// when the IR type gains fields.
func tlsKey(t *ir.UpstreamTLS) string {
	if t == nil {
		return "<nil>"
	}
	return fmt.Sprintf("&{SNI:%s CA:%s Verify:%v VerifyName:%s ClientSecret:%s Ciphers:%v MinVersion:%s MaxVersion:%s}",
		t.SNI, t.CA, t.Verify, t.VerifyName, t.ClientSecret, t.Ciphers, t.MinVersion, t.MaxVersion)
}

func (t *ingressTranslation) clusterSettings() (clusterSettings, error) {
	cs := clusterSettings{protocol: "HTTP1", lb: "ROUND_ROBIN"}
	switch p := strings.ToUpper(t.ann.str("backend-protocol")); p {
	case "", "HTTP":
	case "HTTPS":
		cs.tls = &ir.UpstreamTLS{}
	case "GRPC":
		cs.protocol = "HTTP2"
	case "GRPCS":
		cs.protocol = "HTTP2"
		cs.tls = &ir.UpstreamTLS{}
	default:
		return cs, fmt.Errorf("annotation backend-protocol %q not supported (HTTP, HTTPS, GRPC or GRPCS)", p)
	}
	switch lb := t.ann.str("load-balance"); lb {
	case "", "round_robin":
	case "least_conn", "ewma":
		cs.lb = "LEAST_REQUEST"
	case "random":
		cs.lb = "RANDOM"
	default:
		return cs, fmt.Errorf("annotation load-balance %q not supported (round_robin, least_conn, ewma, random)", lb)
	}
	if t.ann.str("upstream-hash-by") != "" || t.ann.str("affinity") != "" {
		cs.lb = "RING_HASH"
	}
	if d, ok := t.ann.seconds("proxy-connect-timeout"); ok && d > 0 {
		cs.connectTimeout = d
	}
	cs.serviceUpstream = t.ann.boolean("service-upstream", false)
	cs.defaultBackend = t.ann.str("default-backend")

	if v := t.ann.str("proxy-ssl-secret"); v != "" {
		if cs.tls == nil {
			return cs, fmt.Errorf("annotation proxy-ssl-secret needs backend-protocol HTTPS or GRPCS")
		}
		sec, err := t.secret(v, "proxy-ssl-secret")
		if err != nil {
			return cs, err
		}
		if ca := sec.Data["ca.crt"]; len(ca) > 0 {
			cs.tls.CA = string(ca)
		}
		if len(sec.Data[corev1.TLSCertKey]) > 0 {
			is, err := tlsSecret(t.ci, sec)
			if err != nil {
				return cs, fmt.Errorf("annotation proxy-ssl-secret: %w", err)
			}
			t.out.secrets = append(t.out.secrets, is)
			cs.tls.ClientSecret = is.Name
		}
	}
	if cs.tls != nil {
		name := t.ann.str("proxy-ssl-name")
		if t.ann.str("proxy-ssl-verify") == "on" {
			if cs.tls.CA == "" {
				return cs, fmt.Errorf("annotation proxy-ssl-verify on needs proxy-ssl-secret with ca.crt")
			}
			cs.tls.Verify = true
			cs.tls.VerifyName = name
		} else {
			cs.tls.CA = ""
		}
		if t.ann.str("proxy-ssl-server-name") == "on" {
			cs.tls.SNI = cmp.Or(name, t.ann.str("upstream-vhost"))
		}
		var err error
		if cs.tls.Ciphers, err = t.ciphers("proxy-ssl-ciphers"); err != nil {
			return cs, err
		}
		if v := t.ann.str("proxy-ssl-protocols"); v != "" {
			for _, p := range strings.Fields(v) {
				ver, ok := map[string]string{"TLSv1": "1.0", "TLSv1.1": "1.1", "TLSv1.2": "1.2", "TLSv1.3": "1.3"}[p]
				if !ok {
					return cs, fmt.Errorf("annotation proxy-ssl-protocols: %q unknown", p)
				}
				if cs.tls.MinVersion == "" || ver < cs.tls.MinVersion {
					cs.tls.MinVersion = ver
				}
				if ver > cs.tls.MaxVersion {
					cs.tls.MaxVersion = ver
				}
			}
		}
	} else if t.ann.str("proxy-ssl-verify") == "on" {
		return cs, fmt.Errorf("annotation proxy-ssl-verify on needs backend-protocol HTTPS or GRPCS")
	}
	return cs, nil
}

// ciphers reads an OpenSSL cipher list of names; keywords and exclusions cannot be translated
// and keep the defaults with a warning.
func (t *ingressTranslation) ciphers(key string) ([]string, error) {
	v := t.ann.str(key)
	if v == "" {
		return nil, nil
	}
	var out []string
	for _, c := range strings.Split(v, ":") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if strings.ContainsAny(c, "!+@") || c == strings.ToUpper(c) && !strings.Contains(c, "-") {
			t.s.problem(t.ci, t.ing, false, "AnnotationIgnored", "annotation %s: %q is an OpenSSL keyword, not a cipher name; the default cipher suites are used", key, c)
			return nil, nil
		}
		out = append(out, c)
	}
	return out, nil
}

// backend resolves an Ingress backend to weighted clusters; nil means it does not exist (the
// route answers 503, with a BackendNotFound problem).
func (t *ingressTranslation) backend(b *networkingv1.IngressBackend, where string) ([]ir.WeightedBackend, error) {
	if b.Resource != nil {
		t.s.problem(t.ci, t.ing, false, "BackendNotFound", "%s: resource backends (%s) are not supported; the path answers 503", where, b.Resource.Kind)
		return nil, nil
	}
	if b.Service == nil {
		return nil, fmt.Errorf("%s: backend has no service", where)
	}
	c, err := t.s.serviceCluster(t.ci, t.ing.Namespace, b.Service.Name, b.Service.Port, t.settings, true)
	if err != nil {
		t.s.problem(t.ci, t.ing, false, "BackendNotFound", "%s: %v; the path answers 503", where, err)
		return nil, nil
	}
	if t.settings.defaultBackend != "" && c.Kind == ir.ClusterEDS && endpointCount(c) == 0 {
		d, err := t.s.serviceCluster(t.ci, t.ing.Namespace, t.settings.defaultBackend, networkingv1.ServiceBackendPort{}, t.settings, true)
		if err != nil {
			t.s.problem(t.ci, t.ing, false, "BackendNotFound", "annotation default-backend: %v", err)
		} else {
			c = d
		}
	}
	t.out.clusters = append(t.out.clusters, c)
	return []ir.WeightedBackend{{Cluster: c.Name, Weight: 1}}, nil
}

func endpointCount(c *ir.Cluster) int {
	n := 0
	for _, l := range c.Localities {
		n += len(l.Endpoints)
	}
	return n
}

// serviceCluster builds the cluster of a Service port. An empty port means the Service's
// first port (for default-backend annotations, which name a Service only).
func (s *state) serviceCluster(ci *clusterIndex, ns, name string, port networkingv1.ServiceBackendPort, cs clusterSettings, multicluster bool) (*ir.Cluster, error) {
	// Many Ingresses name the same Service port: build its cluster once per translation.
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%d\x00%s\x00%v", ci.name, ns, name, port.Name, port.Number, cs.suffix(), multicluster)
	if c, ok := s.clusterCache[key]; ok {
		return c.c, c.err
	}
	c, err := s.buildServiceCluster(ci, ns, name, port, cs, multicluster)
	s.clusterCache[key] = cachedCluster{c, err}
	return c, err
}

type cachedCluster struct {
	c   *ir.Cluster
	err error
}

func (s *state) buildServiceCluster(ci *clusterIndex, ns, name string, port networkingv1.ServiceBackendPort, cs clusterSettings, multicluster bool) (*ir.Cluster, error) {
	svc := ci.services[ns+"/"+name]
	if svc == nil {
		return nil, fmt.Errorf("service %s/%s not found", ns, name)
	}
	sp, portName, err := servicePort(svc, port)
	if err != nil {
		return nil, err
	}
	c := &ir.Cluster{Kind: ir.ClusterEDS, Protocol: cs.protocol, LB: cs.lb, TLS: cs.tls}
	if cs.connectTimeout > 0 {
		c.ConnectTimeout = ir.NewDuration(cs.connectTimeout)
	}
	if c.TLS != nil && c.TLS.SNI == "" && c.TLS.Verify && c.TLS.VerifyName == "" {
		c.TLS = ptrCopy(c.TLS)
		c.TLS.VerifyName = name + "." + ns + ".svc"
	}
	where := ci.name
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		p := uint32(sp.Port)
		if p == 0 {
			p = uint32(port.Number)
		}
		if p == 0 {
			return nil, fmt.Errorf("service %s/%s: ExternalName needs a port number", ns, name)
		}
		c.Kind = ir.ClusterDNS
		c.Localities = []ir.Locality{{Weight: localityWeight, Zone: ci.name, Endpoints: []ir.Endpoint{{Address: strings.TrimSuffix(svc.Spec.ExternalName, "."), Port: p}}}}
		if c.TLS != nil && c.TLS.SNI == "" {
			c.TLS = ptrCopy(c.TLS)
			c.TLS.SNI = strings.TrimSuffix(svc.Spec.ExternalName, ".")
		}
	case cs.serviceUpstream:
		if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
			c.Localities = []ir.Locality{{Weight: localityWeight, Zone: ci.name, Endpoints: []ir.Endpoint{{Address: ip, Port: uint32(sp.Port)}}}}
		} else {
			return nil, fmt.Errorf("service %s/%s: service-upstream needs a ClusterIP", ns, name)
		}
	case multicluster && svc.Labels[MulticlusterLabel] == "true":
		where = "*"
		c.Localities = s.multiclusterEndpoints(ns, name, sp)
	default:
		c.Localities = []ir.Locality{{Weight: localityWeight, Zone: ci.name, Endpoints: endpoints(ci, svc, sp)}}
	}
	c.Name = fmt.Sprintf("%s/%s/%s@%s%s", ns, name, portName, where, cs.suffix())
	return c, nil
}

func ptrCopy[T any](p *T) *T {
	v := *p
	return &v
}

// servicePort finds the Service port an Ingress backend names, and how cluster names spell it.
func servicePort(svc *corev1.Service, port networkingv1.ServiceBackendPort) (corev1.ServicePort, string, error) {
	if port.Name == "" && port.Number == 0 {
		if len(svc.Spec.Ports) == 0 {
			if svc.Spec.Type == corev1.ServiceTypeExternalName {
				return corev1.ServicePort{}, "0", nil
			}
			return corev1.ServicePort{}, "", fmt.Errorf("service %s/%s has no ports", svc.Namespace, svc.Name)
		}
		sp := svc.Spec.Ports[0]
		return sp, strconv.Itoa(int(sp.Port)), nil
	}
	for _, sp := range svc.Spec.Ports {
		if port.Name != "" && sp.Name == port.Name || port.Name == "" && sp.Port == port.Number {
			if port.Name != "" {
				return sp, port.Name, nil
			}
			return sp, strconv.Itoa(int(sp.Port)), nil
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName && port.Number != 0 {
		return corev1.ServicePort{Port: port.Number}, strconv.Itoa(int(port.Number)), nil
	}
	p := port.Name
	if p == "" {
		p = strconv.Itoa(int(port.Number))
	}
	return corev1.ServicePort{}, "", fmt.Errorf("service %s/%s has no port %s", svc.Namespace, svc.Name, p)
}

// endpoints are the addresses of a Service port's pods, from its EndpointSlices: the ready
// ones, or, when none is ready, the serving ones even if terminating, as ingress-nginx does so
// that a rollout's last pods keep answering while they drain. The port is the EndpointSlice
// port named as the Service port: the target port resolved by the endpoints controller, by
// name or number, so traffic goes straight to the pods and not through the ClusterIP.
func endpoints(ci *clusterIndex, svc *corev1.Service, sp corev1.ServicePort) []ir.Endpoint {
	type ep struct {
		addr  string
		port  uint32
		ready bool
	}
	var all []ep
	for _, es := range ci.slices[svc.Namespace+"/"+svc.Name] {
		if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		var port uint32
		found := false
		for _, p := range es.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			if name != sp.Name || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) || p.Port == nil {
				continue
			}
			port, found = uint32(*p.Port), true
			break
		}
		if !found {
			continue
		}
		for _, e := range es.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			if _, err := netip.ParseAddr(e.Addresses[0]); err != nil {
				continue
			}
			ready := e.Conditions.Ready == nil || *e.Conditions.Ready
			serving := ready
			if e.Conditions.Serving != nil {
				serving = *e.Conditions.Serving
			}
			if !serving {
				continue
			}
			all = append(all, ep{addr: e.Addresses[0], port: port, ready: ready})
		}
	}
	anyReady := slices.ContainsFunc(all, func(e ep) bool { return e.ready })
	seen := map[string]bool{}
	var out []ir.Endpoint
	for _, e := range all {
		if anyReady && !e.ready {
			continue
		}
		k := net.JoinHostPort(e.addr, strconv.Itoa(int(e.port)))
		if seen[k] {
			continue // an address moving between slices is listed twice for a moment
		}
		seen[k] = true
		out = append(out, ir.Endpoint{Address: e.addr, Port: e.port})
	}
	slices.SortFunc(out, func(a, b ir.Endpoint) int {
		return cmp.Or(cmp.Compare(a.Address, b.Address), cmp.Compare(a.Port, b.Port))
	})
	return out
}

// multiclusterEndpoints gathers a multicluster Service's endpoints from every cluster where the
// Service exists with the label, one locality per cluster. The port is found by the name of
// the port the Ingress resolved, else its number, since the copies are meant to be alike.
func (s *state) multiclusterEndpoints(ns, name string, sp corev1.ServicePort) []ir.Locality {
	type loc struct {
		l        ir.Locality
		priority int
	}
	var locs []loc
	for _, ci := range s.clusters {
		svc := ci.services[ns+"/"+name]
		if svc == nil || svc.Labels[MulticlusterLabel] != "true" {
			continue
		}
		var port *corev1.ServicePort
		for i, p := range svc.Spec.Ports {
			if sp.Name != "" && p.Name == sp.Name || sp.Name == "" && p.Port == sp.Port {
				port = &svc.Spec.Ports[i]
				break
			}
		}
		if port == nil {
			s.problem(nil, nil, false, "MulticlusterPortMissing", "cluster %s: service %s/%s has no port %q/%d; its endpoints are not used", ci.name, ns, name, sp.Name, sp.Port)
			continue
		}
		prio, _ := strconv.Atoi(svc.Labels[MulticlusterPriorityLabel])
		locs = append(locs, loc{l: ir.Locality{Weight: localityWeight, Zone: ci.name, Endpoints: endpoints(ci, svc, *port)}, priority: max(prio, 0)})
	}
	// Envoy wants priorities numbered from 0 without gaps.
	var prios []int
	for _, l := range locs {
		prios = append(prios, l.priority)
	}
	slices.Sort(prios)
	prios = slices.Compact(prios)
	out := make([]ir.Locality, len(locs))
	for i, l := range locs {
		l.l.Priority = uint32(slices.Index(prios, l.priority))
		out[i] = l.l
	}
	slices.SortStableFunc(out, func(a, b ir.Locality) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Zone, b.Zone))
	})
	return out
}

// secret finds a Secret named "name" (the Ingress's namespace) or "namespace/name". Secrets in
// other namespaces are allowed, as ingress-nginx allows them.
func (t *ingressTranslation) secret(ref, key string) (*corev1.Secret, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok {
		ns, name = t.ing.Namespace, ref
	}
	sec := t.ci.secrets[ns+"/"+name]
	if sec == nil {
		return nil, fmt.Errorf("annotation %s: secret %s/%s not found", key, ns, name)
	}
	return sec, nil
}

// tlsSecret is a kubernetes.io/tls Secret as an IR secret (with ca.crt when it has one).
func tlsSecret(ci *clusterIndex, sec *corev1.Secret) (*ir.Secret, error) {
	cert, key := sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey]
	if len(cert) == 0 || len(key) == 0 {
		return nil, fmt.Errorf("secret %s/%s has no %s and %s", sec.Namespace, sec.Name, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
	return &ir.Secret{Name: secretName(ci, sec), Cert: string(cert), Key: string(key)}, nil
}

// caSecret is a Secret's ca.crt as an IR secret.
func caSecret(ci *clusterIndex, sec *corev1.Secret) (*ir.Secret, error) {
	ca := sec.Data["ca.crt"]
	if len(ca) == 0 {
		return nil, fmt.Errorf("secret %s/%s has no ca.crt", sec.Namespace, sec.Name)
	}
	return &ir.Secret{Name: secretName(ci, sec) + "/ca", CA: string(ca)}, nil
}

func secretName(ci *clusterIndex, sec *corev1.Secret) string {
	return sec.Namespace + "/" + sec.Name + "@" + ci.name
}

type parsedURL struct {
	scheme, host, path, query string
	port                      uint32
}

func parseURL(s string) (parsedURL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return parsedURL{}, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return parsedURL{}, fmt.Errorf("%q is not an http or https URL", s)
	}
	p := parsedURL{scheme: u.Scheme, host: u.Hostname(), path: u.EscapedPath(), query: u.RawQuery}
	if ps := u.Port(); ps != "" {
		n, err := strconv.ParseUint(ps, 10, 16)
		if err != nil || n == 0 {
			return parsedURL{}, fmt.Errorf("%q: bad port", s)
		}
		p.port = uint32(n)
	}
	return p, nil
}
