package network

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"rkt.dev/rkt/internal/netns"
)

// createNetns makes a new network namespace and bind-mounts it at path, so
// it lives on without any process in it until removeNetns.
//
// unshare(CLONE_NEWNET) only moves the calling thread, so this runs on a
// locked thread, which is then moved back (netns.Do's creation twin). The
// thread must not simply be thrown away: a child the stage1 started
// earlier from it (virtiofsd, with a parent-death signal) would be killed.
func createNetns(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("creating network namespace file %s: %w", path, err)
	}
	f.Close()
	err = netns.New(func() error {
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting the network namespace on %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// removeNetns unmounts and removes a namespace made by createNetns. A
// missing or already unmounted file is fine, so gc can call it repeatedly.
func removeNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing network namespace %s: %w", path, err)
	}
	return nil
}

// isNetns reports whether path is a mounted network namespace.
func isNetns(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}
