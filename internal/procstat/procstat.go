// Package procstat reads a process's family and age from /proc: its parent
// and start time from /proc/PID/stat (fly's stop, kvm's check that a
// recorded pid still names the same process) and its children (stop
// --force, nspawn finding the container's PID 1).
package procstat

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stat holds the fields of /proc/PID/stat rkt uses.
type Stat struct {
	PPID int
	// StartTime is in clock ticks since boot (field 22).
	StartTime uint64
}

// Read parses /proc/PID/stat.
func Read(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	return parse(pid, string(b))
}

func parse(pid int, s string) (Stat, error) {
	// The command name (field 2) may hold spaces and parentheses; the
	// fields after its last ")" are fixed, starting with field 3.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat: parent %q", pid, f[1])
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat: start time %q", pid, f[19])
	}
	return Stat{PPID: ppid, StartTime: start}, nil
}

// Children lists the child processes of pid. The kernel keeps them per
// thread, and a Go process forks from any of its threads, so every thread's
// list is read. A process that is gone has none.
func Children(pid int) []int {
	lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var kids []int
	for _, l := range lists {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}
