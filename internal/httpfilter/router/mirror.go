package router

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/upstream"
)

// maxMirrors bounds the shadow requests in flight in the process: a slow mirror cluster
// must not pile up goroutines and memory behind live traffic. Beyond it shadows are dropped
// and counted as failed.
const maxMirrors = 256

// defaultMirrorTimeout bounds a shadow whose route has no timeout.
const defaultMirrorTimeout = 15 * time.Second

var mirrorSem = make(chan struct{}, maxMirrors)

// sendMirrors fires the route's request_mirror_policies once the request is complete. A
// shadow never delays nor changes the main exchange: it runs on its own goroutine with its
// own copies of the headers and body, and its response is read and discarded.
func (f *filter) sendMirrors(s *httpfilter.Stream) {
	f.mirrorWanted = false
	if f.mirrorHead == nil {
		return
	}
	var body []byte
	if f.bodyTooLarge {
		// The body was not kept whole: a shadow without it would be a different request.
		for i := range f.fw.Mirrors {
			f.fw.Mirrors[i].Ref.RouterStats().MirrorFailed.Inc()
		}
		return
	}
	if b := f.bodyBytes(); len(b) > 0 {
		body = bytes.Clone(b)
	}
	var trailers *header.Map
	if s.RequestTrailers.Len() > 0 {
		trailers = s.RequestTrailers.Clone()
	}
	timeout := f.timeout
	if timeout <= 0 {
		timeout = defaultMirrorTimeout
	}
	for i := range f.fw.Mirrors {
		m := &f.fw.Mirrors[i]
		if !m.Sampled(rand.Uint64()) {
			continue
		}
		st := m.Ref.RouterStats()
		st.MirrorTotal.Inc()
		c := m.Ref.Load()
		if c == nil {
			st.MirrorFailed.Inc()
			continue
		}
		select {
		case mirrorSem <- struct{}{}:
		default:
			st.MirrorFailed.Inc()
			continue
		}
		h := f.mirrorHead
		if i < len(f.fw.Mirrors)-1 {
			h = h.Clone()
		}
		h.Authority = shadowHost(h.Authority)
		go func() {
			defer func() { <-mirrorSem }()
			if !shadow(c, h, body, trailers, timeout) {
				st.MirrorFailed.Inc()
			}
		}()
	}
	f.mirrorHead = nil
}

// shadowHost is Envoy's shadow authority: the host with "-shadow" appended, before any port.
func shadowHost(authority string) string {
	host, port := authority, ""
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && !strings.Contains(authority[i:], "]") {
		host, port = authority[:i], authority[i:]
	}
	return host + "-shadow" + port
}

// shadow sends one mirrored request and discards the answer, reporting whether it got one.
func shadow(c *cluster.Cluster, h *header.Map, body []byte, trailers *header.Map, timeout time.Duration) bool {
	host := c.Pick(rand.Uint64())
	if host == nil {
		return false
	}
	host.Begin()
	defer host.End()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pool := host.Pool
	deadline, _ := ctx.Deadline()
	x := upstream.NewExchange(pool.Protocol())
	h.Del("content-length")
	h.Del("transfer-encoding")
	if len(body) > 0 && trailers == nil {
		h.Set("content-length", strconv.Itoa(len(body)))
	}
	x.Prepare(h, len(body) == 0 && trailers == nil)
	if err := x.Connect(ctx, pool, deadline); err != nil {
		return false
	}
	reusable := false
	defer func() { x.Close(reusable) }()
	if err := x.WriteRequest(h, body, trailers); err != nil {
		return false
	}
	var resp header.Map
	end, err := x.ReadResponse(&resp)
	if err != nil {
		return false
	}
	for !end {
		if _, end, err = x.ReadBody(); err != nil {
			return false
		}
	}
	reusable = true
	return true
}
