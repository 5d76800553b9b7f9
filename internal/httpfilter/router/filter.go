package router

import (
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/route"
	"github.com/nuncio-gw/nuncio/internal/upstream"
)

// Envoy's local reply bodies, kept verbatim because clients and dashboards match on them.
const (
	bodyNoHealthy     = "no healthy upstream"
	bodyConnectFail   = "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
	bodyConnTerm      = "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
	bodyTimeout       = "upstream request timeout"
	bodyOverflow      = "upstream connect error or disconnect/reset before headers. reset reason: overflow"
	bodyUpgradeFailed = "upgrade not allowed"
)

var filterPool = sync.Pool{New: func() any { return new(filter) }}

// NewFilter implements httpfilter.Config.
func (c *Config) NewFilter(s *httpfilter.Stream, _ httpfilter.Config) httpfilter.Filter {
	f := filterPool.Get().(*filter)
	f.cfg = c
	return f
}

// filter is the router's per-stream state: the upstream attempts of one request.
type filter struct {
	httpfilter.PassThrough // the response phases: the router produces the response

	cfg  *Config
	fw   *route.Forward
	ref  *cluster.Ref
	c    *cluster.Cluster
	st   *cluster.RouterStats
	host *cluster.Host
	pool *upstream.Pool
	hm   *route.Mutation

	// The upstream exchange: h1x for an HTTP/1.1 pool, kept in the pooled filter so that
	// it allocates nothing; h2 (pointing at h2x) for an HTTP/2 one (h2.go).
	h1x       upstream.H1
	reusable  bool // the exchange finished cleanly and the connection may carry another
	respEnd   bool // the response read last has no body
	h2        *upstream.H2
	h2x       upstream.H2
	h2Done    chan struct{} // closed when the round trip's own goroutine ends
	h2Started bool          // the round trip runs on its own goroutine

	deadline time.Time // the route timeout's, covering every attempt

	start   time.Time
	pathBuf []byte
	numBuf  [20]byte
	failed  bool

	// Header variables (see vars), kept here so passing them as an interface allocates
	// nothing, and the addresses they format.
	hv                  vars
	remoteBuf, localBuf [48]byte

	// Deadlines: the route timeout (covering every attempt), the current attempt's
	// per_try_timeout and the stream's max duration; zero when unset.
	timeout          time.Duration
	tryDeadline      time.Time
	durationDeadline time.Time

	// Retries (retry.go).
	rp           *route.RetryPolicy
	retryOn      model.RetryOn
	retriesLeft  uint32
	perTry       time.Duration
	attempt      uint32
	backoffN     int
	retried      bool
	retrySlots   int
	tried        [4]*cluster.Host
	ntried       int
	excludeFn    func(*cluster.Host) bool // f.excluded, made once per pooled filter
	body         *[]byte                  // the request body so far, kept for replays
	bodyLimit    int
	keepBody     bool
	bodyTooLarge bool
	reqDone      bool  // the whole request has arrived
	pendErr      error // the attempt failed while the request body was still arriving
	inRequest    bool  // holds a max_requests slot

	hash      uint64
	hasHash   bool
	cookie    *route.CookieSpec // a hash cookie to set on the response
	cookieVal string

	mirrorWanted bool
	mirrorHead   *header.Map // the request as first sent upstream, for mirrors
}

// OnStreamDone implements httpfilter.StreamDoneFilter. The upstream connection goes back to
// its pool only now, because the response headers the stream still holds alias the
// connection's read buffer.
func (f *filter) OnStreamDone(s *httpfilter.Stream) {
	f.releaseConn(f.reusable)
	if f.h2 != nil {
		f.h2Close()
	}
	if f.host != nil {
		f.host.End()
	}
	if f.c != nil {
		if f.inRequest {
			f.breakers().DoneRequest()
			f.st.Done(f.start, !f.failed && s.Response.Status != 0)
		}
		for ; f.retrySlots > 0; f.retrySlots-- {
			f.breakers().DoneRetry()
		}
	}
	f.dropBody()
	*f = filter{pathBuf: f.pathBuf[:0], excludeFn: f.excludeFn}
	filterPool.Put(f)
}

// releaseConn ends the HTTP/1.1 attempt, if any, giving its connection back to the pool
// (for reuse, if reusable).
func (f *filter) releaseConn(reusable bool) { f.h1x.Close(reusable) }

// OnRequestHeaders implements httpfilter.RequestHeadersFilter.
func (f *filter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	e := entry(s)
	if e == nil {
		if st := f.cfg.stats; st != nil {
			st.noRoute.Inc()
		}
		s.SendLocalReply(404, "", httpfilter.FlagNoRoute, "route_not_found")
		return httpfilter.Stop
	}
	switch e.Kind {
	case route.ActionDirect:
		if st := f.cfg.stats; st != nil {
			st.rqDirectResponse.Inc()
		}
		f.directResponse(s, e)
		return httpfilter.Stop
	case route.ActionRedirect:
		if st := f.cfg.stats; st != nil {
			st.rqRedirect.Inc()
		}
		f.redirect(s, e)
		return httpfilter.Stop
	}
	f.fw = e.Forward
	ref, name, hm := f.fw.PickCluster(h, rand.Uint64())
	f.hm = hm
	s.Info.UpstreamCluster = name
	var c *cluster.Cluster
	if ref != nil {
		c = ref.Load()
	}
	f.ref, f.c = ref, c
	if c == nil {
		code := f.fw.ClusterNotFoundCode
		if code == 0 {
			code = 503
		}
		if st := f.cfg.stats; st != nil {
			st.noCluster.Inc()
		}
		s.SendLocalReply(code, "", httpfilter.FlagNoClusterFound, "cluster_not_found")
		return httpfilter.Stop
	}
	upgrade := ""
	if u, ok := h.Get("upgrade"); ok {
		if !f.upgradeAllowed(s, u) {
			s.SendLocalReply(403, bodyUpgradeFailed, 0, "upgrade_failed")
			return httpfilter.Stop
		}
		upgrade = u
	}
	f.st = ref.RouterStats()
	if !f.breakers().TryRequest() {
		s.SendLocalReply(503, bodyOverflow, httpfilter.FlagUpstreamOverflow, "upstream_reset_before_response_started{overflow}")
		return httpfilter.Stop
	}
	f.inRequest = true
	f.st.RqActive.Inc()
	f.mirrorWanted = len(f.fw.Mirrors) > 0 && upgrade == ""
	if upgrade == "" {
		f.setupRetry(s, h)
	} else {
		f.timeout = f.fw.Timeout
	}
	if f.fw.HasHashPolicy() {
		f.requestHash(s, h)
	}
	host := choose(c, f.hash, f.hasHash, rand.Uint64(), nil, 1)
	if host == nil {
		s.SendLocalReply(503, bodyNoHealthy, httpfilter.FlagNoHealthyUpstream, "no_healthy_upstream")
		return httpfilter.Stop
	}
	if f.excludeFn == nil {
		f.excludeFn = f.excluded
	}
	f.useHost(s, host)

	// Envoy applies the configured header mutations before rewriting path and host, so
	// %REQ(:authority)% and friends see what the client sent.
	e.ApplyRequestHeaders(h, f.hm, f.headerVars(s))
	f.pathBuf = e.RewriteRequest(h, f.pathBuf[:0])
	if f.fw.AutoHostRewrite && f.host.Hostname != "" {
		h.Authority = f.host.Hostname
	}
	f.start = time.Now()
	if f.timeout > 0 {
		f.deadline = f.start.Add(f.timeout)
	}
	f.setupDuration(s, h)
	if f.mirrorWanted {
		f.mirrorHead = h.Clone()
		if end {
			f.sendMirrors(s)
		}
	}

	if upgrade != "" {
		f.pool = f.host.Pool
		if f.pool.Protocol() != upstream.HTTP1 {
			s.SendLocalReply(403, bodyUpgradeFailed, 0, "upgrade_failed")
			return httpfilter.Stop
		}
		return f.tunnel(s, h, upgrade)
	}
	if f.pool.Protocol() == upstream.HTTP2 {
		return f.h2Start(s, h, end)
	}
	return f.h1Start(s, h, end)
}

func (f *filter) upgradeAllowed(s *httpfilter.Stream, value string) bool {
	if !strings.EqualFold(value, "websocket") {
		return false
	}
	if f.fw != nil && f.fw.UpgradeWebSocket != nil {
		return *f.fw.UpgradeWebSocket
	}
	return f.cfg.upgradeWebSocket(s)
}

// OnRequestBody implements httpfilter.RequestBodyFilter.
func (f *filter) OnRequestBody(s *httpfilter.Stream, chunk []byte, end bool) httpfilter.Status {
	if f.failed {
		return httpfilter.Stop
	}
	f.keep(chunk)
	if f.h2 != nil {
		if end && f.mirrorWanted {
			f.requestDone(s)
		}
		return f.h2Body(s, chunk, end)
	}
	if f.pendErr != nil && f.bodyTooLarge {
		// The attempt failed mid-body and the body can no longer be replayed.
		f.h1Fail(s, f.pendErr)
		return httpfilter.Stop
	}
	if !f.h1x.Connected() && f.pendErr == nil {
		return httpfilter.Stop
	}
	if f.pendErr == nil && len(chunk) > 0 {
		if err := f.h1x.WriteBody(chunk); err != nil {
			if !f.keepBody {
				f.h1Fail(s, err)
				return httpfilter.Stop
			}
			f.pendErr = err
			f.releaseConn(false)
		}
	}
	if !end {
		return httpfilter.Continue
	}
	f.requestDone(s)
	if f.pendErr == nil {
		if err := f.writeEnd(s); err != nil {
			f.pendErr = err
			f.releaseConn(false)
		}
	}
	f.h1Finish(s)
	return httpfilter.Stop
}

// requestDone marks the request complete: mirrors go now, with the whole body.
func (f *filter) requestDone(s *httpfilter.Stream) {
	f.reqDone = true
	if f.mirrorWanted {
		f.sendMirrors(s)
	}
}

// OnRequestTrailers implements httpfilter.RequestTrailersFilter.
func (f *filter) OnRequestTrailers(s *httpfilter.Stream, t *header.Map) httpfilter.Status {
	if f.failed {
		return httpfilter.Stop
	}
	if f.h2 != nil {
		if f.mirrorWanted {
			f.requestDone(s)
		}
		return f.h2End(t)
	}
	if f.pendErr != nil && f.bodyTooLarge {
		f.h1Fail(s, f.pendErr)
		return httpfilter.Stop
	}
	if !f.h1x.Connected() && f.pendErr == nil {
		return httpfilter.Stop
	}
	f.requestDone(s)
	if f.pendErr == nil {
		if err := f.writeEnd(s); err != nil {
			f.pendErr = err
			f.releaseConn(false)
		}
	}
	f.h1Finish(s)
	return httpfilter.Stop
}

var (
	_ httpfilter.RequestHeadersFilter  = (*filter)(nil)
	_ httpfilter.RequestBodyFilter     = (*filter)(nil)
	_ httpfilter.RequestTrailersFilter = (*filter)(nil)
	_ httpfilter.StreamDoneFilter      = (*filter)(nil)
)
