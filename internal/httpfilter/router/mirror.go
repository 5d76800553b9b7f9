package router

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/codec/http1"
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
	if pool.Protocol() == upstream.HTTP2 {
		return shadowH2(ctx, pool, h, body)
	}
	conn, err := pool.Get(ctx)
	if err != nil {
		return false
	}
	reusable := false
	defer func() { pool.Put(conn, reusable) }()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	cc, _ := conn.Codec.(*http1.ClientConn)
	if cc == nil {
		cc = http1.NewClientConn(conn.Conn, http1.Limits{})
		conn.Codec = cc
	}
	h.Del("content-length")
	h.Del("transfer-encoding")
	fr := http1.Framing{Kind: http1.None}
	if len(body) > 0 || trailers != nil || h.Method == "POST" || h.Method == "PUT" || h.Method == "PATCH" {
		fr = http1.Framing{Kind: http1.Length, Length: int64(len(body))}
		if trailers != nil {
			fr = http1.Framing{Kind: http1.Chunked}
		}
	}
	if err := cc.WriteRequestHead(h, fr); err != nil {
		return false
	}
	if fr.Kind != http1.None {
		if len(body) > 0 {
			if err := cc.WriteBody(body); err != nil {
				return false
			}
		}
		if err := cc.WriteEnd(trailers); err != nil {
			return false
		}
	}
	if err := cc.Flush(); err != nil {
		return false
	}
	var resp header.Map
	var rh http1.ResponseHead
	if err := cc.ReadResponse(&resp, &rh, h.Method); err != nil {
		return false
	}
	end := rh.Framing.Kind == http1.None || (rh.Framing.Kind == http1.Length && rh.Framing.Length == 0)
	for !end {
		_, last, err := cc.ReadBody()
		if err != nil {
			return false
		}
		end = last
	}
	reusable = rh.KeepAlive && cc.Reusable()
	if reusable {
		conn.SetDeadline(time.Time{})
	}
	return true
}

func shadowH2(ctx context.Context, pool *upstream.Pool, h *header.Map, body []byte) bool {
	scheme := "http"
	if pool.TLS() {
		scheme = "https"
	}
	req := &http.Request{
		Method: h.Method, Host: h.Authority, Proto: "HTTP/2.0", ProtoMajor: 2,
		URL:    &url.URL{Scheme: scheme, Host: h.Authority, Opaque: "//" + h.Authority + pathOnly(h.Path), RawQuery: queryOnly(h.Path)},
		Header: make(http.Header, h.Len()), Body: http.NoBody, ContentLength: int64(len(body)),
	}
	for _, fl := range h.Fields() {
		if fl.Name == "host" || fl.Name == "content-length" {
			continue
		}
		req.Header[fl.Name] = append(req.Header[fl.Name], fl.Value)
	}
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := pool.RoundTripH2(req.WithContext(ctx))
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return true
}
