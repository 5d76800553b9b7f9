package decode

import (
	"net"
	"strconv"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
)

var (
	_ = allow(&bootstrapv3.Bootstrap{}, "node", "static_resources", "dynamic_resources", "admin")
	_ = allow(&bootstrapv3.Bootstrap_StaticResources{}, "listeners", "clusters")
	_ = allow(&bootstrapv3.Admin{}, "address", "access_log_path")
	_ = allow(&corev3.Node{}, "id", "cluster", "locality", "metadata")
)

// Bootstrap decodes a static bootstrap: its listeners and clusters, checked against each other
// as Envoy does at startup (unique names and addresses, routes naming existing clusters).
func Bootstrap(b *bootstrapv3.Bootstrap, reg *httpfilter.Registry) (*model.Bootstrap, error) {
	if err := strict("", b); err != nil {
		return nil, err
	}
	fs := newFilterSet(reg)
	defer fs.logSkipped()
	out := &model.Bootstrap{
		Node: model.Node{ID: b.GetNode().GetId(), Cluster: b.GetNode().GetCluster()},
	}
	addrs := map[string]string{} // host:port → the path that claimed it
	if a := b.GetAdmin(); a != nil && a.GetAddress() != nil {
		ap := path("admin.address")
		addr, err := socketAddress(ap, a.GetAddress(), "the admin API binds to an IP address")
		if err != nil {
			return nil, err
		}
		out.Admin = &model.Admin{Address: addr, AccessLogPath: a.GetAccessLogPath()}
		addrs[hostPort(addr)] = string(ap)
	}

	sr := path("static_resources")
	clusters := map[string]int{}
	for i, c := range b.GetStaticResources().GetClusters() {
		cp := sr.field("clusters").index(i)
		mc, err := cluster(cp, c)
		if err != nil {
			return nil, err
		}
		if j, dup := clusters[mc.Name]; dup {
			return nil, cp.field("name").errorf("duplicate cluster name %q (also clusters[%d])", mc.Name, j)
		}
		clusters[mc.Name] = i
		out.Clusters = append(out.Clusters, mc)
	}

	if dr := b.GetDynamicResources(); dr != nil {
		var err error
		if out.Dynamic, err = dynamicResources(path("dynamic_resources"), dr, out.Clusters); err != nil {
			return nil, err
		}
	} else if err := clustersWithoutADS(sr, out.Clusters); err != nil {
		return nil, err
	}

	listeners := map[string]int{}
	for i, l := range b.GetStaticResources().GetListeners() {
		lp := sr.field("listeners").index(i)
		ml, err := listener(lp, l, fs)
		if err != nil {
			return nil, err
		}
		if j, dup := listeners[ml.Name]; dup {
			return nil, lp.field("name").errorf("duplicate listener name %q (also listeners[%d])", ml.Name, j)
		}
		listeners[ml.Name] = i
		if out.Dynamic == nil {
			if err := listenerWithoutADS(lp, l, ml); err != nil {
				return nil, err
			}
		}
		hp := hostPort(ml.Address)
		if other, dup := addrs[hp]; dup && ml.Address.Port != 0 {
			return nil, lp.field("address").errorf("%s already used by %s", hp, other)
		}
		addrs[hp] = string(lp.field("address"))
		if err := checkRouteClusters(lp, l, ml, clusters); err != nil {
			return nil, err
		}
		out.Listeners = append(out.Listeners, ml)
	}
	if err := resolveTracing(b, out); err != nil {
		return nil, err
	}
	return out, nil
}

func hostPort(a model.SocketAddress) string {
	return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port)))
}

// checkRouteClusters applies validate_clusters to a listener's inline route tables: a route
// naming a cluster that does not exist fails the config instead of answering 503 later.
func checkRouteClusters(p path, l *listenerv3.Listener, ml *model.Listener, clusters map[string]int) error {
	check := func(fp path, nfilters int, fc *model.FilterChain) error {
		if fc.HCM == nil || fc.HCM.RouteConfig == nil || !fc.HCM.RouteConfig.ValidateClusters {
			return nil
		}
		rp := fp.field("filters").index(nfilters - 1).field("typed_config").field("route_config")
		for i, vh := range fc.HCM.RouteConfig.VirtualHosts {
			for j, r := range vh.Routes {
				if r.Route == nil {
					continue
				}
				ap := rp.field("virtual_hosts").index(i).field("routes").index(j).field("route")
				if r.Route.Cluster != "" {
					if _, ok := clusters[r.Route.Cluster]; !ok {
						return ap.field("cluster").errorf("unknown cluster %q (set route_config.validate_clusters: false to resolve it at request time)", r.Route.Cluster)
					}
				}
				for k, wc := range r.Route.WeightedClusters {
					if _, ok := clusters[wc.Name]; !ok {
						return ap.field("weighted_clusters").field("clusters").index(k).field("name").errorf("unknown cluster %q", wc.Name)
					}
				}
			}
		}
		return nil
	}
	return eachChain(p, l, ml, check)
}

// eachChain calls check on each of a decoded listener's filter chains, the default one last,
// with the chain's path and the number of network filters its source has (the connection
// manager is the last), and stops at the first error.
func eachChain(p path, l *listenerv3.Listener, ml *model.Listener, check func(fp path, nfilters int, fc *model.FilterChain) error) error {
	for i, fc := range ml.FilterChains {
		if err := check(p.field("filter_chains").index(i), len(l.GetFilterChains()[i].GetFilters()), fc); err != nil {
			return err
		}
	}
	if ml.DefaultFilterChain != nil {
		return check(p.field("default_filter_chain"), len(l.GetDefaultFilterChain().GetFilters()), ml.DefaultFilterChain)
	}
	return nil
}
