// Package k8stest runs tests against a real Kubernetes API server: Debian's etcd and a
// kube-apiserver built from the k8s.io/kubernetes module (tools/kube-apiserver.sh), never a fake
// client, so that what the controller meets in tests (validation, defaulting, resource versions,
// watch semantics) is what it meets in a cluster.
//
// Everything an end-to-end test starts runs inside a private network namespace the test creates
// ("ip netns add"): etcd and the API server on the namespace's 127.0.0.1, backends on a
// documentation address (192.0.2.10) added to the namespace's loopback, and the controller and
// data plane beside them. The API server refuses EndpointSlice addresses in 127.0.0.0/8, so the
// backends need an address that is not loopback; in the namespace that address is reachable and
// no traffic can leave. The test process itself stays in the host namespace and reaches into the
// namespace through [Env.DialContext] and [Env.Listen], which create their sockets on an OS thread
// that has entered the namespace; a socket keeps its namespace for its whole life.
//
// A package's tests share one environment: TestMain calls [Main], and tests call [Shared]. [Start]
// gives a test an environment of its own, and [New] serves programs such as the benchmark.
package k8stest
