// Command idleconns opens many HTTP/1.1 keep-alive connections to a proxy, sends one request
// on each, reads the response, and then holds the connections idle so that the proxy's memory
// per idle connection can be read from /proc. It prints "ready OPEN FAILED" once every
// connection is idle and closes them all when its standard input closes or it is signalled.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "proxy address")
	n := flag.Int("n", 10000, "connections to open")
	path := flag.String("path", "/100", "request path")
	workers := flag.Int("workers", 64, "connections opened concurrently; more overflows the proxies' listen backlogs")
	flag.Parse()

	raiseNoFile(uint64(*n) + 256)

	conns := make([]net.Conn, *n)
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: bench\r\n\r\n")
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				c, err := open(*addr, req)
				if err != nil {
					if failed.Add(1) == 1 {
						log.Printf("idleconns: %v", err)
					}
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	fmt.Printf("ready %d %d\n", int64(*n)-failed.Load(), failed.Load())

	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-done:
	case <-sig:
	}
	for _, c := range conns {
		if c == nil {
			continue
		}
		// A reset instead of a FIN leaves no TIME_WAIT behind, so back-to-back runs of
		// 10,000 connections do not run out of loopback ports.
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
}

// open dials addr, sends req and reads one full response, leaving the connection idle.
func open(addr string, req []byte) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4096), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// raiseNoFile lifts the soft limit on open files to at least want (up to the hard limit).
func raiseNoFile(want uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur >= want {
		return
	}
	lim.Cur = min(want, lim.Max)
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}
