package admin

import (
	"fmt"
	"net/http"
	"strings"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// serveConfigDump writes the Source's config dump. Without parameters the Source's JSON is
// passed through unchanged. resource=<field> lists the elements of that repeated field of
// whichever section has it (static_clusters, dynamic_listeners, …), each as its own config;
// mask=<paths> keeps only the listed fields (protobuf FieldMask paths, comma-separated) of each
// element, reaching into the element's Any (mask=cluster.name), or of each section when no
// resource is given. This is Envoy's behaviour, status codes included.
func (s *Server) serveConfigDump(w http.ResponseWriter, r *http.Request) {
	b, err := s.opts.Source.ConfigDump()
	if err != nil {
		s.log.Error("config dump failed", "error", err)
		textError(w, http.StatusInternalServerError, "config_dump: "+err.Error())
		return
	}
	q := r.URL.Query()
	resource, mask := q.Get("resource"), q.Get("mask")
	if resource == "" && mask == "" {
		w.Header().Set("Content-Type", contentJSON)
		_, _ = w.Write(b)
		return
	}
	var dump adminv3.ConfigDump
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &dump); err != nil {
		s.log.Error("config dump does not parse", "error", err)
		textError(w, http.StatusInternalServerError, "config_dump: "+err.Error())
		return
	}
	var paths []string
	if mask != "" {
		paths = strings.Split(mask, ",")
	}
	var out *adminv3.ConfigDump
	if resource != "" {
		var code int
		out, code, err = selectResource(&dump, resource, paths)
		if err != nil {
			textError(w, code, err.Error())
			return
		}
	} else {
		out, err = maskSections(&dump, paths)
		if err != nil {
			textError(w, http.StatusInternalServerError, "config_dump: "+err.Error())
			return
		}
	}
	body, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}.Marshal(out)
	if err != nil {
		textError(w, http.StatusInternalServerError, "config_dump: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", contentJSON)
	_, _ = w.Write(body)
}

// selectResource finds the first section with a field named resource and returns its elements.
func selectResource(dump *adminv3.ConfigDump, resource string, mask []string) (*adminv3.ConfigDump, int, error) {
	for _, a := range dump.GetConfigs() {
		section, err := a.UnmarshalNew()
		if err != nil {
			return nil, http.StatusInternalServerError, fmt.Errorf("config_dump: %w", err)
		}
		m := section.ProtoReflect()
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(resource))
		if fd == nil {
			continue
		}
		if !fd.IsList() || fd.Kind() != protoreflect.MessageKind {
			return nil, http.StatusBadRequest, fmt.Errorf("%s is not a repeated field. Use ?mask=%s to get only this field", resource, resource)
		}
		out := &adminv3.ConfigDump{}
		list := m.Get(fd).List()
		for i := 0; i < list.Len(); i++ {
			elem := list.Get(i).Message().Interface()
			if len(mask) > 0 {
				elem = proto.Clone(elem)
				if err := trimResource(elem, mask); err != nil {
					return nil, http.StatusInternalServerError, fmt.Errorf("config_dump: %w", err)
				}
			}
			packed, err := anypb.New(elem)
			if err != nil {
				return nil, http.StatusInternalServerError, fmt.Errorf("config_dump: %w", err)
			}
			out.Configs = append(out.Configs, packed)
		}
		return out, http.StatusOK, nil
	}
	return nil, http.StatusNotFound, fmt.Errorf("%s not found in config dump", resource)
}

// maskSections trims every section of the dump to the mask. As in Envoy, the mask does not
// reach through Any or repeated fields here.
func maskSections(dump *adminv3.ConfigDump, mask []string) (*adminv3.ConfigDump, error) {
	out := &adminv3.ConfigDump{}
	for _, a := range dump.GetConfigs() {
		section, err := a.UnmarshalNew()
		if err != nil {
			return nil, err
		}
		trimMessage(section.ProtoReflect(), newMaskTree(mask))
		packed, err := anypb.New(section)
		if err != nil {
			return nil, err
		}
		out.Configs = append(out.Configs, packed)
	}
	return out, nil
}

// trimResource applies mask to one config dump resource (a StaticCluster, a DynamicListener,
// …). Paths through Any fields, at any depth (cluster.name, active_state.listener.name), are
// applied to the message packed in them, which a plain field mask cannot reach.
func trimResource(m proto.Message, mask []string) error {
	return trimThroughAny(m.ProtoReflect(), newMaskTree(mask))
}

var anyName = protoreflect.FullName("google.protobuf.Any")

// trimThroughAny is trimMessage reaching into Any fields.
func trimThroughAny(m protoreflect.Message, tree maskTree) error {
	var clear, descend []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		child, ok := tree[string(fd.Name())]
		switch {
		case !ok:
			clear = append(clear, fd)
		case len(child) > 0 && fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap():
			descend = append(descend, fd)
		}
		return true
	})
	for _, fd := range clear {
		m.Clear(fd)
	}
	for _, fd := range descend {
		child := tree[string(fd.Name())]
		if fd.Message().FullName() != anyName {
			if err := trimThroughAny(m.Mutable(fd).Message(), child); err != nil {
				return err
			}
			continue
		}
		a := &anypb.Any{}
		proto.Merge(a, m.Get(fd).Message().Interface())
		packed, err := a.UnmarshalNew()
		if err != nil {
			return err
		}
		if err := trimThroughAny(packed.ProtoReflect(), child); err != nil {
			return err
		}
		repacked, err := anypb.New(packed)
		if err != nil {
			return err
		}
		m.Set(fd, protoreflect.ValueOfMessage(repacked.ProtoReflect()))
	}
	return nil
}

// maskTree is a field mask as a tree of field names; a leaf keeps the whole field.
type maskTree map[string]maskTree

func newMaskTree(paths []string) maskTree {
	root := maskTree{}
	for _, p := range paths {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		node := root
		parts := strings.Split(p, ".")
		for i, part := range parts {
			child, ok := node[part]
			if ok && len(child) == 0 {
				break // a shorter path already keeps the whole field
			}
			if i == len(parts)-1 {
				node[part] = maskTree{}
				break
			}
			if !ok {
				child = maskTree{}
				node[part] = child
			}
			node = child
		}
	}
	return root
}

// trimMessage clears every field of m the tree does not name, as protobuf's
// FieldMaskUtil::TrimMessage does: paths naming fields m does not have are ignored, and only
// singular message fields are descended into.
func trimMessage(m protoreflect.Message, tree maskTree) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		child, ok := tree[string(fd.Name())]
		switch {
		case !ok:
			m.Clear(fd)
		case len(child) > 0 && fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap():
			trimMessage(m.Mutable(fd).Message(), child)
		}
		return true
	})
}
