// Package strict rejects the fields of a filter's configuration that the filter does not
// implement, naming each by its path, so that an unimplemented setting fails the update instead
// of being silently ignored.
package strict

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Fields lists, per message type, the fields a filter implements. A set field missing from its
// message's list is rejected; a message type missing from the map has no field implemented.
// Well-known types (google.protobuf.*) are taken whole.
type Fields map[protoreflect.FullName][]protoreflect.Name

// Check walks m, its submessages, lists and maps, and returns the first set field that
// supported does not list, as "<filter>: <path>: not supported".
func Check(filter string, m proto.Message, supported Fields) error {
	if path, ok := check("", m.ProtoReflect(), supported); !ok {
		return fmt.Errorf("%s: %s: not supported", filter, path)
	}
	return nil
}

func check(prefix string, m protoreflect.Message, supported Fields) (string, bool) {
	if m.Descriptor().FullName().Parent() == "google.protobuf" {
		return "", true
	}
	allowed := supported[m.Descriptor().FullName()]
	bad, ok := "", true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := prefix + string(fd.Name())
		if !slices.Contains(allowed, fd.Name()) {
			bad, ok = name, false
			return false
		}
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len() && ok; i++ {
				bad, ok = check(name+"["+strconv.Itoa(i)+"].", l.Get(i).Message(), supported)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			// Keys in order, so that the error names the same field every time.
			mp := v.Map()
			var keys []protoreflect.MapKey
			mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			slices.SortFunc(keys, func(a, b protoreflect.MapKey) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				if bad, ok = check(name+"["+strconv.Quote(k.String())+"].", mp.Get(k).Message(), supported); !ok {
					break
				}
			}
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			bad, ok = check(name+".", v.Message(), supported)
		}
		return ok
	})
	return bad, ok
}
