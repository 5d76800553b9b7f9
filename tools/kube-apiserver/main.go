// Command kube-apiserver is the upstream Kubernetes API server, unchanged, built from the
// k8s.io/kubernetes module at the version pinned in go.mod. The blank imports are those of
// upstream's cmd/kube-apiserver, which a main package outside k8s.io/kubernetes has to repeat.
package main

import (
	"os"
	_ "time/tzdata" // time zones for CronJob validation

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // the version metric
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
