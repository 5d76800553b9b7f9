package router

import (
	"strconv"
	"strings"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/route"
)

// requestHash computes the route's hash policy for the load balancer. A cookie policy with
// a TTL whose cookie is missing gets one generated from the client address, as Envoy does,
// so the client's next requests carry it and stick to the same host.
func (f *filter) requestHash(s *httpfilter.Stream, h *header.Map) {
	hash, ok, gen := f.fw.Hash(h, s.Downstream.RemoteAddr.Addr())
	if gen != nil {
		f.cookie = gen
		f.cookieVal = strconv.FormatUint(route.HashString(s.Downstream.RemoteAddr.String()+strconv.FormatInt(time.Now().UnixNano(), 10)), 16)
		hash = route.CombineHash(hash, route.HashString(f.cookieVal), ok)
		ok = true
	}
	f.hash, f.hasHash = hash, ok
}

// setCookie renders the generated hash cookie's Set-Cookie value.
func (f *filter) setCookie() string {
	var b strings.Builder
	b.WriteString(f.cookie.Name)
	b.WriteByte('=')
	b.WriteString(f.cookieVal)
	if f.cookie.Path != "" {
		b.WriteString("; Path=")
		b.WriteString(f.cookie.Path)
	}
	if f.cookie.TTL > 0 {
		b.WriteString("; Max-Age=")
		b.WriteString(strconv.FormatInt(int64(f.cookie.TTL/time.Second), 10))
	}
	b.WriteString("; HttpOnly")
	return b.String()
}

// setupDuration arms the stream's max duration: the route's max_stream_duration, or the
// request's grpc-timeout when the route honours it.
func (f *filter) setupDuration(s *httpfilter.Stream, h *header.Map) {
	d := f.fw.MaxStreamDuration
	if max := f.fw.GrpcTimeoutHeaderMax; max != nil {
		if v, ok := h.Get("grpc-timeout"); ok {
			if t, ok := grpcTimeout(v); ok {
				t -= f.fw.GrpcTimeoutHeaderOffset
				if *max > 0 && t > *max {
					t = *max
				}
				if t > 0 {
					d = t
				}
			}
		}
	}
	if d > 0 {
		f.durationDeadline = s.Info.Start.Add(d)
		if s.Info.Start.IsZero() {
			f.durationDeadline = f.start.Add(d)
		}
	}
}
