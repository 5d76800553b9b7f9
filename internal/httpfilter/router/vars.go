package router

import (
	"time"
	"unsafe"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/route"
)

// vars resolves the %VARIABLES% that header values in route configs may hold. Addresses
// are formatted into the filter's buffers, which live as long as the stream's headers.
type vars struct {
	s *httpfilter.Stream
	f *filter
}

func (v vars) DownstreamRemoteAddress() string {
	b := v.s.Downstream.RemoteAddr.AppendTo(v.f.remoteBuf[:0])
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func (v vars) DownstreamLocalAddress() string {
	b := v.s.Downstream.LocalAddr.AppendTo(v.f.localBuf[:0])
	return unsafe.String(unsafe.SliceData(b), len(b))
}
func (v vars) UpstreamRemoteAddress() string { return v.s.Info.UpstreamHost }
func (v vars) Protocol() string              { return v.s.Downstream.Protocol }
func (v vars) StartTime() time.Time          { return v.s.Info.Start }
func (v vars) RequestHeaders() *header.Map   { return &v.s.Request }

// headerVars returns the header variables of s.
func (f *filter) headerVars(s *httpfilter.Stream) route.Vars {
	f.hv = vars{s: s, f: f}
	return &f.hv
}

var _ route.Vars = vars{}
