package router

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/codec/http1"
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
func (c *Config) NewFilter(s *httpfilter.Stream) httpfilter.Filter {
	f := filterPool.Get().(*filter)
	f.cfg = c
	return f
}

// filter is the router's per-stream state: the upstream attempts of one request.
type filter struct {
	cfg  *Config
	fw   *route.Forward
	ref  *cluster.Ref
	c    *cluster.Cluster
	st   *cluster.RouterStats
	host *cluster.Host
	pool *upstream.Pool
	hm   *route.Mutation

	// HTTP/1.1 upstream.
	conn     *upstream.Conn
	cc       *http1.ClientConn
	reused   bool
	reusable bool // the exchange finished cleanly and the connection may carry another
	framing  http1.Framing
	deadline time.Time
	rh       http1.ResponseHead

	// HTTP/2 upstream.
	h2 *h2Attempt

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
	if f.conn != nil {
		f.releaseConn(f.reusable)
	}
	if f.h2 != nil {
		f.h2.close()
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

func (f *filter) releaseConn(reusable bool) {
	if f.conn == nil {
		return
	}
	// A reusable connection keeps its request deadline: the next request moves it only when
	// it must (SetRequestDeadline), and the pool lifts it should it expire while idle.
	f.pool.Put(f.conn, reusable)
	f.conn, f.cc = nil, nil
}

// OnRequestHeaders implements httpfilter.RequestHeadersFilter.
func (f *filter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	e := s.Route
	if e == nil {
		if st := s.Stats; st != nil {
			st.NoRoute.Inc()
		}
		s.SendLocalReply(404, "", httpfilter.FlagNoRoute, "route_not_found")
		return httpfilter.Stop
	}
	switch e.Kind {
	case route.ActionDirect:
		if st := s.Stats; st != nil {
			st.RqDirectResponse.Inc()
		}
		f.directResponse(s, e)
		return httpfilter.Stop
	case route.ActionRedirect:
		if st := s.Stats; st != nil {
			st.RqRedirect.Inc()
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
		if st := s.Stats; st != nil {
			st.NoCluster.Inc()
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
	s.Route.ApplyRequestHeaders(h, f.hm, f.headerVars(s))
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
	if f.cc == nil && f.pendErr == nil {
		return httpfilter.Stop
	}
	if f.pendErr == nil && len(chunk) > 0 {
		if err := f.cc.WriteBody(chunk); err != nil {
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

// h1Fail answers after a write failure that cannot be retried.
func (f *filter) h1Fail(s *httpfilter.Stream, err error) {
	kind := f.classify(err)
	f.report(kind, 0)
	f.failLocally(s, kind, err)
}

// OnRequestTrailers implements httpfilter.RequestTrailersFilter.
func (f *filter) OnRequestTrailers(s *httpfilter.Stream, t *header.Map) httpfilter.Status {
	if f.failed {
		return httpfilter.Stop
	}
	if f.h2 != nil {
		f.h2.trailers(t)
		if f.mirrorWanted {
			f.requestDone(s)
		}
		return f.h2Body(s, nil, true)
	}
	if f.pendErr != nil && f.bodyTooLarge {
		f.h1Fail(s, f.pendErr)
		return httpfilter.Stop
	}
	if f.cc == nil && f.pendErr == nil {
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

// h1Start takes a connection and sends the request head (and, with no body, waits for the
// response).
func (f *filter) h1Start(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	f.framing = http1.Framing{Kind: http1.None}
	if n, ok := header.ParseDecimal(h.Value("content-length")); ok {
		// Kept even when zero: a POST without any length is refused by some servers (411).
		f.framing = http1.Framing{Kind: http1.Length, Length: n}
	} else if !end {
		f.framing = http1.Framing{Kind: http1.Chunked}
	} else if h.Method == "POST" || h.Method == "PUT" || h.Method == "PATCH" {
		// An HTTP/2 request ends its stream instead of declaring a length; HTTP/1.1 needs one.
		f.framing = http1.Framing{Kind: http1.Length}
	}
	f.reqDone = end
	f.beginAttempt(h)
	if !f.h1Send(s, h, false) {
		return httpfilter.Stop
	}
	if !end {
		return httpfilter.Continue
	}
	f.h1Finish(s)
	return httpfilter.Stop
}

// h1Send runs an attempt begun with beginAttempt: it takes a connection (retrying connect failures on other hosts
// as the retry policy allows) and writes the request head, and with replay the kept body and
// trailers. A write failure while the request body is still arriving is kept in pendErr: the
// rest of the body is then only kept, and the retry happens once it is complete. It returns
// false when the stream has been answered.
func (f *filter) h1Send(s *httpfilter.Stream, h *header.Map, replay bool) bool {
	// A reused keep-alive connection may have been closed by the upstream just now; a request
	// without a body can safely go again on a fresh connection, as Go's Transport does.
	stale := 0
	for {
		kind, err := f.connect(s)
		if kind != failNone {
			f.report(kind, 0)
			if kind == failConnect && f.retriable(s, kind, 0) && f.nextAttempt(s, h) {
				continue
			}
			f.failLocally(s, kind, err)
			return false
		}
		err = f.cc.WriteRequestHead(h, f.framing)
		if err == nil && replay {
			if b := f.bodyBytes(); len(b) > 0 {
				err = f.cc.WriteBody(b)
			}
			if err == nil && f.reqDone {
				err = f.writeEnd(s)
			}
		} else if err == nil && f.reqDone {
			err = f.cc.Flush()
		}
		if err == nil {
			return true
		}
		if stale == 0 && f.reused && (f.reqDone || replay) {
			stale++
			f.releaseConn(false)
			continue
		}
		if !f.reqDone && f.keepBody {
			f.pendErr = err
			f.releaseConn(false)
			return true
		}
		kind = f.classify(err)
		f.report(kind, 0)
		if f.retriable(s, kind, 0) && f.nextAttempt(s, h) {
			continue
		}
		f.failLocally(s, kind, err)
		return false
	}
}

// nextAttempt waits out the back-off and moves to the retry's host. It returns false (the
// caller answers with the last failure) when the stream or the route timeout ends first or
// no host is left.
func (f *filter) nextAttempt(s *httpfilter.Stream, h *header.Map) bool {
	f.releaseConn(false)
	if !f.backOff(s) {
		return false
	}
	host := f.nextHost()
	if host == nil {
		return false
	}
	f.useHost(s, host)
	if f.fw.AutoHostRewrite && host.Hostname != "" {
		h.Authority = host.Hostname
	}
	f.beginAttempt(h)
	return true
}

// writeEnd ends the request body (with the request trailers, if any) and flushes.
func (f *filter) writeEnd(s *httpfilter.Stream) error {
	var t *header.Map
	if s.RequestTrailers.Len() > 0 {
		t = &s.RequestTrailers
	}
	if err := f.cc.WriteEnd(t); err != nil {
		return err
	}
	return f.cc.Flush()
}

// h1Finish runs once the whole request has arrived: it ends the request upstream, reads the
// response and retries the request as the policy allows.
func (f *filter) h1Finish(s *httpfilter.Stream) {
	h := &s.Request
	for {
		err := f.pendErr
		f.pendErr = nil
		if err == nil && f.conn == nil {
			// The previous attempt failed before its connection was taken: start afresh.
			f.beginAttempt(h)
			if !f.h1Send(s, h, true) {
				return
			}
			continue
		}
		var kind failKind
		status := 0
		if err == nil {
			kind, status, err = f.h1Response(s)
			if kind == failNone && status == 0 {
				return // relayed, or answered
			}
		} else {
			kind = f.classify(err)
			f.report(kind, 0)
		}
		if f.retriable(s, kind, status) && f.nextAttempt(s, h) {
			s.Response.Reset()
			if !f.h1Send(s, h, true) {
				return
			}
			continue
		}
		if kind == failNone {
			// The last attempt's retriable response goes downstream as it is.
			f.h1Relay(s)
			return
		}
		f.failLocally(s, kind, err)
		return
	}
}

// connect gets a pooled or new connection. A request waiting for it counts as pending
// for the max_pending_requests circuit breaker.
func (f *filter) connect(s *httpfilter.Stream) (failKind, error) {
	if !f.breakers().TryPending() {
		return failOverflow, upstream.ErrOverflow
	}
	var conn *upstream.Conn
	var err error
	if f.replaySafe(s) {
		conn, err = f.pool.GetReplayable(s.Ctx)
	} else {
		conn, err = f.pool.Get(s.Ctx)
	}
	f.breakers().DonePending()
	if err != nil {
		if errors.Is(err, upstream.ErrOverflow) {
			return failOverflow, err
		}
		return failConnect, err
	}
	f.conn = conn
	f.reused = conn.Requests > 1
	cc, _ := conn.Codec.(*http1.ClientConn)
	if cc == nil {
		cc = http1.NewClientConn(conn.Conn, http1.Limits{})
		conn.Codec = cc
	}
	f.cc = cc
	conn.SetRequestDeadline(f.attemptDeadline())
	return failNone, nil
}

// h1Response reads the upstream response head. A response the retry policy may retry is
// left unrelayed: it returns failNone with its status, and the caller retries it or relays
// it with h1Relay. Any other response is relayed here (status 0). A failure before the
// response head returns its kind, already reported to the host.
func (f *filter) h1Response(s *httpfilter.Stream) (failKind, int, error) {
	if f.idleTimeout() > 0 {
		f.conn.SetReadDeadline(f.nextDeadline())
	}
	err := f.cc.ReadResponse(&s.Response, &f.rh, s.Request.Method)
	if err != nil && f.replayable(s, err) {
		// The upstream closed the kept-alive connection as the request arrived, without
		// answering: it never handled the request, so send it once more on a fresh
		// connection, as Go's Transport does for idempotent requests.
		f.releaseConn(false)
		var kind failKind
		if kind, err = f.connect(s); kind != failNone {
			f.report(kind, 0)
			return kind, 0, err
		}
		err = f.cc.WriteRequestHead(&s.Request, f.framing)
		if err == nil {
			err = f.cc.Flush()
		}
		if err == nil {
			if f.idleTimeout() > 0 {
				f.conn.SetReadDeadline(f.nextDeadline())
			}
			err = f.cc.ReadResponse(&s.Response, &f.rh, s.Request.Method)
		}
	}
	if err != nil {
		kind := f.classify(err)
		f.report(kind, 0)
		return kind, 0, err
	}
	status := s.Response.Status
	f.report(failNone, status)
	if f.rp != nil && f.rp.RetriableResponse(f.retryOn, status, &s.Response) {
		return failNone, status, nil
	}
	f.h1Relay(s)
	return failNone, 0, nil
}

// h1Relay streams the response whose head h1Response read downstream.
func (f *filter) h1Relay(s *httpfilter.Stream) {
	if f.retried {
		f.st.RqRetrySuccess.Inc()
	}
	s.Info.FirstUpstreamRx = time.Now()
	end := f.rh.Framing.Kind == http1.None || (f.rh.Framing.Kind == http1.Length && f.rh.Framing.Length == 0)
	f.finishResponseHeaders(s)
	s.EncodeHeaders(end)
	for !end {
		if s.Ctx.Err() != nil {
			// The client is gone (or the stream was reset): stop reading a response nobody
			// receives; the connection is mid-body, so it cannot be reused.
			f.failed = true
			f.releaseConn(false)
			return
		}
		if f.idleTimeout() > 0 {
			f.conn.SetReadDeadline(f.nextDeadline())
		}
		chunk, last, err := f.cc.ReadBody()
		if err != nil {
			f.upstreamFailed(s, err, true)
			return
		}
		end = last
		if end {
			f.cc.Trailers(&s.ResponseTrailers)
			if s.ResponseTrailers.Len() > 0 {
				s.EncodeBody(chunk, false)
				s.EncodeTrailers()
				break
			}
		}
		s.EncodeBody(chunk, end)
	}
	f.reusable = f.rh.KeepAlive && f.cc.Reusable()
	if !f.reusable {
		f.releaseConn(false)
	}
	// A reusable connection is returned in OnStreamDone (see there).
}

// replayable reports whether a request that failed with err before any response byte may
// be sent again: only a bodiless idempotent request on a reused connection whose peer
// closed it.
func (f *filter) replayable(s *httpfilter.Stream, err error) bool {
	if !f.reused || f.framing.Kind != http1.None {
		return false
	}
	switch s.Request.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
	default:
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// replaySafe reports whether h1Response would replay the request should a reused connection
// turn out closed (see replayable), which lets the pool skip its liveness check.
func (f *filter) replaySafe(s *httpfilter.Stream) bool {
	if f.framing.Kind != http1.None || s.Request.Has("upgrade") {
		return false
	}
	switch s.Request.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// idleTimeout is the shorter of the route's idle_timeout and the retry policy's
// per_try_idle_timeout (0: none).
func (f *filter) idleTimeout() time.Duration {
	d := f.fw.IdleTimeout
	if f.rp != nil && f.rp.PerTryIdleTimeout > 0 && (d == 0 || f.rp.PerTryIdleTimeout < d) {
		d = f.rp.PerTryIdleTimeout
	}
	return d
}

func (f *filter) nextDeadline() time.Time {
	d := time.Now().Add(f.idleTimeout())
	if ad := f.attemptDeadline(); !ad.IsZero() && ad.Before(d) {
		return ad
	}
	return d
}

// finishResponseHeaders applies the route's response header mutations and the router's own
// headers.
func (f *filter) finishResponseHeaders(s *httpfilter.Stream) {
	if !f.cfg.SuppressEnvoyHeaders && !f.start.IsZero() {
		ms := time.Since(f.start).Milliseconds()
		b := strconv.AppendUint(f.numBuf[:0], uint64(ms), 10)
		s.Response.Set("x-envoy-upstream-service-time", unsafe.String(&f.numBuf[0], len(b)))
	}
	if f.fw != nil && f.fw.IncludeAttemptCountInResponse && f.attempt > 0 {
		b := strconv.AppendUint(f.numBuf[:0], uint64(f.attempt), 10)
		s.Response.Set("x-envoy-attempt-count", unsafe.String(&f.numBuf[0], len(b)))
	}
	if f.cookie != nil {
		s.Response.Add("set-cookie", f.setCookie())
	}
	if s.Route != nil {
		s.Route.ApplyResponseHeaders(&s.Response, f.hm, f.headerVars(s))
	}
}

// upstreamFailed answers (or resets) after an upstream error, with Envoy's flags.
func (f *filter) upstreamFailed(s *httpfilter.Stream, err error, reading bool) {
	f.failed = true
	f.releaseConn(false)
	var ne net.Error
	timeout := errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
	if timeout {
		switch f.classify(err) {
		case failDuration:
			f.st.RqMaxDuration.Inc()
			s.SendLocalReply(408, "downstream duration timeout", httpfilter.FlagDurationTimeout, "max_duration_timeout")
		case failPerTry:
			f.st.RqPerTryTimeout.Inc()
			s.SendLocalReply(504, bodyTimeout, httpfilter.FlagUpstreamRequestTimeout, "upstream_per_try_timeout")
		default:
			if f.st != nil {
				f.st.RqTimeout.Inc()
			}
			s.SendLocalReply(504, bodyTimeout, httpfilter.FlagUpstreamRequestTimeout, "upstream_response_timeout")
		}
		return
	}
	s.Info.UpstreamFailure = err.Error()
	var pe *http1.Error
	if errors.As(err, &pe) {
		s.SendLocalReply(502, "upstream sent an invalid response", httpfilter.FlagUpstreamProtocolError, "upstream_reset_before_response_started{protocol_error}")
		return
	}
	s.SendLocalReply(503, bodyConnTerm, httpfilter.FlagUpstreamConnectionTermination, "upstream_reset_before_response_started{connection_termination}")
}

// directResponse answers with the route's direct_response.
func (f *filter) directResponse(s *httpfilter.Stream, e *route.Entry) {
	status, body := e.Direct()
	s.Response.Reset()
	s.Response.Status = status
	if len(body) > 0 {
		s.Response.Add("content-type", "text/plain")
	}
	b := strconv.AppendUint(f.numBuf[:0], uint64(len(body)), 10)
	s.Response.Add("content-length", unsafe.String(&f.numBuf[0], len(b)))
	s.Route.ApplyResponseHeaders(&s.Response, nil, f.headerVars(s))
	s.Info.ResponseDetails = "direct_response"
	if len(body) == 0 {
		s.EncodeHeaders(true)
		return
	}
	s.EncodeHeaders(false)
	s.EncodeBody(body, true)
}

// redirect answers with the route's redirect.
func (f *filter) redirect(s *httpfilter.Stream, e *route.Entry) {
	code, location := e.Redirect(&s.Request, s.Downstream.Secure, f.pathBuf[:0])
	s.Response.Reset()
	s.Response.Status = code
	s.Response.Add("location", location)
	s.Response.Add("content-length", "0")
	s.Route.ApplyResponseHeaders(&s.Response, nil, f.headerVars(s))
	s.Info.ResponseDetails = "direct_response"
	s.EncodeHeaders(true)
}

// tunnel forwards an accepted Upgrade (WebSocket) over HTTP/1.1 and, when the upstream
// answers 101, splices the two connections until either side closes.
func (f *filter) tunnel(s *httpfilter.Stream, h *header.Map, upgrade string) httpfilter.Status {
	h.Set("connection", "upgrade")
	h.Set("upgrade", upgrade)
	f.beginAttempt(h)
	if kind, err := f.connect(s); kind != failNone {
		f.report(kind, 0)
		f.failLocally(s, kind, err)
		return httpfilter.Stop
	}
	f.conn.SetDeadline(time.Time{}) // a tunnel lives as long as its peers want
	if err := f.cc.WriteRequestHead(h, http1.Framing{Kind: http1.None}); err != nil {
		f.upstreamFailed(s, err, false)
		return httpfilter.Stop
	}
	if err := f.cc.Flush(); err != nil {
		f.upstreamFailed(s, err, false)
		return httpfilter.Stop
	}
	if !f.deadline.IsZero() {
		f.conn.SetReadDeadline(f.deadline)
	}
	if err := f.cc.ReadResponse(&s.Response, &f.rh, s.Request.Method); err != nil {
		f.upstreamFailed(s, err, true)
		return httpfilter.Stop
	}
	f.conn.SetDeadline(time.Time{})
	if s.Response.Status != 101 {
		// The upstream refused the upgrade: relay its answer as a normal response.
		end := f.rh.Framing.Kind == http1.None || (f.rh.Framing.Kind == http1.Length && f.rh.Framing.Length == 0)
		f.finishResponseHeaders(s)
		s.EncodeHeaders(end)
		for !end {
			chunk, last, err := f.cc.ReadBody()
			if err != nil {
				f.upstreamFailed(s, err, true)
				return httpfilter.Stop
			}
			end = last
			s.EncodeBody(chunk, end)
		}
		f.releaseConn(false)
		return httpfilter.Stop
	}
	f.finishResponseHeaders(s)
	s.Response.Set("connection", "upgrade")
	s.Response.Set("upgrade", upgrade)
	s.EncodeHeaders(false)
	down, downBuf, ok := s.Hijack()
	if !ok {
		f.releaseConn(false)
		return httpfilter.Stop
	}
	_, upBuf := f.cc.Hijack()
	f.conn.Codec = nil
	up := f.conn.Detach()
	f.conn, f.cc = nil, nil
	splice(down, downBuf, up, upBuf)
	return httpfilter.Stop
}

// splice copies both ways until both directions are done, then closes both connections.
func splice(a net.Conn, aBuf []byte, b net.Conn, bBuf []byte) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if len(aBuf) > 0 {
			b.Write(aBuf)
		}
		io.Copy(b, a)
		closeWrite(b)
	}()
	if len(bBuf) > 0 {
		a.Write(bBuf)
	}
	io.Copy(a, b)
	closeWrite(a)
	wg.Wait()
	a.Close()
	b.Close()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

var (
	_ httpfilter.RequestHeadersFilter  = (*filter)(nil)
	_ httpfilter.RequestBodyFilter     = (*filter)(nil)
	_ httpfilter.RequestTrailersFilter = (*filter)(nil)
	_ httpfilter.StreamDoneFilter      = (*filter)(nil)
)
