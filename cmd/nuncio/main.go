// Command nuncio is the Nuncio API gateway: one binary that serves traffic (run), serves xDS to
// data planes (controller), checks a configuration (validate), prints the Envoy form of a
// configuration (translate) and reports its version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/nuncio-gw/nuncio/internal/controller/source"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsserver"
	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/all"
	"github.com/nuncio-gw/nuncio/internal/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

const usage = `usage: nuncio <command> [flags]

commands:
  run        serve traffic (built-in default config when no -c is given)
  controller serve a config file's or Kubernetes Ingresses' resources over xDS (ADS) to data planes
  ratelimit  serve Envoy's global rate limit protocol from envoyproxy/ratelimit YAML, counting in Redis
  validate   check a config file and exit
  translate  print the Envoy bootstrap equivalent of a config file
  version    print the version

run 'nuncio <command> -h' for a command's flags
`

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:], stderr)
	case "controller":
		return controllerCmd(args[1:], stderr)
	case "ratelimit":
		return ratelimitCmd(args[1:], stderr)
	case "validate":
		return validateCmd(args[1:], stdout, stderr)
	case "translate":
		return translateCmd(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionLine())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "nuncio: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func runCmd(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("c", "", "config file: a Nuncio simple config or an Envoy v3 bootstrap (YAML or JSON)")
	adminAddr := fs.String("admin", "", "admin API address (default: the config's, else 127.0.0.1:9901)")
	drain := fs.Duration("drain-time", 10*time.Second, "how long to drain connections on SIGTERM")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	watch := fs.Bool("watch", true, "reload the config file when it changes")
	xdsAddr := fs.String("xds", "", "management server HOST:PORT: take listeners, routes, clusters, endpoints and secrets over ADS")
	nodeID := fs.String("node-id", "", "node.id sent to the management server")
	nodeCluster := fs.String("node-cluster", "", "node.cluster sent to the management server")
	delta := fs.Bool("xds-delta", false, "use the incremental (delta) xDS protocol")
	xdsCA := fs.String("xds-tls-ca", "", "PEM `FILE` of the CAs that sign the management server's certificate: connect to --xds over TLS")
	kube := addKubeFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var xds *server.XDSOptions
	if *xdsAddr != "" || *nodeID != "" || *nodeCluster != "" || *delta || *xdsCA != "" {
		// Without --xds the node flags apply to the config file's dynamic_resources.
		xds = &server.XDSOptions{Address: *xdsAddr, NodeID: *nodeID, NodeCluster: *nodeCluster, Delta: *delta, TLSCA: *xdsCA}
	}
	log, lv, err := newLogger(*level, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "nuncio:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if len(kube.kubeconfigs) > 0 {
		if *cfg != "" || xds != nil {
			fmt.Fprintln(stderr, "nuncio: --kubeconfig excludes -c and --xds")
			return 2
		}
		var xdsDone <-chan error
		if xds, xdsDone, err = kube.embeddedXDS(ctx, log); err != nil {
			fmt.Fprintln(stderr, "nuncio:", err)
			return 1
		}
		defer func() {
			stop()
			<-xdsDone
		}()
	}
	srv := server.New(server.Options{
		ConfigPath: *cfg, AdminAddress: *adminAddr, DrainTime: *drain, Logger: log,
		LogLevel: *level, LevelVar: lv, Version: versionString(), Watch: *watch, XDS: xds,
	})
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "nuncio:", err)
		return 1
	}
	return 0
}

func controllerCmd(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("c", "", "config file to serve: a Nuncio simple config or an Envoy v3 bootstrap's static_resources")
	xdsAddr := fs.String("xds-address", "127.0.0.1:18000", "address to serve ADS (gRPC) on")
	healthAddr := fs.String("health-address", "", "address for HTTP /healthz and /readyz (none when empty)")
	drain := fs.Duration("drain-time", 5*time.Second, "how long to let xDS streams close on SIGTERM")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	kube := addKubeFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	useKube := kube.enabled(*cfg)
	if *cfg == "" && !useKube || *cfg != "" && len(kube.kubeconfigs) > 0 {
		fmt.Fprintln(stderr, "usage: nuncio controller -c FILE [--xds-address HOST:PORT]\n       nuncio controller [--kubeconfig [NAME=]PATH]... [--xds-address HOST:PORT] (in a pod: the in-cluster config)")
		return 2
	}
	log, _, err := newLogger(*level, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "nuncio:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var src source.Source = source.NewFile(*cfg, log)
	if useKube {
		p, err := kube.provider(log)
		if err != nil {
			fmt.Fprintln(stderr, "nuncio:", err)
			return 1
		}
		src = p
	}
	err = xdsserver.ListenAndRun(ctx, *xdsAddr, *healthAddr, src,
		xdsserver.Options{Logger: log, DrainTime: *drain})
	if err != nil {
		fmt.Fprintln(stderr, "nuncio:", err)
		return 1
	}
	return 0
}

func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("c", "", "config file (or give it as the argument)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	files := fs.Args()
	if *cfg != "" {
		files = append([]string{*cfg}, files...)
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: nuncio validate FILE...")
		return 2
	}
	status := 0
	for _, f := range files {
		if _, _, err := server.Load(f, httpfilter.Default); err != nil {
			fmt.Fprintln(stderr, err)
			status = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: OK\n", f)
	}
	return status
}

func translateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("translate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	to := fs.String("to", "envoy", "output format (envoy)")
	cfg := fs.String("c", "", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *to != "envoy" {
		fmt.Fprintf(stderr, "nuncio translate: --to %q: only \"envoy\" is supported\n", *to)
		return 2
	}
	path := *cfg
	if path == "" && fs.NArg() == 1 {
		path = fs.Arg(0)
	}
	if path == "" {
		fmt.Fprintln(stderr, "usage: nuncio translate --to envoy -c FILE")
		return 2
	}
	_, src, err := server.Load(path, httpfilter.Default)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	out, err := envoyconfig.MarshalYAML(src)
	if err != nil {
		fmt.Fprintln(stderr, "nuncio translate:", err)
		return 1
	}
	stdout.Write(out)
	return 0
}

// newLogger returns the process's logger and the level it logs at, which the admin API's
// /logging can change while the process runs.
func newLogger(level string, w io.Writer) (*slog.Logger, *slog.LevelVar, error) {
	lv := new(slog.LevelVar)
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, errors.New("--log-level: want debug, info, warn or error")
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), lv, nil
}
