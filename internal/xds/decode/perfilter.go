package decode

import (
	"errors"
	"log/slog"
	"slices"
	"sort"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
)

var (
	_ = allow(&routev3.FilterConfig{}, "config", "is_optional", "disabled")
	_ = allowOpaque(&routev3.FilterConfig{}, "config")
)

// filterSet is the filter registry one decoding call compiles HTTP filters with. It records
// the optional filters it skipped (unknown type URL and is_optional), so that each is logged
// once by name when the call ends, however many listeners, virtual hosts or routes name it.
type filterSet struct {
	reg     *httpfilter.Registry
	skipped []skippedFilter
}

type skippedFilter struct{ name, typeURL string }

func newFilterSet(reg *httpfilter.Registry) *filterSet { return &filterSet{reg: reg} }

func (fs *filterSet) skip(name, typeURL string) {
	if !slices.ContainsFunc(fs.skipped, func(sf skippedFilter) bool { return sf.name == name }) {
		fs.skipped = append(fs.skipped, skippedFilter{name, typeURL})
	}
}

// logSkipped logs each skipped optional filter once.
func (fs *filterSet) logSkipped() {
	for _, sf := range fs.skipped {
		slog.Warn("optional HTTP filter skipped: no filter is registered for its type",
			"filter", sf.name, "type_url", sf.typeURL)
	}
}

// perFilterConfig compiles typed_per_filter_config entries with each filter's NewOverride.
func perFilterConfig(p path, m map[string]*anypb.Any, fs *filterSet) (map[string]any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make(map[string]any, len(m))
	for _, name := range names {
		fp := p.key(name)
		a := m[name]
		optional := false
		if typeName(a.GetTypeUrl()) == "envoy.config.route.v3.FilterConfig" {
			msg, err := unpack(fp, a)
			if err != nil {
				return nil, err
			}
			if err := strict(fp, msg); err != nil {
				return nil, err
			}
			fc := msg.(*routev3.FilterConfig)
			if fc.GetDisabled() {
				out[name] = model.DisabledFilter{}
				continue
			}
			if fc.GetConfig() == nil {
				// Envoy: a FilterConfig that is not disabled enables the filter (one the
				// chain disables) with the chain's config.
				out[name] = model.EnabledFilter{}
				continue
			}
			a, optional, fp = fc.GetConfig(), fc.GetIsOptional(), fp.field("config")
		}
		typeURL, msg, err := filterConfig(fp, a, fs.reg)
		if errors.Is(err, errUnknownFilter) {
			if optional {
				fs.skip(name, typeURL)
				continue
			}
			return nil, fp.errorf("unknown filter type %s", typeURL)
		}
		if err != nil {
			return nil, err
		}
		f, _ := lookup(fs.reg, typeURL)
		cfg, err := f.NewOverride(msg)
		if err != nil {
			return nil, fp.errorf("%s: %v", name, err)
		}
		out[name] = cfg
	}
	return out, nil
}
