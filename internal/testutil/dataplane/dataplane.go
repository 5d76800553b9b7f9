// Package dataplane runs the whole data plane (internal/server) in a test, from an Envoy
// bootstrap given as YAML, with real listeners on loopback: the way filter tests send requests
// through the listener, the connection manager, their filter and the router to a real upstream.
package dataplane

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/server"
	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// Proxy is a running data plane.
type Proxy struct {
	srv *server.Server
}

// Start serves yaml (an Envoy bootstrap whose listeners bind 127.0.0.1, port 0) until the
// test ends, and waits until every listener it names is bound. The admin API listens on a
// free loopback port.
func Start(t testing.TB, yaml string) *Proxy {
	t.Helper()
	path := filepath.Join(t.TempDir(), "envoy.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Proxy{}
	p.srv = server.New(server.Options{
		ConfigPath: path, AdminAddress: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler), DrainTime: time.Second,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	wait.For(t, "the data plane to serve", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("data plane: %v", err)
		default:
		}
		ls := p.srv.ListenerStatus()
		if len(ls) == 0 {
			return false
		}
		for _, l := range ls {
			if l.Address.Port() == 0 {
				return false
			}
		}
		return true
	})
	return p
}

// Addr returns the bound address (host:port) of the named listener, failing the test when
// there is none.
func (p *Proxy) Addr(t testing.TB, listener string) string {
	t.Helper()
	for _, l := range p.srv.ListenerStatus() {
		if l.Name == listener && !l.Draining {
			return l.Address.String()
		}
	}
	t.Fatalf("no listener %q", listener)
	return ""
}

// Counter returns the value of the named counter (0 when it does not exist). Stats live in the
// process-wide store, so tests that read them give their connection managers a stat_prefix of
// their own.
func (p *Proxy) Counter(name string) uint64 {
	for _, s := range stats.Default.All() {
		if s.Name == name {
			return uint64(s.Value)
		}
	}
	return 0
}
