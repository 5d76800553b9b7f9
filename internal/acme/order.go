package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
)

// accountID names the account in the Store: one account per directory, whichever email.
func accountID(directoryURL string) string {
	sum := sha256.Sum256([]byte(directoryURL))
	host := "ca"
	if u, err := url.Parse(directoryURL); err == nil && validKey(u.Hostname()) {
		host = u.Hostname()
	}
	return host + "-" + hex.EncodeToString(sum[:6])
}

// acmeClient returns a client registered with the CA, creating the account (under a lease, so
// replicas create one) or loading its key from the Store the first time.
func (m *Manager) acmeClient(ctx context.Context) (*acme.Client, error) {
	m.clientMu.Lock()
	defer m.clientMu.Unlock()
	if m.client != nil {
		return m.client, nil
	}
	for {
		key, err := m.loadAccountKey(ctx)
		if err == nil {
			c := m.newClient(key)
			if _, err := c.GetReg(ctx, ""); err != nil {
				if !errors.Is(err, acme.ErrNoAccount) {
					return nil, fmt.Errorf("acme: account: %w", err)
				}
				// The CA forgot the account (a test CA restarted): register the same key.
				if err := m.register(ctx, c); err != nil {
					return nil, err
				}
			}
			return m.ready(ctx, c)
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if m.lock == nil {
			return m.createAccount(ctx)
		}
		lease, err := m.lock.TryLock(ctx, "account-"+m.acct)
		if errors.Is(err, ErrLocked) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(m.opts.LockPoll):
				continue
			}
		}
		if err != nil {
			return nil, err
		}
		if _, err := m.loadAccountKey(ctx); err == nil {
			lease.Release() // created while we waited for the lease
			continue
		}
		c, err := m.createAccount(ctx)
		lease.Release()
		return c, err
	}
}

func (m *Manager) loadAccountKey(ctx context.Context) (crypto.Signer, error) {
	b, err := m.opts.Store.LoadAccountKey(ctx, m.acct)
	if err != nil {
		return nil, err
	}
	k, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("acme: account key %s: %w", m.acct, err)
	}
	return k, nil
}

func (m *Manager) createAccount(ctx context.Context) (*acme.Client, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c := m.newClient(key)
	if err := m.register(ctx, c); err != nil {
		return nil, err
	}
	pemKey, err := marshalKey(key)
	if err != nil {
		return nil, err
	}
	if err := m.opts.Store.SaveAccountKey(ctx, m.acct, pemKey); err != nil {
		return nil, err
	}
	m.log.Info("account created", "directory", m.opts.DirectoryURL, "id", m.acct)
	return m.ready(ctx, c)
}

func (m *Manager) register(ctx context.Context, c *acme.Client) error {
	a := &acme.Account{}
	if m.opts.Email != "" {
		a.Contact = []string{"mailto:" + m.opts.Email}
	}
	if m.opts.EAB != nil {
		a.ExternalAccountBinding = &acme.ExternalAccountBinding{KID: m.opts.EAB.KeyID, Key: m.opts.EAB.Key}
	}
	if _, err := c.Register(ctx, a, acme.AcceptTOS); err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
		return fmt.Errorf("acme: account: register: %w", err)
	}
	return nil
}

func (m *Manager) newClient(key crypto.Signer) *acme.Client {
	return &acme.Client{
		Key:          key,
		DirectoryURL: m.opts.DirectoryURL,
		HTTPClient:   m.opts.HTTPClient,
		UserAgent:    "nuncio",
		RetryBackoff: requestBackoff,
	}
}

// ready remembers a registered client.
func (m *Manager) ready(_ context.Context, c *acme.Client) (*acme.Client, error) {
	m.client = c
	return c, nil
}

// renewalInfoURL returns the directory's "renewalInfo" entry (RFC 9773), "" when the CA has
// none. The acme package does not expose it, so the directory is read once more, once per
// Manager (again after a failure).
func (m *Manager) renewalInfoURL(ctx context.Context) string {
	m.ariMu.Lock()
	defer m.ariMu.Unlock()
	if !m.ariKnown {
		m.ari, m.ariKnown = m.fetchRenewalInfoURL(ctx)
	}
	return m.ari
}

func (m *Manager) fetchRenewalInfoURL(ctx context.Context) (string, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.opts.DirectoryURL, nil)
	if err != nil {
		return "", false
	}
	res, err := m.httpClient().Do(req)
	if err != nil {
		return "", false
	}
	defer res.Body.Close()
	var dir struct {
		RenewalInfo string `json:"renewalInfo"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&dir) != nil {
		return "", false
	}
	return dir.RenewalInfo, true
}

func (m *Manager) httpClient() *http.Client {
	if m.opts.HTTPClient != nil {
		return m.opts.HTTPClient
	}
	return http.DefaultClient
}

// requestBackoff retries one request a few times on a bad nonce or a 5xx, and never on a rate
// limit: that error goes back to the Manager, whose own backoff honours its Retry-After
// instead of holding a request open for hours.
func requestBackoff(n int, _ *http.Request, res *http.Response) time.Duration {
	if res.StatusCode == http.StatusTooManyRequests || n > 4 {
		return 0
	}
	d := time.Duration(1<<(n-1)) * 250 * time.Millisecond
	if ra := parseRetryAfter(res.Header.Get("Retry-After"), time.Now()); ra > d {
		d = min(ra, 10*time.Second)
	}
	return d
}

// obtain runs one order to the end: authorizations, challenges, finalization.
func (m *Manager) obtain(ctx context.Context, r Request) (*Certificate, error) {
	c, err := m.acmeClient(ctx)
	if err != nil {
		return nil, err
	}
	var opts []acme.OrderOption
	if r.Profile != "" {
		opts = append(opts, acme.WithOrderIssuanceProfile(acme.ProfileName(r.Profile)))
	}
	o, err := c.AuthorizeOrder(ctx, acme.DomainIDs(r.Names...), opts...)
	if err != nil {
		return nil, fmt.Errorf("acme: new order: %w", err)
	}
	for _, u := range o.AuthzURLs {
		if err := m.authorize(ctx, c, u, r.Challenge); err != nil {
			return nil, err
		}
	}
	if o, err = c.WaitOrder(ctx, o.URI); err != nil {
		return nil, fmt.Errorf("acme: order: %w", err)
	}
	key, err := newKey(r.KeyType)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: r.Names}, key)
	if err != nil {
		return nil, err
	}
	chain, _, err := c.CreateCertFromOrder(ctx, o, csr, true)
	if err != nil {
		return nil, fmt.Errorf("acme: finalize: %w", err)
	}
	if len(chain) == 0 {
		return nil, errors.New("acme: finalize: empty chain")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("acme: issued certificate: %w", err)
	}
	cert := &Certificate{Name: r.Name, Chain: chain, Key: key, Leaf: leaf}
	if !publicKeyEqual(leaf.PublicKey, key.Public()) || !matches(cert, r) {
		return nil, fmt.Errorf("acme: issued certificate does not match the request (names %v)", leaf.DNSNames)
	}
	return cert, nil
}

// authorize satisfies one authorization with the request's challenge type, publishing the key
// authorization in the Responder and the Store for the time of the validation.
func (m *Manager) authorize(ctx context.Context, c *acme.Client, authzURL, typ string) error {
	z, err := c.GetAuthorization(ctx, authzURL)
	if err != nil {
		return fmt.Errorf("acme: authorization: %w", err)
	}
	switch z.Status {
	case acme.StatusValid:
		return nil // reused from an earlier order
	case acme.StatusPending:
	default:
		return fmt.Errorf("acme: authorization for %s is %s", z.Identifier.Value, z.Status)
	}
	i := slices.IndexFunc(z.Challenges, func(ch *acme.Challenge) bool { return ch.Type == typ })
	if i < 0 {
		return fmt.Errorf("acme: the CA offers no %s challenge for %s", typ, z.Identifier.Value)
	}
	ch := z.Challenges[i]
	thumb, err := acme.JWKThumbprint(c.Key.Public())
	if err != nil {
		return err
	}
	keyAuth := ch.Token + "." + thumb
	id := ch.Token
	if typ == ChallengeTLSALPN01 {
		id = strings.ToLower(z.Identifier.Value)
	}
	if err := m.resp.put(typ, id, keyAuth); err != nil {
		return err
	}
	defer m.resp.remove(typ, id)
	storeID := typ + "/" + id
	if err := m.opts.Store.PutChallenge(ctx, storeID, keyAuth); err != nil {
		return err
	}
	defer func() { _ = m.opts.Store.DeleteChallenge(context.WithoutCancel(ctx), storeID) }()
	if _, err := c.Accept(ctx, ch); err != nil {
		return fmt.Errorf("acme: accept %s for %s: %w", typ, z.Identifier.Value, err)
	}
	if _, err := c.WaitAuthorization(ctx, z.URI); err != nil {
		return fmt.Errorf("%s: %w", typ, err) // err names the identifier
	}
	return nil
}

func newKey(t KeyType) (crypto.Signer, error) {
	if t == KeyRSA2048 {
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// matches reports whether c was ordered for r: the same names and key type.
func matches(c *Certificate, r Request) bool {
	if len(c.Leaf.DNSNames) != len(r.Names) {
		return false
	}
	for _, n := range r.Names {
		if !slices.Contains(c.Leaf.DNSNames, n) {
			return false
		}
	}
	switch k := c.Key.(type) {
	case *ecdsa.PrivateKey:
		return r.KeyType == KeyECDSAP256 && k.Curve == elliptic.P256()
	case *rsa.PrivateKey:
		return r.KeyType == KeyRSA2048 && k.N.BitLen() == 2048
	}
	return false
}
