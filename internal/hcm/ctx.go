package hcm

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// streamCtx is a stream's context (httpfilter.Stream.Ctx): cancelled when the stream ends,
// is reset or loses its client, and when its parent (the connection's context, or for
// HTTP/2 the stream's request context) is. It lives in the pooled stream, so a stream that
// only polls Err, as the HTTP/1.1 path does, costs no allocation and no registration with
// the parent: the channel, and the link to the parent that closes it, are made by the first
// Done, as a context.WithCancel of the parent. Contexts derived from it then attach to that
// one as they would to any cancelCtx, with no goroutine.
//
// A stream whose context was asked for Done gets a fresh streamCtx for its next use, so a
// goroutine still waiting on it after the stream ended sees it cancelled for good.
type streamCtx struct {
	parent   context.Context
	canceled atomic.Bool

	mu      sync.Mutex
	real    context.Context // made by Done; nil until then
	cancelR context.CancelFunc

	// peer watches the downstream connection for the client going away, while nothing else
	// reads it (an HTTP/1.1 stream whose request has been read whole). It is started only
	// once someone waits on Done: a stream nobody blocks on needs no watching.
	peer    peerWatcher
	watched bool
}

// peerWatcher watches a connection for its client leaving and cancels c when it does.
type peerWatcher interface{ watch(c *streamCtx) }

// watchPeer sets (or, with nil, clears) the connection watcher, starting it now if someone
// already waits on Done.
func (c *streamCtx) watchPeer(p peerWatcher) {
	c.mu.Lock()
	c.peer = p
	start := p != nil && c.real != nil && !c.watched
	if start {
		c.watched = true
	}
	c.mu.Unlock()
	if start {
		p.watch(c)
	}
}

func (c *streamCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

func (c *streamCtx) Done() <-chan struct{} {
	c.mu.Lock()
	var start peerWatcher
	if c.real == nil {
		c.real, c.cancelR = context.WithCancel(c.parent)
		if c.canceled.Load() {
			c.cancelR()
		}
		if c.peer != nil && !c.watched {
			c.watched, start = true, c.peer
		}
	}
	done := c.real.Done()
	c.mu.Unlock()
	if start != nil {
		start.watch(c)
	}
	return done
}

func (c *streamCtx) Err() error {
	if c.canceled.Load() {
		return context.Canceled
	}
	return c.parent.Err()
}

func (c *streamCtx) Value(key any) any {
	c.mu.Lock()
	r := c.real
	c.mu.Unlock()
	if r != nil {
		// context.WithCancel finds its parent's cancelCtx through Value: answering with the
		// one behind Done lets derived contexts attach to it directly.
		return r.Value(key)
	}
	return c.parent.Value(key)
}

func (c *streamCtx) cancel() {
	if c.canceled.Swap(true) {
		return
	}
	c.mu.Lock()
	cancel := c.cancelR
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// reusable reports whether no one can be waiting on c, so it may serve another stream.
func (c *streamCtx) reusable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.real == nil
}

func (c *streamCtx) String() string { return "hcm.streamCtx" }

var _ context.Context = (*streamCtx)(nil)
