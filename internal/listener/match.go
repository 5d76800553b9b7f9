package listener

import (
	"fmt"
	"strings"
)

// Transport protocols as Envoy's tls_inspector reports them.
const (
	TransportTLS = "tls"
	TransportRaw = "raw_buffer"
)

// matcher is the filter-chain match tree, one level per criterion in Envoy's order of
// precedence. Each level keeps only the most specific candidates that match and never backtracks
// to a less specific branch when a deeper level fails, which is how Envoy prunes ("filter chains
// which most specifically match the attributes continue to the next step"). Lookups use map
// keys and substrings of the input, so a match allocates nothing.
type matcher struct {
	ports   map[uint32]*nameLevel
	anyPort *nameLevel
}

type nameLevel struct {
	exact map[string]*transportLevel
	// wild is keyed by the suffix after the "*", dot included (".example.com"), so a lookup can
	// slice the SNI at each dot instead of building a key.
	wild map[string]*transportLevel
	none *transportLevel
}

type transportLevel struct {
	tls, raw, any *alpnLevel
}

type alpnLevel struct {
	protos map[string]*chain
	any    *chain
}

func (m *matcher) add(ch *chain) error {
	fm := &ch.model.Match
	var nl *nameLevel
	if fm.DestinationPort != 0 {
		if m.ports == nil {
			m.ports = make(map[uint32]*nameLevel)
		}
		nl = m.ports[fm.DestinationPort]
		if nl == nil {
			nl = &nameLevel{}
			m.ports[fm.DestinationPort] = nl
		}
	} else {
		if m.anyPort == nil {
			m.anyPort = &nameLevel{}
		}
		nl = m.anyPort
	}

	var tls []*transportLevel
	if len(fm.ServerNames) == 0 {
		if nl.none == nil {
			nl.none = &transportLevel{}
		}
		tls = append(tls, nl.none)
	}
	for _, sn := range fm.ServerNames {
		sn = strings.ToLower(sn)
		var tab *map[string]*transportLevel
		key := sn
		switch {
		case strings.HasPrefix(sn, "*."):
			if len(sn) == 2 {
				return fmt.Errorf("server name %q: wildcard without a suffix", sn)
			}
			tab, key = &nl.wild, sn[1:]
		case strings.Contains(sn, "*"):
			return fmt.Errorf("server name %q: only a leading \"*.\" wildcard is supported", sn)
		case sn == "":
			return fmt.Errorf("empty server name")
		default:
			tab = &nl.exact
		}
		if *tab == nil {
			*tab = make(map[string]*transportLevel)
		}
		tl := (*tab)[key]
		if tl == nil {
			tl = &transportLevel{}
			(*tab)[key] = tl
		}
		tls = append(tls, tl)
	}

	for _, tl := range tls {
		var slot **alpnLevel
		switch fm.TransportProtocol {
		case "":
			slot = &tl.any
		case TransportTLS:
			slot = &tl.tls
		case TransportRaw:
			slot = &tl.raw
		default:
			return fmt.Errorf("transport protocol %q: want %q, %q or empty", fm.TransportProtocol, TransportTLS, TransportRaw)
		}
		if *slot == nil {
			*slot = &alpnLevel{}
		}
		al := *slot
		if len(fm.ApplicationProtocols) == 0 {
			if al.any != nil {
				return fmt.Errorf("same match criteria as filter chain %q", al.any.model.Name)
			}
			al.any = ch
			continue
		}
		for _, p := range fm.ApplicationProtocols {
			if al.protos == nil {
				al.protos = make(map[string]*chain)
			}
			if prev := al.protos[p]; prev != nil {
				return fmt.Errorf("same match criteria as filter chain %q", prev.model.Name)
			}
			al.protos[p] = ch
		}
	}
	return nil
}

// match returns the chain for a connection, or nil when no chain matches (the caller then
// falls back to the default filter chain). sni must already be lower case.
func (m *matcher) match(port uint32, sni, transport string, alpn []string) *chain {
	nl := m.ports[port]
	if nl == nil {
		nl = m.anyPort
	}
	if nl == nil {
		return nil
	}
	tl := nl.lookup(sni)
	if tl == nil {
		return nil
	}
	var al *alpnLevel
	switch transport {
	case TransportTLS:
		al = tl.tls
	case TransportRaw:
		al = tl.raw
	}
	if al == nil {
		al = tl.any
	}
	if al == nil {
		return nil
	}
	// The client's preference order decides among chains, as in Envoy.
	for _, p := range alpn {
		if ch := al.protos[p]; ch != nil {
			return ch
		}
	}
	return al.any
}

func (nl *nameLevel) lookup(sni string) *transportLevel {
	if sni != "" {
		if tl := nl.exact[sni]; tl != nil {
			return tl
		}
		if nl.wild != nil {
			// Left to right over the dots yields the longest suffix first; the first label
			// is never part of the suffix, so "*.example.com" does not match "example.com".
			for i := 0; i < len(sni); i++ {
				if sni[i] != '.' {
					continue
				}
				if tl := nl.wild[sni[i:]]; tl != nil {
					return tl
				}
			}
		}
	}
	return nl.none
}

// needsInspection reports whether selecting among the chains, or serving them, depends on
// what the client sends first.
func (cc *Compiled) needsInspection() bool {
	for _, ch := range cc.all {
		fm := &ch.model.Match
		if ch.tls != nil || len(fm.ServerNames) > 0 || fm.TransportProtocol != "" || len(fm.ApplicationProtocols) > 0 {
			return true
		}
	}
	return false
}

// lowerASCII lower-cases s, allocating only when s has an upper-case letter, which SNI rarely
// has.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
