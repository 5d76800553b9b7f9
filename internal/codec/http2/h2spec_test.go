package http2

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// h2specBinary finds h2spec (github.com/summerwind/h2spec): $NUNCIO_H2SPEC, PATH, or
// $GOPATH/bin, where `go install github.com/summerwind/h2spec/cmd/h2spec@latest` puts it.
func h2specBinary() string {
	if p := os.Getenv("NUNCIO_H2SPEC"); p != "" {
		return p
	}
	if p, err := exec.LookPath("h2spec"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", "h2spec")
	if runtime.GOOS == "windows" {
		p += ".exe"
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// TestH2Spec runs h2spec's whole suite (generic, HTTP/2 and HPACK cases) against the server
// over h2c and requires every case to pass.
func TestH2Spec(t *testing.T) {
	bin := h2specBinary()
	if bin == "" {
		t.Skip("h2spec not found: go install github.com/summerwind/h2spec/cmd/h2spec@latest")
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	ts := newTestServer(t, Config{}, &testHandler{})
	host, port, _ := strings.Cut(ts.addr, ":")
	out, err := exec.Command(bin, "-h", host, "-p", port, "-o", "2", "--strict").CombinedOutput()
	m := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("h2spec: %v\n%s", err, out)
	}
	t.Logf("h2spec: %s", m[0])
	if string(m[4]) != "0" {
		t.Errorf("h2spec failures:\n%s", failures(string(out)))
	}
}

// failures keeps the failed cases of h2spec's report.
func failures(out string) string {
	if i := strings.Index(out, "Failures:"); i >= 0 {
		return out[i:]
	}
	return out
}
