package listener

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

func plainListener(name string, addr model.SocketAddress, chain string) *model.Listener {
	return &model.Listener{Name: name, Address: addr, FilterChains: []*model.FilterChain{{Name: chain}}}
}

func TestConnectionLimit(t *testing.T) {
	leak.Check(t)
	l := plainListener("limited", loopback(0), "c")
	l.ConnectionLimit = 2
	m := newTestManager(t, Options{})
	if err := m.Apply([]*Compiled{mustCompile(t, l, nil)}); err != nil {
		t.Fatal(err)
	}
	addr := addrOf(t, m, "limited")
	var held []*client
	for range 2 {
		c := dialPlain(t, addr)
		if got, _ := c.greeting(); got != "c" {
			t.Fatalf("connection within the limit refused (%q)", got)
		}
		held = append(held, c)
	}
	over := dialPlain(t, addr)
	over.expectClosed(t)
	s, _ := statusOf(m, "limited", false)
	if s.Rejected != 1 || s.ActiveConnections != 2 {
		t.Errorf("status = %+v, want 1 rejected, 2 active", s)
	}

	held[0].Close()
	wait.For(t, "a slot to free up", func() bool {
		s, _ := statusOf(m, "limited", false)
		return s.ActiveConnections == 1
	})
	if got, _ := dialPlain(t, addr).greeting(); got != "c" {
		t.Fatalf("connection after a slot freed refused (%q)", got)
	}
}

func TestApplySwapKeepsExistingConnections(t *testing.T) {
	leak.Check(t)
	m := newTestManager(t, Options{DrainTime: time.Minute})
	if err := m.Apply([]*Compiled{mustCompile(t, plainListener("web", loopback(0), "v1"), nil)}); err != nil {
		t.Fatal(err)
	}
	addr := addrOf(t, m, "web")
	old := dialPlain(t, addr)
	if got, _ := old.greeting(); got != "v1" {
		t.Fatalf("chain = %q", got)
	}

	// Same name and address: the socket stays, new connections use the new chain.
	if err := m.Apply([]*Compiled{mustCompile(t, plainListener("web", loopback(0), "v2"), nil)}); err != nil {
		t.Fatal(err)
	}
	if got := addrOf(t, m, "web"); got != addr {
		t.Fatalf("address changed on swap: %s -> %s", addr, got)
	}
	if got, _ := dialPlain(t, addr).greeting(); got != "v2" {
		t.Fatalf("new connection chain = %q, want v2", got)
	}
	old.send(t, "who")
	if got, err := old.line(); got != "v1" {
		t.Fatalf("existing connection answered %q (%v), want v1", got, err)
	}
}

func TestApplyAddRemove(t *testing.T) {
	leak.Check(t)
	m := newTestManager(t, Options{DrainTime: time.Minute})
	a := mustCompile(t, plainListener("a", loopback(0), "a"), nil)
	if err := m.Apply([]*Compiled{a}); err != nil {
		t.Fatal(err)
	}
	addrA := addrOf(t, m, "a")
	idle := dialPlain(t, addrA)
	busy := dialPlain(t, addrA)
	for _, c := range []*client{idle, busy} {
		if got, _ := c.greeting(); got != "a" {
			t.Fatalf("chain = %q", got)
		}
	}
	busy.send(t, "busy")
	if got, _ := busy.line(); got != "busy" {
		t.Fatal("busy not acknowledged")
	}

	b := mustCompile(t, plainListener("b", loopback(0), "b"), nil)
	if err := m.Apply([]*Compiled{b}); err != nil {
		t.Fatal(err)
	}
	if got, _ := dialPlain(t, addrOf(t, m, "b")).greeting(); got != "b" {
		t.Fatalf("added listener chain = %q", got)
	}
	// The removed listener no longer accepts, closes its idle connection and lets the busy one
	// finish.
	if c, err := net.DialTimeout("tcp", addrA, time.Second); err == nil {
		c.Close()
		t.Fatal("removed listener still accepts")
	}
	idle.expectClosed(t)
	// The client sees the close before the listener has counted it: wait for the count.
	wait.For(t, "the draining listener to count one connection", func() bool {
		s, ok := statusOf(m, "a", true)
		return ok && s.ActiveConnections == 1
	})
	busy.send(t, "done")
	if got, _ := busy.line(); got != "ok" {
		t.Fatalf("in-flight request answered %q", got)
	}
	busy.expectClosed(t)
	wait.For(t, "drained listener to go", func() bool {
		_, ok := statusOf(m, "a", true)
		return !ok
	})
}

func TestApplyAddressChange(t *testing.T) {
	leak.Check(t)
	m := newTestManager(t, Options{DrainTime: time.Minute})
	if err := m.Apply([]*Compiled{mustCompile(t, plainListener("l", loopback(0), "old"), nil)}); err != nil {
		t.Fatal(err)
	}
	oldAddr := addrOf(t, m, "l")
	held := dialPlain(t, oldAddr)
	if got, _ := held.greeting(); got != "old" {
		t.Fatal(got)
	}
	held.send(t, "busy")
	held.line()

	port := freePort(t)
	if err := m.Apply([]*Compiled{mustCompile(t, plainListener("l", loopback(port), "new"), nil)}); err != nil {
		t.Fatal(err)
	}
	newAddr := addrOf(t, m, "l")
	if newAddr == oldAddr {
		t.Fatal("address unchanged")
	}
	if got, _ := dialPlain(t, newAddr).greeting(); got != "new" {
		t.Fatalf("chain = %q", got)
	}
	held.send(t, "who")
	if got, _ := held.line(); got != "old" {
		t.Fatalf("old connection answered %q", got)
	}
}

func TestApplyBindFailure(t *testing.T) {
	leak.Check(t)
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := uint32(busy.Addr().(*net.TCPAddr).Port)

	m := newTestManager(t, Options{})
	if err := m.Apply([]*Compiled{mustCompile(t, plainListener("stay", loopback(0), "stay"), nil)}); err != nil {
		t.Fatal(err)
	}
	stayAddr := addrOf(t, m, "stay")
	stayConn := dialPlain(t, stayAddr)
	stayConn.greeting()

	err = m.Apply([]*Compiled{
		mustCompile(t, plainListener("stay", loopback(0), "stay"), nil),
		mustCompile(t, plainListener("clash", loopback(busyPort), "clash"), nil),
		mustCompile(t, plainListener("fresh", loopback(0), "fresh"), nil),
	})
	if err == nil {
		t.Fatal("Apply succeeded on an address in use")
	}
	if want := `listener "clash": bind ` + busy.Addr().String(); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if got := addrOf(t, m, "stay"); got != stayAddr {
		t.Errorf("running listener moved: %s -> %s", stayAddr, got)
	}
	if got, _ := dialPlain(t, addrOf(t, m, "fresh")).greeting(); got != "fresh" {
		t.Errorf("listener next to the failed one not running (%q)", got)
	}
	stayConn.send(t, "who")
	if got, _ := stayConn.line(); got != "stay" {
		t.Errorf("existing connection disturbed (%q)", got)
	}

	// A listener moving to an address in use keeps running where it was.
	err = m.Apply([]*Compiled{mustCompile(t, plainListener("stay", loopback(busyPort), "moved"), nil)})
	if err == nil || !strings.Contains(err.Error(), `listener "stay"`) {
		t.Fatalf("Apply error = %v", err)
	}
	if got, _ := dialPlain(t, stayAddr).greeting(); got != "stay" {
		t.Errorf("listener that failed to move answers %q", got)
	}
}

func TestDrain(t *testing.T) {
	leak.Check(t)
	m := newTestManager(t, Options{DrainTime: time.Minute})
	if err := m.Apply([]*Compiled{
		mustCompile(t, plainListener("p", loopback(0), "p"), nil),
		mustCompile(t, &model.Listener{Name: "sniffing", Address: loopback(0), FilterChains: []*model.FilterChain{{Name: "raw", Match: model.FilterChainMatch{TransportProtocol: TransportRaw}}}}, nil),
	}); err != nil {
		t.Fatal(err)
	}
	idle := dialPlain(t, addrOf(t, m, "p"))
	inflight := dialPlain(t, addrOf(t, m, "p"))
	for _, c := range []*client{idle, inflight} {
		if got, _ := c.greeting(); got != "p" {
			t.Fatal(got)
		}
	}
	inflight.send(t, "busy")
	inflight.line()
	// A connection that has sent nothing yet is still in the listener filters.
	silent := dialPlain(t, addrOf(t, m, "sniffing"))
	wait.For(t, "silent connection to be accepted", func() bool {
		s, _ := statusOf(m, "sniffing", false)
		return s.ActiveConnections == 1
	})

	drained := make(chan struct{})
	go func() {
		m.Drain(context.Background())
		close(drained)
	}()
	idle.expectClosed(t)
	silent.expectClosed(t)
	select {
	case <-drained:
		t.Fatal("Drain returned with a request in flight")
	case <-time.After(20 * time.Millisecond):
	}
	inflight.send(t, "done")
	if got, _ := inflight.line(); got != "ok" {
		t.Fatalf("in-flight request answered %q", got)
	}
	inflight.expectClosed(t)
	<-drained
	if err := m.Apply(nil); !errors.Is(err, ErrStopped) {
		t.Errorf("Apply after Drain = %v, want ErrStopped", err)
	}
	if ls := m.Listeners(); len(ls) != 0 {
		t.Errorf("listeners after Drain: %+v", ls)
	}
}

func TestDrainForceCloses(t *testing.T) {
	leak.Check(t)
	m := newTestManager(t, Options{DrainTime: 50 * time.Millisecond})
	stuck := busyPlain(t, m)
	m.Drain(context.Background())
	// Drain returned, so the handler has returned; the client sees the close.
	stuck.expectClosed(t)
}

func TestDrainContextForceCloses(t *testing.T) {
	leak.Check(t)
	m := newTestManager(t, Options{DrainTime: time.Hour})
	stuck := busyPlain(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	m.Drain(ctx)
	stuck.expectClosed(t)
}

func TestRemovedListenerForceClosedAfterDrainTime(t *testing.T) {
	leak.Check(t)
	m := newTestManager(t, Options{DrainTime: 50 * time.Millisecond})
	stuck := busyPlain(t, m)
	if err := m.Apply(nil); err != nil {
		t.Fatal(err)
	}
	stuck.expectClosed(t)
	wait.For(t, "removed listener to finish", func() bool { return len(m.Listeners()) == 0 })
}

func TestCloseClosesEverything(t *testing.T) {
	leak.Check(t)
	m := NewManager(Options{DrainTime: time.Hour})
	c := busyPlain(t, m)
	if err := m.Apply(nil); err != nil { // retiring, with an hour to go
		t.Fatal(err)
	}
	m.Close()
	c.expectClosed(t)
	m.Close()
}

func TestIPv6(t *testing.T) {
	if !hasIPv6(t) {
		t.Skip("no IPv6 loopback")
	}
	leak.Check(t)
	m := newTestManager(t, Options{})
	if err := m.Apply([]*Compiled{mustCompile(t, plainListener("v6", model.SocketAddress{Host: "::1"}, "v6"), nil)}); err != nil {
		t.Fatal(err)
	}
	addr := addrOf(t, m, "v6")
	if !strings.HasPrefix(addr, "[::1]:") {
		t.Fatalf("bound %s", addr)
	}
	if got, fields := dialPlain(t, addr).greeting(); got != "v6" {
		t.Fatalf("chain = %q (%q)", got, fields)
	}
}

// "::" binds IPv6 only (Envoy's ipv4_compat false), so "0.0.0.0" on the same port can bind too.
func TestIPv6WildcardIsV6Only(t *testing.T) {
	if !hasIPv6(t) {
		t.Skip("no IPv6 loopback")
	}
	leak.Check(t)
	m := newTestManager(t, Options{})
	if err := m.Apply([]*Compiled{mustCompile(t, plainListener("v6", model.SocketAddress{Host: "::"}, "v6"), nil)}); err != nil {
		t.Fatal(err)
	}
	port := m.Listeners()[0].Address.Port()
	if err := m.Apply([]*Compiled{
		mustCompile(t, plainListener("v6", model.SocketAddress{Host: "::"}, "v6"), nil),
		mustCompile(t, plainListener("v4", model.SocketAddress{Host: "0.0.0.0", Port: uint32(port)}, "v4"), nil),
	}); err != nil {
		t.Fatalf("IPv4 wildcard on the IPv6 wildcard's port: %v", err)
	}
	if got, _ := dialPlain(t, net.JoinHostPort("127.0.0.1", itoa(port))).greeting(); got != "v4" {
		t.Errorf("IPv4 client served by %q", got)
	}
	if got, _ := dialPlain(t, net.JoinHostPort("::1", itoa(port))).greeting(); got != "v6" {
		t.Errorf("IPv6 client served by %q", got)
	}
}

// Rebinding the port of a stopped listener works while its connections linger (SO_REUSEADDR).
func TestRebindAfterStop(t *testing.T) {
	leak.Check(t)
	m := NewManager(Options{})
	applyPlain(t, m)
	addr := addrOf(t, m, "p")
	c := dialPlain(t, addr)
	c.greeting()
	c.Close()
	m.Close()
	port := m2port(t, addr)
	m2 := newTestManager(t, Options{})
	if err := m2.Apply([]*Compiled{mustCompile(t, plainListener("p", loopback(port), "again"), nil)}); err != nil {
		t.Fatalf("rebind: %v", err)
	}
	if got, _ := dialPlain(t, addr).greeting(); got != "again" {
		t.Fatalf("chain = %q", got)
	}
}

// errListener fails every Accept until closed.
type errListener struct {
	calls  atomic.Int32
	closed chan struct{}
}

func (e *errListener) Accept() (net.Conn, error) {
	e.calls.Add(1)
	select {
	case <-e.closed:
		return nil, net.ErrClosed
	default:
		return nil, errors.New("accept: too many open files")
	}
}
func (e *errListener) Close() error   { close(e.closed); return nil }
func (e *errListener) Addr() net.Addr { return &net.TCPAddr{} }

func TestAcceptBacksOff(t *testing.T) {
	leak.Check(t)
	m := NewManager(Options{})
	el := &errListener{closed: make(chan struct{})}
	l := &listener{m: m, name: "err", ln: el, draining: make(chan struct{}), empty: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.cur.Store(mustCompile(t, plainListener("err", loopback(0), "c"), nil))
	l.wg.Add(1)
	go l.acceptLoop()
	time.Sleep(100 * time.Millisecond)
	l.stop()
	l.wg.Wait()
	// 5+10+20+40 ms of backoff fit in 100 ms: a handful of calls, not thousands.
	if n := el.calls.Load(); n > 8 {
		t.Errorf("Accept called %d times in 100ms", n)
	}
}
