package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// Envoy's defaults for a remote data source: one retry, a 1 s base back-off capped at ten
// times the base.
const (
	defaultRetries     = 1
	defaultBaseBackoff = time.Second
)

// fetchRemote returns the module a remote data source names: from the on-disk cache when a
// module with its sha256 is there, else fetched from http_uri.uri (retried as retry_policy
// says) and checked against sha256 before it is kept. The fetch goes to the URI directly; the
// cluster Envoy requires in http_uri is checked for presence but not used yet.
func fetchRemote(rs *corev3.RemoteDataSource) ([]byte, error) {
	want := strings.ToLower(rs.GetSha256())
	if want == "" {
		return nil, errors.New("remote.sha256: required")
	}
	if b, err := hex.DecodeString(want); err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("remote.sha256: %q is not a hex SHA-256", rs.GetSha256())
	}
	hu := rs.GetHttpUri()
	if hu == nil {
		return nil, errors.New("remote.http_uri: required")
	}
	if hu.GetCluster() == "" {
		return nil, errors.New("remote.http_uri.cluster: required")
	}
	if !strings.HasPrefix(hu.GetUri(), "http://") && !strings.HasPrefix(hu.GetUri(), "https://") {
		return nil, fmt.Errorf("remote.http_uri.uri: %q is not an http or https URL", hu.GetUri())
	}
	if hu.GetTimeout() == nil {
		return nil, errors.New("remote.http_uri.timeout: required")
	}
	if err := hu.GetTimeout().CheckValid(); err != nil || hu.GetTimeout().AsDuration() <= 0 {
		return nil, errors.New("remote.http_uri.timeout: must be above 0")
	}
	cached := ""
	if dir := cacheDir(); dir != "" {
		cached = filepath.Join(dir, "remote", want+".wasm")
		if b, err := os.ReadFile(cached); err == nil && hashOf(b) == want {
			return b, nil
		}
	}
	retries, base := defaultRetries, defaultBaseBackoff
	limit := 10 * base
	if rp := rs.GetRetryPolicy(); rp != nil {
		if n := rp.GetNumRetries(); n != nil {
			retries = int(min(n.GetValue(), 10))
		}
		if d := rp.GetRetryBackOff().GetBaseInterval(); d != nil {
			base, limit = d.AsDuration(), 10*d.AsDuration()
		}
		if d := rp.GetRetryBackOff().GetMaxInterval(); d != nil {
			limit = d.AsDuration()
		}
	}
	backoff := base
	var err error
	for attempt := 0; ; attempt++ {
		var b []byte
		b, err = fetch(hu.GetUri(), hu.GetTimeout().AsDuration())
		if err == nil {
			if got := hashOf(b); got != want {
				return nil, fmt.Errorf("remote.sha256: %s serves code hashing to %s, want %s", hu.GetUri(), got, want)
			}
			if cached != "" {
				keep(cached, b)
			}
			return b, nil
		}
		if attempt >= retries {
			break
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, limit)
	}
	return nil, fmt.Errorf("remote.http_uri.uri: %w", err)
}

func fetch(uri string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", uri, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCodeBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCodeBytes {
		return nil, fmt.Errorf("GET %s: more than %d bytes", uri, maxCodeBytes)
	}
	return b, nil
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// keep writes fetched code to the cache; a failure only costs a fetch next time.
func keep(path string, b []byte) {
	if os.MkdirAll(filepath.Dir(path), 0o755) != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(path), "fetch-*")
	if err != nil {
		return
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr != nil || cerr != nil || os.Rename(f.Name(), path) != nil {
		_ = os.Remove(f.Name())
	}
}
