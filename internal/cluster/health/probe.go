package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// HTTP checks: GET path over HTTP/1.1 straight to the host's address, keeping the
// connection between checks as Envoy does.

type httpProber struct {
	cfg       *model.HTTPHealthCheck
	authority string
	scheme    string
	tr        *http.Transport
}

func newHTTPProber(cfg *model.HTTPHealthCheck, opts *Options, timeout time.Duration) *httpProber {
	p := &httpProber{cfg: cfg, authority: cfg.Host, scheme: "http"}
	if p.authority == "" {
		p.authority = opts.Cluster
	}
	p.tr = &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: timeout}).DialContext,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       time.Hour,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
	if opts.TLS != nil {
		tc := opts.TLS.Clone()
		tc.NextProtos = []string{"http/1.1"}
		p.tr.TLSClientConfig = tc
		p.scheme = "https"
	}
	return p
}

func (p *httpProber) newProbe(addr string) probe {
	return &httpProbe{p: p, url: p.scheme + "://" + addr + p.cfg.Path}
}

func (p *httpProber) close() { p.tr.CloseIdleConnections() }

type httpProbe struct {
	p   *httpProber
	url string
}

func (h *httpProbe) check(ctx context.Context) error {
	cfg := h.p.cfg
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return err
	}
	req.Host = h.p.authority
	req.Header.Set("User-Agent", "Envoy/HC")
	for _, hv := range cfg.RequestHeaders {
		if hv.Append {
			req.Header.Add(hv.Name, hv.Value)
		} else {
			req.Header.Set(hv.Name, hv.Value)
		}
	}
	for _, n := range cfg.RemoveHeaders {
		req.Header.Del(n)
	}
	resp, err := h.p.tr.RoundTrip(req)
	if err != nil {
		return &networkError{err}
	}
	// Drain a little so the connection can be reused; a large body is not read.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if !statusExpected(cfg.ExpectedStatuses, resp.StatusCode) {
		return fmt.Errorf("status %d not expected", resp.StatusCode)
	}
	return nil
}

func (h *httpProbe) close() {}

func statusExpected(ranges []model.StatusRange, code int) bool {
	if len(ranges) == 0 {
		return code == 200
	}
	for _, r := range ranges {
		if code >= r.Start && code < r.End {
			return true
		}
	}
	return false
}

// TCP checks: connect; with a payload, send it and expect every receive block in order.

type tcpProber struct {
	cfg *model.TCPHealthCheck
	tls *tls.Config
}

func (p *tcpProber) newProbe(addr string) probe { return &tcpProbe{p: p, addr: addr} }
func (p *tcpProber) close()                     {}

type tcpProbe struct {
	p    *tcpProber
	addr string
}

func (t *tcpProbe) check(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return &networkError{err}
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	cfg := t.p.cfg
	if len(cfg.Send) == 0 && len(cfg.Receive) == 0 {
		return nil
	}
	if len(cfg.Send) > 0 {
		if _, err := conn.Write(cfg.Send); err != nil {
			return &networkError{err}
		}
	}
	if len(cfg.Receive) == 0 {
		return nil
	}
	var got []byte
	buf := make([]byte, 4096)
	for {
		if receivedAll(got, cfg.Receive) {
			return nil
		}
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if receivedAll(got, cfg.Receive) {
				return nil
			}
			return fmt.Errorf("expected bytes not received: %w", err)
		}
		if len(got) > 1<<20 {
			return fmt.Errorf("expected bytes not in the first 1 MiB")
		}
	}
}

// receivedAll reports whether every block appears in got, in order (Envoy's matching).
func receivedAll(got []byte, blocks [][]byte) bool {
	for _, b := range blocks {
		i := bytes.Index(got, b)
		if i < 0 {
			return false
		}
		got = got[i+len(b):]
	}
	return true
}

func (t *tcpProbe) close() {}

// gRPC checks: grpc.health.v1.Health/Check over h2c, or TLS when the cluster has it.

type grpcProber struct {
	cfg       *model.GRPCHealthCheck
	authority string
	creds     credentials.TransportCredentials
}

func newGRPCProber(cfg *model.GRPCHealthCheck, opts *Options) *grpcProber {
	p := &grpcProber{cfg: cfg, authority: cfg.Authority, creds: insecure.NewCredentials()}
	if p.authority == "" {
		p.authority = opts.Cluster
	}
	if opts.TLS != nil {
		tc := opts.TLS.Clone()
		tc.NextProtos = []string{"h2"}
		p.creds = credentials.NewTLS(tc)
	}
	return p
}

func (p *grpcProber) newProbe(addr string) probe {
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(p.creds), grpc.WithAuthority(p.authority))
	return &grpcProbe{p: p, cc: cc, err: err}
}

func (p *grpcProber) close() {}

type grpcProbe struct {
	p   *grpcProber
	cc  *grpc.ClientConn
	err error
}

func (g *grpcProbe) check(ctx context.Context) error {
	if g.err != nil {
		return g.err
	}
	resp, err := healthpb.NewHealthClient(g.cc).Check(ctx, &healthpb.HealthCheckRequest{Service: g.p.cfg.ServiceName})
	switch status.Code(err) {
	case codes.OK:
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return &networkError{err}
	default:
		return err // the server answered: NotFound for an unknown service, Unimplemented, …
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("grpc health status %s", s)
	}
	return nil
}

func (g *grpcProbe) close() {
	if g.cc != nil {
		g.cc.Close()
	}
}
