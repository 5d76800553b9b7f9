package decode

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// FieldError is a decode error at one field of a resource.
type FieldError struct {
	// Path is the field's path from the decoded resource, in proto field names:
	// "filter_chains[1].filters[0].typed_config.route_config.virtual_hosts[0].domains".
	Path string
	Err  error
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

func (e *FieldError) Unwrap() error { return e.Err }

// path is a field path under construction. Paths are only built on the way down and
// formatted on error, so a successful decode pays for a few string concatenations only.
type path string

func (p path) field(name string) path {
	if p == "" {
		return path(name)
	}
	return p + "." + path(name)
}

func (p path) index(i int) path { return p + "[" + path(strconv.Itoa(i)) + "]" }

func (p path) key(k string) path { return p + "[" + path(strconv.Quote(k)) + "]" }

func (p path) errorf(format string, args ...any) error {
	return &FieldError{Path: string(p), Err: fmt.Errorf(format, args...)}
}

// The supported subset. Every message type the decoders descend into lists the fields they
// handle; strict rejects any other set field with its path before decoding starts, so nothing
// outside the subset is silently ignored. Fields are listed in the file that decodes them.
var (
	supported = map[protoreflect.FullName]map[protoreflect.Name]bool{}
	// opaque Any fields hold configs checked by someone else (HTTP filter factories).
	opaque = map[protoreflect.FullName]bool{}
)

// allow declares the supported fields of m's type.
func allow(m proto.Message, fields ...protoreflect.Name) struct{} {
	md := m.ProtoReflect().Descriptor()
	set := make(map[protoreflect.Name]bool, len(fields))
	for _, f := range fields {
		if md.Fields().ByName(f) == nil {
			panic(fmt.Sprintf("decode: %s has no field %s", md.FullName(), f))
		}
		set[f] = true
	}
	supported[md.FullName()] = set
	return struct{}{}
}

// allowOpaque declares an Any field of m (already allowed) whose content strict does not check.
func allowOpaque(m proto.Message, field protoreflect.Name) struct{} {
	md := m.ProtoReflect().Descriptor()
	opaque[md.FullName().Append(field)] = true
	return struct{}{}
}

// strict checks that m and every message under it set only supported fields.
//
// A first pass only answers yes or no: a route table of 10,000 routes has some 100,000 set
// fields, and building each one's path (and sorting each message's fields to report the
// first in declaration order) made the check most of the table's decode time. Only a message
// that fails is walked again to say where.
func strict(p path, m proto.Message) error {
	if strictOK(m.ProtoReflect()) {
		return nil
	}
	return strictMessage(p, m.ProtoReflect())
}

// strictOK reports whether strictMessage would accept m.
func strictOK(m protoreflect.Message) bool {
	md := m.Descriptor()
	if md.FullName() == "google.protobuf.Any" {
		a := m.Interface().(*anypb.Any)
		if a.GetTypeUrl() == "" {
			return false
		}
		inner, err := a.UnmarshalNew()
		return err == nil && strictOK(inner.ProtoReflect())
	}
	if md.FullName().Parent() == "google.protobuf" {
		return true
	}
	set, ok := supported[md.FullName()]
	if !ok {
		return false
	}
	good := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if !set[fd.Name()] {
			good = false
			return false
		}
		good = strictFieldOK(fd, v)
		return good
	})
	return good
}

func strictFieldOK(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
	switch {
	case fd.IsMap():
		if fd.MapValue().Kind() != protoreflect.MessageKind || opaque[fd.FullName()] {
			return true
		}
		good := true
		v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
			good = strictOK(mv.Message())
			return good
		})
		return good
	case fd.Kind() != protoreflect.MessageKind || opaque[fd.FullName()]:
		return true
	case fd.IsList():
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			if !strictOK(l.Get(i).Message()) {
				return false
			}
		}
		return true
	}
	return strictOK(v.Message())
}

func strictMessage(p path, m protoreflect.Message) error {
	md := m.Descriptor()
	if md.FullName() == "google.protobuf.Any" {
		inner, err := unpack(p, m.Interface().(*anypb.Any))
		if err != nil {
			return err
		}
		return strictMessage(p, inner.ProtoReflect())
	}
	if md.FullName().Parent() == "google.protobuf" {
		return nil // durations, wrappers: values, not structures
	}
	set, ok := supported[md.FullName()]
	if !ok {
		return p.errorf("%s not supported", md.FullName())
	}
	var fields []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		fields = append(fields, fd)
		return true
	})
	// Report the first unsupported field in declaration order, not map order.
	sort.Slice(fields, func(i, j int) bool { return fields[i].Number() < fields[j].Number() })
	for _, fd := range fields {
		fp := p.field(string(fd.Name()))
		if !set[fd.Name()] {
			return fp.errorf("not supported")
		}
		if err := strictField(fp, fd, m.Get(fd)); err != nil {
			return err
		}
	}
	return nil
}

func strictField(p path, fd protoreflect.FieldDescriptor, v protoreflect.Value) error {
	switch {
	case fd.IsMap():
		if fd.MapValue().Kind() != protoreflect.MessageKind {
			return nil
		}
		var keys []string
		v.Map().Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
			keys = append(keys, k.String())
			return true
		})
		sort.Strings(keys)
		for _, k := range keys {
			mv := v.Map().Get(protoreflect.ValueOfString(k).MapKey())
			if err := strictValue(p.key(k), fd, mv.Message()); err != nil {
				return err
			}
		}
	case fd.IsList():
		if fd.Kind() != protoreflect.MessageKind {
			return nil
		}
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			if err := strictValue(p.index(i), fd, l.Get(i).Message()); err != nil {
				return err
			}
		}
	case fd.Kind() == protoreflect.MessageKind:
		return strictValue(p, fd, v.Message())
	}
	return nil
}

func strictValue(p path, fd protoreflect.FieldDescriptor, m protoreflect.Message) error {
	if opaque[fd.FullName()] {
		return nil
	}
	return strictMessage(p, m)
}

// unpack resolves an Any through the global registry (the types linked in by envoyconfig).
func unpack(p path, a *anypb.Any) (proto.Message, error) {
	if a.GetTypeUrl() == "" {
		return nil, p.errorf("type URL required")
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil, p.errorf("%s: %v", a.GetTypeUrl(), err)
	}
	return m, nil
}

// enum maps an Envoy enum value to the model's through to; a value missing from to is
// rejected at p as not supported.
func enum[E interface {
	comparable
	String() string
}, M any](p path, v E, to map[E]M) (M, error) {
	m, ok := to[v]
	if !ok {
		return m, p.errorf("%s not supported", v)
	}
	return m, nil
}

// duration converts d, using def when it is unset. Envoy uses an explicit 0 to disable most
// timeouts, which is why unset and zero differ.
func duration(p path, d *durationpb.Duration, def time.Duration) (time.Duration, error) {
	if d == nil {
		return def, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, p.errorf("%v", err)
	}
	v := d.AsDuration()
	if v < 0 {
		return 0, p.errorf("must not be negative")
	}
	return v, nil
}

// maxDataSourceBytes bounds what a file data source may hold; certificates and direct
// response bodies are small, and reading a device or a huge file by mistake should fail.
const maxDataSourceBytes = 4 << 20

// dataSource reads a DataSource. Files are read now so that a config naming a missing file is
// rejected whole, as Envoy does; the file name is returned for reloads and dumps.
func dataSource(p path, ds *corev3.DataSource) (data []byte, file string, err error) {
	switch s := ds.GetSpecifier().(type) {
	case *corev3.DataSource_Filename:
		fp := p.field("filename")
		if s.Filename == "" {
			return nil, "", fp.errorf("empty")
		}
		// Stat before opening: opening a FIFO or some devices blocks.
		st, err := os.Stat(s.Filename)
		if err != nil {
			return nil, "", fp.errorf("%v", err)
		}
		if !st.Mode().IsRegular() {
			return nil, "", fp.errorf("%s is not a regular file", s.Filename)
		}
		f, err := os.Open(s.Filename)
		if err != nil {
			return nil, "", fp.errorf("%v", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxDataSourceBytes+1))
		if err != nil {
			return nil, "", fp.errorf("%v", err)
		}
		if len(b) > maxDataSourceBytes {
			return nil, "", fp.errorf("%s is larger than %d bytes", s.Filename, maxDataSourceBytes)
		}
		return b, s.Filename, nil
	case *corev3.DataSource_InlineString:
		return []byte(s.InlineString), "", nil
	case *corev3.DataSource_InlineBytes:
		return s.InlineBytes, "", nil
	}
	return nil, "", p.errorf("one of filename, inline_string, inline_bytes required")
}

var _ = allow(&corev3.DataSource{}, "filename", "inline_bytes", "inline_string")
