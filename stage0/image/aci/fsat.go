package aci

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// This file holds the descriptor-relative file operations extraction is
// built on. Every path is walked one component at a time from the
// directory descriptor of the target root with O_NOFOLLOW, so no symlink is
// ever followed, wherever it came from.

const openDirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// openDir opens the directory rel (a clean relative path, or ".") below
// root. With create, missing directories are created (mode 0755) and
// symlinks or other non-directories in the way are replaced by
// directories; without it, anything but a real directory is an error. The
// caller closes the returned descriptor.
func openDir(root int, rel string, create bool) (int, error) {
	fd, err := unix.Dup(root)
	if err != nil {
		return -1, fmt.Errorf("duplicating directory descriptor: %w", err)
	}
	if rel == "." {
		return fd, nil
	}
	for c := range strings.SplitSeq(rel, "/") {
		next, err := openChild(fd, c, create)
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("opening directory %q: %w", rel, err)
		}
		fd = next
	}
	return fd, nil
}

func openChild(dir int, name string, create bool) (int, error) {
	fd, err := unix.Openat(dir, name, openDirFlags, 0)
	if err == nil || !create {
		return fd, err
	}
	switch {
	case errors.Is(err, unix.ENOENT):
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
		// A symlink or a file from an earlier layer: replace, never follow.
		if err := unix.Unlinkat(dir, name, 0); err != nil {
			return -1, err
		}
	default:
		return -1, err
	}
	if err := unix.Mkdirat(dir, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	return unix.Openat(dir, name, openDirFlags, 0)
}

// removeAt removes name in dir, recursively if it is a directory, without
// following symlinks. A missing name is not an error.
func removeAt(dir int, name string) error {
	var st unix.Stat_t
	err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case err != nil:
		return err
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return unix.Unlinkat(dir, name, 0)
	}
	fd, err := unix.Openat(dir, name, openDirFlags, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAt(fd, n); err != nil {
				break
			}
		}
	}
	f.Close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(dir, name, unix.AT_REMOVEDIR)
}
