package decode

import (
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
)

var (
	_ = allow(&corev3.HeaderValueOption{}, "header", "append", "append_action", "keep_empty_value")
	_ = allow(&corev3.HeaderValue{}, "key", "value", "raw_value")
)

// headerMutation decodes the four header lists a route config, virtual host, route or
// weighted cluster may carry.
func headerMutation(p path, reqAdd []*corev3.HeaderValueOption, reqRemove []string,
	respAdd []*corev3.HeaderValueOption, respRemove []string) (model.HeaderMutation, error) {
	var out model.HeaderMutation
	var err error
	if out.RequestAdd, err = headersToAdd(p.field("request_headers_to_add"), reqAdd); err != nil {
		return out, err
	}
	if out.RequestRemove, err = headersToRemove(p.field("request_headers_to_remove"), reqRemove); err != nil {
		return out, err
	}
	if out.ResponseAdd, err = headersToAdd(p.field("response_headers_to_add"), respAdd); err != nil {
		return out, err
	}
	if out.ResponseRemove, err = headersToRemove(p.field("response_headers_to_remove"), respRemove); err != nil {
		return out, err
	}
	return out, nil
}

var appendActions = map[corev3.HeaderValueOption_HeaderAppendAction]model.AppendAction{
	corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:    model.AppendIfExistsOrAdd,
	corev3.HeaderValueOption_ADD_IF_ABSENT:              model.AddIfAbsent,
	corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD: model.OverwriteIfExistsOrAdd,
	corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:        model.OverwriteIfExists,
}

func headersToAdd(p path, hs []*corev3.HeaderValueOption) ([]model.HeaderValueOption, error) {
	var out []model.HeaderValueOption
	for i, h := range hs {
		hp := p.index(i)
		name := strings.ToLower(h.GetHeader().GetKey())
		if err := modifiableHeader(hp.field("header").field("key"), name); err != nil {
			return nil, err
		}
		value := h.GetHeader().GetValue()
		if raw := h.GetHeader().GetRawValue(); raw != nil {
			if value != "" {
				return nil, hp.field("header").errorf("value and raw_value are exclusive")
			}
			value = string(raw)
		}
		if err := headerValue(value); err != nil {
			return nil, hp.field("header").field("value").errorf("%v", err)
		}
		action, ok := appendActions[h.GetAppendAction()]
		if !ok {
			return nil, hp.field("append_action").errorf("%s not supported", h.GetAppendAction())
		}
		if ap := h.GetAppend(); ap != nil {
			if h.GetAppendAction() != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
				return nil, hp.field("append").errorf("cannot be combined with append_action")
			}
			if !ap.GetValue() {
				action = model.OverwriteIfExistsOrAdd
			}
		}
		out = append(out, model.HeaderValueOption{Name: name, Value: value, Action: action, KeepEmptyValue: h.GetKeepEmptyValue()})
	}
	return out, nil
}

func headersToRemove(p path, names []string) ([]string, error) {
	var out []string
	for i, n := range names {
		n = strings.ToLower(n)
		if err := modifiableHeader(p.index(i), n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// modifiableHeader rejects what Envoy refuses to let route configs touch: pseudo-headers and
// Host, which routing itself depends on.
func modifiableHeader(p path, name string) error {
	if !validHeaderName(name, true) {
		return p.errorf("%q is not a header name", name)
	}
	if strings.HasPrefix(name, ":") || name == "host" {
		return p.errorf("%q: pseudo-headers and host may not be modified", name)
	}
	return nil
}

// validHeaderName accepts RFC 9110 tokens, and pseudo-header names if pseudo is set.
func validHeaderName(name string, pseudo bool) bool {
	if pseudo && strings.HasPrefix(name, ":") {
		name = name[1:]
	}
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// headerVariables are the %VAR% substitutions the header formatter implements.
var headerVariables = map[string]bool{
	"DOWNSTREAM_REMOTE_ADDRESS":              true,
	"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": true,
	"DOWNSTREAM_LOCAL_ADDRESS":               true,
	"PROTOCOL":                               true,
	"UPSTREAM_REMOTE_ADDRESS":                true,
	"HOSTNAME":                               true,
	"START_TIME":                             true,
}

// headerValue checks a header value template: no control characters, and every %VAR% known
// ("%%" is a literal percent sign, as in Envoy).
func headerValue(v string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' || c == 0 {
			return fmt.Errorf("control character %q", c)
		}
		if c != '%' {
			continue
		}
		if i+1 < len(v) && v[i+1] == '%' {
			i++
			continue
		}
		j := i + 1
		for j < len(v) && (v[j] >= 'A' && v[j] <= 'Z' || v[j] == '_' || v[j] >= '0' && v[j] <= '9') {
			j++
		}
		name, arg, hasArg := v[i+1:j], "", false
		if j < len(v) && v[j] == '(' {
			end := strings.IndexByte(v[j:], ')')
			if end < 0 {
				return fmt.Errorf("unterminated %%%s(", name)
			}
			arg, hasArg = v[j+1:j+end], true
			j += end + 1
		}
		if j >= len(v) || v[j] != '%' {
			return fmt.Errorf("unterminated variable at %q (write %%%% for a literal %%)", v[i:])
		}
		switch {
		case name == "REQ":
			if !hasArg || !validHeaderName(strings.ToLower(arg), true) {
				return fmt.Errorf("%%REQ(header)%% needs a header name")
			}
		case name == "START_TIME":
			// %START_TIME% and %START_TIME(format)% are both fine.
		case headerVariables[name] && !hasArg:
		default:
			return fmt.Errorf("unsupported variable %%%s%%", v[i+1:j])
		}
		i = j
	}
	return nil
}
