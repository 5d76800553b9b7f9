package router

import (
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/route"
)

// vars resolves the %VARIABLES% that header values in route configs may hold.
type vars struct{ s *httpfilter.Stream }

func (v vars) DownstreamRemoteAddress() string { return v.s.Downstream.RemoteAddr.String() }
func (v vars) DownstreamLocalAddress() string  { return v.s.Downstream.LocalAddr.String() }
func (v vars) UpstreamRemoteAddress() string   { return v.s.Info.UpstreamHost }
func (v vars) Protocol() string                { return v.s.Downstream.Protocol }
func (v vars) StartTime() time.Time            { return v.s.Info.Start }
func (v vars) RequestHeaders() *header.Map     { return &v.s.Request }

var _ route.Vars = vars{}
