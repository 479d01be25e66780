// Package mountinfo parses /proc/<pid>/mountinfo.
//
// Both sides of the functional tests need to see mounts: the harness, to
// find what a test's pods left mounted under its data directory before it
// deletes the directory, and the inspector running inside a pod, to report
// mountpoints and to locate its own cgroup files. It lives here, in a
// package without test dependencies, so the static inspector binary can
// import it too.
package mountinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Mount is one line of a mountinfo file (see proc(5)).
type Mount struct {
	// ID and Parent are the mount's and its parent's unique IDs.
	ID, Parent int
	// Root is the directory of the mounted file system that appears at
	// MountPoint: "/" for a whole file system, a subdirectory for a bind
	// mount or a cgroup mounted from a nested cgroup.
	Root string
	// MountPoint is relative to the reading process's root directory.
	MountPoint string
	// Options are the per-mount options, such as "ro" or "nosuid".
	Options []string
	// FSType is the file system type, such as "ext4" or "cgroup2".
	FSType string
	// Source is the mount source, such as "/dev/vda" or "tmpfs".
	Source string
	// SuperOptions are the per-superblock options; for cgroup v1 they name
	// the controllers of the hierarchy.
	SuperOptions []string
}

// ReadOnly reports whether the mount itself is read-only. A read-only
// superblock also shows up here, because the kernel reports the effective
// per-mount flag.
func (m Mount) ReadOnly() bool { return slices.Contains(m.Options, "ro") }

// Self returns the mounts visible to the calling process.
func Self() ([]Mount, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading mount table: %w", err)
	}
	return Parse(bytes.NewReader(b))
}

// Parse reads mountinfo lines from r, in the kernel's order (a mount appears
// after the mount it is on, except after mount moves).
func Parse(r io.Reader) ([]Mount, error) {
	var mounts []Mount
	s := bufio.NewScanner(r)
	for n := 1; s.Scan(); n++ {
		if strings.TrimSpace(s.Text()) == "" {
			continue
		}
		m, err := parseLine(s.Text())
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		mounts = append(mounts, m)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	return mounts, nil
}

// parseLine parses
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// where the optional fields before "-" may be absent or repeated.
func parseLine(line string) (Mount, error) {
	fields := strings.Fields(line)
	sep := slices.Index(fields, "-")
	if sep < 6 || len(fields) < sep+4 {
		return Mount{}, fmt.Errorf("malformed line %q", line)
	}
	id, err := strconv.Atoi(fields[0])
	if err != nil {
		return Mount{}, fmt.Errorf("bad mount ID in %q: %w", line, err)
	}
	parent, err := strconv.Atoi(fields[1])
	if err != nil {
		return Mount{}, fmt.Errorf("bad parent ID in %q: %w", line, err)
	}
	return Mount{
		ID:           id,
		Parent:       parent,
		Root:         unescape(fields[3]),
		MountPoint:   unescape(fields[4]),
		Options:      strings.Split(fields[5], ","),
		FSType:       fields[sep+1],
		Source:       unescape(fields[sep+2]),
		SuperOptions: strings.Split(fields[sep+3], ","),
	}, nil
}

// unescape undoes the kernel's octal escaping of space, tab, newline and
// backslash (\040, \011, \012, \134) in paths.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
