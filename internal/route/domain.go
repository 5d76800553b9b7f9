package route

import (
	"fmt"
	"slices"
	"strings"
)

// domainIndex finds a virtual host by :authority with Envoy's precedence: exact domains, then
// suffix wildcards ("*.foo.com", "*-bar.foo.com") longest first, then prefix wildcards
// ("foo.*") longest first, then "*". A wildcard must match at least one character.
type domainIndex struct {
	exact    map[string]*VirtualHost
	suffixes []wildGroup // by length, longest first
	prefixes []wildGroup // by length, longest first
	def      *VirtualHost
	// withPort is set when some domain names a port; only then is a port in the authority
	// considered before it is stripped.
	withPort bool
}

// wildGroup holds the wildcards whose fixed part has length n, keyed by that part.
type wildGroup struct {
	n int
	m map[string]*VirtualHost
}

// hostBufSize bounds the stack buffer the authority is lower-cased into; DNS names are at most
// 253 bytes, so only bogus authorities take the allocating path.
const hostBufSize = 320

func (d *domainIndex) add(domain string, vh *VirtualHost) error {
	if domain == "" {
		return fmt.Errorf("empty domain")
	}
	domain = strings.ToLower(domain)
	if strings.Count(domain, "*") > 1 || (strings.Contains(domain, "*") && domain != "*" &&
		domain[0] != '*' && domain[len(domain)-1] != '*') {
		return fmt.Errorf("domain %q: a wildcard must be the first or last character", domain)
	}
	if portOf(domain) != "" {
		d.withPort = true
	}
	var taken bool
	switch {
	case domain == "*":
		taken = d.def != nil
		if !taken {
			d.def = vh
		}
	case domain[0] == '*':
		taken = addWild(&d.suffixes, domain[1:], vh)
	case domain[len(domain)-1] == '*':
		taken = addWild(&d.prefixes, domain[:len(domain)-1], vh)
	default:
		if d.exact == nil {
			d.exact = map[string]*VirtualHost{}
		}
		_, taken = d.exact[domain]
		if !taken {
			d.exact[domain] = vh
		}
	}
	if taken {
		// Envoy rejects a domain served by two virtual hosts.
		return fmt.Errorf("domain %q is already served by another virtual host", domain)
	}
	return nil
}

func addWild(groups *[]wildGroup, part string, vh *VirtualHost) (taken bool) {
	i := slices.IndexFunc(*groups, func(g wildGroup) bool { return g.n == len(part) })
	if i < 0 {
		*groups = append(*groups, wildGroup{n: len(part), m: map[string]*VirtualHost{}})
		slices.SortFunc(*groups, func(a, b wildGroup) int { return b.n - a.n })
		i = slices.IndexFunc(*groups, func(g wildGroup) bool { return g.n == len(part) })
	}
	g := (*groups)[i]
	if _, ok := g.m[part]; ok {
		return true
	}
	g.m[part] = vh
	return false
}

// find lower-cases authority into a stack buffer and looks it up, first with its port (when
// some domain names a port) and then without, at each precedence level in turn.
func (d *domainIndex) find(authority string) *VirtualHost {
	var buf [hostBufSize]byte
	var host []byte
	if len(authority) <= len(buf) {
		host = buf[:len(authority)]
		for i := 0; i < len(authority); i++ {
			host[i] = lower(authority[i])
		}
	} else {
		host = []byte(strings.ToLower(authority))
	}
	full := host
	bare := host[:hostLen(host)]
	withPort := d.withPort && len(bare) != len(full)

	if d.exact != nil {
		if withPort {
			if vh := d.exact[string(full)]; vh != nil {
				return vh
			}
		}
		if vh := d.exact[string(bare)]; vh != nil {
			return vh
		}
	}
	if len(d.suffixes) > 0 {
		if withPort {
			if vh := findSuffix(d.suffixes, full); vh != nil {
				return vh
			}
		}
		if vh := findSuffix(d.suffixes, bare); vh != nil {
			return vh
		}
	}
	if len(d.prefixes) > 0 {
		if withPort {
			if vh := findPrefix(d.prefixes, full); vh != nil {
				return vh
			}
		}
		if vh := findPrefix(d.prefixes, bare); vh != nil {
			return vh
		}
	}
	return d.def
}

func findSuffix(groups []wildGroup, host []byte) *VirtualHost {
	for _, g := range groups {
		if len(host) <= g.n {
			continue
		}
		if vh := g.m[string(host[len(host)-g.n:])]; vh != nil {
			return vh
		}
	}
	return nil
}

func findPrefix(groups []wildGroup, host []byte) *VirtualHost {
	for _, g := range groups {
		if len(host) <= g.n {
			continue
		}
		if vh := g.m[string(host[:g.n])]; vh != nil {
			return vh
		}
	}
	return nil
}

// hostLen is the length of host without its ":port" suffix, for names, IPv4 and bracketed
// IPv6 literals. A bare IPv6 literal (several colons, no brackets) has no port.
func hostLen[T ~string | ~[]byte](host T) int {
	n := len(host)
	if n == 0 {
		return 0
	}
	if host[0] == '[' {
		for i := 1; i < n; i++ {
			if host[i] == ']' {
				if i+1 < n && host[i+1] == ':' && allDigits(host[i+2:]) {
					return i + 1
				}
				return n
			}
		}
		return n
	}
	colon := -1
	for i := 0; i < n; i++ {
		if host[i] == ':' {
			if colon >= 0 {
				return n
			}
			colon = i
		}
	}
	if colon >= 0 && allDigits(host[colon+1:]) {
		return colon
	}
	return n
}

func allDigits[T ~string | ~[]byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if c := b[i]; c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// portOf returns the ":port" suffix of a host, or "".
func portOf(host string) string { return host[hostLen(host):] }
