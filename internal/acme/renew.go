package acme

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
)

// Bounds on how often the CA's renewal information is asked again (its Retry-After).
const (
	ariDefaultRecheck = 6 * time.Hour
	ariMinRecheck     = time.Minute
	ariMaxRecheck     = 24 * time.Hour
)

// renewalTime is when c falls due without ARI: when RenewRemaining of its lifetime remains,
// moved earlier by up to a tenth of that at random.
func (m *Manager) renewalTime(c *Certificate) time.Time {
	life := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)
	before := time.Duration(float64(life) * m.opts.RenewRemaining * (1 + 0.1*rand.Float64()))
	return c.Leaf.NotAfter.Add(-before)
}

// refreshARI asks the CA when to renew the current certificate (RFC 9773) and, when it
// answers, takes a random point of its suggested window as the renewal time; a window in the
// past means now. The answer is asked again after its Retry-After. Without ARI, or when the
// CA does not answer, the lifetime rule stays.
func (m *Manager) refreshARI(ctx context.Context, s *certState) {
	base := m.renewalInfoURL(ctx)
	id, ok := ariCertID(s.cur.Leaf)
	if base == "" || !ok {
		s.ariNext = time.Time{}
		return
	}
	now := m.opts.Now()
	w, recheck, err := m.fetchRenewalInfo(ctx, strings.TrimSuffix(base, "/")+"/"+id)
	if err != nil {
		m.log.Debug("renewal information unavailable", "name", s.req.Name, "error", err)
		s.ariNext = now.Add(time.Hour)
		return
	}
	s.ariNext = now.Add(recheck)
	at := w.Start.Add(time.Duration(rand.Int64N(int64(w.End.Sub(w.Start)) + 1)))
	// A CA may suggest renewing late; keep a tenth of the lifetime as a margin regardless.
	life := s.cur.Leaf.NotAfter.Sub(s.cur.Leaf.NotBefore)
	s.renewAt = minTime(at, s.cur.Leaf.NotAfter.Add(-life/10))
}

type ariWindow struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

func (m *Manager) fetchRenewalInfo(ctx context.Context, u string) (ariWindow, time.Duration, error) {
	var w ariWindow
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return w, 0, err
	}
	res, err := m.httpClient().Do(req)
	if err != nil {
		return w, 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return w, 0, errors.New("renewalInfo: " + res.Status)
	}
	var body struct {
		SuggestedWindow ariWindow `json:"suggestedWindow"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return w, 0, err
	}
	w = body.SuggestedWindow
	if w.Start.IsZero() || w.End.Before(w.Start) {
		return w, 0, errors.New("renewalInfo: bad suggestedWindow")
	}
	recheck := parseRetryAfter(res.Header.Get("Retry-After"), time.Now())
	if recheck == 0 {
		recheck = ariDefaultRecheck
	}
	return w, min(max(recheck, ariMinRecheck), ariMaxRecheck), nil
}

// ariCertID is the certificate's ARI identifier: base64url of the authority key identifier,
// a dot, base64url of the serial number's DER content octets (RFC 9773 section 4.1).
func ariCertID(leaf *x509.Certificate) (string, bool) {
	if len(leaf.AuthorityKeyId) == 0 || leaf.SerialNumber.Sign() <= 0 {
		return "", false
	}
	serial := leaf.SerialNumber.Bytes()
	if serial[0]&0x80 != 0 { // DER keeps a positive INTEGER's sign bit clear
		serial = append([]byte{0}, serial...)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(leaf.AuthorityKeyId) + "." + enc.EncodeToString(serial), true
}

// backoff is the wait before attempt n+1 after n failures: Min doubled per failure up to Max,
// ±10% jitter, and never less than a rate limit's Retry-After.
func backoff(b Backoff, n int, err error) time.Duration {
	d := b.Max
	if n < 40 {
		d = min(b.Min<<(n-1), b.Max)
	}
	d = time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
	if ra, ok := rateLimited(err); ok && ra > d {
		d = ra
	}
	return d
}

// rateLimited reports a CA's rateLimited problem and its Retry-After (0 when absent).
func rateLimited(err error) (time.Duration, bool) {
	var e *acme.Error
	if errors.As(err, &e) {
		return acme.RateLimit(e)
	}
	var oe *acme.OrderError
	if errors.As(err, &oe) && oe.Problem != nil {
		return acme.RateLimit(oe.Problem)
	}
	return 0, false
}

// parseRetryAfter reads seconds or an HTTP date (RFC 9110 section 10.2.3); 0 when absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		return max(time.Duration(s)*time.Second, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
