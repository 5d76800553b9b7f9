// Package config reads rate limit rules in the YAML format of envoyproxy/ratelimit (a domain and a
// tree of descriptors, each with an optional rate_limit) and answers which limit applies to a
// request's descriptor.
//
// Files written for envoyproxy/ratelimit load here unchanged, and the matching rules are the
// same: at each level the key_value entry is tried first, then the wildcard values in file order,
// then the bare key; a limit applies only when the request's descriptor has exactly as many
// entries as the depth of the rule. A Config is immutable once built, so the service swaps whole
// Configs and readers never lock.
package config

import (
	"strings"
	"time"

	rlcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
)

// Limit is one rate_limit block, compiled.
type Limit struct {
	// FullKey names the rule for stats, as envoyproxy/ratelimit does: the domain and each level's
	// key or key_value joined by dots ("messaging.message_type_marketing.to_number").
	FullKey         string
	Name            string
	Replaces        []string
	Unit            rlsv3.RateLimitResponse_RateLimit_Unit
	RequestsPerUnit uint32
	Unlimited       bool
	ShadowMode      bool
	// DetailedMetric asks for stats under the request's own values rather than the rule's key.
	DetailedMetric bool
	// Proto is what responses carry as current_limit; shared, never modified.
	Proto *rlsv3.RateLimitResponse_RateLimit
}

// Window is the length of the limit's time window.
func (l *Limit) Window() time.Duration { return UnitWindow(l.Unit) }

// UnitWindow is the window length of a unit, with envoyproxy/ratelimit's lengths for the
// calendar units (a month is 30 days, a year 365).
func UnitWindow(u rlsv3.RateLimitResponse_RateLimit_Unit) time.Duration {
	const day = 24 * time.Hour
	switch u {
	case rlsv3.RateLimitResponse_RateLimit_SECOND:
		return time.Second
	case rlsv3.RateLimitResponse_RateLimit_MINUTE:
		return time.Minute
	case rlsv3.RateLimitResponse_RateLimit_HOUR:
		return time.Hour
	case rlsv3.RateLimitResponse_RateLimit_DAY:
		return day
	case rlsv3.RateLimitResponse_RateLimit_WEEK:
		return 7 * day
	case rlsv3.RateLimitResponse_RateLimit_MONTH:
		return 30 * day
	case rlsv3.RateLimitResponse_RateLimit_YEAR:
		return 365 * day
	}
	return 0
}

// Config is every domain's descriptor tree.
type Config struct {
	domains map[string]*node
	// Files are the files the config was read from, for logs.
	Files []string
}

type node struct {
	// children by "key" or "key_value", as written in the file.
	children map[string]*node
	// wildcards are the children whose value contains '*', in file order.
	wildcards []wildcard
	limit     *Limit
	// line in the file, to point at the first of two duplicates.
	line int
}

type wildcard struct {
	child *node
	// key is the descriptor key; the wildcard is in the value only.
	key string
	// parts is the value split on '*': the literal pieces that must appear in order.
	parts []string
}

// Domains is how many domains the config has.
func (c *Config) Domains() int { return len(c.domains) }

// Lookup finds the limit for one descriptor of a request in domain, or nil when none applies
// (an unknown domain, no matching rule, or a rule at a different depth).
func (c *Config) Lookup(domain string, entries []*rlcommonv3.RateLimitDescriptor_Entry) *Limit {
	n := c.domains[domain]
	if n == nil {
		return nil
	}
	var found *Limit
	var buf [128]byte
	for i, e := range entries {
		// The composite key is built in a stack buffer: a map index with string(b) does not
		// allocate.
		kv := append(append(append(buf[:0], e.Key...), '_'), e.Value...)
		next := n.children[string(kv)]
		if next == nil {
			for _, w := range n.wildcards {
				if w.matches(e.Key, e.Value) {
					next = w.child
					break
				}
			}
		}
		if next == nil {
			next = n.children[e.Key]
		}
		if next == nil {
			return nil
		}
		if next.limit != nil && i == len(entries)-1 {
			found = next.limit
		}
		if len(next.children) == 0 {
			break
		}
		n = next
	}
	return found
}

func (w *wildcard) matches(key, value string) bool {
	return key == w.key && wildcardMatch(w.parts, value)
}

// wildcardMatch reports whether value is parts joined by runs of any characters.
func wildcardMatch(parts []string, value string) bool {
	first, last := parts[0], parts[len(parts)-1]
	if len(value) < len(first)+len(last) || !strings.HasPrefix(value, first) || !strings.HasSuffix(value, last) {
		return false
	}
	rest := value[len(first) : len(value)-len(last)]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return true
}

// StatKey is the stats name for a match of l by entries: l.FullKey, or with detailed_metric the
// request's own keys and values under the domain.
func StatKey(domain string, l *Limit, entries []*rlcommonv3.RateLimitDescriptor_Entry) string {
	if !l.DetailedMetric {
		return l.FullKey
	}
	return DescriptorKey(domain, entries)
}

// DescriptorKey joins domain and entries as "domain.key_value.key_value" (an empty value leaves
// just the key), envoyproxy/ratelimit's name for a descriptor.
func DescriptorKey(domain string, entries []*rlcommonv3.RateLimitDescriptor_Entry) string {
	var b strings.Builder
	b.WriteString(domain)
	for _, e := range entries {
		b.WriteByte('.')
		b.WriteString(e.Key)
		if e.Value != "" {
			b.WriteByte('_')
			b.WriteString(e.Value)
		}
	}
	return b.String()
}
