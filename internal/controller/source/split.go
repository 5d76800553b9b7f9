package source

import (
	"bytes"
)

// A minimal JSON scanner that finds the extent of values without decoding them. Splitting a
// large bootstrap into its listeners, clusters and virtual hosts with encoding/json decodes
// every byte several times; this only skips over them. It accepts only well-formed JSON
// structure; the pieces it cuts out are decoded by protojson, which checks their contents, so
// a malformed document is refused either here or there and then read by the Envoy reader for
// its error.

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	// Strings in configs are short: a plain loop beats a vectorised search's setup.
	for i++; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i + 1, true
		case '\\':
			i++ // an escape: the next byte is never the closing quote
		}
	}
	return 0, false
}

// skipValue returns the index after the value starting at or after b[i].
func skipValue(b []byte, i int) (int, bool) {
	i = skipWS(b, i)
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{':
		return eachMember(b, i, nil)
	case '[':
		return eachElement(b, i, nil)
	}
	// A number, true, false or null: up to the next delimiter.
	start := i
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i, i > start
		case '"', '{', '[', ':':
			return 0, false
		}
		i++
	}
	return i, i > start
}

// eachMember walks the object starting at b[i] == '{', calling fn (when not nil) with each
// member's quoted key and the start of its value; fn returns the value's end, so that a value
// is scanned once. It returns the index after the object.
func eachMember(b []byte, i int, fn func(key []byte, start int) (int, bool)) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		ks := skipWS(b, i)
		ke, ok := skipString(b, ks)
		if !ok {
			return 0, false
		}
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		vs := skipWS(b, i+1)
		var ve int
		if fn != nil {
			ve, ok = fn(b[ks:ke], vs)
		} else {
			ve, ok = skipValue(b, vs)
		}
		if !ok {
			return 0, false
		}
		var done bool
		if i, done, ok = afterItem(b, ve, '}'); !ok || done {
			return i, ok
		}
	}
}

// eachElement walks the array starting at b[i] == '[', calling fn (when not nil) with the start
// of each element; fn returns the element's end, so that an element is scanned once. It returns
// the index after the array.
func eachElement(b []byte, i int, fn func(start int) (int, bool)) (int, bool) {
	if i >= len(b) || b[i] != '[' {
		return 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		vs := skipWS(b, i)
		var ve int
		var ok bool
		if fn != nil {
			ve, ok = fn(vs)
		} else {
			ve, ok = skipValue(b, vs)
		}
		if !ok {
			return 0, false
		}
		var done bool
		if i, done, ok = afterItem(b, ve, ']'); !ok || done {
			return i, ok
		}
	}
}

// afterItem reads what follows a member or element that ends at end: a comma (more follow,
// from next) or the closing bracket (done, and next is the index after it).
func afterItem(b []byte, end int, closing byte) (next int, done, ok bool) {
	i := skipWS(b, end)
	if i >= len(b) {
		return 0, false, false
	}
	switch b[i] {
	case ',':
		return i + 1, false, true
	case closing:
		return i + 1, true, true
	}
	return 0, false, false
}

// elements returns the elements of the JSON array (or null) at b[i], and the index after it.
func elements(b []byte, i int) ([][]byte, int, bool) {
	if bytes.HasPrefix(b[i:], []byte("null")) {
		return nil, i + 4, true
	}
	var out [][]byte
	end, ok := eachElement(b, i, func(s int) (int, bool) {
		e, ok := skipValue(b, s)
		if ok {
			out = append(out, b[s:e])
		}
		return e, ok
	})
	return out, end, ok
}

// bootstrapParts is a bootstrap document cut into its listeners, its clusters and the rest.
type bootstrapParts struct {
	rest                []byte // the document without static_resources' listeners and clusters
	listeners, clusters [][]byte
}

func isKey(key []byte, names ...string) bool {
	for _, n := range names {
		if len(key) == len(n)+2 && string(key[1:len(key)-1]) == n {
			return true
		}
	}
	return false
}

// splitBootstrap cuts js into parts; false when it is not a JSON object or names
// static_resources, listeners or clusters twice (left to protojson to refuse).
func splitBootstrap(js []byte) (bootstrapParts, bool) {
	var p bootstrapParts
	var rest bytes.Buffer
	rest.WriteByte('{')
	sep := func(buf *bytes.Buffer) {
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
	}
	seenSR := false
	i := skipWS(js, 0)
	end, ok := eachMember(js, i, func(key []byte, s int) (int, bool) {
		if !isKey(key, "static_resources", "staticResources") {
			e, ok := skipValue(js, s)
			sep(&rest)
			rest.Write(key)
			rest.WriteByte(':')
			rest.Write(js[s:e])
			return e, ok
		}
		if seenSR || js[s] != '{' {
			return 0, false
		}
		seenSR = true
		var sr bytes.Buffer
		sr.WriteByte('{')
		seenL, seenC := false, false
		e, ok := eachMember(js, s, func(key []byte, s int) (int, bool) {
			var e int
			var ok bool
			switch {
			case isKey(key, "listeners"):
				if seenL {
					return 0, false
				}
				seenL = true
				p.listeners, e, ok = elements(js, s)
				return e, ok
			case isKey(key, "clusters"):
				if seenC {
					return 0, false
				}
				seenC = true
				p.clusters, e, ok = elements(js, s)
				return e, ok
			}
			e, ok = skipValue(js, s)
			sep(&sr)
			sr.Write(key)
			sr.WriteByte(':')
			sr.Write(js[s:e])
			return e, ok
		})
		if !ok {
			return 0, false
		}
		sr.WriteByte('}')
		sep(&rest)
		rest.WriteString(`"static_resources":`)
		rest.Write(sr.Bytes())
		return e, true
	})
	if !ok || skipWS(js, end) != len(js) {
		return bootstrapParts{}, false
	}
	rest.WriteByte('}')
	p.rest = rest.Bytes()
	return p, true
}

// hostArray is the extent of a virtual_hosts array and its elements.
type hostArray struct {
	start, end int
	elems      [][]byte
}

// hostArrays finds the virtual_hosts arrays of inline route configurations in a listener's
// JSON: the extents of the values of virtual_hosts members of route_config members. Each byte
// is scanned once.
func hostArrays(l []byte) ([]hostArray, bool) {
	var out []hostArray
	var walk func(i int, routeConfig bool) (int, bool)
	walk = func(i int, routeConfig bool) (int, bool) {
		i = skipWS(l, i)
		if i >= len(l) {
			return 0, false
		}
		switch l[i] {
		case '{':
			return eachMember(l, i, func(key []byte, vs int) (int, bool) {
				if routeConfig && isKey(key, "virtual_hosts", "virtualHosts") && vs < len(l) && l[vs] == '[' {
					elems, ve, ok := elements(l, vs)
					if ok {
						out = append(out, hostArray{vs, ve, elems})
					}
					return ve, ok
				}
				return walk(vs, isKey(key, "route_config", "routeConfig"))
			})
		case '[':
			return eachElement(l, i, func(vs int) (int, bool) { return walk(vs, false) })
		}
		return skipValue(l, i)
	}
	end, ok := walk(0, false)
	return out, ok && skipWS(l, end) == len(l)
}
