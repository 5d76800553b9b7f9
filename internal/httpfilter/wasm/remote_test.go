package wasm_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/wasm/wasmtest"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// remoteYAML is a Wasm config whose code comes from uri.
func remoteYAML(uri, sum string) string {
	return fmt.Sprintf(`{config: {name: remote, vm_config: {code: {remote: {http_uri: {uri: %q, cluster: plugins, timeout: 2s},
		sha256: %q, retry_policy: {num_retries: 2, retry_back_off: {base_interval: 0.01s}}}}}}}`, uri, sum)
}

// TestRemoteCode fetches plugins from a real HTTP server: good code loads, code with another
// hash and a server that fails are rejected with the field, and code fetched once is kept.
func TestRemoteCode(t *testing.T) {
	code := wasmtest.Build(t, "header_rewrite")
	// Fetched code is kept under the cache directory by its hash; start without it.
	if dir := os.Getenv("NUNCIO_WASM_CACHE_DIR"); dir != "" {
		os.Remove(filepath.Join(dir, "remote", sha(code)+".wasm"))
	}
	var served atomic.Int32
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if failing.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Write(code)
	}))
	t.Cleanup(srv.Close)
	refused := "http://" + closedAddr(t) + "/p.wasm"
	for _, tc := range []struct {
		name      string
		yaml      string
		fail      bool
		wantErr   string
		wantFetch int32 // requests the server saw
	}{
		{name: "fetched and checked", yaml: remoteYAML(srv.URL+"/p.wasm", sha(code)), wantFetch: 1},
		{name: "kept: no second fetch", yaml: remoteYAML(srv.URL+"/p.wasm", sha(code)), fail: true},
		{name: "wrong sha256", yaml: remoteYAML(srv.URL+"/p.wasm", sha([]byte("other"))), wantFetch: 1,
			wantErr: "config.vm_config.code: remote.sha256: " + srv.URL + "/p.wasm serves code hashing to " + sha(code)},
		{name: "server fails: retried, then rejected", yaml: remoteYAML(srv.URL+"/q.wasm", sha([]byte("q"))), fail: true, wantFetch: 3,
			wantErr: "config.vm_config.code: remote.http_uri.uri: GET " + srv.URL + "/q.wasm: status 503"},
		{name: "server down", yaml: remoteYAML(refused, sha([]byte("r"))),
			wantErr: "config.vm_config.code: remote.http_uri.uri:"},
		{name: "sha256 required", yaml: remoteYAML(srv.URL+"/p.wasm", ""), wantErr: "config.vm_config.code: remote.sha256: required"},
		{name: "cluster required", yaml: strings.Replace(remoteYAML(srv.URL+"/p.wasm", sha(code)), "cluster: plugins, ", "", 1),
			wantErr: "config.vm_config.code: remote.http_uri.cluster: required"},
		{name: "retry_on not supported", yaml: strings.Replace(remoteYAML(srv.URL+"/p.wasm", sha(code)), "num_retries: 2", "num_retries: 2, retry_on: x", 1),
			wantErr: "config.vm_config.code.remote.retry_policy.retry_on: not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failing.Store(tc.fail)
			before := served.Load()
			_, err := decode(t, tc.yaml)
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if got := served.Load() - before; got != tc.wantFetch {
				t.Errorf("%d fetches, want %d", got, tc.wantFetch)
			}
		})
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
