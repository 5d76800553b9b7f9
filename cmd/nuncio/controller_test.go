package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/controller/xdsserver/xdstest"
)

func TestControllerUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(simpleBadAddress), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "no file", args: []string{"controller"}, wantCode: 2, wantStderr: "usage: nuncio controller -c FILE"},
		{name: "bad flag", args: []string{"controller", "--nope"}, wantCode: 2, wantStderr: "flag provided but not defined"},
		{name: "missing file", args: []string{"controller", "-c", filepath.Join(dir, "absent.yaml"), "--xds-address", "127.0.0.1:0"},
			wantCode: 1, wantStderr: "absent.yaml: no such file or directory"},
		{name: "bad config", args: []string{"controller", "-c", bad, "--xds-address", "127.0.0.1:0"},
			wantCode: 1, wantStderr: "listeners[0].address"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkExit(t, tc.args, tc.wantCode, tc.wantStderr) })
	}
}

// TestControllerServes runs the controller command, reads its resources over ADS and stops it
// with SIGTERM, as a process manager would.
func TestControllerServes(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "nuncio.yaml")
	if err := os.WriteFile(cfg, []byte(simpleOK), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- realMain([]string{"controller", "-c", cfg, "--xds-address", addr, "--drain-time", "2s"}, &bytes.Buffer{}, &stderr)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The signal handler is in place before the port listens.
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case code := <-done:
			t.Fatalf("controller exited with %d:\n%s", code, stderr.String())
		case <-ctx.Done():
			t.Fatal("controller never listened")
		case <-time.After(10 * time.Millisecond):
		}
	}
	c, err := xdstest.Dial(ctx, addr, "dp-1", false)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Wait(ctx, func(st xdstest.State) bool {
		return len(st.Resources[xdstest.Types[2]]) == 1 && len(st.Resources[xdstest.Types[3]]) == 1 // lds, rds
	})
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after SIGTERM:\n%s", code, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("controller did not stop on SIGTERM")
	}
}

// checkExit runs the command line args and checks its exit code and that stderr says wantStderr.
func checkExit(t *testing.T, args []string, wantCode int, wantStderr string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := realMain(args, &stdout, &stderr); code != wantCode {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, wantCode, stderr.String())
	}
	if !strings.Contains(stderr.String(), wantStderr) {
		t.Errorf("stderr lacks %q:\n%s", wantStderr, stderr.String())
	}
}
