package v1alpha1

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// FieldError is one problem in a config, at the field it names.
type FieldError struct {
	// Path is the field's path, e.g. listeners[0].routes[2].backend.
	Path string
	// Msg says what is wrong and, where it helps, what would be right.
	Msg string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// Validate checks the whole config and reports every problem it finds, each as a *FieldError
// (joined with errors.Join), so that one run shows all the mistakes rather than the first.
func (c *Config) Validate() error {
	v := &validator{}
	v.config(c)
	return errors.Join(v.errs...)
}

type validator struct {
	errs []error
}

func (v *validator) fail(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func idx(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func key(path, k string) string { return path + "[" + strconv.Quote(k) + "]" }

// namePattern keeps names usable as Envoy resource names and stat prefixes without escaping.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (v *validator) name(path, name string) {
	switch {
	case name == "":
		v.fail(path, "is required")
	case !namePattern.MatchString(name):
		v.fail(path, "%q must start with a letter or digit and contain only letters, digits, '.', '_' and '-'", name)
	}
}

func (v *validator) config(c *Config) {
	if c.APIVersion != APIVersion {
		v.fail("apiVersion", "must be %q, got %q", APIVersion, c.APIVersion)
	}
	if c.Kind != KindConfig {
		v.fail("kind", "must be %q, got %q", KindConfig, c.Kind)
	}
	if c.Admin != nil {
		v.listenAddress("admin.address", c.Admin.Address)
	}

	backends := map[string]int{}
	for i := range c.Backends {
		p := idx("backends", i)
		v.backend(p, &c.Backends[i])
		if n := c.Backends[i].Name; n != "" {
			if j, dup := backends[n]; dup {
				v.fail(p+".name", "%q is already the name of backends[%d]", n, j)
				continue
			}
			backends[n] = i
		}
	}

	if len(c.Listeners) == 0 {
		v.fail("listeners", "at least one listener is required")
	}
	names := map[string]int{}
	addrs := map[string]int{}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		p := idx("listeners", i)
		v.listener(p, l, backends)
		if l.Name != "" {
			if j, dup := names[l.Name]; dup {
				v.fail(p+".name", "%q is already the name of listeners[%d]", l.Name, j)
			} else {
				names[l.Name] = i
			}
		}
		if ap, err := netip.ParseAddrPort(l.Address); err == nil {
			a := ap.String()
			if j, dup := addrs[a]; dup {
				v.fail(p+".address", "%s is already the address of listeners[%d]", l.Address, j)
			} else {
				addrs[a] = i
			}
		}
	}
}

// listenAddress checks a host:port to bind: the host must be an IP literal because Envoy does
// not resolve names for listeners.
func (v *validator) listenAddress(path, addr string) {
	if addr == "" {
		v.fail(path, "is required, e.g. 0.0.0.0:8080")
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.fail(path, "%q must be host:port, e.g. 0.0.0.0:8080 or [::]:8080", addr)
		return
	}
	if _, err := netip.ParseAddr(host); err != nil {
		v.fail(path, "host %q must be an IP address, e.g. 0.0.0.0 or [::]", host)
	}
	v.port(path, port, addr)
}

func (v *validator) port(path, port, addr string) {
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		v.fail(path, "port in %q must be a number from 1 to 65535", addr)
	}
}

func (v *validator) listener(p string, l *Listener, backends map[string]int) {
	v.name(p+".name", l.Name)
	v.listenAddress(p+".address", l.Address)
	if l.TLS != nil {
		v.listenerTLS(p+".tls", l.TLS)
	}
	if t := l.Timeouts; t != nil {
		v.duration(p+".timeouts.request", t.Request)
		v.duration(p+".timeouts.idle", t.Idle)
		v.duration(p+".timeouts.streamIdle", t.StreamIdle)
	}
	v.accessLog(p+".accessLog", l.AccessLog)
	if len(l.Routes) == 0 {
		v.fail(p+".routes", "at least one route is required")
	}
	names := map[string]int{}
	// hostSets maps each host to the normalized set of the first route that listed it: routes
	// become one virtual host per host set, and a host in two virtual hosts is ambiguous.
	hostSets := map[string]struct {
		set   string
		route int
	}{}
	for i := range l.Routes {
		r := &l.Routes[i]
		rp := idx(p+".routes", i)
		v.route(rp, r, backends)
		if r.Name != "" {
			if j, dup := names[r.Name]; dup {
				v.fail(rp+".name", "%q is already the name of routes[%d]", r.Name, j)
			} else {
				names[r.Name] = i
			}
		}
		set := HostSet(r.Hosts)
		for _, h := range set {
			prev, seen := hostSets[h]
			if !seen {
				hostSets[h] = struct {
					set   string
					route int
				}{strings.Join(set, ","), i}
				continue
			}
			if prev.set != strings.Join(set, ",") {
				v.fail(rp+".hosts", "host %q is also in routes[%d] with different hosts; routes that share a host must list the same hosts", h, prev.route)
				break
			}
		}
	}
}

// HostSet returns a route's hosts as its virtual host's domains: lower-cased, sorted and
// without duplicates, "*" when none are given.
func HostSet(hosts []string) []string {
	if len(hosts) == 0 {
		return []string{"*"}
	}
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, strings.ToLower(h))
	}
	sort.Strings(out)
	return slices.Compact(out)
}

var tlsVersions = []string{"1.0", "1.1", "1.2", "1.3"}

func (v *validator) listenerTLS(p string, t *ListenerTLS) {
	if t.MinVersion != "" && !slices.Contains(tlsVersions, t.MinVersion) {
		v.fail(p+".minVersion", "%q must be one of %s", t.MinVersion, strings.Join(tlsVersions, ", "))
	}
	if len(t.Certificates) == 0 {
		v.fail(p+".certificates", "at least one certificate is required")
	}
	owner := map[string]int{}
	defaultCert := -1
	for i, c := range t.Certificates {
		cp := idx(p+".certificates", i)
		if c.Cert == "" {
			v.fail(cp+".cert", "is required")
		}
		if c.Key == "" {
			v.fail(cp+".key", "is required")
		}
		if len(c.Hosts) == 0 {
			if defaultCert >= 0 {
				v.fail(cp+".hosts", "only one certificate may omit hosts (certificates[%d] already does)", defaultCert)
			}
			defaultCert = i
		}
		for j, h := range c.Hosts {
			hp := idx(cp+".hosts", j)
			if h == "*" {
				v.fail(hp, "\"*\" is not an SNI name; omit hosts to make this the default certificate")
				continue
			}
			v.host(hp, h)
			lh := strings.ToLower(h)
			if k, dup := owner[lh]; dup {
				v.fail(hp, "%q is already served by certificates[%d]", h, k)
				continue
			}
			owner[lh] = i
		}
	}
}

// host checks a host name as routes and SNI use it: an exact DNS name, "*.suffix", or "*".
func (v *validator) host(path, h string) {
	if h == "*" {
		return
	}
	name := strings.TrimPrefix(h, "*.")
	if !isDNSName(name) {
		v.fail(path, "%q must be a DNS name such as example.com, a wildcard such as *.example.com, or \"*\"", h)
	}
}

// isDNSName reports whether s is a DNS name per RFC 1123 (letters, digits and hyphens in labels
// of at most 63 characters, 253 in all). Case is ignored.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func (v *validator) duration(path string, d *Duration) {
	if d != nil && d.Duration < 0 {
		v.fail(path, "must not be negative, got %s", d.Duration)
	}
}
