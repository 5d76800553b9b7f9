package main

import (
	"fmt"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/controller/source"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/all"
	"github.com/nuncio-gw/nuncio/internal/route"
	"github.com/nuncio-gw/nuncio/internal/xds/decode"
)

// dataPlaneBreakdown times, in this process, what a data plane does with one pushed route
// configuration (unmarshal, decode, compile) and with one state-of-the-world EDS response
// (every cluster's assignment unmarshalled and decoded).
func dataPlaneBreakdown(s scale) error {
	r, err := source.Translate("envoy.json", generate(s, changes{}))
	if err != nil {
		return err
	}
	rcBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(r.Routes[0])
	if err != nil {
		return err
	}
	var claBytes [][]byte
	for _, e := range r.Endpoints {
		b, err := proto.Marshal(e)
		if err != nil {
			return err
		}
		claBytes = append(claBytes, b)
	}
	// A second version of the table with one route changed, for the cached decode.
	r2, err := source.Translate("envoy.json", generate(s, changes{routeTags: map[int]string{0: "x"}}))
	if err != nil {
		return err
	}
	rcBytes2, err := proto.MarshalOptions{Deterministic: true}.Marshal(r2.Routes[0])
	if err != nil {
		return err
	}
	var unmarshal, dec, compile, eds, cached []time.Duration
	for i := range 11 {
		t0 := time.Now()
		rc := &routev3.RouteConfiguration{}
		if err := proto.Unmarshal(rcBytes, rc); err != nil {
			return err
		}
		t1 := time.Now()
		m, err := decode.RouteConfig(rc, httpfilter.Default)
		if err != nil {
			return err
		}
		t2 := time.Now()
		if _, err := route.Compile(m, nil); err != nil {
			return err
		}
		t3 := time.Now()
		for _, b := range claBytes {
			cla := &endpointv3.ClusterLoadAssignment{}
			if err := proto.Unmarshal(b, cla); err != nil {
				return err
			}
			if _, err := decode.Endpoints(cla); err != nil {
				return err
			}
		}
		t4 := time.Now()
		rcache := decode.NewRouteCache()
		if _, _, err := rcache.RouteConfig(rcBytes, httpfilter.Default); err != nil {
			return err
		}
		t5 := time.Now()
		if _, _, err := rcache.RouteConfig(rcBytes2, httpfilter.Default); err != nil {
			return err
		}
		cached = append(cached, time.Since(t5))
		if i > 0 {
			unmarshal = append(unmarshal, t1.Sub(t0))
			dec = append(dec, t2.Sub(t1))
			compile = append(compile, t3.Sub(t2))
			eds = append(eds, t4.Sub(t3))
		}
	}
	fmt.Printf("## a data plane's work per change (in process, median of 10)\n\n")
	fmt.Printf("| step | time |\n| --- | --- |\n")
	fmt.Printf("| unmarshal the route configuration (%s) | %s |\n", size(len(rcBytes)), ms(pct(unmarshal, 50)))
	fmt.Printf("| decode it into the model | %s |\n", ms(pct(dec, 50)))
	fmt.Printf("| compile its route table (route.Compile) | %s |\n", ms(pct(compile, 50)))
	fmt.Printf("| unmarshal and decode the next version, one route changed, reusing the unchanged virtual hosts (decode.RouteCache) | %s |\n", ms(pct(cached, 50)))
	fmt.Printf("| unmarshal and decode all %d assignments (a state-of-the-world EDS response) | %s |\n\n", len(claBytes), ms(pct(eds, 50)))
	return nil
}
