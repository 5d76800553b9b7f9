// Package source provides the controller's configuration sources. A source watches its input
// (a file today; Kubernetes objects later) and produces complete sets of xDS resources, one set
// per settled change, for the xDS server to serve.
package source

import (
	"context"

	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
)

// Source produces the resources to serve.
//
// Each value sent on out is the complete set, not a delta: a consumer needs to keep only the
// latest, and the xDS server works out per resource what changed. Sets are sent in order, and a
// source that merges several inputs (several clusters' informers, say) sends their merged set.
type Source interface {
	// Run sends the current set on out as soon as it has one, then a new set after each change
	// of its input, until ctx is done, when it returns nil. A change that does not translate is
	// logged and skipped, so the previous set stays in force. Run returns an error only when it
	// cannot start: its input cannot be watched, or the first set does not translate.
	Run(ctx context.Context, out chan<- xdsresources.Resources) error
}
