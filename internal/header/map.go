// Package header provides Map, the codec-neutral HTTP header block that codecs fill, filters
// read and mutate, and the router forwards upstream.
//
// Names are stored lower-case (HTTP/2 requires it and Envoy normalises HTTP/1 the same way), so
// lookups compare bytes without folding. Pseudo-headers live in dedicated fields because every
// request reads them; Get(":path") and friends still work for code that treats them generically.
//
// Strings in a Map may alias a codec's read buffer. They stay valid until the stream ends; a
// filter that keeps a value past that must copy it (strings.Clone).
package header

import "strings"

// Field is one header line. Name is lower-case.
type Field struct {
	Name  string
	Value string
}

// Map is an ordered, case-insensitive multi-map of header fields plus the HTTP/2-style
// pseudo-headers. The zero value is an empty map ready for use. A Map is not safe for
// concurrent use.
type Map struct {
	// Request pseudo-headers.
	Method    string
	Scheme    string
	Authority string // Host for HTTP/1.1
	Path      string // origin-form target including the query
	Protocol  string // :protocol for extended CONNECT (RFC 8441)

	// Response pseudo-header.
	Status int

	fields []Field
}

// Reset empties the map but keeps its storage for reuse.
func (m *Map) Reset() {
	clear(m.fields) // drop references into old buffers so they can be collected
	*m = Map{fields: m.fields[:0]}
}

// Len reports the number of regular (non-pseudo) fields.
func (m *Map) Len() int { return len(m.fields) }

// At returns the i'th regular field in order.
func (m *Map) At(i int) Field { return m.fields[i] }

// Fields returns the regular fields in order. The slice is owned by the map: do not keep it
// across mutations.
func (m *Map) Fields() []Field { return m.fields }

// Get returns the first value of name. name may be in any case; pseudo-header names are
// accepted.
func (m *Map) Get(name string) (string, bool) {
	if len(name) > 0 && name[0] == ':' {
		return m.pseudo(name)
	}
	for i := range m.fields {
		if equalFold(m.fields[i].Name, name) {
			return m.fields[i].Value, true
		}
	}
	return "", false
}

// Value is Get without the presence flag.
func (m *Map) Value(name string) string {
	v, _ := m.Get(name)
	return v
}

// Has reports whether name is present.
func (m *Map) Has(name string) bool {
	_, ok := m.Get(name)
	return ok
}

// Count reports how many fields are named name.
func (m *Map) Count(name string) int {
	n := 0
	for i := range m.fields {
		if equalFold(m.fields[i].Name, name) {
			n++
		}
	}
	return n
}

// Values calls fn for each value of name in order until fn returns false.
func (m *Map) Values(name string, fn func(v string) bool) {
	for i := range m.fields {
		if equalFold(m.fields[i].Name, name) && !fn(m.fields[i].Value) {
			return
		}
	}
}

// Add appends a field. name must already be lower-case (codecs lower-case on parse; callers
// pass constants); AddFold lower-cases for them.
func (m *Map) Add(name, value string) {
	if len(name) > 0 && name[0] == ':' {
		m.setPseudo(name, value)
		return
	}
	m.fields = append(m.fields, Field{Name: name, Value: value})
}

// AddFold is Add for a name of unknown case.
func (m *Map) AddFold(name, value string) { m.Add(Lower(name), value) }

// Set replaces every field named name with a single one, kept at the position of the first.
func (m *Map) Set(name, value string) {
	if len(name) > 0 && name[0] == ':' {
		m.setPseudo(name, value)
		return
	}
	for i := range m.fields {
		if equalFold(m.fields[i].Name, name) {
			m.fields[i].Value = value
			m.delFrom(name, i+1)
			return
		}
	}
	m.fields = append(m.fields, Field{Name: Lower(name), Value: value})
}

// Del removes every field named name and reports whether any was present.
func (m *Map) Del(name string) bool {
	if len(name) > 0 && name[0] == ':' {
		_, ok := m.pseudo(name)
		m.setPseudo(name, "")
		return ok
	}
	n := len(m.fields)
	m.delFrom(name, 0)
	return len(m.fields) != n
}

// DelIf removes every field for which drop returns true.
func (m *Map) DelIf(drop func(f Field) bool) {
	out := m.fields[:0]
	for _, f := range m.fields {
		if !drop(f) {
			out = append(out, f)
		}
	}
	clear(m.fields[len(out):])
	m.fields = out
}

func (m *Map) delFrom(name string, from int) {
	out := m.fields[:from]
	for _, f := range m.fields[from:] {
		if !equalFold(f.Name, name) {
			out = append(out, f)
		}
	}
	clear(m.fields[len(out):])
	m.fields = out
}

// CopyFrom makes m a deep-enough copy of src: the field slice is copied, the strings are
// shared (they are immutable).
func (m *Map) CopyFrom(src *Map) {
	fields := append(m.fields[:0], src.fields...)
	*m = *src
	m.fields = fields
}

// Clone returns an independent copy whose strings no longer alias any codec buffer.
func (m *Map) Clone() *Map {
	c := &Map{
		Method: strings.Clone(m.Method), Scheme: strings.Clone(m.Scheme),
		Authority: strings.Clone(m.Authority), Path: strings.Clone(m.Path),
		Protocol: strings.Clone(m.Protocol), Status: m.Status,
		fields: make([]Field, len(m.fields)),
	}
	for i, f := range m.fields {
		c.fields[i] = Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)}
	}
	return c
}

func (m *Map) pseudo(name string) (string, bool) {
	switch name {
	case ":method":
		return m.Method, m.Method != ""
	case ":scheme":
		return m.Scheme, m.Scheme != ""
	case ":authority":
		return m.Authority, m.Authority != ""
	case ":path":
		return m.Path, m.Path != ""
	case ":protocol":
		return m.Protocol, m.Protocol != ""
	case ":status":
		if m.Status == 0 {
			return "", false
		}
		return statusText(m.Status), true
	}
	return "", false
}

func (m *Map) setPseudo(name, value string) {
	switch name {
	case ":method":
		m.Method = value
	case ":scheme":
		m.Scheme = value
	case ":authority":
		m.Authority = value
	case ":path":
		m.Path = value
	case ":protocol":
		m.Protocol = value
	case ":status":
		m.Status = 0
		for i := 0; i < len(value); i++ {
			if value[i] < '0' || value[i] > '9' {
				m.Status = 0
				return
			}
			m.Status = m.Status*10 + int(value[i]-'0')
		}
	}
}

// statusText formats a status code without allocating for the common three-digit case.
func statusText(code int) string {
	if code >= 100 && code <= 999 {
		return statusCodes[code-100]
	}
	return "0"
}

var statusCodes = func() [900]string {
	var s [900]string
	for i := range s {
		c := i + 100
		s[i] = string([]byte{byte('0' + c/100), byte('0' + c/10%10), byte('0' + c%10)})
	}
	return s
}()

// StatusString returns the three-digit decimal form of code without allocating.
func StatusString(code int) string { return statusText(code) }

// equalFold compares an already lower-case stored name with a name of any case.
func equalFold(stored, name string) bool {
	if len(stored) != len(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if stored[i] != c {
			return false
		}
	}
	return true
}

// Lower returns s lower-cased (ASCII), without allocating when s already is.
func Lower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// ParseDecimal parses the digits-only form numeric header values take (Content-Length,
// x-envoy-*-ms): no sign, no spaces, at most 18 digits so the value fits an int64.
func ParseDecimal(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}
