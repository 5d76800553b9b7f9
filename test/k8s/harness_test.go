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
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the programs tests start inside the namespace.
	switch os.Getenv("K8STEST_HELPER") {
	case "":
		code := Main(m)
		if nuncioBuild.path != "" {
			os.RemoveAll(filepath.Dir(nuncioBuild.path))
		}
		os.Exit(code)
	case "backend":
		os.Exit(backendMain())
	default:
		os.Exit(helper())
	}
}

// helper runs in a child process started inside the namespace, as the controller would be.
func helper() int {
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("K8STEST_KUBECONFIG"))
	if err == nil {
		var cs *kubernetes.Clientset
		if cs, err = kubernetes.NewForConfig(cfg); err == nil {
			_, err = cs.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{})
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ok")
	return 0
}

// testNamespace creates a Kubernetes namespace for one test. No namespace controller runs, so
// it is not deleted: it goes with the environment.
func testNamespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = fmt.Sprintf("%s-%d", name, time.Now().UnixNano()%1e6)
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), Namespace(name), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

func clientset(t *testing.T, env *Env) *kubernetes.Clientset {
	t.Helper()
	cs, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestAPIServer checks what the controller's tests rely on: the real API server's version, its
// validation of EndpointSlice addresses, and watches.
func TestAPIServer(t *testing.T) {
	env := Shared(t)
	cs := clientset(t, env)
	ctx := context.Background()

	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v.GitVersion, "v1.36.") {
		t.Errorf("server version %s, want v1.36.x", v.GitVersion)
	}
	ns := testNamespace(t, cs)

	if _, err := cs.CoreV1().Services(ns).Create(ctx, Service(ns, "web", 80), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, EndpointSlice(ns, "web", "web-1", 8080, BackendAddr), metav1.CreateOptions{}); err != nil {
		t.Fatalf("EndpointSlice with %s: %v", BackendAddr, err)
	}
	// Why backends live at BackendAddr in a namespace rather than on the host's loopback.
	_, err = cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, EndpointSlice(ns, "web", "web-lo", 8080, "127.0.0.1"), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Errorf("EndpointSlice with 127.0.0.1: got %v, want it refused as invalid", err)
	}

	w, err := cs.NetworkingV1().Ingresses(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ing := Ingress(ns, "web", "nuncio", IngressRule{Host: "a.example", Path: "/", Service: "web", Port: 80})
	if ing, err = cs.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	SetRules(ing, IngressRule{Host: "b.example", Path: "/b", Service: "web", Port: 80})
	if _, err = cs.NetworkingV1().Ingresses(ns).Update(ctx, ing, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.NetworkingV1().Ingresses(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	timeout := time.After(30 * time.Second)
	for len(got) < 3 {
		select {
		case ev := <-w.ResultChan():
			ing, ok := ev.Object.(*networkingv1.Ingress)
			if !ok {
				t.Fatalf("watch: %s event: %v", ev.Type, ev.Object)
			}
			got = append(got, fmt.Sprintf("%s %s", ev.Type, ing.Spec.Rules[0].Host))
		case <-timeout:
			t.Fatalf("watch: got %v before the timeout", got)
		}
	}
	want := []string{string(watch.Added) + " a.example", string(watch.Modified) + " b.example", string(watch.Deleted) + " b.example"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("watch events %v, want %v", got, want)
	}
}

// TestNetns checks the namespace's plumbing: a backend the test serves at BackendAddr inside the
// namespace, reached through Env's dialer; and a process inside the namespace using the
// kubeconfig, as the controller does.
func TestNetns(t *testing.T) {
	env := Shared(t)
	l, err := env.Listen("tcp", net.JoinHostPort(BackendAddr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "backend")
	})}
	go srv.Serve(l)
	defer srv.Close()
	resp, err := env.HTTPClient().Get("http://" + l.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "backend" {
		t.Errorf("backend answered %q", body)
	}

	argv := env.Argv(os.Args[0], "-test.run=^$")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "K8STEST_HELPER=1", "K8STEST_KUBECONFIG="+env.Kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("client inside the namespace with the kubeconfig: %v: %s", err, out)
	}
}

// TestClose checks that an environment of its own (Start's, New's) leaves nothing behind: its
// processes end and its namespace goes.
func TestClose(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second API server")
	}
	env, err := New(context.Background(), Options{Dir: t.TempDir(), Logf: t.Logf})
	if IsSkip(err) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	sleeper, err := env.StartProcess("sleep", "/bin/sleep", "600")
	if err != nil {
		env.Close()
		t.Fatal(err)
	}
	pids := []int{env.etcd.PID(), env.apiserver.PID(), sleeper.PID()}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		// Close waited for each process, so its PID is gone (not even a zombie).
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !os.IsNotExist(err) {
			t.Errorf("process %d still exists after Close", pid)
		}
	}
	if _, err := os.Stat(env.Netns.path); !os.IsNotExist(err) {
		t.Errorf("namespace %s still exists after Close", env.Netns.Name)
	}
}
