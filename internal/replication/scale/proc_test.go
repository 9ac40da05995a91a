package scale

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is Linux's USER_HZ (sysconf(_SC_CLK_TCK)), 100 on every
// platform Go supports.
const clockTicks = 100

// statFields reads /proc/<pid>/stat after the command name.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	return strings.Fields(s[i+1:]), nil // [0] is the state (field 3)
}

// cpuSeconds is the user+system CPU time the process has used.
func cpuSeconds(pid int) float64 {
	f, err := statFields(pid)
	if err != nil || len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64) // utime, field 14
	s, _ := strconv.ParseFloat(f[12], 64) // stime, field 15
	return (u + s) / clockTicks
}

// family is pid and every process whose parent is pid (PostgreSQL's
// backends and workers under the postmaster).
func family(pid int) []int {
	out := []int{pid}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil || p == pid {
			continue
		}
		if f, err := statFields(p); err == nil && len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}

// familyCPU sums the CPU of pid's family now (exited backends' time is
// lost: PostgreSQL's backends live as long as their connections, which
// the pool keeps).
func familyCPU(pid int) float64 {
	t := 0.0
	for _, p := range family(pid) {
		t += cpuSeconds(p)
	}
	return t
}

// memKB reads VmRSS and VmHWM (peak) from /proc/<pid>/status.
func memKB(pid int) (rss, peak int) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			peak = n
		}
	}
	return rss, peak
}

// listening finds the process listening on a loopback TCP port (through
// /proc/net/tcp's socket inode and the processes' open files).
func listening(port int) (int, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	inode := ""
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" { // LISTEN
			continue
		}
		_, p, _ := strings.Cut(f[1], ":")
		if n, _ := strconv.ParseInt(p, 16, 32); int(n) == port {
			inode = f[9]
		}
	}
	if inode == "" {
		return 0, fmt.Errorf("nothing listens on port %d", port)
	}
	want := "socket:[" + inode + "]"
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && l == want {
			return strconv.Atoi(strings.Split(fd, "/")[2])
		}
	}
	return 0, fmt.Errorf("no process owns the listener on port %d", port)
}
