package main

import (
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/appc/spec/schema/types"
	"golang.org/x/sys/unix"

	"rkt.dev/rkt/stage1"
)

// User namespaces (--private-users) map the pod's uids 0..count-1 onto an
// unprivileged host range starting at shift, so root in the pod is nobody
// on the host.
//
// Files must then be owned by shifted uids for the pod to use them. Here
// this is done by copying: each app's rendered image is copied into the pod
// directory with its owners shifted (the tree store stays shared and
// untouched), and the pod directory's writable parts are chowned to the
// shifted root. Idmapped mounts would avoid the copy, but systemd-nspawn
// 252's --bind=…:idmap is refused on this kind of host (EPERM from
// mount_setattr), so rkt does not depend on it. Host volumes are not
// shifted: their files appear as owned by nobody unless the user prepares
// them.

// usersCount is the size of the uid range of a pod: 65536, the range of
// uids and gids an image can use.
const usersCount = 65536

// userRange is a pod's uid and gid mapping.
type userRange struct{ shift, count uint32 }

// parsePrivateUsers reads --private-users: "auto" picks a range from the
// pod's UUID (65536 uids, above the first 131072), "SHIFT[:COUNT]" names
// one.
func parsePrivateUsers(v, uuid string) (userRange, error) {
	if v == "auto" {
		// 30000 slots between 2·65536 and 2^31: pods rarely share one,
		// and if they do, they only share uids with each other.
		slot := crc32.ChecksumIEEE([]byte(uuid)) % 30000
		return userRange{shift: (slot + 2) * usersCount, count: usersCount}, nil
	}
	shift, count, hasCount := strings.Cut(v, ":")
	r := userRange{count: usersCount}
	s, err := strconv.ParseUint(shift, 10, 32)
	if err == nil && hasCount {
		var c uint64
		c, err = strconv.ParseUint(count, 10, 32)
		r.count = uint32(c)
	}
	if err != nil || s == 0 || r.count == 0 || s+uint64(r.count) > 1<<32-1 {
		return r, fmt.Errorf("--private-users=%s: want auto or SHIFT[:COUNT], a non-root uid range", v)
	}
	r.shift = uint32(s)
	return r, nil
}

// nspawnArgs returns systemd-nspawn's options for the range; nspawn
// chowns the (tiny) container root itself.
func (r userRange) nspawnArgs() []string {
	return []string{fmt.Sprintf("--private-users=%d:%d", r.shift, r.count), "--private-users-ownership=chown"}
}

// shiftedRootfs is where an app's image is copied with shifted owners.
func shiftedRootfs(dir stage1.PodDir, app string) string {
	return filepath.Join(dir.AppDir(types.ACName(app)), "shifted")
}

// prepare shifts what the pod will use: a copy of each app's image,
// and the directories the pod writes to.
func (r userRange) prepare(dir stage1.PodDir, p *stage1.Pod) error {
	for _, a := range p.Apps {
		dst := shiftedRootfs(dir, a.Name.String())
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		if out, err := exec.Command("cp", "-a", "--reflink=auto", a.TreeRootfs, dst).CombinedOutput(); err != nil {
			return fmt.Errorf("copying the image of app %s for its user namespace: %w: %s", a.Name, err, out)
		}
		for _, d := range []string{dst, dir.AppUpper(a.Name), dir.AppWork(a.Name), dir.AppRootfs(a.Name)} {
			if err := r.shiftTree(d); err != nil {
				return err
			}
		}
	}
	for _, d := range []string{dir.StatusDir(), dir.LogDir(), filepath.Join(dir.Path(), "sharedVolumes")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := r.shiftTree(d); err != nil {
			return err
		}
	}
	return nil
}

// shiftTree adds the shift to the owner of everything under root, keeping
// setuid and setgid bits, which chown clears.
func (r userRange) shiftTree(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		if st.Uid >= r.count || st.Gid >= r.count {
			return fmt.Errorf("%s is owned by %d:%d, outside the pod's %d uids", path, st.Uid, st.Gid, r.count)
		}
		if err := unix.Lchown(path, int(r.shift+st.Uid), int(r.shift+st.Gid)); err != nil {
			return fmt.Errorf("shifting the owner of %s: %w", path, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK && st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
			return unix.Chmod(path, st.Mode&0o7777)
		}
		return nil
	})
}
