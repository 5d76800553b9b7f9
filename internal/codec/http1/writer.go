package http1

import (
	"net"
	"strconv"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// directWrite is the body chunk size from which copying into the write buffer costs more than
// an extra iovec.
const directWrite = 4 << 10

// writer is the write half shared by ServerConn and ClientConn. It buffers a head and small
// body chunks so a typical message leaves in one write, and holds its buffer only between the
// first write and Flush.
type writer struct {
	nc   net.Conn
	bufp *[]byte
	buf  []byte // pending output; aliases *bufp

	kind    FramingKind
	remain  int64
	discard bool // body writes are dropped: the response to HEAD, or a 304
	inBody  bool
	err     error

	vec  [2][]byte
	bufs net.Buffers
}

func (wr *writer) ensure() {
	if wr.bufp == nil {
		wr.bufp = getBuf(smallBufSize)
		wr.buf = (*wr.bufp)[:0]
	}
}

func (wr *writer) flushBuf() {
	if len(wr.buf) == 0 || wr.err != nil {
		wr.buf = wr.buf[:0]
		return
	}
	_, wr.err = wr.nc.Write(wr.buf)
	wr.buf = wr.buf[:0]
}

// flush sends everything pending and returns the buffer to the pool.
func (wr *writer) flush() error {
	if wr.bufp != nil {
		wr.flushBuf()
		putBuf(wr.bufp)
		wr.bufp, wr.buf = nil, nil
	}
	return wr.err
}

func (wr *writer) writeString(s string) {
	if len(s) > cap(wr.buf)-len(wr.buf) {
		wr.flushBuf()
		if len(s) > cap(wr.buf) {
			wr.writev(strBytes(s))
			return
		}
	}
	wr.buf = append(wr.buf, s...)
}

// room makes n contiguous bytes available in buf, n being small.
func (wr *writer) room(n int) {
	if n > cap(wr.buf)-len(wr.buf) {
		wr.flushBuf()
	}
}

// writev sends the pending buffer and b together: one syscall, no copy of b.
func (wr *writer) writev(b []byte) {
	if wr.err != nil {
		wr.buf = wr.buf[:0]
		return
	}
	wr.vec[0], wr.vec[1] = wr.buf, b
	wr.bufs = wr.vec[:]
	_, wr.err = wr.bufs.WriteTo(wr.nc)
	wr.vec = [2][]byte{}
	wr.buf = wr.buf[:0]
}

// field writes one field line, refusing anything a recipient could parse differently from
// what the Map says (response splitting via CR/LF in a value a filter set, for one).
func (wr *writer) field(name, value string) error {
	if len(name) == 0 {
		return ErrInvalidField
	}
	for i := 0; i < len(name); i++ {
		if !isToken[name[i]] {
			return ErrInvalidField
		}
	}
	for i := 0; i < len(value); i++ {
		if !isFieldValue[value[i]] {
			return ErrInvalidField
		}
	}
	if n := len(name) + len(value) + 4; n <= cap(wr.buf)-len(wr.buf) {
		wr.buf = append(wr.buf, name...)
		wr.buf = append(wr.buf, ": "...)
		wr.buf = append(wr.buf, value...)
		wr.buf = append(wr.buf, "\r\n"...)
		return nil
	}
	wr.writeString(name)
	wr.writeString(": ")
	wr.writeString(value)
	wr.writeString("\r\n")
	return nil
}

// fields writes h's regular fields, leaving out those the codec writes itself.
func (wr *writer) fields(h *header.Map, skipFraming, skipConnection, skipHost bool) error {
	for _, f := range h.Fields() {
		switch f.Name {
		case "content-length", "transfer-encoding":
			if skipFraming {
				continue
			}
		case "connection", "keep-alive":
			if skipConnection {
				continue
			}
		case "host":
			if skipHost {
				continue
			}
		}
		if err := wr.field(f.Name, f.Value); err != nil {
			return err
		}
	}
	return nil
}

// framing writes the fields for f and arms the body writer.
func (wr *writer) framing(f Framing) {
	switch f.Kind {
	case Length:
		wr.room(40)
		wr.buf = append(wr.buf, "content-length: "...)
		wr.buf = strconv.AppendInt(wr.buf, f.Length, 10)
		wr.buf = append(wr.buf, "\r\n"...)
	case Chunked:
		wr.writeString("transfer-encoding: chunked\r\n")
	}
	wr.kind, wr.remain = f.Kind, f.Length
	// A message framed as None has no body to end: were it marked in a body, a client
	// connection that sent a bodiless request would never count as reusable.
	wr.inBody = f.Kind != None
}

func (wr *writer) body(b []byte) error {
	if wr.err != nil {
		return wr.err
	}
	if len(b) == 0 || wr.discard {
		return nil
	}
	wr.ensure()
	switch wr.kind {
	case None:
		return ErrBodyNotAllowed
	case Length:
		if int64(len(b)) > wr.remain {
			wr.err = ErrBodyLength
			return wr.err
		}
		wr.remain -= int64(len(b))
	case Chunked:
		wr.room(20)
		wr.buf = strconv.AppendUint(wr.buf, uint64(len(b)), 16)
		wr.buf = append(wr.buf, "\r\n"...)
	}
	if len(b) <= cap(wr.buf)-len(wr.buf) && len(b) < directWrite {
		wr.buf = append(wr.buf, b...)
	} else {
		wr.writev(b)
	}
	if wr.kind == Chunked {
		wr.room(2)
		wr.buf = append(wr.buf, "\r\n"...)
	}
	return wr.err
}

func (wr *writer) end(trailers *header.Map) error {
	if wr.err != nil {
		return wr.err
	}
	if !wr.inBody {
		return nil
	}
	wr.inBody = false
	switch {
	case wr.discard:
	case wr.kind == Chunked:
		wr.ensure()
		wr.writeString("0\r\n")
		if trailers != nil {
			for _, f := range trailers.Fields() {
				if forbiddenTrailer(strBytes(f.Name)) {
					continue // what we would refuse to receive we do not send
				}
				if err := wr.field(f.Name, f.Value); err != nil {
					wr.err = err
					return err
				}
			}
		}
		wr.writeString("\r\n")
	case wr.kind == Length && wr.remain != 0:
		// The peer would wait for bytes that never come, or read the next message as body.
		wr.err = ErrBodyLength
	}
	return wr.err
}

func (wr *writer) release() {
	if wr.bufp != nil {
		putBuf(wr.bufp)
		wr.bufp, wr.buf = nil, nil
	}
}
