package route

import (
	"fmt"
	"sync"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// Filter slots give each HTTP filter name (as typed_per_filter_config keys it) a small
// integer, so that a stream finds a filter's per-route override by indexing a slice instead of
// hashing a name.
//
// The numbering is process-wide, not per connection manager. A route table is compiled and
// swapped by RDS on its own (Slot), independently of the connection manager whose chain uses
// it, and one route configuration may serve several chains; numbering per chain would tie a
// table to the chain it was compiled against and go silently wrong when either side changed
// alone. A name keeps its slot for the life of the process, so any table and any chain agree
// on it whichever was built first. Only names that appear in a configuration get a slot; the
// set grows with the distinct filter names ever configured, which is small.
var filterSlots = struct {
	sync.Mutex
	byName map[string]int
}{byName: map[string]int{}}

// FilterSlot returns the slot of a filter name, assigning the next one on first use. It takes
// a lock: call it when compiling, never per request.
func FilterSlot(name string) int {
	filterSlots.Lock()
	defer filterSlots.Unlock()
	i, ok := filterSlots.byName[name]
	if !ok {
		i = len(filterSlots.byName)
		filterSlots.byName[name] = i
	}
	return i
}

// OverrideMode is what a typed_per_filter_config entry does to its filter.
type OverrideMode uint8

const (
	// OverrideNone: no entry; the chain's setting stands.
	OverrideNone OverrideMode = iota
	// OverrideEnable runs the filter (even one the chain disables), with Override.Config when
	// set, else with the chain's config alone.
	OverrideEnable
	// OverrideDisable keeps the filter from running.
	OverrideDisable
)

// Override is a route's or virtual host's typed_per_filter_config for one filter.
type Override struct {
	Mode   OverrideMode
	Config httpfilter.Config // the factory's NewOverride result; nil for a bare enable
}

// overrides is typed_per_filter_config indexed by filter slot; a slot past its end has none.
type overrides []Override

// compileOverrides turns a decoded typed_per_filter_config into a slice indexed by slot.
func compileOverrides(m map[string]any) (overrides, error) {
	if len(m) == 0 {
		return nil, nil
	}
	var out overrides
	for name, v := range m {
		var o Override
		switch v := v.(type) {
		case model.DisabledFilter:
			o.Mode = OverrideDisable
		case model.EnabledFilter:
			o.Mode = OverrideEnable
		case httpfilter.Config:
			o = Override{Mode: OverrideEnable, Config: v}
		default:
			return nil, fmt.Errorf("typed_per_filter_config[%q]: not a compiled filter config (%T)", name, v)
		}
		i := FilterSlot(name)
		if i >= len(out) {
			out = append(out, make(overrides, i+1-len(out))...)
		}
		out[i] = o
	}
	return out, nil
}

func (o overrides) at(slot int) Override {
	if slot < len(o) {
		return o[slot]
	}
	return Override{}
}

// FilterOverride returns the most specific typed_per_filter_config for the filter at slot: the
// route's, else its virtual host's. It does not allocate.
func (e *Entry) FilterOverride(slot int) Override {
	if o := e.perFilter.at(slot); o.Mode != OverrideNone {
		return o
	}
	if e.vhost != nil {
		return e.vhost.perFilter.at(slot)
	}
	return Override{}
}

// RouteName implements httpfilter.Route.
func (e *Entry) RouteName() string { return e.Name }

var _ httpfilter.Route = (*Entry)(nil)
