package jwtauthn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/upstream"
)

// remote is a JWKS fetched over a cluster. Its keys are published with an atomic pointer,
// so streams read them without a lock; fetches are single-flight.
type remote struct {
	uri, host, path string
	cluster         string
	ref             atomic.Pointer[cluster.Ref] // set by WithClusters
	timeout         time.Duration
	cacheDuration   time.Duration
	failedRefetch   time.Duration
	async           bool
	retries         int
	backoffBase     time.Duration
	backoffMax      time.Duration

	state atomic.Pointer[remoteState]

	mu       sync.Mutex
	inflight chan struct{} // closed when the fetch in progress ends; nil when none
}

// remoteState is the outcome of the last fetch: the last good keys (nil before any) and
// when to fetch again.
type remoteState struct {
	keys    *keySet
	refresh time.Time // the keys are stale from then (cache_duration), or the retry time after a failure
}

func newRemote(r *jwtv3.RemoteJwks) (*remote, error) {
	u := r.GetHttpUri()
	if u == nil {
		return nil, errors.New("http_uri: required")
	}
	rm := &remote{
		uri: u.GetUri(), cluster: u.GetCluster(),
		cacheDuration: defaultCacheDuration, failedRefetch: defaultFailedRefetch,
	}
	var err error
	if rm.host, rm.path, err = parseURI(u.GetUri()); err != nil {
		return nil, fmt.Errorf("http_uri.uri: %v", err)
	}
	if rm.cluster == "" {
		return nil, errors.New("http_uri.cluster: required")
	}
	if u.GetTimeout() == nil {
		return nil, errors.New("http_uri.timeout: required")
	}
	if rm.timeout = u.GetTimeout().AsDuration(); rm.timeout <= 0 {
		return nil, errors.New("http_uri.timeout: must be above 0")
	}
	if d := r.GetCacheDuration(); d != nil {
		if rm.cacheDuration = d.AsDuration(); rm.cacheDuration <= 0 {
			return nil, errors.New("cache_duration: must be above 0")
		}
	}
	if a := r.GetAsyncFetch(); a != nil {
		rm.async = true
		if d := a.GetFailedRefetchDuration(); d != nil {
			if rm.failedRefetch = d.AsDuration(); rm.failedRefetch <= 0 {
				return nil, errors.New("async_fetch.failed_refetch_duration: must be above 0")
			}
		}
	}
	if rp := r.GetRetryPolicy(); rp != nil {
		rm.retries = 1
		if n := rp.GetNumRetries(); n != nil {
			rm.retries = int(min(n.GetValue(), 10))
		}
		rm.backoffBase = defaultRetryBase
		if b := rp.GetRetryBackOff(); b != nil {
			if d := b.GetBaseInterval(); d != nil {
				rm.backoffBase = d.AsDuration()
			}
			if d := b.GetMaxInterval(); d != nil {
				rm.backoffMax = d.AsDuration()
			}
			if rm.backoffBase <= 0 || (rm.backoffMax != 0 && rm.backoffMax < rm.backoffBase) {
				return nil, errors.New("retry_policy.retry_back_off: base_interval must be above 0 and at most max_interval")
			}
		}
		if rm.backoffMax == 0 {
			rm.backoffMax = 10 * rm.backoffBase
		}
	}
	return rm, nil
}

// keys returns the keys to verify with. Fresh keys are returned at once. Stale keys are
// returned at once too, while a background fetch replaces them: a slow or failing JWKS
// endpoint then never delays requests, and the last good keys stay. Without any keys yet,
// the stream waits for the fetch (bounded by http_uri.timeout and the retries) or for its
// own end; nil means there are no keys to verify with.
func (r *remote) keys(ctx context.Context, st *filterStats) *keySet {
	cur := r.state.Load()
	if cur != nil && time.Now().Before(cur.refresh) {
		return cur.keys // fresh, or failed lately and not to be tried again yet
	}
	done := r.start(st)
	if cur != nil && cur.keys != nil {
		return cur.keys
	}
	select {
	case <-done:
	case <-ctx.Done():
		return nil
	}
	if cur = r.state.Load(); cur != nil {
		return cur.keys
	}
	return nil
}

// prefetch starts a fetch now (async_fetch), unless one is running or keys are fresh.
func (r *remote) prefetch(st *filterStats) {
	if cur := r.state.Load(); cur == nil || !time.Now().Before(cur.refresh) {
		r.startFetch(st, true)
	}
}

// start begins a fetch unless one is in flight, and returns the channel closed when the
// fetch in flight ends. The fetch runs on its own goroutine with its own deadline: a
// stream that gives up waiting does not cancel it for the others.
func (r *remote) start(st *filterStats) <-chan struct{} { return r.startFetch(st, false) }

// startFetch is start; initial fetches (async_fetch, at configuration time) first wait, up to
// http_uri.timeout, for the cluster, which the gateway applies just after the filter's
// configuration is built.
func (r *remote) startFetch(st *filterStats, initial bool) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight != nil {
		return r.inflight
	}
	ch := make(chan struct{})
	r.inflight = ch
	go func() {
		if initial {
			r.awaitCluster()
		}
		r.refresh(st)
		r.mu.Lock()
		r.inflight = nil
		r.mu.Unlock()
		close(ch)
	}()
	return ch
}

// refresh fetches the JWKS, with the retry policy's attempts, and publishes the outcome.
func (r *remote) refresh(st *filterStats) {
	var ks *keySet
	var err error
	for attempt := 0; ; attempt++ {
		if ks, err = r.fetchOnce(); err == nil || attempt >= r.retries {
			break
		}
		time.Sleep(r.backoff(attempt))
	}
	prev := r.state.Load()
	if err != nil {
		st.fetchFailed.Inc()
		slog.Warn("jwt_authn: JWKS fetch failed; keeping the last good keys", "uri", r.uri, "cluster", r.cluster, "error", err)
		next := &remoteState{refresh: time.Now().Add(r.failedRefetch)}
		if prev != nil {
			next.keys = prev.keys
		}
		r.state.Store(next)
		return
	}
	st.fetchSuccess.Inc()
	r.state.Store(&remoteState{keys: ks, refresh: time.Now().Add(r.cacheDuration)})
}

func (r *remote) awaitCluster() {
	for deadline := time.Now().Add(r.timeout); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if ref := r.ref.Load(); ref != nil && ref.Load() != nil {
			return
		}
	}
}

// backoff is Envoy's jittered exponential backoff: a random wait up to base·2^attempt,
// capped by the maximum interval.
func (r *remote) backoff(attempt int) time.Duration {
	ceil := r.backoffBase << min(attempt, 20)
	if ceil > r.backoffMax || ceil <= 0 {
		ceil = r.backoffMax
	}
	return time.Duration(rand.Int64N(int64(ceil)) + 1)
}

// fetchOnce sends one GET for the JWKS through the cluster and parses the answer.
func (r *remote) fetchOnce() (*keySet, error) {
	ref := r.ref.Load()
	if ref == nil || ref.Load() == nil {
		return nil, fmt.Errorf("cluster %q not found", r.cluster)
	}
	host := ref.Load().Pick(rand.Uint64())
	if host == nil {
		return nil, fmt.Errorf("cluster %q: no healthy upstream", r.cluster)
	}
	host.Begin()
	defer host.End()
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	pool := host.Pool
	req := header.Map{Method: "GET", Scheme: "http", Authority: r.host, Path: r.path}
	req.Set("accept", "application/json")
	x := upstream.NewExchange(pool.Protocol())
	x.Prepare(&req, true)
	if err := x.Connect(ctx, pool, deadline); err != nil {
		return nil, err
	}
	reusable := false
	defer func() { x.Close(reusable) }()
	if err := x.WriteRequest(&req, nil, nil); err != nil {
		return nil, err
	}
	var resp header.Map
	end, err := x.ReadResponse(&resp)
	if err != nil {
		return nil, err
	}
	var body []byte
	for !end {
		var chunk []byte
		if chunk, end, err = x.ReadBody(); err != nil {
			return nil, err
		}
		if len(body)+len(chunk) > maxJWKSBytes {
			return nil, fmt.Errorf("response larger than %d bytes", maxJWKSBytes)
		}
		body = append(body, chunk...)
	}
	reusable = true
	if resp.Status != 200 {
		return nil, fmt.Errorf("status %d", resp.Status)
	}
	return parseJWKS(body)
}
