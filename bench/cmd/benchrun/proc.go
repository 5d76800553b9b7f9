package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTick is USER_HZ, the unit of the CPU times in /proc. Linux fixes it at 100 for user space
// on every architecture it runs on, whatever the kernel's own HZ.
const clockTick = 100

// procCPU is the CPU time a process has used, from fields 14 (utime) and 15 (stime) of
// /proc/PID/stat, in clock ticks.
type procCPU struct {
	PPID  int
	Utime uint64
	Stime uint64
}

// parseStat reads the parent PID, utime and stime from the contents of a /proc/PID/stat file.
// The command name (field 2) is in parentheses and may itself hold spaces and parentheses, so
// fields are counted from the last closing parenthesis.
func parseStat(b []byte) (procCPU, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return procCPU{}, fmt.Errorf("stat: no command name")
	}
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state); utime is field 14 and stime field 15.
	if len(f) < 13 {
		return procCPU{}, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procCPU{}, fmt.Errorf("stat: ppid: %w", err)
	}
	ut, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return procCPU{}, fmt.Errorf("stat: utime: %w", err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return procCPU{}, fmt.Errorf("stat: stime: %w", err)
	}
	return procCPU{PPID: ppid, Utime: ut, Stime: st}, nil
}

func readStat(pid int) (procCPU, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procCPU{}, err
	}
	return parseStat(b)
}

// treePIDs returns pid and all its descendants (nginx's workers are children of its master).
func treePIDs(pid int) []int {
	children := map[int][]int{}
	ents, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, e := range ents {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		s, err := parseStat(b)
		if err != nil {
			continue
		}
		p, _ := strconv.Atoi(filepath.Base(filepath.Dir(e)))
		children[s.PPID] = append(children[s.PPID], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// cpuTicks sums utime+stime over pids; a PID that is gone counts nothing.
func cpuTicks(pids []int) uint64 {
	var t uint64
	for _, p := range pids {
		if s, err := readStat(p); err == nil {
			t += s.Utime + s.Stime
		}
	}
	return t
}

// parseStatusKiB returns the value in KiB of a "Key:   123 kB" line of /proc/PID/status.
func parseStatusKiB(b []byte, key string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, key+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	return 0, fmt.Errorf("status: no %s", key)
}

// statusKiB sums a /proc/PID/status memory figure (VmRSS, VmHWM) over pids.
func statusKiB(pids []int, key string) uint64 {
	var t uint64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		if v, err := parseStatusKiB(b, key); err == nil {
			t += v
		}
	}
	return t
}

// cpuBusy is the busy time of each CPU from /proc/stat, in clock ticks: everything but idle
// and iowait. Steal counts as busy: on a shared host it is other load taking our cores.
type cpuBusy map[string]uint64

func parseProcStat(b []byte) (cpuBusy, error) {
	out := cpuBusy{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		var busy uint64
		// user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is
		// already included in user.
		for i, v := range f[1:9] {
			if i == 3 || i == 4 {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/stat: %s: %w", f[0], err)
			}
			busy += n
		}
		out[f[0]] = busy
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("/proc/stat: no per-CPU lines")
	}
	return out, nil
}

func readProcStat() (cpuBusy, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return parseProcStat(b)
}

// delta returns the busy ticks of the named CPUs between two readings.
func (after cpuBusy) delta(before cpuBusy, cpus ...string) uint64 {
	var t uint64
	for _, c := range cpus {
		if after[c] > before[c] {
			t += after[c] - before[c]
		}
	}
	return t
}

// kernelThreads returns the PIDs of the processes whose command name starts with prefix.
func kernelThreads(prefix string) []int {
	var out []int
	ents, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, e := range ents {
		b, err := os.ReadFile(e)
		if err != nil || !strings.HasPrefix(string(b), prefix) {
			continue
		}
		if p, err := strconv.Atoi(filepath.Base(filepath.Dir(e))); err == nil {
			out = append(out, p)
		}
	}
	return out
}
