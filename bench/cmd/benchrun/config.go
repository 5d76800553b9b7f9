package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
)

// Route is one route of the many-routes scenario. Kinds rotate prefix, regex, header so that a
// proxy cannot answer the scenario with one kind of index.
type Route struct {
	Index       int
	Kind        string // "prefix", "regex" or "header" (a prefix plus an exact header value)
	Prefix      string
	Regex       string
	Header      string
	HeaderValue string
}

// HeaderVar is the header's name as an nginx variable suffix ($http_x_bench_route).
func (r Route) HeaderVar() string { return strings.ReplaceAll(r.Header, "-", "_") }

const routeHeader = "x-bench-route"

// manyRoutes returns n routes, all to the same upstream, with the kinds mixed.
func manyRoutes(n int) []Route {
	rs := make([]Route, n)
	for i := range rs {
		r := Route{Index: i}
		switch i % 3 {
		case 0:
			r.Kind, r.Prefix = "prefix", fmt.Sprintf("/p/%d/", i)
		case 1:
			r.Kind, r.Regex = "regex", fmt.Sprintf("^/r/%d/[a-z]+$", i)
		default:
			r.Kind, r.Prefix = "header", fmt.Sprintf("/h/%d/", i)
			r.Header, r.HeaderValue = routeHeader, strconv.Itoa(i)
		}
		rs[i] = r
	}
	return rs
}

// routeRequest is a request that only route r matches.
type routeRequest struct {
	Path    string
	Headers map[string]string
}

func requestFor(r Route) routeRequest {
	switch r.Kind {
	case "prefix":
		return routeRequest{Path: r.Prefix + "x"}
	case "regex":
		return routeRequest{Path: fmt.Sprintf("/r/%d/abc", r.Index)}
	default:
		return routeRequest{Path: r.Prefix + "x", Headers: map[string]string{r.Header: r.HeaderValue}}
	}
}

// lastRequests returns requests hitting the last k routes, one per route: the worst case for a
// proxy that scans its routes in order.
func lastRequests(rs []Route, k int) []routeRequest {
	var out []routeRequest
	for _, r := range rs[max(0, len(rs)-k):] {
		out = append(out, requestFor(r))
	}
	return out
}

// configData is what the templates under bench/configs see.
type configData struct {
	Dir          string // scratch directory for pid files, logs, temporary files
	Mode         string // "h1", "h2c" or "tls"
	Listen       string
	ListenHost   string
	ListenPort   string
	Upstream     string
	UpstreamHost string
	UpstreamPort string
	AdminPort    int
	MaxConns     int // connections a proxy must accept: the open-file limit
	Cert, Key    string
	CertKey      string // certificate and key in one PEM file, for HAProxy
	Routes       []Route
}

func newConfigData(dir, mode, listen, upstream string, adminPort, maxConns int, tlsFiles certFiles, routes []Route) configData {
	lh, lp, _ := net.SplitHostPort(listen)
	uh, up, _ := net.SplitHostPort(upstream)
	return configData{
		Dir: dir, Mode: mode,
		Listen: listen, ListenHost: lh, ListenPort: lp,
		Upstream: upstream, UpstreamHost: uh, UpstreamPort: up,
		AdminPort: adminPort, MaxConns: maxConns,
		Cert: tlsFiles.Cert, Key: tlsFiles.Key, CertKey: tlsFiles.CertKey,
		Routes: routes,
	}
}

// render executes the template file tmplPath with d and writes the result to out.
func render(tmplPath, out string, d configData) error {
	t, err := template.New(filepath.Base(tmplPath)).Option("missingkey=error").ParseFiles(tmplPath)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := t.Execute(f, d); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", tmplPath, err)
	}
	return f.Close()
}

type certFiles struct{ Cert, Key, CertKey string }

// writeCert generates a self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost into
// dir. It is made at run time so that no key is ever committed.
func writeCert(dir string) (certFiles, error) {
	c, err := certs.New(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}, nil)
	if err != nil {
		return certFiles{}, err
	}
	certPEM, keyPEM := c.CertPEM, c.KeyPEM
	f := certFiles{
		Cert:    filepath.Join(dir, "bench.crt"),
		Key:     filepath.Join(dir, "bench.key"),
		CertKey: filepath.Join(dir, "bench.pem"),
	}
	for path, b := range map[string][]byte{f.Cert: certPEM, f.Key: keyPEM, f.CertKey: append(certPEM, keyPEM...)} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return certFiles{}, err
		}
	}
	return f, nil
}
