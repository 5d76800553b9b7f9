package k8stest

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// request sends method path with Host host and the given header pairs through the data plane.
func (g *gateway) request(method, host, path string, headers ...string) (int, string, http.Header) {
	req, err := http.NewRequest(method, "http://"+g.addr+path, nil)
	if err != nil {
		return 0, err.Error(), nil
	}
	req.Host = host
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body)), resp.Header
}

func basicCredentials(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// TestIngressAuthPolicies serves Ingresses with ingress-nginx's basic-auth, source-range and
// CORS annotations through a real API server, controller and data plane, and sends allowed and
// denied requests.
func TestIngressAuthPolicies(t *testing.T) {
	env := Shared(t)
	nuncio := nuncioBinary(t)
	cs := clientset(t, env)
	ctx := context.Background()
	ensureIngressClass(t, cs)
	ns := testNamespace(t, cs)

	const port = 8080
	addr := "192.0.2.20"
	backend(t, env, "protected", net.JoinHostPort(addr, fmt.Sprint(port)))
	if _, err := cs.CoreV1().Services(ns).Create(ctx, Service(ns, "protected", 80), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, EndpointSlice(ns, "protected", "protected-1", port, addr), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// alice's entry is htpasswd's default ($apr1$, `openssl passwd -apr1 -salt saltsalt
	// secret`), bob's is {SHA}.
	bobSHA := sha1.Sum([]byte("bob-pw"))
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "users"},
		StringData: map[string]string{"auth": "alice:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0\nbob:{SHA}" +
			base64.StdEncoding.EncodeToString(bobSHA[:]) + "\n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const nginx = "nginx.ingress.kubernetes.io/"
	for _, ing := range []struct {
		name, host  string
		annotations map[string]string
	}{
		{name: "basic", host: "basic.example", annotations: map[string]string{
			nginx + "auth-type": "basic", nginx + "auth-secret": "users", nginx + "auth-realm": "Staff only",
		}},
		{name: "loopback-only", host: "loopback.example", annotations: map[string]string{nginx + "whitelist-source-range": "127.0.0.0/8, 192.0.2.0/24"}},
		{name: "ten-only", host: "ten.example", annotations: map[string]string{nginx + "whitelist-source-range": "10.0.0.0/8"}},
		{name: "loopback-denied", host: "denied.example", annotations: map[string]string{nginx + "denylist-source-range": "127.0.0.1"}},
		{name: "cors", host: "cors.example", annotations: map[string]string{
			nginx + "enable-cors": "true", nginx + "cors-allow-origin": "https://app.example, https://*.app.example",
			nginx + "cors-max-age": "600",
		}},
	} {
		obj := Ingress(ns, ing.name, ingressClass, IngressRule{Host: ing.host, Path: "/", Service: "protected", Port: 80})
		obj.Annotations = ing.annotations
		if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	gw := startGateway(t, env, nuncio)
	// Every Ingress is served once its host answers something other than 404.
	for _, host := range []string{"basic.example", "loopback.example", "ten.example", "denied.example", "cors.example"} {
		gw.eventually(t, host+" served", host, "/", func(status int, _ string) bool { return status != 0 && status != http.StatusNotFound })
	}

	for _, tc := range []struct {
		name    string
		method  string
		host    string
		headers []string
		status  int
		body    string            // "" to not check
		want    map[string]string // response headers; "" means absent
	}{
		{name: "basic auth: apr1 user", host: "basic.example", headers: []string{"authorization", basicCredentials("alice", "secret")}, status: 200, body: "protected"},
		{name: "basic auth: SHA user", host: "basic.example", headers: []string{"authorization", basicCredentials("bob", "bob-pw")}, status: 200, body: "protected"},
		{name: "basic auth: no credentials", host: "basic.example", status: 401, want: map[string]string{"www-authenticate": `Basic realm="Staff only"`}},
		{name: "basic auth: wrong password", host: "basic.example", headers: []string{"authorization", basicCredentials("alice", "Secret")}, status: 401},
		{name: "basic auth: malformed", host: "basic.example", headers: []string{"authorization", "Basic %%%"}, status: 401},
		{name: "source range: allowed", host: "loopback.example", status: 200, body: "protected"},
		{name: "source range: not allowed", host: "ten.example", status: 403, body: "RBAC: access denied"},
		{name: "source range: forged X-Forwarded-For", host: "ten.example", headers: []string{"x-forwarded-for", "10.1.2.3"}, status: 403},
		{name: "deny range", host: "denied.example", status: 403, body: "RBAC: access denied"},
		{name: "CORS: preflight from a listed origin", method: "OPTIONS", host: "cors.example",
			headers: []string{"origin", "https://app.example", "access-control-request-method", "POST"}, status: 200, body: "",
			want: map[string]string{"access-control-allow-origin": "https://app.example", "access-control-max-age": "600"}},
		{name: "CORS: preflight from a wildcard subdomain", method: "OPTIONS", host: "cors.example",
			headers: []string{"origin", "https://x.app.example", "access-control-request-method", "GET"}, status: 200,
			want: map[string]string{"access-control-allow-origin": "https://x.app.example"}},
		{name: "CORS: preflight from an unlisted origin reaches the backend", method: "OPTIONS", host: "cors.example",
			headers: []string{"origin", "https://evil.example", "access-control-request-method", "POST"}, status: 200, body: "protected",
			want: map[string]string{"access-control-allow-origin": ""}},
		{name: "CORS: simple request", host: "cors.example", headers: []string{"origin", "https://app.example"}, status: 200, body: "protected",
			want: map[string]string{"access-control-allow-origin": "https://app.example", "vary": "Origin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			status, body, h := gw.request(method, tc.host, "/", tc.headers...)
			if status != tc.status || tc.body != "" && body != tc.body {
				t.Fatalf("got %d %q, want %d %q", status, body, tc.status, tc.body)
			}
			if tc.name == "CORS: preflight from a listed origin" && body != "" {
				t.Errorf("preflight reached the backend: %q", body)
			}
			for k, v := range tc.want {
				if got := h.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}

	t.Run("changed users take effect", func(t *testing.T) {
		sec, err := cs.CoreV1().Secrets(ns).Get(ctx, "users", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sec.StringData = map[string]string{"auth": "bob:{SHA}" + base64.StdEncoding.EncodeToString(bobSHA[:]) + "\n"}
		if _, err := cs.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, _, _ := gw.request(http.MethodGet, "basic.example", "/", "authorization", basicCredentials("alice", "secret"))
			if status == http.StatusUnauthorized {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("alice still answered %d after leaving the secret", status)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if status, body, _ := gw.request(http.MethodGet, "basic.example", "/", "authorization", basicCredentials("bob", "bob-pw")); status != 200 || body != "protected" {
			t.Errorf("bob: %d %q", status, body)
		}
	})
}
