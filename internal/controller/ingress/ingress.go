package ingress

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// ingressTranslation is the translation of one Ingress.
type ingressTranslation struct {
	s     *state
	ci    *clusterIndex
	ing   *networkingv1.Ingress
	order int
	ann   *annotations
	out   *ingressOut

	source   string
	settings clusterSettings
	policy   ir.Policy
	regex    bool
	rewrite  string // rewrite-target, in Envoy's substitution syntax
	redirect *ir.Redirect
	appRoot  string
	canary   *canarySpec
	// clusters made so far, by name.
	clusters map[string]*ir.Cluster
}

// checkAnnotations reports every annotation that is not simply implemented, and returns false
// when one of them refuses the Ingress.
func (t *ingressTranslation) checkAnnotations() bool {
	ok := true
	for _, key := range ourKeys(t.ing.Annotations) {
		a := annotationByKey[key]
		if a == nil {
			t.s.problem(t.ci, t.ing, false, "AnnotationUnknown", "annotation %s is not an ingress-nginx annotation Nuncio knows; ignored", key)
			continue
		}
		switch a.Status {
		case Refused:
			t.s.problem(t.ci, t.ing, true, "AnnotationRefused", "annotation %s is refused: %s", key, a.Notes)
			ok = false
		case Ignored:
			t.s.problem(t.ci, t.ing, false, "AnnotationIgnored", "annotation %s is ignored: %s", key, a.Notes)
		case NotEnforced:
			if !t.hasEffect(key) {
				continue
			}
			what := a.Filter
			if what == "" {
				what = "a feature"
			}
			if a.Security && !t.s.opts.AllowUnenforced {
				t.s.problem(t.ci, t.ing, true, "AnnotationNotEnforced",
					"annotation %s requires %s, not enforced by this data plane version (the controller's --allow-unenforced serves it anyway)", key, what)
				ok = false
				continue
			}
			t.s.problem(t.ci, t.ing, false, "AnnotationNotEnforced", "annotation %s requires %s, not enforced by this data plane version: %s", key, what, a.Notes)
		case Implemented:
			t.valueWarnings(key)
		}
	}
	return ok
}

// hasEffect reports whether a NotEnforced annotation's value asks for anything: an access log
// left on or a body limit of 0 needs no filter.
func (t *ingressTranslation) hasEffect(key string) bool {
	v := t.ann.str(key)
	switch key {
	case "enable-access-log":
		return v == "false"
	case "proxy-body-size":
		return v != "0" && v != ""
	case "auth-type":
		return v != ""
	}
	return true
}

// valueWarnings reports values of implemented annotations that are accepted but behave
// differently than in ingress-nginx.
func (t *ingressTranslation) valueWarnings(key string) {
	v := t.ann.str(key)
	warn := func(msg string) {
		t.s.problem(t.ci, t.ing, false, "AnnotationIgnored", "annotation %s %q: %s", key, v, msg)
	}
	switch {
	case key == "preserve-trailing-slash" && v == "false":
		warn("redirects keep the path as sent")
	case key == "proxy-http-version" && v == "1.0":
		warn("upstream requests use HTTP/1.1")
	case key == "mirror-request-body" && v == "off":
		warn("request bodies are mirrored")
	}
}

func (t *ingressTranslation) translate() error {
	t.source = t.ci.name + "/" + t.ing.Namespace + "/" + t.ing.Name
	t.clusters = map[string]*ir.Cluster{}
	var err error
	if t.settings, err = t.clusterSettings(); err != nil {
		return err
	}
	if err := t.routePolicy(); err != nil {
		return err
	}
	t.regex = t.ann.boolean("use-regex", false)
	if target, ok := t.ann.get("rewrite-target"); ok && target != "" {
		t.regex = true
		t.rewrite = dollarGroups.ReplaceAllString(target, `\$1`)
	}
	t.redirects()
	if t.ann.boolean("canary", false) {
		t.canary = t.canarySpec()
	}
	tlsHosts, err := t.tls()
	if err != nil {
		return err
	}
	sslRedirect := t.ann.boolean("ssl-redirect", true)
	force := t.ann.boolean("force-ssl-redirect", false)
	passthrough := t.ann.boolean("ssl-passthrough", false)

	if db := t.ing.Spec.DefaultBackend; db != nil && t.canary == nil {
		b, err := t.backend(db, "default-backend")
		if err != nil {
			return err
		}
		if b != nil {
			t.out.defaultB = b
		}
	}
	for i, rule := range t.ing.Spec.Rules {
		host := strings.ToLower(rule.Host)
		if host == "" {
			host = "*"
		}
		if passthrough {
			if host == "*" || rule.HTTP == nil || len(rule.HTTP.Paths) == 0 {
				return fmt.Errorf("ssl-passthrough: rule %d needs a host and a path", i)
			}
			bs, err := t.backend(&rule.HTTP.Paths[0].Backend, fmt.Sprintf("rules[%d]", i))
			if err != nil {
				return err
			}
			if bs == nil {
				return fmt.Errorf("ssl-passthrough: rule %d: backend not found", i)
			}
			t.out.passthru = append(t.out.passthru, &passthroughHost{Host: host, Cluster: bs[0].Cluster})
			continue
		}
		if host != "*" {
			if aliases := t.ann.list("server-alias"); len(aliases) > 0 {
				for j := range aliases {
					aliases[j] = strings.ToLower(aliases[j])
				}
				t.out.aliases[host] = append(t.out.aliases[host], aliases...)
			}
			if t.ann.boolean("from-to-www-redirect", false) {
				if other, ok := strings.CutPrefix(host, "www."); ok {
					t.out.redirect[other] = host
				} else if !strings.HasPrefix(host, "*.") {
					t.out.redirect["www."+host] = host
				}
			}
		}
		redirectHTTPS := force || (sslRedirect && tlsHosts[host])
		if t.appRoot != "" && t.canary == nil {
			t.addRoute(host, false, &ir.Route{
				Name:     fmt.Sprintf("%s/app-root", t.routePrefix(i)),
				Match:    ir.Match{Kind: ir.PathExact, Path: "/"},
				Redirect: &ir.Redirect{Path: t.appRoot, Code: 302},
				Policy:   ir.Policy{HTTPSRedirect: redirectHTTPS},
			}, "Exact", "/")
		}
		if rule.HTTP == nil {
			if db := t.ing.Spec.DefaultBackend; db != nil {
				bs, err := t.backend(db, fmt.Sprintf("rules[%d]", i))
				if err != nil {
					return err
				}
				r := t.newRoute(i, 0, ir.Match{Kind: ir.PathPrefix, Path: "/"}, bs, redirectHTTPS)
				t.addRoute(host, false, r, "Prefix", "/")
			}
			continue
		}
		for j, p := range rule.HTTP.Paths {
			m, regex, err := t.match(p)
			if err != nil {
				return fmt.Errorf("rules[%d].http.paths[%d]: %w", i, j, err)
			}
			bs, err := t.backend(&p.Backend, fmt.Sprintf("rules[%d].http.paths[%d]", i, j))
			if err != nil {
				return fmt.Errorf("rules[%d].http.paths[%d]: %w", i, j, err)
			}
			r := t.newRoute(i, j, m, bs, redirectHTTPS)
			if t.rewrite != "" && r.Redirect == nil && r.Respond == nil {
				rw := cloneRewrite(r.Rewrite)
				rw.Pattern = "(?i)^" + strings.TrimPrefix(p.Path, "^") + ".*"
				rw.Substitution = t.rewrite
				if _, err := regexp.Compile(rw.Pattern); err != nil {
					return fmt.Errorf("rules[%d].http.paths[%d]: rewrite-target: path %q is not an RE2 expression: %v", i, j, p.Path, err)
				}
				r.Rewrite = rw
			}
			if r.Hash != nil {
				r.Hash = t.cookiePath(r.Hash, m)
			}
			kind := "ImplementationSpecific"
			if p.PathType != nil {
				kind = string(*p.PathType)
			}
			t.addRoute(host, regex, r, kind, p.Path)
		}
	}
	return nil
}

// routePrefix names the routes of rule i.
func (t *ingressTranslation) routePrefix(i int) string {
	return t.source + "/" + strconv.Itoa(i)
}

func (t *ingressTranslation) newRoute(i, j int, m ir.Match, bs []ir.WeightedBackend, redirectHTTPS bool) *ir.Route {
	r := &ir.Route{Name: t.routePrefix(i) + "/" + strconv.Itoa(j), Source: t.source, Match: m, Policy: t.policy}
	r.HTTPSRedirect = redirectHTTPS
	switch {
	case t.redirect != nil:
		rd := *t.redirect
		r.Redirect = &rd
		r.Policy = ir.Policy{HTTPSRedirect: redirectHTTPS}
	case bs == nil:
		// ingress-nginx answers 503 for a backend that does not exist (yet).
		r.Respond = &ir.Respond{Status: 503}
		r.Policy = ir.Policy{HTTPSRedirect: redirectHTTPS}
	default:
		r.Backends = bs
	}
	return r
}

func (t *ingressTranslation) addRoute(host string, regex bool, r *ir.Route, kind, path string) {
	pr := &pathRoute{route: r, key: pathKey(r.Match), kind: kind, path: path, order: t.order, canary: t.canary,
		ci: t.ci, ing: t.ing}
	t.out.routes = append(t.out.routes, hostRoute{host: host, regex: regex, pr: pr})
}

var dollarGroups = regexp.MustCompile(`\$([0-9])`)

// match turns an Ingress path into a route match; regex reports a regex path.
func (t *ingressTranslation) match(p networkingv1.HTTPIngressPath) (ir.Match, bool, error) {
	path := p.Path
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") {
		return ir.Match{}, false, fmt.Errorf("path %q is not absolute", path)
	}
	kind := networkingv1.PathTypeImplementationSpecific
	if p.PathType != nil {
		kind = *p.PathType
	}
	switch kind {
	case networkingv1.PathTypeExact:
		if t.regex && t.ann.boolean("use-regex", false) {
			break // ingress-nginx treats every path as a regex under use-regex
		}
		return ir.Match{Kind: ir.PathExact, Path: path}, false, nil
	case networkingv1.PathTypePrefix:
		if t.regex && t.ann.boolean("use-regex", false) {
			break
		}
		// Kubernetes ignores a trailing slash of a Prefix path: /foo/ matches /foo.
		if path != "/" {
			path = strings.TrimRight(path, "/")
			if path == "" {
				path = "/"
			}
		}
		return ir.Match{Kind: ir.PathPrefix, Path: path}, false, nil
	case networkingv1.PathTypeImplementationSpecific:
		if !t.regex {
			return ir.Match{Kind: ir.PathStringPrefix, Path: path}, false, nil
		}
	default:
		return ir.Match{}, false, fmt.Errorf("pathType %q unknown", kind)
	}
	re := strings.TrimPrefix(path, "^")
	if _, err := regexp.Compile("(?i)" + re); err != nil {
		return ir.Match{}, false, fmt.Errorf("path %q is not an RE2 regular expression: %v", path, err)
	}
	return ir.Match{Kind: ir.PathRegexPrefix, Path: re, CaseInsensitive: true}, true, nil
}

// redirects reads app-root and the permanent and temporal redirects.
func (t *ingressTranslation) redirects() {
	if v := t.ann.str("app-root"); v != "" {
		if !strings.HasPrefix(v, "/") {
			t.ann.errorf("app-root", "%q does not start with /", v)
		} else {
			t.appRoot = v
		}
	}
	if v := t.ann.str("temporal-redirect"); v != "" {
		code := t.ann.integer("temporal-redirect-code", 302, 300, 399)
		t.redirect = t.redirectTo("temporal-redirect", v, code)
	} else if v := t.ann.str("permanent-redirect"); v != "" {
		code := t.ann.integer("permanent-redirect-code", 301, 300, 399)
		t.redirect = t.redirectTo("permanent-redirect", v, code)
	}
	if t.redirect != nil && !slices.Contains([]int{301, 302, 303, 307, 308}, t.redirect.Code) {
		t.ann.errorf("permanent-redirect-code", "%d is not 301, 302, 303, 307 or 308", t.redirect.Code)
	}
}

func (t *ingressTranslation) redirectTo(key, to string, code int) *ir.Redirect {
	u, err := parseURL(to)
	if err != nil {
		t.ann.errorf(key, "%v", err)
		return nil
	}
	rd := &ir.Redirect{Scheme: u.scheme, Host: u.host, Port: u.port, Path: u.path, Code: code}
	if rd.Path == "" {
		rd.Path = "/"
	}
	if u.query != "" {
		rd.Path += "?" + u.query
	} else {
		rd.StripQuery = true // nginx's return drops the request's query
	}
	return rd
}

// tls reads spec.tls and the client-certificate annotations, returning the hosts with a TLS
// section.
func (t *ingressTranslation) tls() (map[string]bool, error) {
	hosts := map[string]bool{}
	var clientCA string
	var require bool
	if v := t.ann.str("auth-tls-secret"); v != "" {
		mode := t.ann.str("auth-tls-verify-client")
		switch mode {
		case "", "on":
			require = true
		case "optional":
		case "off":
		case "optional_no_ca":
			return nil, fmt.Errorf("auth-tls-verify-client optional_no_ca: certificates that are not verified cannot be requested")
		default:
			return nil, fmt.Errorf("auth-tls-verify-client %q is not on, off or optional", mode)
		}
		if mode != "off" {
			sec, err := t.secret(v, "auth-tls-secret")
			if err != nil {
				return nil, err
			}
			is, err := caSecret(t.ci, sec)
			if err != nil {
				return nil, fmt.Errorf("auth-tls-secret: %w", err)
			}
			t.out.secrets = append(t.out.secrets, is)
			clientCA = is.Name
		}
	}
	ciphers, err := t.ciphers("ssl-ciphers")
	if err != nil {
		return nil, err
	}
	for _, tl := range t.ing.Spec.TLS {
		var name string
		if tl.SecretName != "" {
			sec := t.ci.secrets[t.ing.Namespace+"/"+tl.SecretName]
			if sec == nil {
				t.s.problem(t.ci, t.ing, false, "SecretNotFound", "TLS secret %s/%s not found: its hosts get the default certificate", t.ing.Namespace, tl.SecretName)
			} else if is, err := tlsSecret(t.ci, sec); err != nil {
				t.s.problem(t.ci, t.ing, false, "SecretInvalid", "TLS secret %s/%s: %v: its hosts get the default certificate", t.ing.Namespace, tl.SecretName, err)
			} else {
				t.out.secrets = append(t.out.secrets, is)
				name = is.Name
			}
		}
		tlHosts := tl.Hosts
		if len(tlHosts) == 0 {
			for _, r := range t.ing.Spec.Rules {
				if r.Host != "" {
					tlHosts = append(tlHosts, r.Host)
				}
			}
		}
		for _, h := range tlHosts {
			h = strings.ToLower(h)
			hosts[h] = true
			if name != "" {
				t.out.tls[h] = &hostTLS{Secret: name, ClientCA: clientCA, RequireClientCert: require && clientCA != "", Ciphers: ciphers}
			}
		}
	}
	if clientCA != "" && len(t.out.tls) == 0 {
		return nil, fmt.Errorf("auth-tls-secret: the Ingress has no TLS host with a certificate to require client certificates on")
	}
	return hosts, nil
}
