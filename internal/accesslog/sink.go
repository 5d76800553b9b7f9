package accesslog

import (
	"errors"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Buffering. A request appends its line to the output's current buffer under a short lock;
// a full buffer goes to a bounded queue that one writer goroutine drains. When the queue is
// full (the disk is slow, full or gone) the buffer's lines are dropped and counted: requests
// never wait for the disk. The writer also flushes a partly filled buffer every flushInterval,
// Envoy's default file_flush_interval_msec.
const (
	bufferSize    = 64 << 10
	queueLength   = 16 // buffers in flight per output: at most 1 MiB waiting
	flushInterval = time.Second
)

// batch is a buffer of whole lines.
type batch struct {
	b     []byte
	lines int
}

var batchPool = sync.Pool{New: func() any { return &batch{b: make([]byte, 0, bufferSize)} }}

// Stats are an output's counters, under Envoy's access_log_file.* names where Envoy has one.
type Stats struct {
	WriteBuffered  stats.Counter // lines accepted
	WriteCompleted stats.Counter // write calls that succeeded
	WriteFailed    stats.Counter // write calls that failed; their lines are lost
	FlushedByTimer stats.Counter
	ReopenFailed   stats.Counter
	Dropped        stats.Counter // lines dropped because the writer could not keep up
}

// output is one destination (a file path, or stdout/stderr), shared by every logger that
// writes to it across configuration updates, as Envoy's AccessLogManager shares files.
type output struct {
	path string
	std  bool // stdout or stderr: never reopened

	mu  sync.Mutex
	cur *batch

	queue  chan *batch
	flush  chan chan struct{}
	reopen chan struct{}

	f     *os.File // owned by the writer goroutine after start
	Stats Stats
}

var outputs = struct {
	sync.Mutex
	m map[string]*output
}{m: map[string]*output{}}

// openOutput returns the shared output for path, opening the file (append, create) the first
// time. "/dev/stdout" and "/dev/stderr" are the process's streams.
func openOutput(path string) (*output, error) {
	outputs.Lock()
	defer outputs.Unlock()
	if o, ok := outputs.m[path]; ok {
		return o, nil
	}
	o := &output{
		path:   path,
		cur:    batchPool.Get().(*batch),
		queue:  make(chan *batch, queueLength),
		flush:  make(chan chan struct{}),
		reopen: make(chan struct{}, 1),
	}
	switch path {
	case "/dev/stdout":
		o.f, o.std = os.Stdout, true
	case "/dev/stderr":
		o.f, o.std = os.Stderr, true
	default:
		f, err := openFile(path)
		if err != nil {
			return nil, err
		}
		o.f = f
		watchReopenSignal()
	}
	outputs.m[path] = o
	go o.run()
	return o, nil
}

func openFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

// write queues one formatted line. It never blocks on I/O.
func (o *output) write(line []byte) {
	o.mu.Lock()
	b := o.cur
	if len(b.b)+len(line) > bufferSize && b.lines > 0 {
		select {
		case o.queue <- b:
			b = batchPool.Get().(*batch)
		default:
			o.Stats.Dropped.Add(uint64(b.lines))
			b.b, b.lines = b.b[:0], 0
		}
		o.cur = b
	}
	b.b = append(b.b, line...)
	b.lines++
	o.mu.Unlock()
	o.Stats.WriteBuffered.Inc()
}

// take swaps out the current buffer if it holds anything.
func (o *output) take() *batch {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur.lines == 0 {
		return nil
	}
	b := o.cur
	o.cur = batchPool.Get().(*batch)
	return b
}

func (o *output) run() {
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case b := <-o.queue:
			o.writeBatch(b)
		case <-t.C:
			if b := o.take(); b != nil {
				o.Stats.FlushedByTimer.Inc()
				o.writeBatch(b)
			}
		case <-o.reopen:
			o.drain()
			o.doReopen()
		case done := <-o.flush:
			o.drain()
			close(done)
		}
	}
}

// drain writes everything queued and buffered so far.
func (o *output) drain() {
	for {
		select {
		case b := <-o.queue:
			o.writeBatch(b)
			continue
		default:
		}
		break
	}
	if b := o.take(); b != nil {
		o.writeBatch(b)
	}
}

func (o *output) writeBatch(b *batch) {
	if o.f != nil {
		if _, err := o.f.Write(b.b); err != nil {
			o.Stats.WriteFailed.Inc()
		} else {
			o.Stats.WriteCompleted.Inc()
		}
	} else {
		o.Stats.WriteFailed.Inc()
	}
	b.b, b.lines = b.b[:0], 0
	if cap(b.b) <= 4*bufferSize { // a single huge line should not pin its buffer forever
		batchPool.Put(b)
	}
}

func (o *output) doReopen() {
	if o.std {
		return
	}
	f, err := openFile(o.path)
	if err != nil {
		// Keep writing to the old file rather than losing lines.
		o.Stats.ReopenFailed.Inc()
		return
	}
	if o.f != nil {
		o.f.Close()
	}
	o.f = f
}

// Flush writes every line logged so far to its file and waits until written.
func Flush() {
	for _, o := range allOutputs() {
		done := make(chan struct{})
		o.flush <- done
		<-done
	}
}

// Reopen makes every file output close and reopen its file (after the current buffers are
// written), for log rotation: Envoy's admin POST /reopen_logs, and SIGUSR1.
func Reopen() {
	for _, o := range allOutputs() {
		select {
		case o.reopen <- struct{}{}:
		default: // a reopen is already pending
		}
	}
}

// OutputStats is one output's counters.
type OutputStats struct {
	Path  string
	Stats *Stats
}

// AllStats returns the counters of every output opened so far, by path.
func AllStats() []OutputStats {
	var out []OutputStats
	for _, o := range allOutputs() {
		out = append(out, OutputStats{Path: o.path, Stats: &o.Stats})
	}
	return out
}

func allOutputs() []*output {
	outputs.Lock()
	defer outputs.Unlock()
	out := make([]*output, 0, len(outputs.m))
	for _, o := range outputs.m {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

var errNoPath = errors.New("path required")
