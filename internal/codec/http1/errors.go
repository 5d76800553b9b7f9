package http1

import (
	"errors"
	"strconv"
)

// Error is a protocol violation found while reading a message. Status is what a server answers
// (400, 413, 414, 431, 501, 505) or, for a bad response from upstream, 502. After an Error the
// connection cannot be reused: the byte stream is no longer known to be in sync.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string { return "http1: " + strconv.Itoa(e.Status) + " " + e.Reason }

// ErrNeedMore is returned by the pure parsers when buf ends before the head does.
var ErrNeedMore = errors.New("http1: incomplete message head")

var (
	// ErrBodyPending is returned by ReadRequest when the previous request's body was left
	// unread and was too large to discard; the connection must be closed.
	ErrBodyPending = errors.New("http1: previous request body not consumed")
	// ErrHijacked is returned by every method after Hijack.
	ErrHijacked = errors.New("http1: connection hijacked")
	// ErrReleased is returned by every method after Release.
	ErrReleased = errors.New("http1: connection released")
	// ErrBodyLength is returned by a write that would send more, or WriteEnd when fewer, bytes
	// than the Length framing announced.
	ErrBodyLength = errors.New("http1: body does not match announced content-length")
	// ErrBodyNotAllowed is returned by WriteBody for a message framed as having no body.
	ErrBodyNotAllowed = errors.New("http1: message has no body")
	// ErrInvalidField is returned when a Map holds a name or value that cannot be written to
	// the wire without changing the message's meaning (CR, LF, NUL, a non-token name).
	ErrInvalidField = errors.New("http1: invalid header field for HTTP/1.1 output")
	// ErrInvalidStatus is returned by WriteResponseHead for a status outside 100-999.
	ErrInvalidStatus = errors.New("http1: invalid response status")
	// ErrClosing is returned by ReadRequest after a response was written without keep-alive.
	ErrClosing = errors.New("http1: connection closing")
)

// Errors are preallocated: a flood of bad requests must not also be a flood of garbage.
var (
	errBareLF           = &Error{400, "bare LF"}
	errBareCR           = &Error{400, "bare CR"}
	errObsFold          = &Error{400, "obsolete line folding"}
	errFieldName        = &Error{400, "invalid field name"}
	errFieldValue       = &Error{400, "invalid field value"}
	errRequestLine      = &Error{400, "malformed request line"}
	errMethod           = &Error{400, "invalid method"}
	errTarget           = &Error{400, "invalid request-target"}
	errVersion          = &Error{400, "malformed HTTP version"}
	errVersionNotSupp   = &Error{505, "HTTP version not supported"}
	errURITooLong       = &Error{414, "request-target too long"}
	errHeadTooLarge     = &Error{431, "header section too large"}
	errTooManyFields    = &Error{431, "too many header fields"}
	errNoHost           = &Error{400, "missing Host"}
	errMultiHost        = &Error{400, "multiple Host fields"}
	errBadHost          = &Error{400, "invalid Host"}
	errContentLength    = &Error{400, "invalid Content-Length"}
	errCLAndTE          = &Error{400, "both Content-Length and Transfer-Encoding"}
	errTEChunkedNotLast = &Error{400, "chunked is not the final transfer coding"}
	errTEInvalid        = &Error{400, "invalid Transfer-Encoding"}
	errTEUnsupported    = &Error{501, "unsupported transfer coding"}
	errTEHTTP10         = &Error{400, "Transfer-Encoding in HTTP/1.0"}
	errChunkSize        = &Error{400, "invalid chunk size"}
	errChunkExt         = &Error{400, "invalid chunk extension"}
	errChunkExtTooLarge = &Error{400, "chunk extensions too large"}
	errChunkData        = &Error{400, "chunk data not followed by CRLF"}
	errTrailerField     = &Error{400, "forbidden trailer field"}
)

// upstreamError turns a parse error on a response into the 502 the gateway answers with.
func upstreamError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return &Error{502, "upstream: " + e.Reason}
	}
	return err
}
