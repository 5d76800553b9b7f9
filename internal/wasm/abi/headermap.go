package abi

import (
	"encoding/binary"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// HeaderMap is a header block as the plugin sees it: pseudo-headers first (":method",
// ":path", ":status", ...), then the regular fields in order. Names given to Get, Set, Add and
// Del are lower-case. Strings passed to Set and Add stay valid until the stream ends.
type HeaderMap interface {
	Get(name string) (string, bool)
	Len() int
	At(i int) (name, value string)
	Add(name, value string)
	Set(name, value string)
	Del(name string)
}

// Headers adapts Nuncio's header.Map to HeaderMap without copying: HeadersOf(m) is a
// conversion of the pointer, so passing it costs no allocation.
type Headers header.Map

// HeadersOf returns m as a HeaderMap.
func HeadersOf(m *header.Map) *Headers { return (*Headers)(m) }

var pseudoNames = [...]string{":method", ":scheme", ":authority", ":path", ":protocol", ":status"}

func (h *Headers) m() *header.Map { return (*header.Map)(h) }

// pseudo returns the k'th present pseudo-header.
func (h *Headers) pseudo(k int) (string, string, bool) {
	for _, n := range pseudoNames {
		if v, ok := h.m().Get(n); ok {
			if k == 0 {
				return n, v, true
			}
			k--
		}
	}
	return "", "", false
}

func (h *Headers) pseudoCount() int {
	n := 0
	for _, p := range pseudoNames {
		if h.m().Has(p) {
			n++
		}
	}
	return n
}

// Get implements HeaderMap.
func (h *Headers) Get(name string) (string, bool) { return h.m().Get(name) }

// Len implements HeaderMap.
func (h *Headers) Len() int { return h.pseudoCount() + h.m().Len() }

// At implements HeaderMap.
func (h *Headers) At(i int) (string, string) {
	if n, v, ok := h.pseudo(i); ok {
		return n, v
	}
	f := h.m().At(i - h.pseudoCount())
	return f.Name, f.Value
}

// Add implements HeaderMap.
func (h *Headers) Add(name, value string) { h.m().Add(name, value) }

// Set implements HeaderMap.
func (h *Headers) Set(name, value string) { h.m().Set(name, value) }

// Del implements HeaderMap.
func (h *Headers) Del(name string) { h.m().Del(name) }

// Pairs is a HeaderMap over a slice of fields, for HTTP call responses and tests.
type Pairs []header.Field

// Get implements HeaderMap.
func (p *Pairs) Get(name string) (string, bool) {
	for _, f := range *p {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

// Len implements HeaderMap.
func (p *Pairs) Len() int { return len(*p) }

// At implements HeaderMap.
func (p *Pairs) At(i int) (string, string) { return (*p)[i].Name, (*p)[i].Value }

// Add implements HeaderMap.
func (p *Pairs) Add(name, value string) { *p = append(*p, header.Field{Name: name, Value: value}) }

// Set implements HeaderMap.
func (p *Pairs) Set(name, value string) {
	p.Del(name)
	p.Add(name, value)
}

// Del implements HeaderMap.
func (p *Pairs) Del(name string) {
	out := (*p)[:0]
	for _, f := range *p {
		if f.Name != name {
			out = append(out, f)
		}
	}
	*p = out
}

// The pairs format of the spec: a u32 count, then a (u32 name length, u32 value length) per
// pair, then each name and value followed by a NUL byte. All integers little-endian.

// pairsSize is the encoded size of m.
func pairsSize(m HeaderMap) int {
	n := m.Len()
	size := 4 + 8*n
	for k := 0; k < n; k++ {
		name, value := m.At(k)
		size += len(name) + len(value) + 2
	}
	return size
}

// encodePairs writes m into dst, which is pairsSize(m) bytes long.
func encodePairs(dst []byte, m HeaderMap) {
	n := m.Len()
	binary.LittleEndian.PutUint32(dst, uint32(n))
	lens := dst[4:]
	data := dst[4+8*n:]
	for k := 0; k < n; k++ {
		name, value := m.At(k)
		binary.LittleEndian.PutUint32(lens[8*k:], uint32(len(name)))
		binary.LittleEndian.PutUint32(lens[8*k+4:], uint32(len(value)))
		data = data[copy(data, name):]
		data[0] = 0
		data = data[1+copy(data[1:], value):]
		data[0] = 0
		data = data[1:]
	}
}

// decodePairs calls fn for every pair in b, a guest's encoding: every length is checked
// against b before use. It reports false for a malformed encoding.
func decodePairs(b []byte, fn func(name, value []byte)) bool {
	if len(b) < 4 {
		return len(b) == 0
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if 4+8*n > uint64(len(b)) {
		return false
	}
	lens := b[4 : 4+8*n]
	data := b[4+8*n:]
	for k := uint64(0); k < n; k++ {
		nl := uint64(binary.LittleEndian.Uint32(lens[8*k:]))
		vl := uint64(binary.LittleEndian.Uint32(lens[8*k+4:]))
		if nl+vl+2 > uint64(len(data)) {
			return false
		}
		name := data[:nl]
		value := data[nl+1 : nl+1+vl]
		data = data[nl+vl+2:]
		if fn != nil {
			fn(name, value)
		}
	}
	return true
}

var (
	_ HeaderMap = (*Headers)(nil)
	_ HeaderMap = (*Pairs)(nil)
)
