package mountinfo

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
)

// unmountRounds bounds UnmountUnder: each round re-reads the mount table,
// because one lazy unmount can take several listed mounts with it, and
// stacked mounts reveal the ones below.
const unmountRounds = 5

// Under returns the mountpoints at or below dir in the order to
// unmount them: deepest first, and of mounts on the same point the most
// recent (topmost) first. Stacked mounts yield the point once per mount.
func Under(mounts []Mount, dir string) []string {
	var points []string
	// Newest first: the kernel lists a mount after the one it covers.
	for _, m := range slices.Backward(mounts) {
		if m.MountPoint == dir || strings.HasPrefix(m.MountPoint, dir+"/") {
			points = append(points, m.MountPoint)
		}
	}
	slices.SortStableFunc(points, func(a, b string) int {
		return strings.Count(b, "/") - strings.Count(a, "/")
	})
	return points
}

// UnmountUnder lazily unmounts everything at or below dir (a pod's
// leftovers: rootfs overlays, volumes, /proc and /sys of a stage1 that
// died), so that removing dir cannot recurse into a host directory
// bind-mounted into a pod.
func UnmountUnder(dir string) error {
	var errs []error
	for range unmountRounds {
		mounts, err := Self()
		if err != nil {
			return err
		}
		points := Under(mounts, dir)
		if len(points) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, p := range points {
			// Failures are expected when an earlier unmount in this round
			// detached p along with its parent; the next round re-reads
			// the table, and only the last round's errors are reported.
			if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
			}
		}
	}
	mounts, err := Self()
	if err != nil {
		return err
	}
	if left := Under(mounts, dir); len(left) > 0 {
		return fmt.Errorf("still mounted after %d rounds: %v: %w", unmountRounds, left, errors.Join(errs...))
	}
	return nil
}
