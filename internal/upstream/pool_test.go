package upstream

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

func TestPoolReusesConnection(t *testing.T) {
	checkGoroutines(t)
	srv := newLineServer(t, nil)
	p := NewPool(srv.addr(), PoolOptions{})
	defer p.Close()

	var first *Conn
	for i := range 5 {
		c, err := p.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = c
		} else if c != first {
			t.Fatalf("request %d: got a new connection, want the idle one reused", i)
		}
		if c.Requests != i+1 {
			t.Errorf("Requests = %d, want %d", c.Requests, i+1)
		}
		ping(t, c)
		p.Put(c, true)
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("server accepted %d connections, want 1", n)
	}
	st := p.Stats()
	if st.Connects != 1 || st.Reuses != 4 || st.Idle != 1 || st.Active != 0 || st.Open != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPoolLIFO(t *testing.T) {
	checkGoroutines(t)
	srv := newLineServer(t, nil)
	p := NewPool(srv.addr(), PoolOptions{})
	defer p.Close()

	a, _ := p.Get(context.Background())
	b, _ := p.Get(context.Background())
	p.Put(a, true)
	p.Put(b, true)
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c != b {
		t.Error("want the most recently returned connection first")
	}
	p.Put(c, true)
}

func TestPoolNotReusable(t *testing.T) {
	checkGoroutines(t)
	srv := newLineServer(t, nil)
	p := NewPool(srv.addr(), PoolOptions{})
	defer p.Close()

	c, _ := p.Get(context.Background())
	ping(t, c)
	p.Put(c, false)
	p.Put(c, true) // a second Put is ignored
	c2, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c2 == c {
		t.Error("a connection put back as not reusable was handed out again")
	}
	ping(t, c2)
	c2.Close() // Close is Put(c, false)
	if st := p.Stats(); st.Open != 0 || st.Active != 0 || st.Idle != 0 {
		t.Errorf("stats after close = %+v", st)
	}
}

func TestPoolIdleTimeout(t *testing.T) {
	checkGoroutines(t)
	srv := newLineServer(t, nil)
	p := NewPool(srv.addr(), PoolOptions{IdleTimeout: 50 * time.Millisecond})
	defer p.Close()

	a, _ := p.Get(context.Background())
	b, _ := p.Get(context.Background())
	ping(t, a)
	ping(t, b)
	p.Put(a, true)
	time.Sleep(30 * time.Millisecond)
	p.Put(b, true) // expires ~30ms after a: the timer must re-arm for it
	waitFor(t, "a expired", func() bool { return a.closed.Load() })
	if b.closed.Load() || p.Stats().Idle != 1 {
		t.Fatal("want the older connection expired first")
	}
	waitFor(t, "b expired", func() bool { return b.closed.Load() })
	waitFor(t, "no open connections", func() bool { return p.Stats().Open == 0 })
	// The pool still works after its idle list drained.
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ping(t, c)
	p.Put(c, true)
}

func TestPoolSkipsServerClosedConnection(t *testing.T) {
	checkGoroutines(t)
	srv := newLineServer(t, nil)
	srv.closeAfterReply.Store(true)
	p := NewPool(srv.addr(), PoolOptions{})
	defer p.Close()

	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ping(t, c)
	p.Put(c, true)
	waitFor(t, "server close", func() bool { return srv.closed.Load() == 1 })
	time.Sleep(10 * time.Millisecond) // let the FIN reach our socket
	c2, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c2 == c {
		t.Fatal("a connection closed by the server was handed out")
	}
	if err := tryPing(c2); err != nil {
		t.Fatalf("request on the fresh connection: %v", err)
	}
	p.Put(c2, false)
	if n := srv.accepted.Load(); n != 2 {
		t.Errorf("accepted = %d, want 2", n)
	}
}

func TestPoolMaxRequestsPerConnection(t *testing.T) {
	checkGoroutines(t)
	srv := newLineServer(t, nil)
	p := NewPool(srv.addr(), PoolOptions{MaxRequestsPerConnection: 2})
	defer p.Close()
	for range 4 {
		c, err := p.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ping(t, c)
		p.Put(c, true)
	}
	if n := srv.accepted.Load(); n != 2 {
		t.Errorf("accepted = %d, want 2 (two requests per connection)", n)
	}
}

func TestPoolOverflow(t *testing.T) {
	checkGoroutines(t)
	srv := newLineServer(t, nil)
	tests := []struct {
		name  string
		opts  PoolOptions
		pools int
	}{
		{name: "per pool", opts: PoolOptions{MaxConnections: 2}, pools: 1},
		{name: "shared limit", opts: PoolOptions{Limit: NewConnLimit(2)}, pools: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var pools []*Pool
			for range tc.pools {
				p := NewPool(srv.addr(), tc.opts)
				defer p.Close()
				pools = append(pools, p)
			}
			get := func(i int) (*Conn, error) { return pools[i%len(pools)].Get(context.Background()) }
			a, err := get(0)
			if err != nil {
				t.Fatal(err)
			}
			b, err := get(1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := get(2); !errors.Is(err, ErrOverflow) {
				t.Fatalf("third Get: err = %v, want ErrOverflow", err)
			}
			if pools[0].Stats().Overflows != 1 {
				t.Errorf("overflows = %d, want 1", pools[0].Stats().Overflows)
			}
			// An idle connection does not free a slot, a closed one does.
			pools[0].Put(a, true)
			if tc.pools == 2 {
				if _, err := pools[1].Get(context.Background()); !errors.Is(err, ErrOverflow) {
					t.Fatalf("Get with the budget held idle elsewhere: err = %v", err)
				}
			}
			b.Close()
			c, err := get(1)
			if err != nil {
				t.Fatalf("Get after a close: %v", err)
			}
			c.Close()
		})
	}
}

func TestPoolConnectRefused(t *testing.T) {
	checkGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	p := NewPool(addr, PoolOptions{ConnectTimeout: time.Second})
	defer p.Close()
	_, err = p.Get(context.Background())
	if !errors.Is(err, ErrConnectFailed) {
		t.Fatalf("err = %v, want ErrConnectFailed", err)
	}
	if st := p.Stats(); st.ConnectFailures != 1 || st.Open != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPoolConnectContextCanceled(t *testing.T) {
	checkGoroutines(t)
	srv := newLineServer(t, nil)
	p := NewPool(srv.addr(), PoolOptions{})
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Get(ctx); !errors.Is(err, ErrConnectFailed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrConnectFailed wrapping context.Canceled", err)
	}
}

func TestPoolClose(t *testing.T) {
	checkGoroutines(t)
	srv := newLineServer(t, nil)
	p := NewPool(srv.addr(), PoolOptions{IdleTimeout: time.Minute})

	idle, _ := p.Get(context.Background())
	inUse, _ := p.Get(context.Background())
	ping(t, idle)
	ping(t, inUse)
	p.Put(idle, true)
	p.Close()
	if !idle.closed.Load() {
		t.Error("idle connection not closed by Close")
	}
	if inUse.closed.Load() {
		t.Error("in-use connection closed under its request")
	}
	ping(t, inUse)
	p.Put(inUse, true)
	if !inUse.closed.Load() {
		t.Error("connection returned to a closed pool was kept")
	}
	if _, err := p.Get(context.Background()); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if st := p.Stats(); st.Open != 0 {
		t.Errorf("open = %d after drain", st.Open)
	}
	p.Close()
}

func TestPoolConcurrent(t *testing.T) {
	checkGoroutines(t)
	srv := newLineServer(t, nil)
	p := NewPool(srv.addr(), PoolOptions{MaxConnections: 8, IdleTimeout: time.Second})
	defer p.Close()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 50 {
				c, err := p.Get(context.Background())
				if errors.Is(err, ErrOverflow) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if err := tryPing(c); err != nil {
					t.Error(err)
					p.Put(c, false)
					return
				}
				p.Put(c, true)
			}
		})
	}
	wg.Wait()
	st := p.Stats()
	if st.Active != 0 || st.Open > 8 || int64(st.Idle) != st.Open {
		t.Errorf("stats = %+v", st)
	}
}

func TestPoolGetPutAllocs(t *testing.T) {
	srv := newLineServer(t, nil)
	p := NewPool(srv.addr(), PoolOptions{IdleTimeout: time.Minute})
	defer p.Close()
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.Put(c, true)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		c, err := p.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p.Put(c, true)
	})
	if allocs != 0 {
		t.Errorf("Get/Put on the reuse path: %v allocs, want 0", allocs)
	}
}

func TestSetAddr(t *testing.T) {
	checkGoroutines(t)
	a := newLineServer(t, nil)
	b := newLineServer(t, nil)
	p := NewPool(a.addr(), PoolOptions{})
	defer p.Close()
	c1, _ := p.Get(context.Background())
	ping(t, c1)
	p.SetAddr(b.addr())
	c2, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ping(t, c2)
	p.Put(c1, true)
	p.Put(c2, true)
	if a.accepted.Load() != 1 || b.accepted.Load() != 1 {
		t.Errorf("accepted a=%d b=%d, want 1 each", a.accepted.Load(), b.accepted.Load())
	}
	// The connection to the old address stays usable.
	c, _ := p.Get(context.Background())
	ping(t, c)
	p.Put(c, true)
}

func BenchmarkPoolGetPut(b *testing.B) {
	srv := newLineServer(b, nil)
	p := NewPool(srv.addr(), PoolOptions{IdleTimeout: time.Minute})
	defer p.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, err := p.Get(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			p.Put(c, true)
		}
	})
}
