// Package outlier is passive health checking as Envoy's outlier detection: hosts whose
// requests fail (consecutive 5xx, gateway failures or local-origin failures, a success rate
// far below their peers', a failure percentage above a threshold) are ejected from load
// balancing for a time that grows with each repeated ejection.
//
// The request path only reports results, with a few atomic operations per request; the
// decisions run when a consecutive-failure threshold is crossed and once per interval.
package outlier

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Kind is a reason for ejection.
type Kind uint8

const (
	Consecutive5xx Kind = iota
	ConsecutiveGatewayFailure
	ConsecutiveLocalOriginFailure
	SuccessRate
	LocalOriginSuccessRate
	FailurePercentage
	FailurePercentageLocalOrigin
	numKinds
)

// statNames are Envoy's suffixes of ejections_detected_* and ejections_enforced_*.
var statNames = [numKinds]string{
	"consecutive_5xx",
	"consecutive_gateway_failure",
	"consecutive_local_origin_failure",
	"success_rate",
	"local_origin_success_rate",
	"failure_percentage",
	"failure_percentage_local_origin",
}

func (k Kind) String() string { return statNames[k] }

// Options tune a Detector for tests. The zero value is the real clock and randomness.
type Options struct {
	Now func() time.Time
	// Roll returns a number in [0, 100) for enforcing_* percentages.
	Roll func() uint32
	// Manual: no interval timer; the caller runs Tick.
	Manual bool
}

// Detector watches the hosts of one cluster.
type Detector struct {
	cfg      model.OutlierDetection
	opts     Options
	onChange func() // a host was ejected or returned; called without locks held

	ejectionsActive *stats.Gauge
	enforcedTotal   *stats.Counter
	overflow        *stats.Counter
	detected        [numKinds]*stats.Counter
	enforced        [numKinds]*stats.Counter

	mu       sync.Mutex
	monitors map[*Monitor]struct{}
	active   int // ejected monitors

	stop chan struct{}
	done chan struct{}
}

// New returns a detector for cfg, counting into scope (the cluster's), that calls onChange
// whenever a host is ejected or returned. Start starts its interval timer.
func New(cfg *model.OutlierDetection, scope *stats.Scope, onChange func(), opts Options) *Detector {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Roll == nil {
		opts.Roll = func() uint32 { return rand.Uint32N(100) }
	}
	d := &Detector{
		cfg:             *cfg,
		opts:            opts,
		onChange:        onChange,
		ejectionsActive: scope.Gauge("outlier_detection.ejections_active"),
		enforcedTotal:   scope.Counter("outlier_detection.ejections_enforced_total"),
		overflow:        scope.Counter("outlier_detection.ejections_overflow"),
		monitors:        map[*Monitor]struct{}{},
	}
	for k := range numKinds {
		d.detected[k] = scope.Counter("outlier_detection.ejections_detected_" + statNames[k])
		d.enforced[k] = scope.Counter("outlier_detection.ejections_enforced_" + statNames[k])
	}
	return d
}

// Start runs the interval timer until Close.
func (d *Detector) Start() {
	if d.opts.Manual || d.stop != nil {
		return
	}
	d.stop, d.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(d.done)
		t := time.NewTicker(d.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-d.stop:
				return
			case <-t.C:
				d.Tick()
			}
		}
	}()
}

// Close stops the timer and forgets every host; their ejections no longer count.
func (d *Detector) Close() {
	if d.stop != nil {
		close(d.stop)
		<-d.done
		d.stop = nil
	}
	d.mu.Lock()
	d.ejectionsActive.Add(-int64(d.active))
	d.active = 0
	d.monitors = map[*Monitor]struct{}{}
	d.mu.Unlock()
}

// Monitor is the outlier state of one host.
type Monitor struct {
	d *Detector
	// setEjected flips the host's FAILED_OUTLIER_CHECK flag.
	setEjected func(bool)

	cons5xx, consGateway, consLocal atomic.Uint32
	// This interval's requests: external (HTTP statuses) and local origin (connects,
	// resets, timeouts), when split; everything is external otherwise.
	extTotal, extFail, localTotal, localFail atomic.Uint64

	// Under d.mu.
	ejected      bool
	ejectedAt    time.Time
	backoff      uint32 // the ejection time is base × backoff, capped
	numEjections uint32
	unejectedAt  time.Time
	removed      bool
}

// Add starts watching a host. setEjected is called (under the detector's lock, so it
// must only set state) when the host is ejected or returned.
func (d *Detector) Add(setEjected func(bool)) *Monitor {
	m := &Monitor{d: d, setEjected: setEjected}
	d.mu.Lock()
	d.monitors[m] = struct{}{}
	d.mu.Unlock()
	return m
}

// Remove stops watching a host that left the cluster.
func (d *Detector) Remove(m *Monitor) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.monitors[m]; !ok {
		return
	}
	delete(d.monitors, m)
	m.removed = true
	if m.ejected {
		d.active--
		d.ejectionsActive.Dec()
	}
}

// Ejected reports whether the host is ejected now.
func (m *Monitor) Ejected() bool {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	return m.ejected
}

// Ejections is the number of times the host was ejected.
func (m *Monitor) Ejections() uint32 {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	return m.numEjections
}

func isGatewayFailure(status int) bool { return status == 502 || status == 503 || status == 504 }

// Report records how one request ended: an HTTP status, or (status 0, localOrigin) a
// connect failure, reset or timeout. Without split_external_local_origin_errors a local
// failure counts as a 503, as Envoy maps it.
func (m *Monitor) Report(status int, localOrigin bool) {
	cfg := &m.d.cfg
	if localOrigin {
		if !cfg.SplitExternalLocalOriginErrors {
			status = 503
		} else {
			m.localTotal.Add(1)
			m.localFail.Add(1)
			if n := m.consLocal.Add(1); n == cfg.ConsecutiveLocalOriginFailure {
				m.d.consecutive(m, ConsecutiveLocalOriginFailure)
			}
			return
		}
	} else if cfg.SplitExternalLocalOriginErrors {
		// A response arrived, so the connection worked.
		m.localTotal.Add(1)
		m.consLocal.Store(0)
	}
	m.extTotal.Add(1)
	if status < 500 {
		m.cons5xx.Store(0)
		m.consGateway.Store(0)
		return
	}
	m.extFail.Add(1)
	if isGatewayFailure(status) {
		if n := m.consGateway.Add(1); n == cfg.ConsecutiveGatewayFailure {
			m.d.consecutive(m, ConsecutiveGatewayFailure)
		}
	} else {
		m.consGateway.Store(0)
	}
	if n := m.cons5xx.Add(1); n == cfg.Consecutive5xx {
		m.d.consecutive(m, Consecutive5xx)
	}
}

func (d *Detector) enforcing(k Kind) uint32 {
	c := &d.cfg
	switch k {
	case Consecutive5xx:
		return c.EnforcingConsecutive5xx
	case ConsecutiveGatewayFailure:
		return c.EnforcingConsecutiveGatewayFailure
	case ConsecutiveLocalOriginFailure:
		return c.EnforcingConsecutiveLocalOriginFailure
	case SuccessRate:
		return c.EnforcingSuccessRate
	case LocalOriginSuccessRate:
		return c.EnforcingLocalOriginSuccessRate
	case FailurePercentage:
		return c.EnforcingFailurePercentage
	}
	return c.EnforcingFailurePercentageLocalOrigin
}

func (d *Detector) consecutive(m *Monitor, k Kind) {
	d.mu.Lock()
	changed := d.ejectLocked(m, k, d.opts.Now())
	d.mu.Unlock()
	if changed {
		d.onChange()
	}
}

// ejectLocked counts a detection and ejects m if enforcement and max_ejection_percent
// allow. Envoy's check counts the ejections in force before this one, so a small cluster
// can always lose one host.
func (d *Detector) ejectLocked(m *Monitor, k Kind, now time.Time) bool {
	if m.ejected || m.removed {
		return false
	}
	d.detected[k].Inc()
	if d.opts.Roll() >= d.enforcing(k) {
		return false
	}
	if n := len(d.monitors); n == 0 || 100*float64(d.active)/float64(n) >= float64(d.cfg.MaxEjectionPercent) {
		d.overflow.Inc()
		return false
	}
	d.enforced[k].Inc()
	d.enforcedTotal.Inc()
	m.ejected, m.ejectedAt = true, now
	m.numEjections++
	if time.Duration(m.backoff)*d.cfg.BaseEjectionTime < d.cfg.MaxEjectionTime {
		m.backoff++
	}
	d.active++
	d.ejectionsActive.Inc()
	m.setEjected(true)
	return true
}

func (d *Detector) unejectLocked(m *Monitor) {
	m.ejected = false
	m.cons5xx.Store(0)
	m.consGateway.Store(0)
	m.consLocal.Store(0)
	d.active--
	d.ejectionsActive.Dec()
	m.setEjected(false)
}

// HealthCheckPassed returns an ejected host at once when an active health check passes
// and successful_active_health_check_uneject_host is set.
func (d *Detector) HealthCheckPassed(m *Monitor) {
	if !d.cfg.SuccessfulActiveHealthCheckUnejectHost {
		return
	}
	d.mu.Lock()
	changed := m.ejected && !m.removed
	if changed {
		d.unejectLocked(m)
		m.unejectedAt = d.opts.Now()
	}
	d.mu.Unlock()
	if changed {
		d.onChange()
	}
}

type sample struct {
	m      *Monitor
	volume uint64
	rate   float64 // success percentage
}

// Tick is the interval's work: return hosts whose ejection time has passed (and let the
// backoff of hosts that stayed in shrink), then judge the interval's success rates and
// failure percentages.
func (d *Detector) Tick() {
	now := d.opts.Now()
	d.mu.Lock()
	changed := false
	var ext, local []sample
	for m := range d.monitors {
		if m.ejected {
			wait := min(time.Duration(m.backoff)*d.cfg.BaseEjectionTime, max(d.cfg.MaxEjectionTime, d.cfg.BaseEjectionTime))
			if now.Sub(m.ejectedAt) >= wait {
				d.unejectLocked(m)
				m.unejectedAt = now
				changed = true
			}
		} else if m.backoff > 0 && now.Sub(m.unejectedAt) >= d.cfg.Interval {
			m.backoff--
		}
		et, ef := m.extTotal.Swap(0), m.extFail.Swap(0)
		lt, lf := m.localTotal.Swap(0), m.localFail.Swap(0)
		if m.ejected {
			continue
		}
		if et > 0 {
			ext = append(ext, sample{m, et, 100 * float64(et-ef) / float64(et)})
		}
		if d.cfg.SplitExternalLocalOriginErrors && lt > 0 {
			local = append(local, sample{m, lt, 100 * float64(lt-lf) / float64(lt)})
		}
	}
	changed = d.judgeLocked(ext, SuccessRate, FailurePercentage, now) || changed
	changed = d.judgeLocked(local, LocalOriginSuccessRate, FailurePercentageLocalOrigin, now) || changed
	d.mu.Unlock()
	if changed {
		d.onChange()
	}
}

// judgeLocked applies the success-rate and failure-percentage tests to one interval's
// samples (external or local origin).
func (d *Detector) judgeLocked(ss []sample, sr, fp Kind, now time.Time) bool {
	c := &d.cfg
	changed := false
	// Success rate: among hosts with enough requests, and only with enough such hosts,
	// those more than stdev_factor standard deviations below the mean.
	var n, sum float64
	for _, s := range ss {
		if s.volume >= uint64(c.SuccessRateRequestVolume) {
			n++
			sum += s.rate
		}
	}
	if n > 0 && n >= float64(c.SuccessRateMinimumHosts) {
		mean := sum / n
		var v float64
		for _, s := range ss {
			if s.volume >= uint64(c.SuccessRateRequestVolume) {
				v += (s.rate - mean) * (s.rate - mean)
			}
		}
		threshold := mean - float64(c.SuccessRateStdevFactor)/1000*math.Sqrt(v/n)
		for _, s := range ss {
			if s.volume >= uint64(c.SuccessRateRequestVolume) && s.rate < threshold {
				changed = d.ejectLocked(s.m, sr, now) || changed
			}
		}
	}
	// Failure percentage: an absolute bound, with the same kind of volume guards.
	n = 0
	for _, s := range ss {
		if s.volume >= uint64(c.FailurePercentageRequestVolume) {
			n++
		}
	}
	if n > 0 && n >= float64(c.FailurePercentageMinimumHosts) {
		for _, s := range ss {
			if s.volume >= uint64(c.FailurePercentageRequestVolume) && 100-s.rate >= float64(c.FailurePercentageThreshold) {
				changed = d.ejectLocked(s.m, fp, now) || changed
			}
		}
	}
	return changed
}
