package qemu

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Guest RAM must be shared memory, because vhost-user back ends (virtiofsd,
// the userspace vsock device) map it. A memfd is the simple choice, but
// memfds live on the kernel's internal shmem mount, which hosts normally
// run without transparent huge pages (shmem_enabled=never, Debian's
// default): every 4 KiB page the guest touches is then a separate host
// page fault. Booting a pod touches tens of MiB; measured under TCG on a
// 2-core host, a memfd-backed boot took 0.77 s against 0.65 s for the same
// boot with 2 MiB pages. Under KVM, huge pages also mean fewer EPT entries
// and TLB misses for the whole life of the pod.
//
// So guest RAM is a file on a tmpfs of its own, mounted with huge=always
// (the mount option applies whatever the host-wide shmem setting is, short
// of "deny"). The tmpfs is never attached to any mount namespace: it is
// created with fsopen/fsmount as a detached mount, the RAM file is an
// O_TMPFILE in it, and the only reference left is the file itself, which
// QEMU inherits. Nothing appears on the host, nothing needs cleaning up:
// the file system goes away with the last process holding the file.

// ramFD is the descriptor number of the guest RAM file in QEMU (the first
// of exec.Cmd.ExtraFiles).
const ramFD = 3

// guestRAMFile returns an empty file, on a private huge-page tmpfs limited
// to sizeMiB, for QEMU to map as guest RAM. It fails where the kernel has
// no new mount API (before 5.2) or no transparent huge pages for tmpfs;
// callers then fall back to a memfd.
func guestRAMFile(sizeMiB int) (*os.File, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating a tmpfs for guest RAM: %w", err)
	}
	defer unix.Close(fs)
	for _, o := range []struct{ key, value string }{
		{"huge", "always"},
		// QEMU sizes the file to exactly the VM's memory; the limit
		// keeps anything else from growing it.
		{"size", fmt.Sprintf("%dm", sizeMiB)},
		{"nr_inodes", "2"},
		{"mode", "0700"},
	} {
		if err := unix.FsconfigSetString(fs, o.key, o.value); err != nil {
			return nil, fmt.Errorf("configuring the guest RAM tmpfs (%s=%s): %w", o.key, o.value, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return nil, fmt.Errorf("creating the guest RAM tmpfs: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOEXEC|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return nil, fmt.Errorf("mounting the guest RAM tmpfs: %w", err)
	}
	defer unix.Close(mnt)
	fd, err := unix.Openat(mnt, ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating the guest RAM file: %w", err)
	}
	return os.NewFile(uintptr(fd), "guest-ram"), nil
}
