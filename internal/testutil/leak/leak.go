// Package leak fails a test whose goroutines outlive it.
//
// Check takes the set of goroutines running when it is called and, at the test's cleanup,
// waits a bounded time for every goroutine started since to end; those still running are
// reported with their stacks. Goroutines are told apart by their IDs, not counted, so one
// that ends cannot hide one that stays. Tests using it must not run in parallel with others
// (t.Parallel): their goroutines would count as leaks.
package leak

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// timeout bounds the wait for goroutines to end: connections closed by cleanups finish
// their reads and writes within it unless something really holds them. Tests of this
// package shorten it.
var timeout = 10 * time.Second

// ignored names functions whose goroutines the process starts for itself, once, whenever a
// test happens to be the first to need them: they are not the test's.
var ignored = []string{
	"os/signal.loop",     // signal.Notify's reader, started on first use
	"runtime.ensureSigM", // signal masking for signal.Notify
	// A test's (or subtest's) own goroutine, and the -timeout alarm.
	"testing.tRunner",
	"testing.(*M).startAlarm",
}

// Check fails t if goroutines started after the call are still running once t and its
// cleanups are done. Call it first in the test, so that its cleanup runs after the others
// (cleanups run last registered, first run).
func Check(t testing.TB) {
	t.Helper()
	before := map[uint64]bool{}
	for _, g := range goroutines() {
		before[g.id] = true
	}
	t.Cleanup(func() {
		var extra []goroutine
		deadline := time.Now().Add(timeout)
		for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
			extra = extra[:0]
			for _, g := range goroutines() {
				if !before[g.id] && !g.system() {
					extra = append(extra, g)
				}
			}
			if len(extra) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(delay)
		}
		if len(extra) == 0 {
			return
		}
		var b strings.Builder
		for _, g := range extra {
			b.WriteString("\n\n")
			b.WriteString(g.stack)
		}
		t.Errorf("%d goroutines still running %v after the test:%s", len(extra), timeout, b.String())
	})
}

type goroutine struct {
	id    uint64
	stack string // as runtime.Stack prints it, header line included
}

// goroutines returns every goroutine but the caller's.
func goroutines() []goroutine {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var gs []goroutine
	for i, s := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 {
			continue // the caller, always printed first
		}
		header, _, _ := bytes.Cut(s, []byte("\n"))
		// "goroutine 42 [chan receive]:"
		f := bytes.Fields(header)
		if len(f) < 2 {
			continue
		}
		id, err := strconv.ParseUint(string(f[1]), 10, 64)
		if err != nil {
			continue
		}
		gs = append(gs, goroutine{id: id, stack: string(s)})
	}
	return gs
}

// system reports whether g belongs to the process or to the testing package rather than to
// the test: whether a function named in ignored is on its stack.
func (g goroutine) system() bool {
	for _, name := range ignored {
		if strings.Contains(g.stack, "\n"+name+"(") || strings.Contains(g.stack, "\ncreated by "+name) {
			return true
		}
	}
	return false
}
