package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// process is one long-lived process the runner started: the upstream or a proxy.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// procSet tracks every long-lived process the runner starts so that each is stopped by its PID
// on every way out: normal end, failure or interrupt.
type procSet struct {
	mu   sync.Mutex
	live map[*process]bool
}

func newProcSet() *procSet { return &procSet{live: map[*process]bool{}} }

// start runs argv with env added to the runner's environment, output to log.
func (s *procSet) start(name string, argv, env []string, log io.Writer) (*process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group keeps a terminal's Ctrl-C from reaching it before the
		// runner has read its figures; the runner stops it itself.
		Setpgid: true,
		// Should the runner be killed outright, the kernel still stops what it started.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.live[p] = true
	s.mu.Unlock()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process and to its descendants (nginx's workers), each by PID,
// and SIGKILL to whatever is left after a grace period.
func (s *procSet) stop(p *process) {
	s.mu.Lock()
	delete(s.live, p)
	s.mu.Unlock()
	if p.exited() {
		return
	}
	pids := treePIDs(p.pid())
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	for _, pid := range pids {
		// A descendant's PID could in principle be reused once it exits: only signal one
		// that still has a stat entry.
		if _, err := readStat(pid); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	<-p.done
}

// stopAll stops every process still running.
func (s *procSet) stopAll() {
	s.mu.Lock()
	ps := make([]*process, 0, len(s.live))
	for p := range s.live {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	for _, p := range ps {
		s.stop(p)
	}
}
