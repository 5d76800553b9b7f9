// Package acme obtains and renews certificates from an ACME CA (RFC 8555) with HTTP-01 and
// TLS-ALPN-01 (RFC 8737) challenges. A Manager keeps one account and a set of certificates in a
// Store shared by replicas, orders each certificate under a lease so that one replica orders it
// while the others wait for it to appear, renews before expiry (ACME Renewal Information when
// the CA offers it, else when a third of the lifetime remains), backs off on errors, and hands
// every new certificate to a callback. A Responder answers the CA's validation requests from
// whichever listener the data plane mounts it on.
//
// The package depends on nothing of the data plane's: listeners reach it through
// Responder.Lookup / ServeHTTP / GetCertificate, and certificates leave it through
// Options.OnCertificate.
package acme

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
)

// orderTimeout bounds one order, so that a CA that leaves an authorization pending forever
// does not stall the certificate.
const orderTimeout = 10 * time.Minute

// LetsEncryptURL is Let's Encrypt's production directory, the default.
const LetsEncryptURL = acme.LetsEncryptURL

// Challenge types.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// KeyType is the certificate's key algorithm.
type KeyType string

// Key types.
const (
	KeyECDSAP256 KeyType = "ecdsa-p256" // the default
	KeyRSA2048   KeyType = "rsa-2048"
)

// Request is one certificate to keep.
type Request struct {
	// Name is the certificate's key in the Store; it defaults to Names[0].
	Name string
	// Names are the DNS names (SANs). Wildcards need DNS-01, which is not supported.
	Names []string
	// KeyType defaults to KeyECDSAP256.
	KeyType KeyType
	// Challenge is ChallengeHTTP01 (the default) or ChallengeTLSALPN01.
	Challenge string
	// Profile asks the CA for an issuance profile (e.g. Let's Encrypt's "shortlived").
	Profile string
}

// ExternalAccountBinding binds the new account to one at the CA (RFC 8555 section 7.3.4).
type ExternalAccountBinding struct {
	KeyID string
	Key   []byte // the MAC key, decoded
}

// Backoff spaces retries after failed orders.
type Backoff struct {
	Min, Max time.Duration // defaults 1m and 6h
}

// EventKind says what happened to a certificate.
type EventKind int

// Event kinds.
const (
	EventLoaded  EventKind = iota // a valid certificate was read from the Store
	EventIssued                   // this Manager ordered and stored a certificate
	EventWaiting                  // another holder has the lease; this Manager waits for its result
	EventFailed                   // an order failed; Retry says when the next attempt is
)

func (k EventKind) String() string {
	switch k {
	case EventLoaded:
		return "loaded"
	case EventIssued:
		return "issued"
	case EventWaiting:
		return "waiting"
	case EventFailed:
		return "failed"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event reports progress, for logs and stats.
type Event struct {
	Kind        EventKind
	Name        string
	Certificate *Certificate  // Loaded, Issued
	Err         error         // Failed
	Retry       time.Duration // Failed: the backoff before the next attempt
}

// Options configure a Manager.
type Options struct {
	DirectoryURL string // default LetsEncryptURL
	Email        string // the account's contact, optional
	EAB          *ExternalAccountBinding
	Certificates []Request

	Store     Store      // required
	Locker    Locker     // default: Store when it is a Locker; else no lease (one replica)
	Responder *Responder // default: NewResponder(Store)

	// OnCertificate receives every certificate that becomes current, loaded or issued, from the
	// certificate's own goroutine; it must not block for long.
	OnCertificate func(*Certificate)
	OnEvent       func(Event)

	// RenewRemaining is the fraction of the lifetime left when renewal falls due without ARI
	// (default 1/3); each certificate's point is moved earlier by up to a tenth of that, at
	// random, so that many certificates and replicas do not renew at once.
	RenewRemaining float64
	// CheckInterval bounds how long a certificate goes unexamined (default 10m): the Store is
	// reread (a replica's renewal shows up), ARI asked again when it said so.
	CheckInterval time.Duration
	// LockPoll is how often a replica waiting on another's lease looks again (default 5s).
	LockPoll time.Duration
	Backoff  Backoff

	HTTPClient *http.Client     // for the CA; default http.DefaultClient
	Now        func() time.Time // the clock renewal is judged by; default time.Now
	Logger     *slog.Logger     // default slog.Default()
}

// Manager keeps a set of certificates issued and fresh.
type Manager struct {
	opts    Options
	reqs    []Request
	resp    *Responder
	lock    Locker
	acct    string // the account's id in the Store
	log     *slog.Logger
	certs   sync.Map // name → *Certificate
	running atomic.Bool

	clientMu sync.Mutex
	client   *acme.Client // registered; nil until the first order

	ariMu    sync.Mutex
	ari      string // the directory's renewalInfo URL, "" when not offered
	ariKnown bool
}

// New validates opts and returns a Manager; Run starts it.
func New(opts Options) (*Manager, error) {
	if opts.Store == nil {
		return nil, errors.New("acme: store: required")
	}
	if opts.DirectoryURL == "" {
		opts.DirectoryURL = LetsEncryptURL
	}
	u, err := url.Parse(opts.DirectoryURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("acme: directory_url: %q is not an https URL", opts.DirectoryURL)
	}
	if opts.Email != "" && (strings.ContainsAny(opts.Email, " \t\r\n") || !strings.Contains(opts.Email, "@")) {
		return nil, fmt.Errorf("acme: email: %q is not an address", opts.Email)
	}
	if opts.EAB != nil && (opts.EAB.KeyID == "" || len(opts.EAB.Key) == 0) {
		return nil, errors.New("acme: eab: key_id and key are both required")
	}
	if len(opts.Certificates) == 0 {
		return nil, errors.New("acme: certificates: at least one is required")
	}
	m := &Manager{opts: opts, acct: accountID(opts.DirectoryURL)}
	seen := map[string]bool{}
	for i, r := range opts.Certificates {
		r, err := normalize(r)
		if err != nil {
			return nil, fmt.Errorf("acme: certificates[%d]: %w", i, err)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("acme: certificates[%d]: name: %q is used twice", i, r.Name)
		}
		seen[r.Name] = true
		m.reqs = append(m.reqs, r)
	}
	if m.opts.RenewRemaining <= 0 || m.opts.RenewRemaining >= 1 {
		m.opts.RenewRemaining = 1.0 / 3
	}
	if m.opts.CheckInterval <= 0 {
		m.opts.CheckInterval = 10 * time.Minute
	}
	if m.opts.LockPoll <= 0 {
		m.opts.LockPoll = 5 * time.Second
	}
	if m.opts.Backoff.Min <= 0 {
		m.opts.Backoff.Min = time.Minute
	}
	if m.opts.Backoff.Max < m.opts.Backoff.Min {
		m.opts.Backoff.Max = max(6*time.Hour, m.opts.Backoff.Min)
	}
	if m.opts.Now == nil {
		m.opts.Now = time.Now
	}
	m.log = opts.Logger
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("component", "acme")
	m.resp = opts.Responder
	if m.resp == nil {
		m.resp = NewResponder(opts.Store)
	}
	m.lock = opts.Locker
	if m.lock == nil {
		if l, ok := opts.Store.(Locker); ok {
			m.lock = l
		}
	}
	return m, nil
}

// normalize fills a Request's defaults and rejects what cannot be ordered.
func normalize(r Request) (Request, error) {
	if len(r.Names) == 0 {
		return r, errors.New("names: at least one is required")
	}
	names := make([]string, len(r.Names))
	for i, n := range r.Names {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if err := checkDNSName(n); err != nil {
			return r, fmt.Errorf("names[%d]: %w", i, err)
		}
		names[i] = n
	}
	r.Names = names
	if r.Name == "" {
		r.Name = names[0]
	}
	if !validKey(r.Name) {
		return r, fmt.Errorf("name: %q may hold only letters, digits, '.', '-' and '_'", r.Name)
	}
	switch r.KeyType {
	case "":
		r.KeyType = KeyECDSAP256
	case KeyECDSAP256, KeyRSA2048:
	default:
		return r, fmt.Errorf("key_type: %q is not %s or %s", r.KeyType, KeyECDSAP256, KeyRSA2048)
	}
	switch r.Challenge {
	case "":
		r.Challenge = ChallengeHTTP01
	case ChallengeHTTP01, ChallengeTLSALPN01:
	default:
		return r, fmt.Errorf("challenge: %q is not %s or %s", r.Challenge, ChallengeHTTP01, ChallengeTLSALPN01)
	}
	return r, nil
}

func checkDNSName(n string) error {
	if strings.HasPrefix(n, "*.") {
		return fmt.Errorf("%q: a wildcard needs the dns-01 challenge, which is not supported", n)
	}
	if len(n) == 0 || len(n) > 253 || !strings.Contains(n, ".") {
		return fmt.Errorf("%q is not a fully qualified domain name", n)
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q: bad label %q", n, label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%q: label %q holds %q", n, label, c)
			}
		}
	}
	return nil
}

// Responder is the Responder this Manager publishes its challenges in.
func (m *Manager) Responder() *Responder { return m.resp }

// Certificate returns the current certificate for a request's name, or nil.
func (m *Manager) Certificate(name string) *Certificate {
	if c, ok := m.certs.Load(name); ok {
		return c.(*Certificate)
	}
	return nil
}

// Run keeps every certificate until ctx is done, one goroutine each, and returns ctx's error.
// A Manager runs once; a new set of requests (a config change) takes a new Manager, which
// loads what the old one stored.
func (m *Manager) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("acme: Manager.Run called twice")
	}
	var wg sync.WaitGroup
	for _, r := range m.reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.keep(ctx, r)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// keep is one certificate's life: examine, then sleep until the next thing to do.
func (m *Manager) keep(ctx context.Context, r Request) {
	s := &certState{req: r}
	defer s.release()
	for {
		wait := m.step(ctx, s)
		if ctx.Err() != nil {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// certState is what keep remembers between steps.
type certState struct {
	req      Request
	cur      *Certificate
	renewAt  time.Time // when cur falls due
	ariNext  time.Time // when to ask ARI again; zero: ARI not used for cur
	failures int
	// lease is kept from a failed order to the next attempt, so that the other replicas wait
	// out this one's backoff instead of each retrying in turn (and multiplying the attempts
	// that count against the CA's rate limits).
	lease Lease
}

func (s *certState) release() {
	if s.lease != nil {
		_ = s.lease.Release()
		s.lease = nil
	}
}

// step examines one certificate, orders it when due, and says how long to sleep.
func (m *Manager) step(ctx context.Context, s *certState) time.Duration {
	m.loadStored(ctx, s)
	if !m.due(ctx, s) {
		return min(s.renewAt.Sub(m.opts.Now()), m.opts.CheckInterval)
	}
	if m.lock != nil && s.lease == nil {
		lease, err := m.lock.TryLock(ctx, "cert-"+s.req.Name)
		if errors.Is(err, ErrLocked) {
			m.emit(Event{Kind: EventWaiting, Name: s.req.Name})
			return m.opts.LockPoll
		}
		if err != nil {
			return m.failed(s, err)
		}
		s.lease = lease
		// The previous holder may have stored a fresh certificate just before we took over.
		if m.loadStored(ctx, s); !m.due(ctx, s) {
			s.release()
			return min(s.renewAt.Sub(m.opts.Now()), m.opts.CheckInterval)
		}
	}
	start := time.Now()
	octx, cancel := context.WithTimeout(ctx, orderTimeout)
	c, err := m.obtain(octx, s.req)
	if err == nil {
		err = m.save(octx, c)
	}
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		return m.failed(s, err) // keeping the lease
	}
	s.release()
	m.log.Info("certificate issued", "name", s.req.Name, "names", s.req.Names,
		"not_after", c.Leaf.NotAfter, "took", time.Since(start).Round(time.Millisecond))
	s.failures = 0
	m.publish(ctx, s, c)
	m.emit(Event{Kind: EventIssued, Name: s.req.Name, Certificate: c})
	return min(s.renewAt.Sub(m.opts.Now()), m.opts.CheckInterval)
}

// loadStored makes the Store's certificate current when it is usable and differs from ours.
func (m *Manager) loadStored(ctx context.Context, s *certState) {
	chain, key, err := m.opts.Store.LoadCertificate(ctx, s.req.Name)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			m.log.Warn("reading stored certificate", "name", s.req.Name, "error", err)
		}
		return
	}
	c, err := ParseCertificate(s.req.Name, chain, key)
	if err != nil {
		m.log.Warn("stored certificate unusable", "name", s.req.Name, "error", err)
		return
	}
	if s.cur != nil && (c.Leaf.SerialNumber.Cmp(s.cur.Leaf.SerialNumber) == 0 || c.Leaf.NotBefore.Before(s.cur.Leaf.NotBefore)) {
		return // ours, or older than ours (a store restored from a backup)
	}
	if !matches(c, s.req) || !m.opts.Now().Before(c.Leaf.NotAfter) {
		return // ordered for another config, or expired: due now
	}
	m.publish(ctx, s, c)
	m.emit(Event{Kind: EventLoaded, Name: s.req.Name, Certificate: c})
}

// publish makes c current and tells the callback.
func (m *Manager) publish(ctx context.Context, s *certState, c *Certificate) {
	s.cur = c
	s.renewAt, s.ariNext = m.renewalTime(c), time.Time{}
	m.refreshARI(ctx, s)
	m.certs.Store(s.req.Name, c)
	if m.opts.OnCertificate != nil {
		m.opts.OnCertificate(c)
	}
}

// due reports whether the current certificate needs replacing.
func (m *Manager) due(ctx context.Context, s *certState) bool {
	if s.cur == nil || !matches(s.cur, s.req) {
		return true
	}
	if !s.ariNext.IsZero() && !m.opts.Now().Before(s.ariNext) {
		m.refreshARI(ctx, s)
	}
	return !m.opts.Now().Before(s.renewAt)
}

func (m *Manager) failed(s *certState, err error) time.Duration {
	s.failures++
	wait := backoff(m.opts.Backoff, s.failures, err)
	m.log.Warn("certificate order failed", "name", s.req.Name, "attempt", s.failures, "retry_in", wait, "error", err)
	m.emit(Event{Kind: EventFailed, Name: s.req.Name, Err: err, Retry: wait})
	return wait
}

func (m *Manager) emit(e Event) {
	if m.opts.OnEvent != nil {
		m.opts.OnEvent(e)
	}
}

func (m *Manager) save(ctx context.Context, c *Certificate) error {
	chain, key, err := c.PEM()
	if err != nil {
		return err
	}
	return m.opts.Store.SaveCertificate(ctx, c.Name, chain, key)
}
