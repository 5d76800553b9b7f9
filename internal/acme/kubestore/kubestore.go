// Package kubestore keeps ACME state in Kubernetes, so that gateway replicas and the controller
// share one account and one certificate per name: certificates as kubernetes.io/tls Secrets
// (tls.crt, tls.key, the shape Ingress and Gateway listeners reference), the account key and the
// challenges in flight as Opaque Secrets, and leases as coordination.k8s.io Leases.
package kubestore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/nuncio-gw/nuncio/internal/acme"
)

// Labels on every object the store writes.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "nuncio-acme"
	kindLabel      = "acme.nuncio.dev/kind" // account, certificate, challenge
)

// Options configure a Store.
type Options struct {
	// Identity names this holder in Leases; default hostname plus a random suffix, so that two
	// Stores in one process exclude each other as two pods do.
	Identity string
	// LeaseDuration is how long a Lease outlives a holder that stopped renewing it; default 60s.
	// A held Lease is renewed every third of it.
	LeaseDuration time.Duration
	Logger        *slog.Logger
}

// Store is an acme.Store and acme.Locker over one namespace.
type Store struct {
	client    kubernetes.Interface
	namespace string
	identity  string
	duration  time.Duration
	log       *slog.Logger
}

// New returns a Store in namespace.
func New(client kubernetes.Interface, namespace string, o Options) *Store {
	if o.Identity == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.Identity = host + "-" + hex.EncodeToString(b[:])
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Store{client: client, namespace: namespace, identity: o.Identity, duration: o.LeaseDuration,
		log: o.Logger.With("component", "acme-kubestore")}
}

// Names of the objects. A certificate's Secret is named as the certificate (for an Ingress,
// its spec.tls[].secretName); the others are derived, hashing what is not a valid name.
func accountName(id string) string   { return "nuncio-acme-account-" + objectName(id) }
func challengeName(id string) string { return "nuncio-acme-challenge-" + hash(id) }
func leaseName(name string) string   { return "nuncio-acme-" + objectName(name) }

func objectName(s string) string {
	s = strings.ToLower(s)
	if len(s) <= 200 && len(validation.IsDNS1123Subdomain(s)) == 0 && !strings.Contains(s, "_") {
		return s
	}
	return hash(s)
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

// LoadAccountKey implements acme.Store.
func (s *Store) LoadAccountKey(ctx context.Context, id string) ([]byte, error) {
	sec, err := s.get(ctx, accountName(id))
	if err != nil {
		return nil, err
	}
	return sec.Data["key.pem"], nil
}

// SaveAccountKey implements acme.Store.
func (s *Store) SaveAccountKey(ctx context.Context, id string, keyPEM []byte) error {
	return s.put(ctx, accountName(id), "account", corev1.SecretTypeOpaque, map[string][]byte{"key.pem": keyPEM})
}

// LoadCertificate implements acme.Store.
func (s *Store) LoadCertificate(ctx context.Context, name string) ([]byte, []byte, error) {
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	sec, err := s.get(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	chain, key := sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey]
	if len(chain) == 0 || len(key) == 0 {
		return nil, nil, acme.ErrNotFound // a placeholder without a certificate yet
	}
	return chain, key, nil
}

// SaveCertificate implements acme.Store: one Secret update replaces chain and key together.
func (s *Store) SaveCertificate(ctx context.Context, name string, chainPEM, keyPEM []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	return s.put(ctx, name, "certificate", corev1.SecretTypeTLS,
		map[string][]byte{corev1.TLSCertKey: chainPEM, corev1.TLSPrivateKeyKey: keyPEM})
}

// PutChallenge implements acme.Store.
func (s *Store) PutChallenge(ctx context.Context, id, keyAuth string) error {
	return s.put(ctx, challengeName(id), "challenge", corev1.SecretTypeOpaque, map[string][]byte{"keyAuthorization": []byte(keyAuth)})
}

// GetChallenge implements acme.Store.
func (s *Store) GetChallenge(ctx context.Context, id string) (string, error) {
	sec, err := s.get(ctx, challengeName(id))
	if err != nil {
		return "", err
	}
	return string(sec.Data["keyAuthorization"]), nil
}

// DeleteChallenge implements acme.Store.
func (s *Store) DeleteChallenge(ctx context.Context, id string) error {
	err := s.client.CoreV1().Secrets(s.namespace).Delete(ctx, challengeName(id), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("acme: kubestore: %w", err)
	}
	return nil
}

func checkName(name string) error {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("acme: kubestore: certificate name %q is not a Secret name: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

func (s *Store) get(ctx context.Context, name string) (*corev1.Secret, error) {
	sec, err := s.client.CoreV1().Secrets(s.namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, acme.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("acme: kubestore: %w", err)
	}
	return sec, nil
}

// put creates the Secret or replaces its data, keeping the labels and annotations others put
// on it. A Secret of another type (an Opaque one where a TLS one belongs) is refused rather
// than replaced: the type cannot change.
func (s *Store) put(ctx context.Context, name, kind string, typ corev1.SecretType, data map[string][]byte) error {
	secrets := s.client.CoreV1().Secrets(s.namespace)
	for range 5 {
		sec, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = secrets.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.namespace,
					Labels: map[string]string{ManagedByLabel: ManagedBy, kindLabel: kind}},
				Type: typ,
				Data: data,
			}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue
			}
		} else if err == nil {
			if sec.Type != typ {
				return fmt.Errorf("acme: kubestore: secret %s/%s is of type %s, not %s", s.namespace, name, sec.Type, typ)
			}
			if sec.Labels == nil {
				sec.Labels = map[string]string{}
			}
			sec.Labels[ManagedByLabel], sec.Labels[kindLabel] = ManagedBy, kind
			sec.Data = data
			_, err = secrets.Update(ctx, sec, metav1.UpdateOptions{})
			if apierrors.IsConflict(err) {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("acme: kubestore: secret %s/%s: %w", s.namespace, name, err)
		}
		return nil
	}
	return fmt.Errorf("acme: kubestore: secret %s/%s: kept changing under us", s.namespace, name)
}

// TryLock implements acme.Locker with a Lease: taken when absent, free or expired, with the
// API server's optimistic concurrency deciding between two takers. The holder renews it every
// third of its duration until Release.
func (s *Store) TryLock(ctx context.Context, name string) (acme.Lease, error) {
	leases := s.client.CoordinationV1().Leases(s.namespace)
	ln := leaseName(name)
	now := metav1.NewMicroTime(time.Now())
	secs := int32(s.duration / time.Second)
	spec := coordinationv1.LeaseSpec{HolderIdentity: &s.identity, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now}
	l, err := leases.Get(ctx, ln, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		l, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: ln, Namespace: s.namespace, Labels: map[string]string{ManagedByLabel: ManagedBy}},
			Spec:       spec,
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil, acme.ErrLocked
		}
	case err != nil:
	case held(l, now.Time):
		return nil, acme.ErrLocked
	default:
		if l.Spec.LeaseTransitions != nil {
			spec.LeaseTransitions = new(*l.Spec.LeaseTransitions + 1)
		}
		l.Spec = spec
		l, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return nil, acme.ErrLocked
		}
	}
	if err != nil {
		return nil, fmt.Errorf("acme: kubestore: lease %s/%s: %w", s.namespace, ln, err)
	}
	h := &heldLease{s: s, lease: l, stop: make(chan struct{}), done: make(chan struct{})}
	go h.renew()
	return h, nil
}

// held reports whether someone holds l at now.
func held(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return false
	}
	return now.Before(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second))
}

type heldLease struct {
	s     *Store
	mu    sync.Mutex
	lease *coordinationv1.Lease
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func (h *heldLease) renew() {
	defer close(h.done)
	t := time.NewTicker(h.s.duration / 3)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		h.mu.Lock()
		l := h.lease.DeepCopy()
		now := metav1.NewMicroTime(time.Now())
		l.Spec.RenewTime = &now
		ctx, cancel := context.WithTimeout(context.Background(), h.s.duration/3)
		nl, err := h.s.client.CoordinationV1().Leases(h.s.namespace).Update(ctx, l, metav1.UpdateOptions{})
		cancel()
		if err == nil {
			h.lease = nl
		} else {
			h.s.log.Warn("renewing lease", "lease", l.Name, "error", err)
		}
		h.mu.Unlock()
	}
}

// Release stops the renewal and frees the Lease for the next taker at once.
func (h *heldLease) Release() error {
	var err error
	h.once.Do(func() {
		close(h.stop)
		<-h.done
		l := h.lease.DeepCopy()
		l.Spec.HolderIdentity = new("")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, uerr := h.s.client.CoordinationV1().Leases(h.s.namespace).Update(ctx, l, metav1.UpdateOptions{}); uerr != nil {
			// Taken over after we stopped renewing, or the API server is away: the Lease expires.
			err = fmt.Errorf("acme: kubestore: releasing lease %s: %w", l.Name, uerr)
		}
	})
	return err
}

var (
	_ acme.Store  = (*Store)(nil)
	_ acme.Locker = (*Store)(nil)
)
