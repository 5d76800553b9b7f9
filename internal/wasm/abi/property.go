package abi

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"time"
)

// Properties answers proxy_get_property for one stream. path is Envoy's attribute path with
// its segments joined by NUL ("request\x00path"); it aliases guest memory and is valid only
// during the call. The value is appended to dst in Envoy's encoding: strings as bytes,
// integers as 8-byte little-endian, booleans as one byte, timestamps and durations as
// nanoseconds, string maps in the pairs format.
type Properties interface {
	AppendProperty(dst []byte, path string) ([]byte, bool)
}

// Attributes serves Envoy's attribute names from what a stream knows. Request and response
// attributes read the header maps; the adapter fills the rest.
type Attributes struct {
	Request, Response   HeaderMap
	Source, Destination netip.AddrPort
	RequestID           string
	Protocol            string // "HTTP/1.1", "HTTP/2", ...
	Start               time.Time
	ResponseCode        int
	RouteName           string
	ClusterName         string
	// Extra serves anything else (metadata, filter state of other filters).
	Extra Properties
}

func appendInt(dst []byte, v int64) []byte { return binary.LittleEndian.AppendUint64(dst, uint64(v)) }

// AppendProperty implements Properties.
func (a *Attributes) AppendProperty(dst []byte, path string) ([]byte, bool) {
	top, rest, _ := strings.Cut(path, "\x00")
	switch top {
	case "request":
		return a.request(dst, rest)
	case "response":
		switch rest {
		case "code":
			if a.ResponseCode == 0 {
				return dst, false
			}
			return appendInt(dst, int64(a.ResponseCode)), true
		}
		if name, ok := strings.CutPrefix(rest, "headers\x00"); ok && a.Response != nil {
			v, ok := a.Response.Get(name)
			return append(dst, v...), ok
		}
	case "source", "destination":
		ap := a.Source
		if top == "destination" {
			ap = a.Destination
		}
		if !ap.IsValid() {
			return dst, false
		}
		switch rest {
		case "address":
			return ap.AppendTo(dst), true
		case "port":
			return appendInt(dst, int64(ap.Port())), true
		}
	case "route_name", "xds":
		if top == "route_name" || rest == "route_name" {
			return append(dst, a.RouteName...), a.RouteName != ""
		}
		if rest == "cluster_name" {
			return append(dst, a.ClusterName...), a.ClusterName != ""
		}
	case "cluster_name":
		return append(dst, a.ClusterName...), a.ClusterName != ""
	}
	if a.Extra != nil {
		return a.Extra.AppendProperty(dst, path)
	}
	return dst, false
}

func (a *Attributes) request(dst []byte, rest string) ([]byte, bool) {
	h := a.Request
	get := func(name string) ([]byte, bool) {
		if h == nil {
			return dst, false
		}
		v, ok := h.Get(name)
		return append(dst, v...), ok
	}
	switch rest {
	case "path":
		return get(":path")
	case "url_path":
		if h == nil {
			return dst, false
		}
		p, ok := h.Get(":path")
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		return append(dst, p...), ok
	case "query":
		if h == nil {
			return dst, false
		}
		p, _ := h.Get(":path")
		_, q, ok := strings.Cut(p, "?")
		return append(dst, q...), ok
	case "host":
		return get(":authority")
	case "scheme":
		return get(":scheme")
	case "method":
		return get(":method")
	case "referer":
		return get("referer")
	case "useragent":
		return get("user-agent")
	case "id":
		if a.RequestID != "" {
			return append(dst, a.RequestID...), true
		}
		return get("x-request-id")
	case "protocol":
		return append(dst, a.Protocol...), a.Protocol != ""
	case "time":
		if a.Start.IsZero() {
			return dst, false
		}
		return appendInt(dst, a.Start.UnixNano()), true
	case "duration":
		if a.Start.IsZero() {
			return dst, false
		}
		return appendInt(dst, int64(time.Since(a.Start))), true
	case "headers":
		if h == nil {
			return dst, false
		}
		n := len(dst)
		dst = append(dst, make([]byte, pairsSize(h))...)
		encodePairs(dst[n:], h)
		return dst, true
	}
	if name, ok := strings.CutPrefix(rest, "headers\x00"); ok {
		return get(name)
	}
	return dst, false
}

// plugin-level properties are the host's own.
func (i *Instance) pluginProperty(dst []byte, path string) ([]byte, bool) {
	switch path {
	case "plugin_name":
		return append(dst, i.Info.Name...), true
	case "plugin_root_id":
		return append(dst, i.Info.RootID...), true
	case "plugin_vm_id":
		return append(dst, i.Info.VMID...), true
	}
	return dst, false
}

var _ Properties = (*Attributes)(nil)
