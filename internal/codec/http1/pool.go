package http1

import "sync"

// Buffer sizes. Most heads and small bodies fit the small buffer; a head that does not moves to
// a large one, sized so that the largest head the default limits allow still leaves room for
// body reads behind it.
const (
	smallBufSize = 8 << 10
	largeBufSize = DefaultMaxHeaderBytes + 16<<10
	// minRead is the least free space worth a read syscall; below it the buffer is compacted
	// or swapped.
	minRead = 1 << 10
)

var (
	smallPool = sync.Pool{New: func() any { b := make([]byte, smallBufSize); return &b }}
	largePool = sync.Pool{New: func() any { b := make([]byte, largeBufSize); return &b }}
)

func getBuf(size int) *[]byte {
	switch size {
	case smallBufSize:
		return smallPool.Get().(*[]byte)
	case largeBufSize:
		return largePool.Get().(*[]byte)
	}
	// Limits beyond the defaults get unpooled buffers: they are configured rarely, and pooling
	// odd sizes would let one listener's setting bloat everyone's buffers.
	b := make([]byte, size)
	return &b
}

func putBuf(bp *[]byte) {
	switch len(*bp) {
	case smallBufSize:
		smallPool.Put(bp)
	case largeBufSize:
		largePool.Put(bp)
	}
}

// largeSizeFor returns the large buffer size for lim: big enough for a maximal head plus room
// to read behind it.
func largeSizeFor(lim Limits) int {
	if need := lim.MaxHeaderBytes + 16<<10; need > largeBufSize {
		return need
	}
	return largeBufSize
}
