package httpfilter

// Metadata is a stream's dynamic metadata (Envoy's): values a filter publishes for the filters
// after it and for access logs, grouped by namespace, which is the publishing filter's name
// (e.g. "envoy.filters.http.jwt_authn"). It is a short slice rather than a map: a stream
// carries a handful of entries at most, and most carry none, which then costs nothing.
type Metadata struct {
	entries []MetadataEntry
}

// MetadataEntry is one value under a namespace and key. Value holds what the publisher
// documents; JSON-shaped values (map[string]any, []any, string, float64, bool) are the rule,
// so that consumers such as RBAC's metadata matcher can walk them without knowing the
// publisher.
type MetadataEntry struct {
	Namespace string
	Key       string
	Value     any
}

// Set stores v under namespace and key, replacing any earlier value.
func (m *Metadata) Set(namespace, key string, v any) {
	for i := range m.entries {
		if e := &m.entries[i]; e.Namespace == namespace && e.Key == key {
			e.Value = v
			return
		}
	}
	m.entries = append(m.entries, MetadataEntry{Namespace: namespace, Key: key, Value: v})
}

// Get returns the value under namespace and key.
func (m *Metadata) Get(namespace, key string) (any, bool) {
	for _, e := range m.entries {
		if e.Namespace == namespace && e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}

// Entries lists every value in the order it was first set. The slice is owned by the stream.
func (m *Metadata) Entries() []MetadataEntry { return m.entries }
