package ingress

import (
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// globalKeys are the ingress-nginx ConfigMap keys that Nuncio reads: each is the default of the
// annotation of the same name.
var globalKeys = []string{
	"load-balance",
	"proxy-body-size",
	"proxy-connect-timeout",
	"proxy-next-upstream",
	"proxy-next-upstream-timeout",
	"proxy-next-upstream-tries",
	"proxy-read-timeout",
	"proxy-send-timeout",
	"ssl-redirect",
	"upstream-hash-by",
}

type globalOptions struct {
	values    map[string]string
	accessLog bool
}

func (s *state) readGlobal(cm *corev1.ConfigMap) *globalOptions {
	g := &globalOptions{values: map[string]string{}, accessLog: true}
	if cm == nil {
		return g
	}
	var ignored []string
	for k, v := range cm.Data {
		switch {
		case slices.Contains(globalKeys, k):
			g.values[k] = v
		case k == "disable-access-log":
			if b, err := strconv.ParseBool(strings.TrimSpace(v)); err == nil {
				g.accessLog = !b
			} else {
				s.problem(nil, nil, false, "ConfigMapInvalid", "%s/%s: disable-access-log %q is not true or false", cm.Namespace, cm.Name, v)
			}
		default:
			ignored = append(ignored, k)
		}
	}
	if len(ignored) > 0 {
		slices.Sort(ignored)
		s.problem(nil, nil, false, "ConfigMapKeyIgnored", "%s/%s: keys not supported, ignored: %s", cm.Namespace, cm.Name, strings.Join(ignored, ", "))
	}
	return g
}
