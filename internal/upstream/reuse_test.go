package upstream

import (
	"context"
	"testing"
	"time"
)

// GetReplayable trusts a connection returned moments ago: a peer that closed it since is the
// caller's replay to handle. Once such a connection comes back unusable, connections returned
// before then are checked again, so one upstream restart costs one replay, not one per idle
// connection.
func TestGetReplayableChecksAfterAFailure(t *testing.T) {
	checkGoroutines(t)
	srv := newLineServer(t, nil)
	srv.closeAfterReply.Store(true)
	p := NewPool(srv.addr(), PoolOptions{})
	defer p.Close()

	a, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ping(t, a)
	ping(t, b)
	p.Put(a, true)
	p.Put(b, true)
	waitFor(t, "server close", func() bool { return srv.closed.Load() == 2 })
	time.Sleep(10 * time.Millisecond) // let the FINs reach our sockets

	c, err := p.GetReplayable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c != b {
		t.Fatal("the most recently returned connection was not reused unchecked")
	}
	if tryPing(c) == nil {
		t.Fatal("a connection closed by the server answered")
	}
	p.Put(c, false)

	d, err := p.GetReplayable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d == a {
		t.Fatal("a connection returned before a failed unchecked one was handed out unchecked")
	}
	p.Put(d, false)
}

func TestGetChecksLiveness(t *testing.T) {
	checkGoroutines(t)
	srv := newLineServer(t, nil)
	srv.closeAfterReply.Store(true)
	p := NewPool(srv.addr(), PoolOptions{})
	defer p.Close()
	a, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ping(t, a)
	p.Put(a, true)
	waitFor(t, "server close", func() bool { return srv.closed.Load() == 1 })
	time.Sleep(10 * time.Millisecond)
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c == a {
		t.Fatal("Get handed out a connection closed by the server")
	}
	p.Put(c, false)
}

// SetRequestDeadline keeps a deadline in force when the new one is at most a little earlier,
// re-arms otherwise, and the pool lifts one that expired while the connection was idle.
func TestSetRequestDeadline(t *testing.T) {
	checkGoroutines(t)
	srv := newLineServer(t, nil)
	p := NewPool(srv.addr(), PoolOptions{})
	defer p.Close()
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(10 * time.Second)
	c.SetRequestDeadline(base)
	armed := c.dl
	if armed.Before(base) || armed.Sub(base) > deadlineSlack {
		t.Fatalf("armed %v for %v", armed, base)
	}
	c.SetRequestDeadline(base.Add(armed.Sub(base) / 2))
	if c.dl != armed {
		t.Error("a deadline within the slack was re-armed")
	}
	c.SetRequestDeadline(armed.Add(time.Millisecond))
	if !c.dl.After(armed) {
		t.Error("a later deadline was not armed")
	}
	c.SetRequestDeadline(base.Add(-5 * time.Second))
	if c.dl.Sub(base.Add(-5*time.Second)) > deadlineSlack {
		t.Error("a much earlier deadline was not armed")
	}
	c.SetRequestDeadline(time.Time{})
	if !c.dl.IsZero() {
		t.Error("no deadline was not armed")
	}

	// A deadline that passes while the connection is idle must not fail its next use.
	c.SetRequestDeadline(time.Now().Add(20 * time.Millisecond))
	ping(t, c)
	p.Put(c, true)
	time.Sleep(40 * time.Millisecond)
	c2, err := p.GetReplayable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c2 != c {
		t.Fatal("the idle connection was not reused")
	}
	if err := tryPing(c2); err != nil {
		t.Fatalf("request after an expired idle deadline: %v", err)
	}
	p.Put(c2, true)
}
