package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"rkt.dev/rkt/internal/mountinfo"
)

// cgroupEntry is one line of /proc/<pid>/cgroup: "ID:controllers:path".
type cgroupEntry struct {
	hierarchy   int
	controllers []string // empty for the cgroup v2 entry
	path        string
}

// parseProcCgroup parses /proc/<pid>/cgroup.
func parseProcCgroup(r io.Reader) ([]cgroupEntry, error) {
	var entries []cgroupEntry
	s := bufio.NewScanner(r)
	for s.Scan() {
		if s.Text() == "" {
			continue
		}
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("malformed cgroup line %q", s.Text())
		}
		id, err := strconv.Atoi(parts[0])
		if err != nil {
			return nil, fmt.Errorf("malformed cgroup line %q: %w", s.Text(), err)
		}
		e := cgroupEntry{hierarchy: id, path: parts[2]}
		if parts[1] != "" {
			e.controllers = strings.Split(parts[1], ",")
		}
		entries = append(entries, e)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading cgroup file: %w", err)
	}
	return entries, nil
}

// cgroupDir returns the directory of the process's cgroup for controller,
// and whether it is a cgroup v2 directory. A v1 hierarchy carrying the
// controller wins: on a hybrid host the v2 tree exists but has no
// controllers.
//
// The cgroup path is relative to the hierarchy's root, while a mount may
// expose only a subtree (nspawn bind-mounts the container's own cgroup), so
// the mount whose root is the longest prefix of the path is chosen and that
// prefix is stripped. Inside a cgroup namespace both are relative to the
// namespace root and the prefix is "/".
func cgroupDir(entries []cgroupEntry, mounts []mountinfo.Mount, controller string) (string, bool, error) {
	for _, e := range entries {
		if !slices.Contains(e.controllers, controller) {
			continue
		}
		dir, err := resolveCgroup(e.path, mounts, func(m mountinfo.Mount) bool {
			return m.FSType == "cgroup" && slices.Contains(m.SuperOptions, controller)
		})
		return dir, false, err
	}
	for _, e := range entries {
		if e.hierarchy != 0 || len(e.controllers) != 0 {
			continue
		}
		dir, err := resolveCgroup(e.path, mounts, func(m mountinfo.Mount) bool { return m.FSType == "cgroup2" })
		return dir, true, err
	}
	return "", false, fmt.Errorf("no cgroup v1 hierarchy with the %s controller and no cgroup v2 entry in /proc/self/cgroup", controller)
}

// resolveCgroup maps a cgroup path to a directory under a matching mount.
func resolveCgroup(path string, mounts []mountinfo.Mount, match func(mountinfo.Mount) bool) (string, error) {
	var best *mountinfo.Mount
	for i := range mounts {
		m := &mounts[i]
		if match(*m) && within(path, m.Root) && (best == nil || len(m.Root) > len(best.Root)) {
			best = m
		}
	}
	if best == nil {
		return "", fmt.Errorf("no mounted cgroup hierarchy holds %s", path)
	}
	return filepath.Join(best.MountPoint, strings.TrimPrefix(path, best.Root)), nil
}

// within reports whether path is root or below it.
func within(path, root string) bool {
	return root == "/" || path == root || strings.HasPrefix(path, root+"/")
}

// v1Unlimited is the threshold above which a cgroup v1 memory limit means
// "no limit": the kernel reports its page-counter maximum, just below 2^63,
// rounded down to a page.
const v1Unlimited = 1 << 62

// formatMemoryLimit normalises a memory.max or memory.limit_in_bytes value.
func formatMemoryLimit(raw string) (string, error) {
	if raw == "max" {
		return "max", nil
	}
	v, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		return "", fmt.Errorf("parsing memory limit %q: %w", raw, err)
	}
	if v >= v1Unlimited {
		return "max", nil
	}
	return strconv.FormatUint(v, 10), nil
}

// formatCPUQuota turns a CFS quota and period (both in microseconds; quota
// "max" in v2, "-1" in v1 for none) into millicores, the unit of rkt's
// resource/cpu isolator.
func formatCPUQuota(quota, period string) (string, error) {
	if quota == "max" || quota == "-1" {
		return "max", nil
	}
	q, err := strconv.ParseUint(quota, 10, 64)
	if err != nil {
		return "", fmt.Errorf("parsing CPU quota %q: %w", quota, err)
	}
	p, err := strconv.ParseUint(period, 10, 64)
	if err != nil {
		return "", fmt.Errorf("parsing CPU period %q: %w", period, err)
	}
	if p == 0 {
		return "", fmt.Errorf("CPU period is zero")
	}
	return strconv.FormatUint(q*1000/p, 10) + "m", nil
}

// ownCgroupDir finds the calling process's cgroup directory for controller.
func ownCgroupDir(controller string) (string, bool, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", false, fmt.Errorf("reading own cgroups: %w", err)
	}
	entries, err := parseProcCgroup(bytes.NewReader(b))
	if err != nil {
		return "", false, err
	}
	mounts, err := mountinfo.Self()
	if err != nil {
		return "", false, err
	}
	return cgroupDir(entries, mounts, controller)
}

// readTrimmed reads a small cgroup file without its trailing newline.
func readTrimmed(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading cgroup file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func printMemoryLimit(w io.Writer) error {
	dir, v2, err := ownCgroupDir("memory")
	if err != nil {
		return err
	}
	file := "memory.limit_in_bytes"
	if v2 {
		file = "memory.max"
	}
	raw, err := readTrimmed(filepath.Join(dir, file))
	if err != nil {
		return err
	}
	limit, err := formatMemoryLimit(raw)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "memory-limit=%s\n", limit)
	return err
}

func printCPUQuota(w io.Writer) error {
	dir, v2, err := ownCgroupDir("cpu")
	if err != nil {
		return err
	}
	var quota, period string
	if v2 {
		raw, err := readTrimmed(filepath.Join(dir, "cpu.max"))
		if err != nil {
			return err
		}
		var ok bool
		if quota, period, ok = strings.Cut(raw, " "); !ok {
			return fmt.Errorf("malformed cpu.max %q", raw)
		}
	} else {
		if quota, err = readTrimmed(filepath.Join(dir, "cpu.cfs_quota_us")); err != nil {
			return err
		}
		if period, err = readTrimmed(filepath.Join(dir, "cpu.cfs_period_us")); err != nil {
			return err
		}
	}
	q, err := formatCPUQuota(quota, period)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "cpu-quota=%s\n", q)
	return err
}
