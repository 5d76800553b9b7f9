package upstream

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// backlogFullListener returns the address of a socket listening with a backlog of zero whose
// accept queue has been filled, so further connection attempts get no answer and can only
// time out.
func backlogFullListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr // the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("kernel kept accepting connections into a zero backlog")
	return ""
}

func TestPoolConnectTimeout(t *testing.T) {
	addr := backlogFullListener(t)
	checkGoroutines(t)
	p := NewPool(addr, PoolOptions{ConnectTimeout: 200 * time.Millisecond})
	defer p.Close()
	start := time.Now()
	_, err := p.Get(context.Background())
	elapsed := time.Since(start)
	if !errors.Is(err, ErrConnectFailed) {
		t.Fatalf("err = %v, want ErrConnectFailed", err)
	}
	// The connect timed out, rather than failing some other way; and not before its time.
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("err = %v, want a connect timeout", err)
	}
	if elapsed < 150*time.Millisecond {
		t.Errorf("gave up after %v, before the 200ms connect timeout", elapsed)
	}
	if st := p.Stats(); st.ConnectFailures != 1 || st.Open != 0 {
		t.Errorf("stats = %+v", st)
	}
}
