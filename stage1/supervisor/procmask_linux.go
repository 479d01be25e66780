package supervisor

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// maskedPaths are the parts of a private /proc that expose or control the
// host kernel, which a container must not read (kernel memory, symbols,
// keys, timers of every process on the host) or write (sysrq, sysctls,
// IRQ affinity). It is the union of what rkt's stage1 protected and what
// runc's default OCI spec masks: hidden ones are covered by /dev/null or an
// empty read-only tmpfs, the others stay readable but read-only. Paths the
// running kernel does not have are skipped.
var maskedPaths = []struct {
	path   string
	hidden bool
}{
	{"/proc/acpi", true},
	{"/proc/config.gz", true},
	{"/proc/kallsyms", true},
	{"/proc/kcore", true},
	{"/proc/keys", true},
	{"/proc/latency_stats", true},
	{"/proc/sched_debug", true},
	{"/proc/scsi", true},
	{"/proc/timer_list", true},
	{"/proc/timer_stats", true},
	{"/proc/bus", false},
	{"/proc/fs", false},
	{"/proc/irq", false},
	{"/proc/sys", false},
	{"/proc/sysrq-trigger", false},
}

// maskKernelPaths applies maskedPaths inside the app's root.
func maskKernelPaths(root int) error {
	for _, m := range maskedPaths {
		fd, err := unix.Openat2(root, m.path, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("masking %s: %w", m.path, err)
		}
		err = maskOne(root, fd, m.path, m.hidden)
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	return nil
}

func maskOne(root, fd int, path string, hidden bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("masking %s: %w", path, err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case hidden && isDir:
		if err := unix.Mount("tmpfs", fdPath(fd), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0,mode=555"); err != nil {
			return fmt.Errorf("masking %s: %w", path, err)
		}
	case hidden:
		if err := unix.Mount("/dev/null", fdPath(fd), "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("masking %s: %w", path, err)
		}
	default:
		if err := unix.Mount(fdPath(fd), fdPath(fd), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", path, err)
		}
		// The bind now sits on top of fd; resolve the path again to
		// reach it. procfs's nosuid, nodev and noexec are kept, as a
		// user namespace (--private-users) requires of a remount.
		top, err := openInRoot(root, path, isDir)
		if err != nil {
			return err
		}
		flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		err = unix.Mount("", fdPath(top), "", flags, "")
		unix.Close(top)
		if err != nil {
			return fmt.Errorf("making %s read-only: %w", path, err)
		}
	}
	return nil
}
