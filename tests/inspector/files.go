package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"rkt.dev/rkt/internal/mountinfo"
)

func printEnv(w io.Writer, names []string) error {
	for _, name := range names {
		line := name + " (unset)"
		if v, ok := os.LookupEnv(name); ok {
			line = name + "=" + v
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

func printUser(w io.Writer) error {
	groups, err := os.Getgroups()
	if err != nil {
		return fmt.Errorf("getting supplementary groups: %w", err)
	}
	slices.Sort(groups)
	ids := make([]string, len(groups))
	for i, g := range groups {
		ids[i] = strconv.Itoa(g)
	}
	_, err = fmt.Fprintf(w, "uid=%d gid=%d groups=%s\n", os.Getuid(), os.Getgid(), strings.Join(ids, ","))
	return err
}

func printCwd(w io.Writer) error {
	dir, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("getting working directory: %w", err)
	}
	_, err = fmt.Fprintf(w, "cwd=%s\n", dir)
	return err
}

func printHostname(w io.Writer) error {
	name, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("getting hostname: %w", err)
	}
	_, err = fmt.Fprintf(w, "hostname=%s\n", name)
	return err
}

func printKernel(w io.Writer) error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fmt.Errorf("uname: %w", err)
	}
	_, err := fmt.Fprintf(w, "kernel=%s\n", unix.ByteSliceToString(u.Release[:]))
	return err
}

func checkMounts(w io.Writer, paths []string) error {
	mounts, err := mountinfo.Self()
	if err != nil {
		return err
	}
	for _, p := range paths {
		// mountinfo shows resolved paths, so a symlinked PATH must be
		// resolved the same way to be found.
		abs, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("resolving %s: %w", p, err)
		}
		resolved, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return fmt.Errorf("resolving %s: %w", p, err)
		}
		m, ok := containingMount(mounts, resolved)
		if !ok {
			return fmt.Errorf("no mount holds %s", resolved)
		}
		_, err = fmt.Fprintf(w, "mount=%s mountpoint=%t readonly=%t fstype=%s\n",
			p, m.MountPoint == resolved, m.ReadOnly(), m.FSType)
		if err != nil {
			return err
		}
	}
	return nil
}

// containingMount returns the mount that path lives on: the one with the
// longest mountpoint that is path or a parent of it and, of mounts stacked
// on the same point, the last (topmost) one.
func containingMount(mounts []mountinfo.Mount, path string) (mountinfo.Mount, bool) {
	best := -1
	for i, m := range mounts {
		if within(path, m.MountPoint) && (best == -1 || len(m.MountPoint) >= len(mounts[best].MountPoint)) {
			best = i
		}
	}
	if best == -1 {
		return mountinfo.Mount{}, false
	}
	return mounts[best], true
}

// writeFile writes content to path atomically (a temporary file in the same
// directory, renamed over path), because another app of the pod may poll
// for path and must never see it half written.
func writeFile(w io.Writer, path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "wrote=%s\n", path)
	return err
}

func readFiles(w io.Writer, paths []string) error {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "<<<%s>>>\n", b); err != nil {
			return err
		}
	}
	return nil
}

func statFiles(w io.Writer, paths []string) error {
	for _, p := range paths {
		// Lstat: malicious-image tests need to see a symlink itself, not
		// whatever it points to on the host.
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("no ownership information for %s", p)
		}
		_, err = fmt.Fprintf(w, "stat=%s type=%s mode=%04o uid=%d gid=%d\n",
			p, fileType(fi.Mode()), st.Mode&0o7777, st.Uid, st.Gid)
		if err != nil {
			return err
		}
	}
	return nil
}

// fileType names the type bits of a file mode.
func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeCharDevice != 0:
		return "chardev"
	case m&fs.ModeDevice != 0:
		return "blockdev"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	default:
		return "file"
	}
}
