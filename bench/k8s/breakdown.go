package main

import (
	"fmt"
	"strconv"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/nuncio-gw/nuncio/internal/controller/ingress"
	kubeprovider "github.com/nuncio-gw/nuncio/internal/controller/provider/kubernetes"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsgen"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsserver"
	k8stest "github.com/nuncio-gw/nuncio/test/k8s"
)

// breakdown times, in this process, the steps the controller takes for every change over the
// benchmark's objects: translate them to the IR, encode the IR as xDS, and set the snapshot
// (hash, diff). Each step is the median of 10 runs after one warm-up, each run with one Ingress's
// host changed, as in the timed changes.
func breakdown(c config) error {
	in := ingress.Objects{Cluster: ingress.DefaultCluster}
	in.IngressClasses = []*networkingv1.IngressClass{k8stest.IngressClass(class, ingress.DefaultControllerName)}
	for i := range c.services {
		name := "svc-" + strconv.Itoa(i)
		in.Services = append(in.Services, k8stest.Service(namespace, name, 80))
		in.EndpointSlices = append(in.EndpointSlices, k8stest.EndpointSlice(namespace, name, name+"-1", 8080, k8stest.BackendAddr))
	}
	for i := range c.ingresses {
		in.Ingresses = append(in.Ingresses, k8stest.Ingress(namespace, "ing-"+strconv.Itoa(i), class, k8stest.IngressRule{
			Host: ingressHost(i), Path: "/", Service: "svc-" + strconv.Itoa(i%c.services), Port: 80,
		}))
	}
	srv := xdsserver.New(xdsserver.Options{})
	enc := new(xdsgen.Encoder)
	var translate, encode, update []time.Duration
	for n := range 11 {
		in.Ingresses[n].Spec.Rules[0].Host = fmt.Sprintf("breakdown-%d.bench.example", n)
		t0 := time.Now()
		res := ingress.Translate(ingress.Input{Clusters: []ingress.Objects{in}}, ingress.Options{})
		t1 := time.Now()
		r, err := enc.ToXDS(res.Config)
		if err != nil {
			return err
		}
		t2 := time.Now()
		if _, err := srv.Update(r); err != nil {
			return err
		}
		if n > 0 {
			translate = append(translate, t1.Sub(t0))
			encode = append(encode, t2.Sub(t1))
			update = append(update, time.Since(t2))
		}
	}
	fmt.Printf("## where a change's time goes in the controller (in process, median of 10)\n\n")
	fmt.Printf("| step | time |\n| --- | --- |\n")
	fmt.Printf("| wait before a translation: a change after a quiet period (a burst: until quiet for %s) | %s |\n", ms(kubeprovider.DefaultDebounce), ms(kubeprovider.LeadingDelay))
	fmt.Printf("| translate %d Ingresses to the IR | %s |\n", c.ingresses, ms(pct(translate, 50)))
	fmt.Printf("| IR → xDS resources (reusing unchanged hosts' and clusters') | %s |\n", ms(pct(encode, 50)))
	fmt.Printf("| snapshot: hash what changed, diff, set | %s |\n\n", ms(pct(update, 50)))
	return nil
}
