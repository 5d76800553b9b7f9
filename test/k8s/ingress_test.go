package k8stest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The class and controller name the controller serves by default.
const (
	ingressClass   = "nuncio"
	controllerName = "nuncio.dev/ingress-controller"
)

var nuncioBuild struct {
	once sync.Once
	path string
	err  error
}

// nuncioBinary builds cmd/nuncio once for the package.
func nuncioBinary(t *testing.T) string {
	t.Helper()
	nuncioBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "nuncio-k8s-bin-")
		if err != nil {
			nuncioBuild.err = err
			return
		}
		nuncioBuild.path = filepath.Join(dir, "nuncio")
		out, err := exec.Command("go", "build", "-o", nuncioBuild.path, "../../cmd/nuncio").CombinedOutput()
		if err != nil {
			nuncioBuild.err = fmt.Errorf("building nuncio: %v\n%s", err, out)
		}
	})
	if nuncioBuild.err != nil {
		t.Fatal(nuncioBuild.err)
	}
	return nuncioBuild.path
}

// gateway is a controller and a data plane running in the environment's namespace.
type gateway struct {
	env        *Env
	controller *Process
	dataPlane  *Process
	// addr is the data plane's HTTP listener, the Ingress translation's default port 80: the
	// namespace is private, so the port is free.
	addr   string
	client *http.Client
}

func startGateway(t *testing.T, env *Env, nuncio string) *gateway {
	t.Helper()
	ports, err := env.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	xdsPort, adminPort := ports[0], ports[1]
	xds := fmt.Sprintf("127.0.0.1:%d", xdsPort)
	g := &gateway{env: env, addr: "127.0.0.1:80", client: env.HTTPClient()}
	g.controller = env.StartProcessT(t, "controller", nuncio, "controller",
		"--kubeconfig", env.Kubeconfig, "--xds-address", xds, "--log-level", "debug")
	g.dataPlane = env.StartProcessT(t, "data-plane", nuncio, "run",
		"--xds", xds, "--node-id", "gw-1", "--admin", fmt.Sprintf("127.0.0.1:%d", adminPort), "--log-level", "debug")
	return g
}

// get sends GET path with Host host through the data plane and returns the status and body, or
// the connection error as the body with status 0.
func (g *gateway) get(host, path string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, "http://"+g.addr+path, nil)
	if err != nil {
		return 0, err.Error()
	}
	req.Host = host
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// eventually polls until the data plane's answers to GET host+path satisfy ok, for at most
// 30 seconds; it measures nothing about how fast.
func (g *gateway) eventually(t *testing.T, what, host, path string, ok func(status int, body string) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var status int
	var body string
	for {
		for _, p := range []*Process{g.controller, g.dataPlane} {
			if done, _ := p.Exited(); done {
				t.Fatal(p.exitError())
			}
		}
		status, body = g.get(host, path)
		if ok(status, body) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: GET http://%s%s: last answer %d %q", what, host, path, status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func answers(name string) func(int, string) bool {
	return func(status int, body string) bool { return status == http.StatusOK && body == name }
}

// notRouted is the data plane's answer to a request that no route matches: 404, or no listener.
func notRouted(status int, _ string) bool { return status == http.StatusNotFound || status == 0 }

// backend starts a backend process inside the namespace (this test binary, as backendMain)
// serving HTTP at addr and answering its name, and waits until it listens.
func backend(t *testing.T, env *Env, name, addr string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := env.StartProcessT(t, "backend-"+name, "/usr/bin/env",
		"K8STEST_HELPER=backend", "K8STEST_BACKEND_NAME="+name, "K8STEST_BACKEND_ADDR="+addr, self)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := env.DialContext(context.Background(), "tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if done, _ := p.Exited(); done {
			t.Fatal(p.exitError())
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %s at %s: %v", name, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// backendMain is a backend process: HTTP at $K8STEST_BACKEND_ADDR answering
// $K8STEST_BACKEND_NAME.
func backendMain() int {
	name := os.Getenv("K8STEST_BACKEND_NAME")
	err := http.ListenAndServe(os.Getenv("K8STEST_BACKEND_ADDR"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, name)
	}))
	fmt.Fprintln(os.Stderr, err)
	return 1
}

func ensureIngressClass(t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	_, err := cs.NetworkingV1().IngressClasses().Create(context.Background(), IngressClass(ingressClass, controllerName), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// TestIngress applies an Ingress, Services and EndpointSlices pointing at backends in the
// namespace, runs `nuncio controller --kubeconfig` and `nuncio run --xds` beside them, and
// follows the data plane's answers as the objects change and go.
func TestIngress(t *testing.T) {
	env := Shared(t)
	nuncio := nuncioBinary(t)
	cs := clientset(t, env)
	ctx := context.Background()
	ensureIngressClass(t, cs)
	ns := testNamespace(t, cs)

	const port = 8080
	addrA, addrB1, addrB2 := "192.0.2.10", "192.0.2.11", "192.0.2.12"
	backend(t, env, "a", net.JoinHostPort(addrA, fmt.Sprint(port)))
	backend(t, env, "b1", net.JoinHostPort(addrB1, fmt.Sprint(port)))
	backend(t, env, "b2", net.JoinHostPort(addrB2, fmt.Sprint(port)))

	for _, svc := range []string{"a", "b"} {
		if _, err := cs.CoreV1().Services(ns).Create(ctx, Service(ns, svc, 80), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	slices := cs.DiscoveryV1().EndpointSlices(ns)
	if _, err := slices.Create(ctx, EndpointSlice(ns, "a", "a-1", port, addrA), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sliceB, err := slices.Create(ctx, EndpointSlice(ns, "b", "b-1", port, addrB1), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ingresses := cs.NetworkingV1().Ingresses(ns)
	ing, err := ingresses.Create(ctx, Ingress(ns, "web", ingressClass,
		IngressRule{Host: "a.example", Path: "/", Service: "a", Port: 80},
		IngressRule{Host: "b.example", Path: "/b", Service: "b", Port: 80},
	), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	gw := startGateway(t, env, nuncio)
	gw.eventually(t, "host a.example to a", "a.example", "/", answers("a"))
	gw.eventually(t, "path /b on b.example to b", "b.example", "/b/x", answers("b1"))
	gw.eventually(t, "unknown host", "c.example", "/", notRouted)

	t.Run("path change", func(t *testing.T) {
		SetRules(ing,
			IngressRule{Host: "a.example", Path: "/", Service: "a", Port: 80},
			IngressRule{Host: "b.example", Path: "/c", Service: "b", Port: 80},
		)
		if ing, err = ingresses.Update(ctx, ing, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		gw.eventually(t, "new path /c", "b.example", "/c", answers("b1"))
		gw.eventually(t, "old path /b gone", "b.example", "/b", notRouted)
	})

	t.Run("host change", func(t *testing.T) {
		SetRules(ing,
			IngressRule{Host: "a2.example", Path: "/", Service: "a", Port: 80},
			IngressRule{Host: "b.example", Path: "/c", Service: "b", Port: 80},
		)
		if ing, err = ingresses.Update(ctx, ing, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		gw.eventually(t, "new host a2.example", "a2.example", "/", answers("a"))
		gw.eventually(t, "old host a.example gone", "a.example", "/", notRouted)
	})

	t.Run("endpoint added", func(t *testing.T) {
		SetEndpoints(sliceB, addrB1, addrB2)
		if sliceB, err = slices.Update(ctx, sliceB, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Both answer once the data plane balances over the two endpoints.
		gw.eventually(t, "new endpoint b2 serves", "b.example", "/c", answers("b2"))
		gw.eventually(t, "old endpoint b1 still serves", "b.example", "/c", answers("b1"))
	})

	t.Run("endpoint removed", func(t *testing.T) {
		SetEndpoints(sliceB, addrB2)
		if sliceB, err = slices.Update(ctx, sliceB, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The removal has taken effect when b1 has not answered 20 requests in a row.
		deadline := time.Now().Add(30 * time.Second)
		for streak := 0; streak < 20; {
			status, body := gw.get("b.example", "/c")
			switch {
			case status == http.StatusOK && body == "b2":
				streak++
			case time.Now().After(deadline):
				t.Fatalf("b1 still answers after its endpoint was removed: last %d %q", status, body)
			default:
				streak = 0
				time.Sleep(50 * time.Millisecond)
			}
		}
	})

	t.Run("slice deleted", func(t *testing.T) {
		if err := slices.Delete(ctx, sliceB.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		gw.eventually(t, "b without endpoints", "b.example", "/c", func(status int, _ string) bool {
			return status == http.StatusServiceUnavailable || status == http.StatusNotFound
		})
		gw.eventually(t, "a unaffected", "a2.example", "/", answers("a"))
	})

	t.Run("ingress deleted", func(t *testing.T) {
		if err := ingresses.Delete(ctx, ing.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		gw.eventually(t, "a2.example gone", "a2.example", "/", notRouted)
	})
}

// TestRunWithKubeconfig runs controller and data plane as one process (`nuncio run
// --kubeconfig`), the small-setup mode, and follows an Ingress from creation to deletion.
func TestRunWithKubeconfig(t *testing.T) {
	env := Shared(t)
	nuncio := nuncioBinary(t)
	cs := clientset(t, env)
	ctx := context.Background()
	ensureIngressClass(t, cs)
	ns := testNamespace(t, cs)

	const port = 8080
	addr := "192.0.2.13"
	backend(t, env, "solo", net.JoinHostPort(addr, fmt.Sprint(port)))
	if _, err := cs.CoreV1().Services(ns).Create(ctx, Service(ns, "solo", 80), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, EndpointSlice(ns, "solo", "solo-1", port, addr), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ingresses := cs.NetworkingV1().Ingresses(ns)
	ing, err := ingresses.Create(ctx, Ingress(ns, "solo", ingressClass,
		IngressRule{Host: "solo.example", Path: "/", Service: "solo", Port: 80},
	), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	ports, err := env.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	p := env.StartProcessT(t, "gateway", nuncio, "run",
		"--kubeconfig", env.Kubeconfig, "--admin", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--log-level", "debug")
	// One process plays both parts; eventually watches it for an early exit either way.
	gw := &gateway{env: env, controller: p, dataPlane: p, addr: "127.0.0.1:80", client: env.HTTPClient()}
	gw.eventually(t, "solo.example to solo", "solo.example", "/", answers("solo"))

	if err := ingresses.Delete(ctx, ing.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gw.eventually(t, "solo.example gone", "solo.example", "/", notRouted)
}
