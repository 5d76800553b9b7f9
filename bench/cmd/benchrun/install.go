package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// tools maps each program the benchmark runs to its Debian package.
var tools = []struct{ bin, pkg, proxy string }{
	{"nginx", "nginx", "nginx"},
	{"haproxy", "haproxy", "haproxy"},
	{"caddy", "caddy", "caddy"},
	{"wrk", "wrk", ""},
	{"h2load", "nghttp2-client", ""},
	{"taskset", "util-linux", ""},
}

// installMissing installs, with apt-get, the packages of the programs that are not in PATH:
// the load generators always, the proxies only when they are to be run. The package index is
// refreshed once, and only when something is missing.
func installMissing(proxies []string) error {
	var missing []string
	for _, t := range tools {
		if t.proxy != "" && !slices.Contains(proxies, t.proxy) {
			continue
		}
		if _, err := exec.LookPath(t.bin); err != nil {
			missing = append(missing, t.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var sudo []string
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("sudo"); err != nil {
			return fmt.Errorf("need root (or sudo) to install %s", strings.Join(missing, " "))
		}
		sudo = []string{"sudo"}
	}
	runCmd := func(argv ...string) error {
		argv = append(slices.Clone(sudo), argv...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
		return nil
	}
	// The packages' install scripts would start system-wide nginx, haproxy and caddy on :80
	// and :443; 101 ("action forbidden") from policy-rc.d stops that. An existing policy is
	// left alone.
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); os.IsNotExist(err) {
		if err := runCmd("sh", "-c", "printf '#!/bin/sh\\nexit 101\\n' > "+policy+" && chmod 755 "+policy); err != nil {
			return err
		}
		defer func() { _ = runCmd("rm", "-f", policy) }()
	}
	fmt.Fprintf(os.Stderr, "benchrun: installing %s\n", strings.Join(missing, " "))
	if err := runCmd("apt-get", "update", "-qq"); err != nil {
		return err
	}
	return runCmd(append([]string{"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq", "--no-install-recommends"}, missing...)...)
}
