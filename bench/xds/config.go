package main

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// scale is the size of the generated config.
type scale struct {
	VirtualHosts, RoutesPerHost, Clusters, Endpoints int
}

// changes is what differs from the base config: tags added to some routes' prefixes, and extra
// endpoints added to some clusters. Each timed change adds one entry to one of them, so that
// the file differs from the previous one by exactly one route or one endpoint.
type changes struct {
	routeTags map[int]string   // route index → tag
	extra     map[int][]string // cluster index → extra endpoint addresses
	// probe is the body of the probe route (Host: probe, path /probe), a direct response that a
	// client of a data plane can see change.
	probe string
}

// generate writes an Envoy bootstrap as JSON (which is YAML): one listener whose route table
// has s.VirtualHosts virtual hosts of s.RoutesPerHost prefix routes each, spread over
// s.Clusters STATIC clusters of s.Endpoints endpoints each, plus the probe virtual host. The
// listener binds port 0, so that several data planes on one machine can all serve it, each on
// a port of its own.
func generate(s scale, c changes) []byte {
	type m = map[string]any
	vhosts := make([]any, 0, s.VirtualHosts)
	n := 0
	for v := range s.VirtualHosts {
		routes := make([]any, 0, s.RoutesPerHost)
		for range s.RoutesPerHost {
			prefix := fmt.Sprintf("/r%d/", n)
			if tag, ok := c.routeTags[n]; ok {
				prefix = fmt.Sprintf("/r%d-%s/", n, tag)
			}
			routes = append(routes, m{
				"match": m{"prefix": prefix},
				"route": m{"cluster": fmt.Sprintf("c%d", n%s.Clusters)},
			})
			n++
		}
		vhosts = append(vhosts, m{
			"name":    fmt.Sprintf("vh%d", v),
			"domains": []string{fmt.Sprintf("vh%d.example", v)},
			"routes":  routes,
		})
	}
	probe := c.probe
	if probe == "" {
		probe = "p0"
	}
	vhosts = append(vhosts, m{
		"name":    "probe",
		"domains": []string{"probe"},
		"routes": []any{m{
			"match":           m{"prefix": "/probe"},
			"direct_response": m{"status": 200, "body": m{"inline_string": probe}},
		}},
	})
	clusters := make([]any, 0, s.Clusters)
	for i := range s.Clusters {
		eps := make([]any, 0, s.Endpoints)
		addr := func(a string, port int) m {
			return m{"endpoint": m{"address": m{"socket_address": m{"address": a, "port_value": port}}}}
		}
		for e := range s.Endpoints {
			eps = append(eps, addr(fmt.Sprintf("127.%d.%d.%d", 1+i/250, i%250, 1+e), 8080))
		}
		for _, a := range c.extra[i] {
			eps = append(eps, addr(a, 8080))
		}
		clusters = append(clusters, m{
			"name":            fmt.Sprintf("c%d", i),
			"type":            "STATIC",
			"connect_timeout": "1s",
			"load_assignment": m{"cluster_name": fmt.Sprintf("c%d", i), "endpoints": []any{m{"lb_endpoints": eps}}},
		})
	}
	doc := m{"static_resources": m{
		"listeners": []any{m{
			"name":    "bench",
			"address": m{"socket_address": m{"address": "127.0.0.1", "port_value": 0}},
			"filter_chains": []any{m{"filters": []any{m{
				"name": "envoy.filters.network.http_connection_manager",
				"typed_config": m{
					"@type":        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
					"stat_prefix":  "bench",
					"route_config": m{"name": "bench", "virtual_hosts": vhosts},
					"http_filters": []any{m{
						"name":         "envoy.filters.http.router",
						"typed_config": m{"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
					}},
				},
			}}}},
		}},
		"clusters": clusters,
	}}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	if err := enc.Encode(doc); err != nil {
		panic(err)
	}
	return b.Bytes()
}
