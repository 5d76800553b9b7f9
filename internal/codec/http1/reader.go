package http1

import (
	"bytes"
	"io"
	"net"
	"syscall"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// testHookParked, when set by tests, runs as an idle connection parks in the netpoller.
var testHookParked func(rd *reader)

// maxDiscard bounds how much of an unread request body ReadRequest skips to reach the next
// request; past it, closing the connection is cheaper than reading.
const maxDiscard = 256 << 10

// lastChunk is the end of a chunked body without trailers, recognised right after a chunk's
// data so the final data chunk can be reported with end == true.
var lastChunk = []byte("\r\n0\r\n\r\n")

// reader is the read half shared by ServerConn and ClientConn: buffer management, waiting
// while idle, and body decoding.
type reader struct {
	nc    net.Conn
	raw   syscall.RawConn
	rawFn func(uintptr) bool // rd.rawRead, bound once so parking does not allocate
	lim   Limits
	large int
	// readLarge makes the first read of a message use a large buffer: set while this
	// connection's bodies outgrow the small one, so a 16 KiB response arrives in one read
	// rather than three, and cleared by a message that fits.
	readLarge, outgrew bool

	bufp *[]byte
	buf  []byte
	r, w int
	// base is where the body region starts: bytes below it hold the current head, which
	// compaction must not overwrite because the head's Map aliases them.
	base      int
	holdsHead bool
	headp     *[]byte // the buffer holding the current head once reads moved to another

	framing  Framing
	remain   int64
	chunk    chunkedDecoder
	bodyDone bool
	trailers header.Map

	err    error // sticky: the stream is out of sync or gone
	rerr   error // an error that arrived together with data, reported on the next read
	rawErr error
	one    [1]byte
}

func (rd *reader) init(nc net.Conn, lim Limits) {
	rd.nc = nc
	rd.lim = lim.withDefaults()
	rd.large = largeSizeFor(rd.lim)
	rd.raw = rawConnFor(nc)
	if rd.raw != nil {
		rd.rawFn = rd.rawRead
	}
	rd.bodyDone = true
}

func (rd *reader) setBuf(bp *[]byte) {
	rd.bufp, rd.buf = bp, *bp
	rd.r, rd.w = 0, 0
}

// startMessage is called before reading a head: nothing references the previous message's
// bytes any more, so its buffers can go, and an idle connection keeps none.
func (rd *reader) startMessage() {
	if rd.headp != nil {
		putBuf(rd.headp)
		rd.headp = nil
	}
	rd.base, rd.holdsHead = 0, false
	rd.readLarge, rd.outgrew = rd.outgrew, false
	if rd.bufp != nil && rd.r == rd.w {
		putBuf(rd.bufp)
		rd.bufp, rd.buf = nil, nil
		rd.r, rd.w = 0, 0
	}
}

// readHead reads until parse accepts a head at rd.r, and returns its length.
func (rd *reader) readHead(parse func([]byte) (int, error)) (int, error) {
	scanned := 0 // bytes after rd.r known to hold no LF
	sawLF := false
	for {
		if n := rd.w - rd.r; n > scanned {
			// Parse only once a line is complete, or the head has grown past a limit, so a
			// peer dribbling bytes costs one parse per line, not per byte.
			lf := bytes.IndexByte(rd.buf[rd.r+scanned:rd.w], '\n') >= 0
			if lf || (!sawLF && n > rd.lim.MaxRequestLine) || n > rd.lim.MaxHeaderBytes {
				hn, err := parse(rd.buf[rd.r:rd.w])
				if err != ErrNeedMore {
					return hn, err
				}
			}
			sawLF = sawLF || lf
			scanned = n
		}
		if err := rd.fill(); err != nil {
			if err == io.EOF && rd.r != rd.w {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
}

// awaitData waits for the connection to become readable without holding a buffer, and
// returns with at least one byte buffered.
func (rd *reader) awaitData() error {
	if rd.raw != nil {
		rd.rawErr = nil
		if err := rd.raw.Read(rd.rawFn); err != nil {
			return err
		}
		return rd.rawErr
	}
	for {
		n, err := rd.nc.Read(rd.one[:])
		if n == 1 {
			size := smallBufSize
			if rd.readLarge {
				size = rd.large
			}
			rd.setBuf(getBuf(size))
			rd.buf[0] = rd.one[0]
			rd.w = 1
			rd.rerr = err
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// fill reads at least one more byte into buf[w:], compacting toward base or moving to a
// bigger buffer first when fewer than minRead bytes are free.
func (rd *reader) fill() error {
	if rd.rerr != nil {
		return rd.rerr
	}
	if rd.bufp == nil {
		return rd.awaitData()
	}
	if rd.r == rd.w {
		rd.r, rd.w = rd.base, rd.base
	}
	if len(rd.buf)-rd.w < minRead {
		if rd.r > rd.base {
			n := copy(rd.buf[rd.base:], rd.buf[rd.r:rd.w])
			rd.r, rd.w = rd.base, rd.base+n
		}
		if len(rd.buf)-rd.w < minRead {
			if err := rd.grow(); err != nil {
				return err
			}
		}
	}
	for {
		n, err := rd.nc.Read(rd.buf[rd.w:])
		rd.w += n
		if err != nil {
			rd.rerr = err
			if n > 0 {
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
}

// grow moves the unread bytes to a buffer with room for at least minRead more. A buffer that
// holds the current head is set aside, not reused, so the head's strings stay valid.
func (rd *reader) grow() error {
	need := rd.w - rd.r + minRead
	size := smallBufSize
	if need > size {
		size = rd.large
	}
	if need > size {
		return errHeadTooLarge
	}
	if size == rd.large {
		rd.outgrew = true
	}
	rd.swapBuf(size)
	return nil
}

// swapBuf moves the unread bytes to a new buffer of size. A buffer that holds the current
// head is set aside, not reused, so the head's strings stay valid.
func (rd *reader) swapBuf(size int) {
	nbp := getBuf(size)
	n := copy(*nbp, rd.buf[rd.r:rd.w])
	if rd.holdsHead {
		rd.headp, rd.holdsHead = rd.bufp, false
	} else {
		putBuf(rd.bufp)
	}
	rd.setBuf(nbp)
	rd.w, rd.base = n, 0
}

// headDone marks n bytes at rd.r as the head just parsed and prepares for its body.
func (rd *reader) headDone(n int, f Framing) {
	rd.r += n
	rd.base, rd.holdsHead = rd.r, true
	rd.framing = f
	rd.trailers.Reset()
	switch f.Kind {
	case None:
		rd.bodyDone = true
	case Length:
		rd.remain = f.Length
		rd.bodyDone = f.Length == 0
		if int64(n)+f.Length > smallBufSize {
			rd.outgrew = true
		}
	case Chunked:
		rd.chunk.reset(rd.lim, &rd.trailers)
		rd.bodyDone = false
	case UntilClose:
		rd.bodyDone = false
	}
}

func (rd *reader) readBody() ([]byte, bool, error) {
	if rd.err != nil {
		return nil, false, rd.err
	}
	if rd.bodyDone {
		return nil, true, nil
	}
	switch rd.framing.Kind {
	case Length:
		if rd.r == rd.w {
			if rd.bufp != nil && rd.remain > int64(len(rd.buf)-rd.base) && len(rd.buf) < rd.large {
				// The rest will not fit: read it into a large buffer, in fewer reads.
				rd.swapBuf(rd.large)
			}
			if err := rd.fill(); err != nil {
				return nil, false, rd.fail(unexpectedEOF(err))
			}
		}
		n := int(min(int64(rd.w-rd.r), rd.remain))
		b := rd.buf[rd.r : rd.r+n]
		rd.r += n
		rd.remain -= int64(n)
		rd.bodyDone = rd.remain == 0
		return b, rd.bodyDone, nil
	case Chunked:
		for {
			n, data, err := rd.chunk.decode(rd.buf[rd.r:rd.w])
			rd.r += n
			switch {
			case err == ErrNeedMore:
				if err := rd.fill(); err != nil {
					return nil, false, rd.fail(unexpectedEOF(err))
				}
				continue
			case err != nil:
				return nil, false, rd.fail(err)
			case rd.chunk.done():
				rd.bodyDone = true
				return nil, true, nil
			}
			if rd.chunk.state == csDataCRLF && bytes.HasPrefix(rd.buf[rd.r:rd.w], lastChunk) {
				rd.r += len(lastChunk)
				rd.chunk.state = csDone
				rd.bodyDone = true
			}
			return data, rd.bodyDone, nil
		}
	case UntilClose:
		if rd.r == rd.w {
			if err := rd.fill(); err != nil {
				if err == io.EOF {
					rd.bodyDone = true
					return nil, true, nil
				}
				return nil, false, rd.fail(err)
			}
		}
		b := rd.buf[rd.r:rd.w]
		rd.r = rd.w
		return b, false, nil
	}
	return nil, true, nil
}

func (rd *reader) fail(err error) error {
	rd.err = err
	return err
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// discardBody skips what is left of the current body so the next head can be read.
func (rd *reader) discardBody() error {
	if rd.framing.Kind == Length && rd.remain-int64(rd.w-rd.r) > maxDiscard {
		return ErrBodyPending
	}
	for total := 0; !rd.bodyDone; {
		b, _, err := rd.readBody()
		if err != nil {
			return err
		}
		if total += len(b); total > maxDiscard {
			return ErrBodyPending
		}
	}
	return nil
}

// detach hands out the unread bytes (copied: the buffer goes back to the pool) and releases
// everything.
func (rd *reader) detach() []byte {
	var rest []byte
	if rd.w > rd.r {
		rest = append([]byte(nil), rd.buf[rd.r:rd.w]...)
	}
	rd.release()
	return rest
}

func (rd *reader) release() {
	rd.trailers.Reset()
	if rd.headp != nil {
		putBuf(rd.headp)
		rd.headp = nil
	}
	if rd.bufp != nil {
		putBuf(rd.bufp)
		rd.bufp, rd.buf = nil, nil
	}
	rd.r, rd.w, rd.base, rd.holdsHead = 0, 0, 0, false
}
