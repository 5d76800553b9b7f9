package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/nuncio-gw/nuncio/internal/controller/ingress"
	"github.com/nuncio-gw/nuncio/internal/controller/provider/kubernetes"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsserver"
	"github.com/nuncio-gw/nuncio/internal/server"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// kubeFlags are the Kubernetes source's flags, shared by controller and run.
type kubeFlags struct {
	kubeconfigs     stringList
	ingressClass    *string
	controllerName  *string
	configMap       *string
	publishAddress  *string
	publishService  *string
	defaultBackend  *string
	defaultCert     *string
	allowUnenforced *bool
	httpPort        *uint
	httpsPort       *uint
}

func addKubeFlags(fs *flag.FlagSet) *kubeFlags {
	k := &kubeFlags{}
	fs.Var(&k.kubeconfigs, "kubeconfig", "watch Ingresses in the cluster of this kubeconfig, [NAME=]PATH; repeat for several clusters")
	k.ingressClass = fs.String("ingress-class", ingress.DefaultIngressClass, "IngressClass (and legacy kubernetes.io/ingress.class value) served")
	k.controllerName = fs.String("controller-name", ingress.DefaultControllerName, "spec.controller of the IngressClasses served")
	k.configMap = fs.String("configmap", "", "NAMESPACE/NAME of a ConfigMap of global options (ingress-nginx keys)")
	k.publishAddress = fs.String("publish-address", "", "address(es) written to Ingress status, comma separated")
	k.publishService = fs.String("publish-service", "", "NAMESPACE/NAME of the gateway's Service, whose address is written to Ingress status")
	k.defaultBackend = fs.String("default-backend-service", "", "NAMESPACE/NAME of the Service serving requests no rule matches")
	k.defaultCert = fs.String("default-ssl-certificate", "", "NAMESPACE/NAME of the TLS Secret served for unknown SNI names")
	k.allowUnenforced = fs.Bool("allow-unenforced", false, "serve Ingresses whose security annotations this data plane does not enforce yet (see docs/ingress-nginx-annotations.md)")
	k.httpPort = fs.Uint("http-port", 80, "port of the gateway's HTTP listener")
	k.httpsPort = fs.Uint("https-port", 443, "port of the gateway's HTTPS listener")
	return k
}

// enabled reports whether the Kubernetes source is asked for: a kubeconfig, or, with no config
// file, running in a pod.
func (k *kubeFlags) enabled(configFile string) bool {
	return len(k.kubeconfigs) > 0 || configFile == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != ""
}

func (k *kubeFlags) provider(log *slog.Logger) (*kubernetes.Provider, error) {
	if *k.httpPort == 0 || *k.httpPort > 65535 || *k.httpsPort == 0 || *k.httpsPort > 65535 {
		return nil, errors.New("--http-port and --https-port must be from 1 to 65535")
	}
	clusters, err := kubernetes.LoadClusters(k.kubeconfigs)
	if err != nil {
		return nil, err
	}
	return kubernetes.New(kubernetes.Options{
		Clusters: clusters,
		Translate: ingress.Options{
			IngressClass: *k.ingressClass, ControllerName: *k.controllerName,
			DefaultBackendService: *k.defaultBackend, DefaultSSLCertificate: *k.defaultCert,
			AllowUnenforced: *k.allowUnenforced,
			HTTPPort:        uint32(*k.httpPort), HTTPSPort: uint32(*k.httpsPort),
		},
		ConfigMap:      *k.configMap,
		PublishAddress: *k.publishAddress,
		PublishService: *k.publishService,
		Logger:         log,
	})
}

// embeddedXDS serves the Kubernetes source's resources on a loopback port for the data plane
// of the same process, which then takes them over ADS as a replica would: one code path for
// resources from the controller whether it runs beside the data plane or apart.
func (k *kubeFlags) embeddedXDS(ctx context.Context, log *slog.Logger) (*server.XDSOptions, <-chan error, error) {
	p, err := k.provider(log)
	if err != nil {
		return nil, nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("xds: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- xdsserver.New(xdsserver.Options{Logger: log}).Run(ctx, p, lis)
	}()
	return &server.XDSOptions{Address: lis.Addr().String(), NodeID: "nuncio-run"}, done, nil
}
