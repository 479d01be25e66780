package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"rkt.dev/rkt/stage1"
	"rkt.dev/rkt/stage1/supervisor"
)

// podCgroup is the pod's own cgroup, "rkt-UUID" below the caller's cgroup
// in the hierarchies of the memory and cpu controllers (v1, or v2): the container's cgroup namespace is rooted
// there, so the supervisor creates the apps' cgroups inside it, and gc
// finds everything the pod created under one name.
//
// On cgroup v1 the run entrypoint joins it and systemd-nspawn inherits it.
// On cgroup v2 a cgroup can hand controllers to its children only while it
// holds no processes itself, so the run entrypoint moves into a "stage1"
// leaf and systemd-nspawn is cloned straight into a "pod" sibling, which it
// splits again into payload and supervisor (as it does with --keep-unit).
type podCgroup struct {
	// unified is the v2 directory nspawn is cloned into, "" without v2.
	unified string
}

const podCgroupV2Child, stage1CgroupV2Child = "pod", "stage1"

// createPodCgroup creates and joins the pod's cgroup; its directories are
// recorded in the pod directory first, so gc removes them even if the run
// entrypoint dies half way. With a user namespace, the pod's root (users
// shifted by users.shift) is made its owner, so that the supervisor can
// create the apps' cgroups in it.
func createPodCgroup(dir stage1.PodDir, uuid string, users *userRange) (*podCgroup, error) {
	hs, err := supervisor.OwnCgroups()
	if err != nil {
		return nil, err
	}
	// Only the hierarchies of the controllers rkt's isolators use; the
	// others (cpuset, which a new cgroup cannot even be joined in before
	// it is configured, devices, a v2 tree without controllers on a
	// hybrid host, ...) stay the caller's.
	hs = slices.DeleteFunc(hs, func(h supervisor.CgroupHierarchy) bool {
		return !h.Has("memory") && !h.Has("cpu")
	})
	var dirs []string
	for _, h := range hs {
		dirs = append(dirs, filepath.Join(h.Dir, "rkt-"+uuid))
	}
	if err := os.WriteFile(cgroupsFile(dir), []byte(strings.Join(dirs, "\n")+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("recording the pod's cgroups: %w", err)
	}
	pc := &podCgroup{}
	self := []byte(strconv.Itoa(os.Getpid()))
	for i, h := range hs {
		if err := os.Mkdir(dirs[i], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("creating the pod's cgroup: %w", err)
		}
		if users != nil {
			if err := users.chownCgroup(dirs[i]); err != nil {
				return nil, err
			}
		}
		if !h.Unified {
			if err := os.WriteFile(filepath.Join(dirs[i], "cgroup.procs"), self, 0); err != nil {
				return nil, fmt.Errorf("joining the pod's cgroup %s: %w", dirs[i], err)
			}
			continue
		}
		leaf, pod := filepath.Join(dirs[i], stage1CgroupV2Child), filepath.Join(dirs[i], podCgroupV2Child)
		for _, d := range []string{leaf, pod} {
			if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("creating the pod's cgroup: %w", err)
			}
		}
		if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), self, 0); err != nil {
			return nil, fmt.Errorf("joining the pod's cgroup %s: %w", leaf, err)
		}
		// Hand the resource controllers down to the pod. This fails
		// where the caller's cgroup still holds other processes; then
		// only apps with resource limits fail, with the supervisor's
		// explanation.
		for _, d := range []string{h.Dir, dirs[i]} {
			enableV2Controllers(d, h.Controllers)
		}
		pc.unified = pod
	}
	return pc, nil
}

// enableV2Controllers enables, one by one, the controllers rkt's isolators
// use that dir has.
func enableV2Controllers(dir string, available []string) {
	for _, c := range []string{"cpu", "memory", "pids"} {
		if slices.Contains(available, c) {
			os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0)
		}
	}
}

// removePodCgroups kills whatever is left in the pod's cgroups and removes
// them, deepest first. Missing directories are fine: gc may run twice.
func removePodCgroups(dir stage1.PodDir) error {
	b, err := os.ReadFile(cgroupsFile(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, top := range strings.Fields(string(b)) {
		var tree []string
		filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				tree = append(tree, p)
			}
			return nil
		})
		slices.Reverse(tree) // children before their parents
		for _, d := range tree {
			if err := removeCgroup(d); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// removeCgroup kills a cgroup's processes and removes it, giving killed
// processes a moment to leave it.
func removeCgroup(d string) error {
	var err error
	for range 50 {
		if b, rerr := os.ReadFile(filepath.Join(d, "cgroup.procs")); rerr == nil {
			for _, f := range strings.Fields(string(b)) {
				if pid, perr := strconv.Atoi(f); perr == nil && pid != os.Getpid() {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if err = os.Remove(d); err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("removing cgroup %s: %w", d, err)
}

// chownCgroup gives the pod's root a cgroup directory and the files that
// create children and move processes, as systemd-nspawn does for the
// hierarchy it manages itself.
func (r userRange) chownCgroup(d string) error {
	for _, f := range []string{"", "cgroup.procs", "tasks", "cgroup.subtree_control", "cgroup.threads", "cgroup.clone_children", "notify_on_release"} {
		err := os.Lchown(filepath.Join(d, f), int(r.shift), int(r.shift))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("giving cgroup %s to the pod's user namespace: %w", d, err)
		}
	}
	return nil
}
