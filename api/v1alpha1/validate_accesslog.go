package v1alpha1

import "strings"

// accessLog checks what can be checked without Envoy's formatter: the format's operators are
// checked when the translated config loads.
func (v *validator) accessLog(p string, a *AccessLog) {
	if a == nil {
		return
	}
	if strings.ContainsAny(a.Path, "\x00\n") {
		v.fail(p+".path", "must not contain NUL or newline")
	}
	if strings.HasSuffix(a.Path, "/") {
		v.fail(p+".path", "%q names a directory, not a file", a.Path)
	}
	if a.Format != "" && len(a.JSON) > 0 {
		v.fail(p, "set format or json, not both")
	}
	for k := range a.JSON {
		if k == "" {
			v.fail(p+".json", "keys must not be empty")
		}
	}
}
