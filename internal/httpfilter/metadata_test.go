package httpfilter

import "testing"

func TestMetadata(t *testing.T) {
	var m Metadata
	if _, ok := m.Get("ns", "k"); ok {
		t.Fatal("empty metadata has a value")
	}
	m.Set("ns", "k", "a")
	m.Set("other", "k", "b")
	m.Set("ns", "k", "c")
	tests := []struct {
		name      string
		namespace string
		key       string
		want      any
		found     bool
	}{
		{name: "replaced", namespace: "ns", key: "k", want: "c", found: true},
		{name: "other namespace", namespace: "other", key: "k", want: "b", found: true},
		{name: "missing key", namespace: "ns", key: "x", found: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := m.Get(tc.namespace, tc.key)
			if ok != tc.found || v != tc.want {
				t.Fatalf("Get(%q, %q) = %v, %v; want %v, %v", tc.namespace, tc.key, v, ok, tc.want, tc.found)
			}
		})
	}
	if n := len(m.Entries()); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
}
