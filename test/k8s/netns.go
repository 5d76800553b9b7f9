package k8stest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// netnsPrefix names the namespaces this package creates; the creator's PID follows it, so that a
// namespace left behind by a killed test run can be recognised and removed by the next one.
const netnsPrefix = "nuncio-test-"

// BackendAddr is a documentation address (RFC 5737 TEST-NET-1) for backends. It is added to the
// namespace's loopback as 192.0.2.10/24, and on a loopback interface Linux makes the whole prefix
// local, as it does 127.0.0.0/8: every 192.0.2.x can be listened on in the namespace (backends
// that differ by address: 192.0.2.11, 192.0.2.12, …), and exists nowhere else.
const BackendAddr = "192.0.2.10"

// advertiseAddr is what the API server publishes as its own address. It must not be loopback;
// it lies in BackendAddr's prefix, so nothing addressed to it can leave the namespace.
const advertiseAddr = "192.0.2.1"

// Netns is a network namespace created with `ip netns add`, holding only a loopback interface
// with 127.0.0.1/8 and 192.0.2.10/24.
type Netns struct {
	Name string
	// path is the namespace's bind mount, /run/netns/NAME, which setns(2) takes.
	path string
}

// NewNetns creates a namespace and brings its loopback up with the test addresses.
func NewNetns() (*Netns, error) {
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, skipError{"ip (iproute2) not found: install Debian's iproute2 (tools/test-deps.sh does)"}
	}
	if os.Geteuid() != 0 {
		return nil, skipError{"creating a network namespace needs root"}
	}
	removeStaleNetns()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := netnsPrefix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
	if err := ip("netns", "add", name); err != nil {
		return nil, err
	}
	ns := &Netns{Name: name, path: filepath.Join("/run/netns", name)}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", BackendAddr + "/24", "dev", "lo"},
	} {
		if err := ip(append([]string{"-n", name}, args...)...); err != nil {
			ns.Delete()
			return nil, err
		}
	}
	return ns, nil
}

// Delete removes the namespace. Processes still inside keep it alive until they exit, so stop
// them first.
func (ns *Netns) Delete() error {
	return ip("netns", "delete", ns.Name)
}

// Wrap returns the command line that runs name with args inside the namespace. `ip netns exec`
// execs the program in place, so the PID of the started command is the program's own.
func (ns *Netns) Wrap(name string, args ...string) []string {
	return append([]string{"ip", "netns", "exec", ns.Name, name}, args...)
}

// Do runs fn on an OS thread that has entered the namespace. Sockets fn creates belong to the
// namespace for their whole life, whichever thread uses them later. Go schedules goroutines over
// threads freely, so fn runs on a thread locked to a goroutine of its own, which goes back to
// the host namespace afterwards; if it cannot, the thread is discarded with the goroutine.
func (ns *Netns) Do(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		host, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer host.Close()
		target, err := os.Open(ns.path)
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("k8stest: entering network namespace %s: %w", ns.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(host.Fd()), unix.CLONE_NEWNET); err != nil {
			// Still locked: the thread ends with this goroutine instead of serving others
			// inside the namespace.
			done <- fmt.Errorf("k8stest: leaving network namespace %s: %w", ns.Name, err)
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// DialContext connects to addr inside the namespace.
func (ns *Netns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens on addr inside the namespace.
func (ns *Netns) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := ns.Do(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// removeStaleNetns deletes the namespaces of earlier test processes that no longer run (killed
// before their cleanup could run). Namespaces of live processes, other test runs included, stay.
func removeStaleNetns() {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), netnsPrefix)
		if !ok {
			continue
		}
		pid, _, _ := strings.Cut(rest, "-")
		if n, err := strconv.Atoi(pid); err != nil || n == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); os.IsNotExist(err) {
			_ = ip("netns", "delete", e.Name())
		}
	}
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("k8stest: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
