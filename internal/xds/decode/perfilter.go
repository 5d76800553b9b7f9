package decode

import (
	"errors"
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

// perFilterConfig compiles typed_per_filter_config entries with each filter's NewOverride.
func perFilterConfig(p path, m map[string]*anypb.Any, reg *httpfilter.Registry) (map[string]any, error) {
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
				return nil, fp.field("config").errorf("required unless disabled")
			}
			a, optional, fp = fc.GetConfig(), fc.GetIsOptional(), fp.field("config")
		}
		typeURL, msg, err := filterConfig(fp, a, reg)
		if errors.Is(err, errUnknownFilter) {
			if optional {
				continue
			}
			return nil, fp.errorf("unknown filter type %s", typeURL)
		}
		if err != nil {
			return nil, err
		}
		f, _ := lookup(reg, typeURL)
		cfg, err := f.NewOverride(msg)
		if err != nil {
			return nil, fp.errorf("%s: %v", name, err)
		}
		out[name] = cfg
	}
	return out, nil
}
