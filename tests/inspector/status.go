package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// parseStatus reads a /proc/<pid>/status file into its "Key:\tvalue" pairs.
// The kernel, not a library, is the source of truth for capabilities,
// no_new_privs and seccomp: it shows what the process really got, whichever
// way stage1 set it up.
func parseStatus(r io.Reader) (map[string]string, error) {
	fields := map[string]string{}
	s := bufio.NewScanner(r)
	for s.Scan() {
		key, value, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		fields[key] = strings.TrimSpace(value)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading status: %w", err)
	}
	return fields, nil
}

// printStatus reads the status file of process pid (0: this one) and prints
// the line format renders.
func printStatus(w io.Writer, pid int, format func(map[string]string) (string, error)) error {
	proc := "self"
	if pid > 0 {
		proc = strconv.Itoa(pid)
	}
	b, err := os.ReadFile("/proc/" + proc + "/status")
	if err != nil {
		return fmt.Errorf("reading process status: %w", err)
	}
	status, err := parseStatus(bytes.NewReader(b))
	if err != nil {
		return err
	}
	line, err := format(status)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, line)
	return err
}

// statusField renders status field key as "name=value".
func statusField(key, name string) func(map[string]string) (string, error) {
	return func(status map[string]string) (string, error) {
		v, ok := status[key]
		if !ok {
			return "", fmt.Errorf("the kernel does not report %s in /proc/self/status", key)
		}
		return name + "=" + v, nil
	}
}

// formatCaps renders the effective, permitted and bounding sets with a
// fixed width, so tests can compare them as strings or parse them as
// numbers.
func formatCaps(status map[string]string) (string, error) {
	sets := []struct{ key, name string }{
		{"CapEff", "cap-effective"},
		{"CapPrm", "cap-permitted"},
		{"CapBnd", "cap-bounding"},
	}
	parts := make([]string, 0, len(sets))
	for _, s := range sets {
		raw, ok := status[s.key]
		if !ok {
			return "", fmt.Errorf("the kernel does not report %s in /proc/self/status", s.key)
		}
		v, err := strconv.ParseUint(raw, 16, 64)
		if err != nil {
			return "", fmt.Errorf("parsing %s: %w", s.key, err)
		}
		parts = append(parts, fmt.Sprintf("%s=0x%016x", s.name, v))
	}
	return strings.Join(parts, " "), nil
}
