package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// copyUp fills the empty volume directory dst with what the app's image has
// at target, as Docker (and rkt) do for a volume the image declares: an
// image's VOLUME /data keeps the files the image put there. target is
// resolved inside root and never through a symlink out of it. Files,
// directories and symlinks are copied with their modes, owners and
// modification times, and dst takes the mode and owner of the image's
// directory; devices, fifos and sockets are skipped, and hard links become
// separate copies. Symlinks are copied as they are, never followed.
//
// Nothing happens when dst is not empty (another app of the pod filled it
// first) or when the image has no directory at target.
func copyUp(root int, target, dst string) error {
	how := &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	src, err := unix.Openat2(root, filepath.Clean("/"+target), how)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("filling volume %s from the image's %s: %w", dst, target, err)
	}
	defer unix.Close(src)
	d, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("filling volume %s: %w", dst, err)
	}
	defer unix.Close(d)
	names, err := dirNames(d)
	if err != nil || len(names) > 0 {
		return err
	}
	if err := copyDir(src, d); err != nil {
		return fmt.Errorf("filling volume %s from the image's %s: %w", dst, target, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return err
	}
	return copyMetadata(d, &st)
}

// copyDir copies the entries of the directory src into the directory dst.
func copyDir(src, dst int) error {
	names, err := dirNames(src)
	if err != nil {
		return err
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			err = copySubdir(src, dst, name, &st)
		case unix.S_IFREG:
			err = copyFile(src, dst, name, &st)
		case unix.S_IFLNK:
			err = copySymlink(src, dst, name, &st)
		default:
			continue // a device, fifo or socket: not data
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func copySubdir(src, dst int, name string, st *unix.Stat_t) error {
	if err := unix.Mkdirat(dst, name, 0o700); err != nil {
		return err
	}
	const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	s, err := unix.Openat(src, name, dirFlags, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	d, err := unix.Openat(dst, name, dirFlags, 0)
	if err != nil {
		return err
	}
	defer unix.Close(d)
	if err := copyDir(s, d); err != nil {
		return err
	}
	return copyMetadata(d, st)
}

func copyFile(src, dst int, name string, st *unix.Stat_t) error {
	s, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	in := os.NewFile(uintptr(s), name)
	defer in.Close()
	d, err := unix.Openat(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	out := os.NewFile(uintptr(d), name)
	_, err = io.Copy(out, in)
	if err == nil {
		err = copyMetadata(d, st)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func copySymlink(src, dst int, name string, st *unix.Stat_t) error {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(src, name, buf)
	if err != nil {
		return err
	}
	if err := unix.Symlinkat(string(buf[:n]), dst, name); err != nil {
		return err
	}
	// Symlinks have no mode of their own on Linux; owner and times are
	// set on the link itself, never on what it points to.
	if err := unix.Fchownat(dst, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	return unix.UtimesNanoAt(dst, name, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

// copyMetadata gives the open file or directory fd the owner, mode and
// modification time in st. It works on descriptors the copy opened itself,
// so nothing another process does to the names meanwhile can redirect it.
// The owner comes first: chown clears the setuid and setgid bits the mode
// may set.
func copyMetadata(fd int, st *unix.Stat_t) error {
	if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, st.Mode&0o7777); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := unix.UtimesNanoAt(fd, "", []unix.Timespec{st.Atim, st.Mtim}, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("setting times: %w", err)
	}
	return nil
}

// dirNames lists the entries of the open directory fd, without "." and
// "..", reading from its current offset.
func dirNames(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, fmt.Errorf("reading directory: %w", err)
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}
