package route

import (
	"net/netip"
	"strings"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// hashPolicy is one compiled hash_policy entry.
type hashPolicy struct {
	kind     model.HashPolicyKind
	name     string
	terminal bool
	cookie   *CookieSpec // a cookie policy with a TTL: generate the cookie when missing
}

// CookieSpec describes a cookie the router generates for a cookie hash policy with a TTL.
type CookieSpec struct {
	Name string
	TTL  time.Duration
	Path string
}

func compileHashPolicies(ps []model.HashPolicy) []hashPolicy {
	out := make([]hashPolicy, 0, len(ps))
	for _, p := range ps {
		hp := hashPolicy{kind: p.Kind, name: p.Name, terminal: p.Terminal}
		if p.Kind == model.HashHeader {
			hp.name = lowerASCII(p.Name)
		}
		if p.Kind == model.HashCookie && p.CookieTTL != nil {
			hp.cookie = &CookieSpec{Name: p.Name, TTL: *p.CookieTTL, Path: p.CookiePath}
		}
		out = append(out, hp)
	}
	return out
}

// HasHashPolicy reports whether the route computes a request hash.
func (f *Forward) HasHashPolicy() bool { return len(f.hash) > 0 }

// Hash computes the request hash from the route's hash policies, as Envoy combines them:
// each policy that yields a value folds it in as hash = rotl(hash, 1) ^ value, and a
// terminal policy that yielded one ends the evaluation. ok is false when no policy applied.
//
// When a cookie policy with a TTL finds no cookie, gen is its spec: the caller generates a
// value, hashes it with HashCookieValue, folds it in the same way, and sends the cookie back
// with Set-Cookie. Hash does not allocate.
func (f *Forward) Hash(h *header.Map, source netip.Addr) (hash uint64, ok bool, gen *CookieSpec) {
	for i := range f.hash {
		p := &f.hash[i]
		var v uint64
		found := false
		switch p.kind {
		case model.HashHeader:
			// Every value of a repeated header counts, in order, as Envoy hashes them all.
			first := true
			for j := 0; j < h.Len(); j++ {
				fl := h.At(j)
				if fl.Name != p.name {
					continue
				}
				if first {
					v, first = HashString(fl.Value), false
				} else {
					v = combine(v, HashString(fl.Value), true)
				}
				found = true
			}
			if !found && len(p.name) > 0 && p.name[0] == ':' {
				if pv, pok := h.Get(p.name); pok {
					v, found = HashString(pv), true
				}
			}
		case model.HashCookie:
			var cv string
			if cv, found = cookieValue(h, p.name); found {
				v = HashString(cv)
			} else if p.cookie != nil && gen == nil {
				gen = p.cookie
			}
		case model.HashSourceIP:
			if source.IsValid() {
				b := source.As16()
				if source.Is4() {
					v, found = hashBytes(b[12:]), true
				} else {
					v, found = hashBytes(b[:]), true
				}
			}
		case model.HashQueryParameter:
			var qv string
			if qv, found = queryParam(queryOf(h.Path), p.name); found {
				v = HashString(qv)
			}
		}
		if found {
			hash = combine(hash, v, ok)
			ok = true
			if p.terminal {
				return hash, ok, gen
			}
		}
	}
	return hash, ok, gen
}

// CombineHash folds v into a hash built by Hash (ok says whether it held a value yet).
func CombineHash(hash, v uint64, ok bool) uint64 { return combine(hash, v, ok) }

func combine(hash, v uint64, ok bool) uint64 {
	if !ok {
		return v
	}
	return (hash<<1 | hash>>63) ^ v
}

// cookieValue finds a cookie in the request's cookie headers without allocating.
func cookieValue(h *header.Map, name string) (string, bool) {
	for j := 0; j < h.Len(); j++ {
		fl := h.At(j)
		if fl.Name != "cookie" {
			continue
		}
		v := fl.Value
		for v != "" {
			var part string
			if i := strings.IndexByte(v, ';'); i >= 0 {
				part, v = v[:i], v[i+1:]
			} else {
				part, v = v, ""
			}
			part = trimSpace(part)
			if len(part) > len(name) && part[len(name)] == '=' && part[:len(name)] == name {
				val := part[len(name)+1:]
				if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
					val = val[1 : len(val)-1]
				}
				return val, true
			}
		}
	}
	return "", false
}

// HashString hashes s with 64-bit FNV-1a and a final avalanche, so nearby keys spread over a
// ring. It is stable across processes: every replica maps a key to the same host.
func HashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return avalanche(h)
}

func hashBytes(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return avalanche(h)
}

func avalanche(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	return x ^ x>>33
}
