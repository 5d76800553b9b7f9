package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	yaml "go.yaml.in/yaml/v3"
)

// Error is one rejected part of a file: where it is and why.
type Error struct {
	File string
	Line int
	// Path is the field path inside the file, e.g. "descriptors[1].rate_limit.unit".
	Path   string
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Path != "" {
		b.WriteString(": ")
		b.WriteString(e.Path)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// File is one parsed configuration file: a domain and its descriptor tree.
type File struct {
	Name   string
	Domain string
	root   *node
}

// units are the names rate_limit.unit takes, as envoyproxy/ratelimit spells them (any case).
var units = map[string]rlsv3.RateLimitResponse_RateLimit_Unit{
	"second": rlsv3.RateLimitResponse_RateLimit_SECOND,
	"minute": rlsv3.RateLimitResponse_RateLimit_MINUTE,
	"hour":   rlsv3.RateLimitResponse_RateLimit_HOUR,
	"day":    rlsv3.RateLimitResponse_RateLimit_DAY,
	"week":   rlsv3.RateLimitResponse_RateLimit_WEEK,
	"month":  rlsv3.RateLimitResponse_RateLimit_MONTH,
	"year":   rlsv3.RateLimitResponse_RateLimit_YEAR,
}

// unsupported are keys envoyproxy/ratelimit knows that this service does not implement: a file
// using them is rejected rather than silently served with different behaviour.
var unsupported = map[string]bool{
	"quota_mode": true, "value_to_metric": true, "share_threshold": true, "metadata": true,
}

// parser collects every error of one file, so that one run shows them all.
type parser struct {
	file string
	errs []error
}

func (p *parser) errorf(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Path: path, Reason: fmt.Sprintf(format, args...)})
}

// Parse reads one file's contents. name is used in errors and stats only.
func Parse(name string, data []byte) (*File, error) {
	p := &parser{file: name}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: name, Reason: "empty file: a domain is required"}
		}
		return nil, &Error{File: name, Reason: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{File: name, Line: extra.Line, Reason: "more than one YAML document"}
	}
	f := &File{Name: name}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: name, Line: root.Line, Reason: "the file must be a mapping with domain and descriptors"}
	}
	var descs *yaml.Node
	sawDomain := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolve(root.Content[i+1])
		switch k.Value {
		case "domain":
			sawDomain = true
			f.Domain = p.str(v, "domain")
			if f.Domain == "" {
				p.errorf(v, "domain", "must not be empty")
			}
		case "descriptors":
			descs = v
		default:
			p.unknown(k, "")
		}
	}
	if !sawDomain {
		p.errorf(root, "domain", "required")
	}
	f.root = &node{children: map[string]*node{}}
	if descs != nil {
		p.descriptors(f.root, descs, "descriptors", f.Domain)
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return f, nil
}

func (p *parser) unknown(k *yaml.Node, parent string) {
	path := join(parent, k.Value)
	if unsupported[k.Value] {
		p.errorf(k, path, "not supported by this service")
		return
	}
	p.errorf(k, path, "unknown field")
}

func join(parent, field string) string {
	if parent == "" {
		return field
	}
	return parent + "." + field
}

// resolve follows YAML aliases (*anchor) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func (p *parser) descriptors(parent *node, seq *yaml.Node, path, fullKey string) {
	if seq.Kind == yaml.ScalarNode && seq.Tag == "!!null" {
		return
	}
	if seq.Kind != yaml.SequenceNode {
		p.errorf(seq, path, "must be a list of descriptors")
		return
	}
	for i, item := range seq.Content {
		p.descriptor(parent, resolve(item), fmt.Sprintf("%s[%d]", path, i), fullKey)
	}
}

func (p *parser) descriptor(parent *node, m *yaml.Node, path, fullKey string) {
	if m.Kind != yaml.MappingNode {
		p.errorf(m, path, "must be a mapping with key, value, rate_limit, descriptors")
		return
	}
	var key, value string
	var hasKey, shadow, detailed bool
	var rl, children *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], resolve(m.Content[i+1])
		switch k.Value {
		case "key":
			key, hasKey = p.str(v, join(path, "key")), true
		case "value":
			value = p.str(v, join(path, "value"))
		case "rate_limit":
			rl = v
		case "descriptors":
			children = v
		case "shadow_mode":
			shadow = p.boolean(v, join(path, "shadow_mode"))
		case "detailed_metric":
			detailed = p.boolean(v, join(path, "detailed_metric"))
		default:
			p.unknown(k, path)
		}
	}
	if key == "" {
		if hasKey {
			p.errorf(m, join(path, "key"), "must not be empty")
		} else {
			p.errorf(m, join(path, "key"), "required")
		}
		return
	}
	composite := key
	if value != "" {
		composite += "_" + value
	}
	fullKey += "." + composite
	if first, dup := parent.children[composite]; dup {
		p.errorf(m, path, "duplicate descriptor %q at this level (first at line %d)", composite, first.line)
		return
	}
	n := &node{children: map[string]*node{}, line: m.Line}
	parent.children[composite] = n
	if strings.Contains(value, "*") {
		parent.wildcards = append(parent.wildcards, wildcard{child: n, key: key, parts: strings.Split(value, "*")})
	}
	if rl != nil {
		n.limit = p.rateLimit(rl, join(path, "rate_limit"), fullKey)
		if n.limit != nil {
			n.limit.ShadowMode = shadow
			n.limit.DetailedMetric = detailed
		}
	}
	if children != nil {
		p.descriptors(n, children, join(path, "descriptors"), fullKey)
	}
}

func (p *parser) rateLimit(m *yaml.Node, path, fullKey string) *Limit {
	if m.Kind != yaml.MappingNode {
		p.errorf(m, path, "must be a mapping with unit and requests_per_unit, or unlimited")
		return nil
	}
	l := &Limit{FullKey: fullKey}
	var unitNode *yaml.Node
	before := len(p.errs)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], resolve(m.Content[i+1])
		switch k.Value {
		case "unit":
			unitNode = v
		case "requests_per_unit":
			l.RequestsPerUnit = p.uint32(v, join(path, "requests_per_unit"))
		case "unlimited":
			l.Unlimited = p.boolean(v, join(path, "unlimited"))
		case "name":
			l.Name = p.str(v, join(path, "name"))
		case "replaces":
			l.Replaces = p.replaces(v, join(path, "replaces"))
		default:
			p.unknown(k, path)
		}
	}
	switch {
	case l.Unlimited && unitNode != nil:
		p.errorf(unitNode, join(path, "unit"), "must not be set when unlimited is true")
	case !l.Unlimited && unitNode == nil:
		p.errorf(m, join(path, "unit"), "required (second, minute, hour, day, week, month or year) unless unlimited is true")
	case unitNode != nil:
		s := p.str(unitNode, join(path, "unit"))
		u, ok := units[strings.ToLower(s)]
		if !ok {
			p.errorf(unitNode, join(path, "unit"), "%q is not one of second, minute, hour, day, week, month, year", s)
		}
		l.Unit = u
	}
	for i, r := range l.Replaces {
		if r == l.Name && r != "" {
			p.errorf(m, fmt.Sprintf("%s.replaces[%d].name", path, i), "a limit must not replace itself (%q)", r)
		}
	}
	if len(p.errs) > before {
		return nil
	}
	l.Proto = &rlsv3.RateLimitResponse_RateLimit{Name: l.Name, RequestsPerUnit: l.RequestsPerUnit, Unit: l.Unit}
	return l
}

func (p *parser) replaces(seq *yaml.Node, path string) []string {
	if seq.Kind != yaml.SequenceNode {
		p.errorf(seq, path, "must be a list of {name: …}")
		return nil
	}
	var out []string
	for i, item := range seq.Content {
		item = resolve(item)
		ip := fmt.Sprintf("%s[%d]", path, i)
		if item.Kind != yaml.MappingNode {
			p.errorf(item, ip, "must be a mapping with name")
			continue
		}
		name := ""
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], resolve(item.Content[j+1])
			if k.Value != "name" {
				p.unknown(k, ip)
				continue
			}
			name = p.str(v, join(ip, "name"))
		}
		if name == "" {
			p.errorf(item, join(ip, "name"), "required and not empty")
			continue
		}
		out = append(out, name)
	}
	return out
}

// str takes any scalar's text: envoyproxy/ratelimit reads `value: 500` as the string "500".
func (p *parser) str(n *yaml.Node, path string) string {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, path, "must be a string")
		return ""
	}
	if n.Tag == "!!null" {
		return ""
	}
	return n.Value
}

func (p *parser) boolean(n *yaml.Node, path string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		p.errorf(n, path, "must be true or false, not %q", n.Value)
	}
	return b
}

func (p *parser) uint32(n *yaml.Node, path string) uint32 {
	v, err := strconv.ParseUint(n.Value, 10, 32)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil {
		p.errorf(n, path, "must be a whole number from 0 to 4294967295, not %q", n.Value)
	}
	return uint32(v)
}
