package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// setupRoot runs in a private mount namespace (the starting thread's or the
// exec helper's). It builds the app's root (overlay or bind), its /proc,
// /sys and /dev, its volumes, and finally makes it the caller's root.
func setupRoot(app *App) error {
	// Nothing done from here on may propagate back to the host (or to the
	// guest's own mount namespace).
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := os.MkdirAll(app.Root, 0o755); err != nil {
		return err
	}
	if app.Lower != "" {
		opts := "lowerdir=" + app.Lower + ",upperdir=" + app.Upper + ",workdir=" + app.Work
		if err := unix.Mount("overlay", app.Root, "overlay", 0, opts); err != nil {
			return fmt.Errorf("mounting overlay on %s (%s): %w", app.Root, opts, err)
		}
	} else if err := unix.Mount(app.Root, app.Root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting %s: %w", app.Root, err)
	}
	root, err := unix.Open(app.Root, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("opening root %s: %w", app.Root, err)
	}
	defer unix.Close(root)

	switch app.System {
	case HostSystemMounts:
		for _, d := range []string{"/proc", "/sys", "/dev"} {
			if err := bindInRoot(root, d, d, false, true); err != nil {
				return err
			}
		}
	case PrivateSystemMounts:
		if err := privateSystemMounts(root); err != nil {
			return err
		}
		if err := mountCgroups(root); err != nil {
			return err
		}
		if app.Isolators.MaskKernelPaths {
			if err := maskKernelPaths(root); err != nil {
				return err
			}
		}
	}
	for _, m := range app.Mounts {
		if m.CopyUp {
			if err := copyUp(root, m.Target, m.Source); err != nil {
				return err
			}
		}
		if err := bindInRoot(root, m.Source, m.Target, m.ReadOnly, true); err != nil {
			return err
		}
	}
	if app.ReadOnlyRoot {
		if err := unix.Mount("", app.Root, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("making the root read-only: %w", err)
		}
	}
	return enterRoot(app.Root)
}

// enterRoot makes dir the process's root. pivot_root detaches the old root
// entirely; it cannot work when the old root is the initial ramfs (the kvm
// guest), where moving the new root over "/" and chrooting is the standard
// alternative.
func enterRoot(dir string) error {
	if err := unix.Chdir(dir); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err == nil {
		if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detaching the old root: %w", err)
		}
		return unix.Chdir("/")
	} else if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("pivot_root to %s: %w", dir, err)
	}
	if err := unix.Mount(dir, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("moving %s to /: %w", dir, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot to %s: %w", dir, err)
	}
	return unix.Chdir("/")
}

// privateSystemMounts gives the app a fresh procfs, a read-only sysfs and a
// minimal /dev holding only the devices the appc spec requires.
func privateSystemMounts(root int) error {
	mounts := []struct {
		target, fstype, data string
		flags                uintptr
	}{
		{"/proc", "proc", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"/sys", "sysfs", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY},
		{"/dev", "tmpfs", "mode=755,size=65536k", unix.MS_NOSUID | unix.MS_STRICTATIME},
		{"/dev/pts", "devpts", "newinstance,ptmxmode=0666,mode=0620", unix.MS_NOSUID | unix.MS_NOEXEC},
		{"/dev/shm", "tmpfs", "mode=1777,size=65536k", unix.MS_NOSUID | unix.MS_NODEV},
	}
	for _, m := range mounts {
		fd, err := openInRoot(root, m.target, true)
		if err != nil {
			return err
		}
		err = unix.Mount(m.fstype, fdPath(fd), m.fstype, m.flags, m.data)
		if errors.Is(err, unix.EPERM) && m.fstype == "sysfs" {
			// A user namespace that does not own its network
			// namespace (nspawn --private-users --net=host) may not
			// mount sysfs: bind the supervisor's, read-only.
			err = bindReadOnly(root, fd, m.target, "/sys", m.flags)
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("mounting %s on %s: %w", m.fstype, m.target, err)
		}
	}
	dev, err := openInRoot(root, "/dev", true)
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	nodes := []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}}
	for _, n := range nodes {
		err := unix.Mknodat(dev, n.name, unix.S_IFCHR|0o666, int(unix.Mkdev(n.major, n.minor)))
		if errors.Is(err, unix.EPERM) {
			// In a user namespace (nspawn --private-users) no device
			// can be created: bind the supervisor's own node instead.
			err = bindInRoot(root, "/dev/"+n.name, "/dev/"+n.name, false, false)
			if err == nil {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("creating /dev/%s: %w", n.name, err)
		}
		// mknod honours the umask; the nodes must be usable by any user.
		if err := unix.Fchmodat(dev, n.name, 0o666, 0); err != nil {
			return fmt.Errorf("chmod /dev/%s: %w", n.name, err)
		}
	}
	links := [][2]string{{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"}}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], dev, l[1]); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// bindInRoot bind-mounts source onto target, where target is resolved inside
// root without ever leaving it: a symlink in the image cannot redirect a
// mount onto the host.
func bindInRoot(root int, source, target string, readOnly, recursive bool) error {
	fi, err := os.Stat(source)
	if err != nil {
		return fmt.Errorf("mount source %s: %w", source, err)
	}
	fd, err := openInRoot(root, target, fi.IsDir())
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	flags := uintptr(unix.MS_BIND)
	if recursive {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(source, fdPath(fd), "", flags, ""); err != nil {
		return fmt.Errorf("bind-mounting %s on %s: %w", source, target, err)
	}
	if readOnly {
		// The mount now sits on top of the fd's path; reopen it to reach
		// the new mount rather than the directory below it.
		top, err := openInRoot(root, target, fi.IsDir())
		if err != nil {
			return err
		}
		defer unix.Close(top)
		if err := unix.Mount("", fdPath(top), "", flags|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", target, err)
		}
	}
	return nil
}

// openInRoot opens path (absolute, as the app sees it) below root as an
// O_PATH descriptor, creating missing components (directories, and a file
// for the last one unless dir is set). Symlinks are resolved as if root were
// "/", so nothing outside root can be reached.
func openInRoot(root int, path string, dir bool) (int, error) {
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	clean := filepath.Clean("/" + path)
	if fd, err := unix.Openat2(root, clean, how); err == nil {
		return fd, nil
	} else if !errors.Is(err, unix.ENOENT) {
		return -1, fmt.Errorf("resolving %s in the app root: %w", clean, err)
	}
	parent, err := openInRoot(root, filepath.Dir(clean), true)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	// Creating needs a real directory fd, which O_PATH is not: reopen it
	// through /proc/self/fd, which refers to the same (already resolved)
	// directory.
	pdir, err := unix.Open(fdPath(parent), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening parent of %s: %w", clean, err)
	}
	defer unix.Close(pdir)
	name := filepath.Base(clean)
	if dir {
		err = unix.Mkdirat(pdir, name, 0o755)
	} else {
		var fd int
		fd, err = unix.Openat(pdir, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(fd)
		}
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("creating %s in the app root: %w", clean, err)
	}
	return unix.Openat2(root, clean, how)
}

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// bindReadOnly bind-mounts source (with its submounts) on target, whose
// directory is fd, and makes it read-only, keeping flags (nosuid, nodev,
// noexec), which a user namespace may not drop from a mount it did not
// make.
func bindReadOnly(root, fd int, target, source string, flags uintptr) error {
	if err := unix.Mount(source, fdPath(fd), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	// fd is below the new mount; resolve the path again to reach it.
	top, err := openInRoot(root, target, true)
	if err != nil {
		return err
	}
	defer unix.Close(top)
	return unix.Mount("", fdPath(top), "", flags|unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
}
