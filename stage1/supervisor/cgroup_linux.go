package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"rkt.dev/rkt/internal/mountinfo"
)

// CgroupHierarchy is a mounted cgroup hierarchy, seen from the calling
// process, and that process's cgroup in it.
type CgroupHierarchy struct {
	// Unified is true for the cgroup v2 hierarchy.
	Unified bool
	// Controllers are the controllers of a v1 hierarchy ("memory",
	// "cpu", "cpuacct", or "name=systemd" for a named one); for the v2
	// hierarchy, those enabled for the process's cgroup.
	Controllers []string
	// Dir is the directory of the process's cgroup.
	Dir string
}

// Has reports whether the hierarchy carries controller.
func (h CgroupHierarchy) Has(controller string) bool {
	return slices.Contains(h.Controllers, controller)
}

// OwnCgroups returns every mounted hierarchy the calling process belongs
// to: v1 hierarchies on legacy and hybrid hosts, the v2 one on hybrid and
// unified hosts. It works inside a cgroup namespace too, where both the
// process's paths and the mounts are relative to the namespace's root.
func OwnCgroups() ([]CgroupHierarchy, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("reading own cgroups: %w", err)
	}
	defer f.Close()
	mounts, err := mountinfo.Self()
	if err != nil {
		return nil, err
	}
	var hs []CgroupHierarchy
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "ID:controller,controller:path"; the v2 line is "0::path".
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		h := CgroupHierarchy{Unified: parts[0] == "0" && parts[1] == ""}
		if !h.Unified {
			h.Controllers = strings.Split(parts[1], ",")
		}
		m := cgroupMount(mounts, h, parts[2])
		if m == nil {
			continue // a hierarchy nobody mounted here cannot be used
		}
		h.Dir = filepath.Join(m.MountPoint, strings.TrimPrefix(parts[2], m.Root))
		if h.Unified {
			b, err := os.ReadFile(filepath.Join(h.Dir, "cgroup.controllers"))
			if err != nil {
				return nil, fmt.Errorf("reading the cgroup v2 controllers: %w", err)
			}
			h.Controllers = strings.Fields(string(b))
		}
		hs = append(hs, h)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading own cgroups: %w", err)
	}
	return hs, nil
}

// cgroupMount finds the mount of hierarchy h that shows cgroup path: the
// one whose root is the longest prefix of it, since a container may see
// only a subtree (nspawn mounts the container's own cgroup).
func cgroupMount(mounts []mountinfo.Mount, h CgroupHierarchy, path string) *mountinfo.Mount {
	var best *mountinfo.Mount
	for i := range mounts {
		m := &mounts[i]
		switch {
		case h.Unified && m.FSType != "cgroup2":
			continue
		case !h.Unified && m.FSType != "cgroup":
			continue
		case !h.Unified && !containsAll(m.SuperOptions, h.Controllers):
			continue
		}
		if (m.Root == "/" || path == m.Root || strings.HasPrefix(path, m.Root+"/")) && (best == nil || len(m.Root) > len(best.Root)) {
			best = m
		}
	}
	return best
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// supervisorLeaf is where the supervisor moves itself on cgroup v2 when the
// apps' cgroups are created directly below its own: v2 lets only a cgroup
// without processes hand controllers to its children.
const supervisorLeaf = "supervisor"

// cgroupBase is the supervisor's cgroup in each hierarchy when it first
// needed one; app cgroups are created below it.
var cgroupBase = sync.OnceValues(OwnCgroups)

// appCgroup is the cgroup of one app, in each hierarchy it needed.
type appCgroup struct {
	dirs    []string // the app's cgroup directory, one per hierarchy
	created []string // directories created for it, deepest first
}

// limitFile is a cgroup file and the value an isolator writes there.
type limitFile struct {
	controller, name, value string
}

// limitFiles lists the files that set the isolators' limits.
func (i *Isolators) limitFiles(unified bool) []limitFile {
	var files []limitFile
	const period = 100000 // µs, the kernel's default CFS period
	if i.MemoryLimit > 0 {
		name := "memory.limit_in_bytes"
		if unified {
			name = "memory.max"
		}
		files = append(files, limitFile{"memory", name, strconv.FormatInt(i.MemoryLimit, 10)})
	}
	if i.CPUMillis > 0 {
		quota := strconv.FormatInt(i.CPUMillis*period/1000, 10)
		if unified {
			files = append(files, limitFile{"cpu", "cpu.max", quota + " " + strconv.Itoa(period)})
		} else {
			files = append(files, limitFile{"cpu", "cpu.cfs_period_us", strconv.Itoa(period)},
				limitFile{"cpu", "cpu.cfs_quota_us", quota})
		}
	}
	if i.CPUShares > 0 {
		if unified {
			// The conversion runc and crun use: shares 2..262144
			// onto weight 1..10000, with 1024 landing near 100.
			w := 1 + (i.CPUShares-2)*9999/262142
			files = append(files, limitFile{"cpu", "cpu.weight", strconv.FormatInt(w, 10)})
		} else {
			files = append(files, limitFile{"cpu", "cpu.shares", strconv.FormatInt(i.CPUShares, 10)})
		}
	}
	return files
}

// newAppCgroup creates the app's cgroup in every hierarchy that carries a
// controller its limits need, and writes the limits. A v1 hierarchy with the
// controller wins over v2: on a hybrid host the controllers live there.
func newAppCgroup(i *Isolators) (*appCgroup, error) {
	base, err := cgroupBase()
	if err != nil {
		return nil, err
	}
	// The limit files, grouped by the hierarchy that holds them, in a
	// stable order.
	type plan struct {
		h     CgroupHierarchy
		files []limitFile
	}
	var plans []*plan
	for _, unified := range []bool{false, true} {
		for _, f := range i.limitFiles(unified) {
			h, ok := hierarchyFor(base, f.controller)
			if !ok {
				return nil, fmt.Errorf("no cgroup hierarchy with the %s controller is available to the supervisor; the app's %s limit needs one", f.controller, f.controller)
			}
			if h.Unified != unified {
				continue // the file of the other cgroup version
			}
			k := slices.IndexFunc(plans, func(p *plan) bool { return p.h.Dir == h.Dir })
			if k < 0 {
				plans, k = append(plans, &plan{h: h}), len(plans)
			}
			plans[k].files = append(plans[k].files, f)
		}
	}
	cg := &appCgroup{}
	for _, p := range plans {
		dir, err := cg.create(p.h, i.Cgroup, p.files)
		if err != nil {
			cg.remove()
			return nil, err
		}
		cg.dirs = append(cg.dirs, dir)
	}
	return cg, nil
}

func hierarchyFor(hs []CgroupHierarchy, controller string) (CgroupHierarchy, bool) {
	for _, unified := range []bool{false, true} {
		for _, h := range hs {
			if h.Unified == unified && h.Has(controller) {
				return h, true
			}
		}
	}
	return CgroupHierarchy{}, false
}

// create makes rel below h's base directory, with the controllers of files
// enabled on the way down (v2), and writes the files.
func (cg *appCgroup) create(h CgroupHierarchy, rel string, files []limitFile) (string, error) {
	dir := h.Dir
	for _, elem := range strings.Split(filepath.Clean(rel), "/") {
		if h.Unified {
			if err := enableControllers(dir, files, dir == h.Dir); err != nil {
				return "", err
			}
		}
		dir = filepath.Join(dir, elem)
		if err := os.Mkdir(dir, 0o755); err == nil {
			cg.created = append([]string{dir}, cg.created...)
		} else if !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.value), 0); err != nil {
			return "", fmt.Errorf("setting %s=%s in cgroup %s: %w", f.name, f.value, dir, err)
		}
	}
	return dir, nil
}

// enableControllers hands the files' controllers to dir's children. The
// supervisor's own cgroup may still hold the supervisor (nspawn's payload,
// the kvm guest's root is exempt): then the supervisor moves itself into a
// leaf below it first, as systemd-nspawn does with its own process.
func enableControllers(dir string, files []limitFile, isBase bool) error {
	var ctl []string
	for _, f := range files {
		if !slices.Contains(ctl, "+"+f.controller) {
			ctl = append(ctl, "+"+f.controller)
		}
	}
	write := func() error {
		return os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(ctl, " ")), 0)
	}
	err := write()
	if errors.Is(err, syscall.EBUSY) && isBase && onlySelfIn(dir) {
		leaf := filepath.Join(dir, supervisorLeaf)
		if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("creating cgroup %s: %w", leaf, err)
		}
		if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte("0"), 0); err != nil {
			return fmt.Errorf("moving the supervisor into cgroup %s: %w", leaf, err)
		}
		err = write()
	}
	if err != nil {
		return fmt.Errorf("enabling %s below cgroup %s: %w (on cgroup v2 the parent of rkt's pods must be the root cgroup or a delegated cgroup without processes of its own)",
			strings.Join(ctl, " "), dir, err)
	}
	return nil
}

// onlySelfIn reports whether the calling process is the only one in the
// cgroup directory dir.
func onlySelfIn(dir string) bool {
	pids, err := cgroupPIDs(dir)
	return err == nil && len(pids) == 1 && pids[0] == os.Getpid()
}

// cgroupPIDs lists the processes of a cgroup directory.
func cgroupPIDs(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// join moves pid into the app's cgroups.
func (cg *appCgroup) join(pid int) error {
	for _, d := range cg.dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("moving the app into cgroup %s: %w", d, err)
		}
	}
	return nil
}

// remove kills what the app left in its cgroups (as systemd does when a
// service's main process exits) and removes the directories it created.
// Parents shared with other apps stay while they are in use. It is best
// effort: the flavor's gc removes whatever a straggler kept busy.
func (cg *appCgroup) remove() {
	for _, d := range cg.dirs {
		if pids, err := cgroupPIDs(d); err == nil {
			for _, pid := range pids {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
	for _, d := range cg.created {
		os.Remove(d)
	}
}

// mountCgroups gives a private /sys the supervisor's cgroup hierarchies at
// /sys/fs/cgroup, read-only, laid out as on the host (one directory per v1
// hierarchy, v2 in "unified" beside them or alone at the top), so an app
// can read its own limits. Inside a cgroup namespace (nspawn) the pod's
// cgroup is their root.
func mountCgroups(root int) error {
	hs, err := OwnCgroups()
	if err != nil || len(hs) == 0 {
		return err // without cgroups (a minimal guest), nothing to show
	}
	const safe = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	top, err := openInRoot(root, "/sys/fs/cgroup", true)
	if err != nil {
		return err
	}
	defer unix.Close(top)
	onlyV2 := len(hs) == 1 && hs[0].Unified
	if !onlyV2 {
		if err := unix.Mount("tmpfs", fdPath(top), "tmpfs", safe, "mode=755,size=64k"); err != nil {
			return fmt.Errorf("mounting /sys/fs/cgroup: %w", err)
		}
	}
	for _, h := range hs {
		fstype, opts, dir := "cgroup2", "", "/sys/fs/cgroup"
		if !onlyV2 {
			dir += "/unified"
		}
		if !h.Unified {
			fstype, opts = "cgroup", strings.Join(h.Controllers, ",")
			dir = "/sys/fs/cgroup/" + strings.TrimPrefix(opts, "name=")
		}
		fd, err := openInRoot(root, dir, true)
		if err != nil {
			return err
		}
		// The superblock is shared with the supervisor's own mount and
		// must stay writable; only this mount is made read-only.
		err = unix.Mount("cgroup", fdPath(fd), fstype, safe, opts)
		unix.Close(fd)
		if err == nil {
			fd, err = openInRoot(root, dir, true)
		}
		if err == nil {
			err = unix.Mount("", fdPath(fd), "", safe|unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
			unix.Close(fd)
		}
		if err != nil {
			return fmt.Errorf("mounting cgroup hierarchy %s: %w", dir, err)
		}
	}
	if onlyV2 {
		return nil
	}
	// top is the directory below the tmpfs; reach the tmpfs itself.
	tmpfs, err := openInRoot(root, "/sys/fs/cgroup", true)
	if err != nil {
		return err
	}
	defer unix.Close(tmpfs)
	if err := unix.Mount("", fdPath(tmpfs), "", safe|unix.MS_REMOUNT|unix.MS_RDONLY, "mode=755,size=64k"); err != nil {
		return fmt.Errorf("making /sys/fs/cgroup read-only: %w", err)
	}
	return nil
}
