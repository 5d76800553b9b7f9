package kubestore

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/nuncio-gw/nuncio/internal/acme"
	"github.com/nuncio-gw/nuncio/internal/acme/pebbletest"
	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	k8stest "github.com/nuncio-gw/nuncio/test/k8s"
)

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m)) }

var nsSeq atomic.Int32

// namespace returns a client and a fresh namespace on the package's API server.
func namespace(t *testing.T) (kubernetes.Interface, string) {
	t.Helper()
	cs, err := k8stest.Shared(t).Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns := "acme-" + string(rune('a'+nsSeq.Add(1)))
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return cs, ns
}

func TestStoreRoundTrip(t *testing.T) {
	cs, ns := namespace(t)
	ctx := context.Background()
	s := New(cs, ns, Options{})

	if _, err := s.LoadAccountKey(ctx, "ca.example.org-0123abcd"); !errors.Is(err, acme.ErrNotFound) {
		t.Fatalf("LoadAccountKey before save: %v, want ErrNotFound", err)
	}
	if err := s.SaveAccountKey(ctx, "ca.example.org-0123abcd", []byte("key")); err != nil {
		t.Fatal(err)
	}
	if b, err := s.LoadAccountKey(ctx, "ca.example.org-0123abcd"); err != nil || string(b) != "key" {
		t.Fatalf("LoadAccountKey = %q, %v", b, err)
	}

	for i, name := range []string{"a.example.org", "a.example.org"} { // create, then update
		c := certs.SelfSigned(t, name)
		if err := s.SaveCertificate(ctx, "site-tls", c.CertPEM, c.KeyPEM); err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
		chain, key, err := s.LoadCertificate(ctx, "site-tls")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := acme.ParseCertificate("site-tls", chain, key); err != nil || string(chain) != string(c.CertPEM) {
			t.Fatalf("save %d: loaded another certificate (%v)", i, err)
		}
	}
	sec, err := cs.CoreV1().Secrets(ns).Get(ctx, "site-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Type != corev1.SecretTypeTLS || sec.Labels[ManagedByLabel] != ManagedBy {
		t.Errorf("secret type %s labels %v, want kubernetes.io/tls managed by %s", sec.Type, sec.Labels, ManagedBy)
	}

	// A Secret of another type under the certificate's name is not overwritten.
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "users"},
		Data: map[string][]byte{"auth": []byte("x")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := certs.SelfSigned(t, "b.example.org")
	if err := s.SaveCertificate(ctx, "users", c.CertPEM, c.KeyPEM); err == nil {
		t.Error("an Opaque Secret was overwritten with a certificate")
	}
	if err := s.SaveCertificate(ctx, "Not_A_Name", c.CertPEM, c.KeyPEM); err == nil {
		t.Error("a certificate name that is no Secret name was accepted")
	}

	id := "http-01/Tok_en-1"
	if err := s.PutChallenge(ctx, id, "Tok_en-1.thumb"); err != nil {
		t.Fatal(err)
	}
	if ka, err := s.GetChallenge(ctx, id); err != nil || ka != "Tok_en-1.thumb" {
		t.Fatalf("GetChallenge = %q, %v", ka, err)
	}
	if err := s.DeleteChallenge(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetChallenge(ctx, id); !errors.Is(err, acme.ErrNotFound) {
		t.Fatalf("GetChallenge after delete: %v", err)
	}
}

func TestLease(t *testing.T) {
	cs, ns := namespace(t)
	ctx := context.Background()
	a := New(cs, ns, Options{Identity: "a", LeaseDuration: 3 * time.Second})
	b := New(cs, ns, Options{Identity: "b", LeaseDuration: 3 * time.Second})

	la, err := a.TryLock(ctx, "cert-site")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.TryLock(ctx, "cert-site"); !errors.Is(err, acme.ErrLocked) {
		t.Fatalf("second holder: %v, want ErrLocked", err)
	}
	if _, err := a.TryLock(ctx, "cert-site"); !errors.Is(err, acme.ErrLocked) {
		t.Fatalf("same holder again: %v, want ErrLocked", err)
	}
	// Held past its duration: the holder renews it.
	time.Sleep(4 * time.Second)
	if _, err := b.TryLock(ctx, "cert-site"); !errors.Is(err, acme.ErrLocked) {
		t.Fatalf("after the lease duration: %v, want ErrLocked (renewed)", err)
	}
	if err := la.Release(); err != nil {
		t.Fatal(err)
	}
	lb, err := b.TryLock(ctx, "cert-site")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	lb.Release()

	// A holder that died: its Lease expired without a release.
	old := metav1.NewMicroTime(time.Now().Add(-time.Minute))
	if _, err := cs.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: leaseName("cert-dead")},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: new("gone"), LeaseDurationSeconds: new(int32(10)),
			AcquireTime: &old, RenewTime: &old},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	l, err := a.TryLock(ctx, "cert-dead")
	if err != nil {
		t.Fatalf("expired lease: %v", err)
	}
	l.Release()
}

// TestManagersShareSecrets runs two Managers, each with its own Store (as two pods), against
// pebble: one order, a kubernetes.io/tls Secret, one account Secret, the challenge Secrets gone.
func TestManagersShareSecrets(t *testing.T) {
	cs, ns := namespace(t) // first: the shared API server's goroutines are not this test's
	leak.Check(t)
	ctx := context.Background()
	responderStore := New(cs, ns, Options{Identity: "responder"})
	resp := acme.NewResponder(responderStore)
	p := pebbletest.Start(t, pebbletest.Options{HTTPHandler: resp, GetCertificate: resp.GetCertificate})

	names := []string{"kube.nuncio.example.org"}
	var mu sync.Mutex
	issued, loaded := 0, 0
	var got [2]*acme.Manager
	for i := range got {
		s := New(cs, ns, Options{Identity: string(rune('a' + i))})
		m, err := acme.New(acme.Options{
			DirectoryURL: p.DirectoryURL, HTTPClient: p.HTTPClient,
			Store: s, Responder: acme.NewResponder(s), // not mounted: pebble reaches resp
			Certificates:  []acme.Request{{Name: "kube-tls", Names: names}},
			CheckInterval: 50 * time.Millisecond, LockPoll: 50 * time.Millisecond,
			OnEvent: func(e acme.Event) {
				mu.Lock()
				defer mu.Unlock()
				switch e.Kind {
				case acme.EventIssued:
					issued++
				case acme.EventLoaded:
					loaded++
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		got[i] = m
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = m.Run(rctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	deadline := time.Now().Add(90 * time.Second)
	for got[0].Certificate("kube-tls") == nil || got[1].Certificate("kube-tls") == nil {
		if time.Now().After(deadline) {
			t.Fatal("no certificate on both Managers after 90s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	if issued != 1 || loaded != 1 {
		t.Errorf("issued %d, loaded %d; want 1 and 1", issued, loaded)
	}
	mu.Unlock()
	c := got[0].Certificate("kube-tls")
	inter := x509.NewCertPool()
	for _, der := range c.Chain[1:] {
		ic, _ := x509.ParseCertificate(der)
		inter.AddCert(ic)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: names[0], Roots: p.Roots(t), Intermediates: inter}); err != nil {
		t.Error(err)
	}

	secrets, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: ManagedByLabel + "=" + ManagedBy})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, s := range secrets.Items {
		kinds[s.Labels[kindLabel]]++
	}
	if kinds["certificate"] != 1 || kinds["account"] != 1 || kinds["challenge"] != 0 {
		t.Errorf("secrets by kind %v, want one certificate, one account, no challenge left", kinds)
	}
}
