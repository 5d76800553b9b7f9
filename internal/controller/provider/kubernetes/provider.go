// Package kubernetes is the controller's Kubernetes source: shared informers on IngressClasses,
// Ingresses, Services, EndpointSlices, Secrets and ConfigMaps in one or several clusters feed
// the Ingress translator (package ingress) on every change, debounced, and the resulting xDS
// resources go to the xDS server. It also keeps the served Ingresses' status.loadBalancer on
// the gateway's address and reports translation problems as Events on the Ingresses.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"

	"github.com/nuncio-gw/nuncio/internal/controller/ingress"
	"github.com/nuncio-gw/nuncio/internal/controller/source"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsgen"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
)

// DefaultDebounce is how long the informers must be quiet before a translation during a burst
// of changes: a rollout changes EndpointSlices many times a second, and one push per burst is
// enough. A change after a quiet period is translated after LeadingDelay instead (see
// debouncer).
const DefaultDebounce = 50 * time.Millisecond

// LeadingDelay is how long a change that ends a quiet period waits for the events of the same
// operation (an apply of several objects, a Service and its EndpointSlice) before it is
// translated.
const LeadingDelay = 5 * time.Millisecond

// maxDelayFactor bounds, in debounces, how long a continuous stream of changes can delay a
// translation: a rollout that never pauses for a debounce still gets pushed, about once a
// second, which keeps a long apply from costing a full translation every few debounces.
const maxDelayFactor = 20

// eventComponent is the source of the Events the controller records.
const eventComponent = "nuncio-controller"

// Cluster is one Kubernetes cluster to watch.
type Cluster struct {
	// Name is the cluster's locality zone and part of resource names; unique.
	Name   string
	Config *rest.Config
}

// LoadClusters reads --kubeconfig values, each "PATH" or "NAME=PATH"; a cluster without a
// name is named by its kubeconfig's current context. No value means the in-cluster config,
// named ingress.DefaultCluster.
func LoadClusters(kubeconfigs []string) ([]Cluster, error) {
	if len(kubeconfigs) == 0 {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kubernetes: no --kubeconfig and not in a cluster: %w", err)
		}
		return []Cluster{{Name: ingress.DefaultCluster, Config: cfg}}, nil
	}
	var out []Cluster
	seen := map[string]bool{}
	for _, kc := range kubeconfigs {
		name, path, ok := strings.Cut(kc, "=")
		if !ok {
			name, path = "", kc
		}
		raw, err := clientcmd.LoadFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("kubernetes: %s: %w", path, err)
		}
		cfg, err := clientcmd.NewDefaultClientConfig(*raw, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("kubernetes: %s: %w", path, err)
		}
		if name == "" {
			name = raw.CurrentContext
		}
		if name == "" {
			name = ingress.DefaultCluster
		}
		if seen[name] {
			return nil, fmt.Errorf("kubernetes: two clusters named %q (name them with NAME=PATH)", name)
		}
		seen[name] = true
		out = append(out, Cluster{Name: name, Config: cfg})
	}
	return out, nil
}

// Options configure a Provider.
type Options struct {
	Clusters  []Cluster
	Translate ingress.Options
	// ConfigMap is the global options' ConfigMap, "namespace/name", read from the first
	// cluster; empty for none.
	ConfigMap string
	// PublishAddress is the gateway's address written to Ingress status (IPs or host names,
	// comma separated); PublishService ("namespace/name", first cluster) is used otherwise:
	// its load balancer's addresses, else its ClusterIP.
	PublishAddress string
	PublishService string
	// Debounce overrides DefaultDebounce when positive.
	Debounce time.Duration
	Logger   *slog.Logger
}

// Provider is the Kubernetes source.
type Provider struct {
	opts Options
	log  *slog.Logger
}

// New returns a provider; nothing runs until Run.
func New(opts Options) (*Provider, error) {
	if len(opts.Clusters) == 0 {
		return nil, errors.New("kubernetes: no cluster")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	return &Provider{opts: opts, log: log}, nil
}

// watch is one cluster's informers.
type watch struct {
	name      string
	client    kubernetes.Interface
	factory   informers.SharedInformerFactory
	recorder  record.EventRecorder
	broadcast record.EventBroadcaster

	classes   cache.SharedIndexInformer
	ingresses cache.SharedIndexInformer
	services  cache.SharedIndexInformer
	slices    cache.SharedIndexInformer
	secrets   cache.SharedIndexInformer
	configs   cache.SharedIndexInformer
}

// Run implements source.Source.
func (p *Provider) Run(ctx context.Context, out chan<- xdsresources.Resources) error {
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}
	var watches []*watch
	for _, c := range p.opts.Clusters {
		w, err := p.newWatch(c, handler)
		if err != nil {
			return err
		}
		watches = append(watches, w)
		defer w.broadcast.Shutdown()
	}
	for _, w := range watches {
		w.factory.Start(ctx.Done())
		defer w.factory.Shutdown()
	}
	for _, w := range watches {
		for typ, ok := range w.factory.WaitForCacheSync(ctx.Done()) {
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("kubernetes: cluster %s: %v informer did not sync", w.name, typ)
			}
		}
		p.log.Info("kubernetes: watching", "cluster", w.name)
	}

	st := &runState{reported: map[string]bool{}}
	first := true
	// The encoder keeps the resources of unchanged hosts and clusters from one translation to
	// the next.
	enc := new(xdsgen.Encoder)
	d := newDebouncer(p.opts.Debounce)
	defer d.timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			d.event(time.Now())
			continue
		case <-d.timer.C:
			d.fired(time.Now())
		}
		r, res, err := p.translate(watches, enc)
		if err != nil {
			if first {
				return err
			}
			p.log.Error("kubernetes: translation failed, keeping the previous resources", "error", err)
			continue
		}
		first = false
		p.report(watches, res, st)
		select {
		case out <- r:
		case <-ctx.Done():
			return nil
		}
		p.updateStatus(ctx, watches, res)
	}
}

// debouncer decides when a translation runs after informer events. A change after a quiet
// period (nothing translated for a debounce) is translated LeadingDelay later, so that a lone
// edit is not held back by the debounce; events that follow a translation closely are a burst,
// translated once the informers are quiet for a debounce, but no later than maxDelayFactor
// debounces after the burst's first event.
type debouncer struct {
	debounce time.Duration
	timer    *time.Timer
	armed    bool      // a translation is pending
	leading  bool      // the pending translation is the leading one of a quiet period
	since    time.Time // first event of the pending translation
	last     time.Time // last translation
}

// newDebouncer returns a debouncer whose timer fires at once, for the first translation.
func newDebouncer(debounce time.Duration) *debouncer {
	return &debouncer{debounce: debounce, timer: time.NewTimer(0), armed: true, leading: true}
}

// event records an informer event at now and returns the delay the timer was set to, or -1
// when the pending timer stays as it is.
func (d *debouncer) event(now time.Time) time.Duration {
	var wait time.Duration
	switch {
	case !d.armed:
		d.armed, d.since = true, now
		d.leading = now.Sub(d.last) >= d.debounce
		wait = d.debounce
		if d.leading {
			wait = min(LeadingDelay, d.debounce)
		}
	case d.leading:
		return -1 // the leading timer gathers this event too
	default:
		wait = max(0, min(d.debounce, d.since.Add(maxDelayFactor*d.debounce).Sub(now)))
	}
	d.timer.Reset(wait)
	return wait
}

func (d *debouncer) fired(now time.Time) {
	d.armed, d.last = false, now
}

// runState remembers what has been reported, so that a problem gets one Event and one log
// line, not one per translation.
type runState struct {
	reported map[string]bool
}

func (p *Provider) newWatch(c Cluster, h cache.ResourceEventHandler) (*watch, error) {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: cluster %s: %w", c.Name, err)
	}
	// Informers keep every object in memory: managed fields are most of a small object's
	// size and of no use here.
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTransform(func(obj any) (any, error) {
		if m, ok := obj.(metav1.Object); ok {
			m.SetManagedFields(nil)
		}
		return obj, nil
	}))
	w := &watch{name: c.Name, client: cs, factory: f,
		classes:   f.Networking().V1().IngressClasses().Informer(),
		ingresses: f.Networking().V1().Ingresses().Informer(),
		services:  f.Core().V1().Services().Informer(),
		slices:    f.Discovery().V1().EndpointSlices().Informer(),
		secrets:   f.Core().V1().Secrets().Informer(),
		configs:   f.Core().V1().ConfigMaps().Informer(),
	}
	for _, inf := range []cache.SharedIndexInformer{w.classes, w.ingresses, w.services, w.slices, w.secrets, w.configs} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, fmt.Errorf("kubernetes: cluster %s: %w", c.Name, err)
		}
	}
	w.broadcast = record.NewBroadcaster()
	w.broadcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	w.recorder = w.broadcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: eventComponent})
	return w, nil
}

// Snapshot lists what the informers hold as the translator's input.
func (p *Provider) snapshot(watches []*watch) ingress.Input {
	var in ingress.Input
	for i, w := range watches {
		o := ingress.Objects{Cluster: w.name}
		for _, x := range w.classes.GetStore().List() {
			o.IngressClasses = append(o.IngressClasses, x.(*networkingv1.IngressClass))
		}
		for _, x := range w.ingresses.GetStore().List() {
			o.Ingresses = append(o.Ingresses, x.(*networkingv1.Ingress))
		}
		for _, x := range w.services.GetStore().List() {
			o.Services = append(o.Services, x.(*corev1.Service))
		}
		lister := w.factory.Discovery().V1().EndpointSlices().Lister()
		o.EndpointSlices, _ = lister.List(labels.Everything())
		for _, x := range w.secrets.GetStore().List() {
			o.Secrets = append(o.Secrets, x.(*corev1.Secret))
		}
		for _, x := range w.configs.GetStore().List() {
			cm := x.(*corev1.ConfigMap)
			if i == 0 && p.opts.ConfigMap == cm.Namespace+"/"+cm.Name {
				in.ConfigMap = cm
				continue
			}
			o.ConfigMaps = append(o.ConfigMaps, cm)
		}
		in.Clusters = append(in.Clusters, o)
	}
	return in
}

func (p *Provider) translate(watches []*watch, enc *xdsgen.Encoder) (xdsresources.Resources, ingress.Result, error) {
	start := time.Now()
	res := ingress.Translate(p.snapshot(watches), p.opts.Translate)
	r, err := enc.ToXDS(res.Config)
	if err != nil {
		return xdsresources.Resources{}, res, err
	}
	p.log.Debug("kubernetes: translated", "ingresses", len(res.Served), "resources", r.Len(), "took", time.Since(start))
	return r, res, nil
}

// report records each new problem as an Event on its Ingress and a log line.
func (p *Provider) report(watches []*watch, res ingress.Result, st *runState) {
	now := map[string]bool{}
	for _, pr := range res.Problems {
		k := pr.String()
		now[k] = true
		if st.reported[k] {
			continue
		}
		level := slog.LevelWarn
		if pr.Refused {
			level = slog.LevelError
		}
		p.log.Log(context.Background(), level, "kubernetes: "+pr.Reason, "cluster", pr.Cluster, "ingress", pr.Namespace+"/"+pr.Name, "refused", pr.Refused, "message", pr.Message)
		if pr.Name == "" {
			continue
		}
		for _, w := range watches {
			if w.name != pr.Cluster {
				continue
			}
			obj, ok, _ := w.ingresses.GetStore().GetByKey(pr.Namespace + "/" + pr.Name)
			if !ok {
				continue
			}
			w.recorder.Event(obj.(*networkingv1.Ingress), corev1.EventTypeWarning, pr.Reason, pr.Message)
		}
	}
	st.reported = now
}

// address is what Ingress status says the gateway is reached at.
func (p *Provider) address(watches []*watch) []networkingv1.IngressLoadBalancerIngress {
	var out []networkingv1.IngressLoadBalancerIngress
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s == "" {
			return
		}
		e := networkingv1.IngressLoadBalancerIngress{Hostname: s}
		if isIP(s) {
			e = networkingv1.IngressLoadBalancerIngress{IP: s}
		}
		if !slices.ContainsFunc(out, func(o networkingv1.IngressLoadBalancerIngress) bool { return o.IP == e.IP && o.Hostname == e.Hostname }) {
			out = append(out, e)
		}
	}
	if p.opts.PublishAddress != "" {
		for _, a := range strings.Split(p.opts.PublishAddress, ",") {
			add(a)
		}
		return out
	}
	if p.opts.PublishService == "" || len(watches) == 0 {
		return nil
	}
	obj, ok, _ := watches[0].services.GetStore().GetByKey(p.opts.PublishService)
	if !ok {
		return nil
	}
	svc := obj.(*corev1.Service)
	for _, lb := range svc.Status.LoadBalancer.Ingress {
		add(lb.IP)
		add(lb.Hostname)
	}
	for _, ip := range svc.Spec.ExternalIPs {
		add(ip)
	}
	if len(out) == 0 && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		add(svc.Spec.ClusterIP)
	}
	return out
}

// updateStatus sets status.loadBalancer of the served Ingresses whose status differs.
func (p *Provider) updateStatus(ctx context.Context, watches []*watch, res ingress.Result) {
	addr := p.address(watches)
	if addr == nil {
		return
	}
	for _, ref := range res.Served {
		for _, w := range watches {
			if w.name != ref.Cluster {
				continue
			}
			obj, ok, _ := w.ingresses.GetStore().GetByKey(ref.Namespace + "/" + ref.Name)
			if !ok {
				continue
			}
			ing := obj.(*networkingv1.Ingress)
			if equality.Semantic.DeepEqual(ing.Status.LoadBalancer.Ingress, addr) {
				continue
			}
			up := ing.DeepCopy()
			up.Status.LoadBalancer.Ingress = addr
			_, err := w.client.NetworkingV1().Ingresses(ref.Namespace).UpdateStatus(ctx, up, metav1.UpdateOptions{})
			if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
				p.log.Warn("kubernetes: ingress status", "cluster", w.name, "ingress", ref.Namespace+"/"+ref.Name, "error", err)
			}
			// A conflict means a newer Ingress is on its way; its event brings us back.
		}
	}
}

var _ source.Source = (*Provider)(nil)
