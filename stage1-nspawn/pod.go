package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"rkt.dev/rkt/internal/mountinfo"
	"rkt.dev/rkt/stage1"
	"rkt.dev/rkt/stage1/apprun"
	"rkt.dev/rkt/stage1/supervisor"
)

// podInit is the container's PID 1: it starts the pod's apps with the
// supervisor, each in its own mount namespace with private /proc, /sys and
// /dev and rkt's default isolation, and returns the pod's exit code, which
// systemd-nspawn and then the run entrypoint pass on.
func podInit() (int, error) {
	if err := writableCgroups(); err != nil {
		return 0, err
	}
	dir := stage1.PodDir(insidePodDir)
	flags, err := stage1.LoadRunFlags(dir)
	if err != nil {
		return 0, err
	}
	p, err := stage1.LoadPod(dir, flags.UUID)
	if err != nil {
		return 0, err
	}
	opts := apprun.IsolatorOptionsFromFlags(flags)
	opts.Defaults = true
	apps := make([]supervisor.App, len(p.Apps))
	for i := range p.Apps {
		a := &p.Apps[i]
		for j, m := range a.Mounts {
			if m.Kind == "host" {
				// The run entrypoint bound it here.
				a.Mounts[j].Source = filepath.Join(insideVolumes, m.Volume.String())
			}
		}
		apps[i] = apprun.SupervisorApp(p, *a, supervisor.PrivateSystemMounts)
		if flags.PrivateUsers != "" {
			// The run entrypoint copied the image with the pod's
			// owners.
			apps[i].Lower = shiftedRootfs(dir, a.Name.String())
		}
		if apps[i].Isolators, err = apprun.SupervisorIsolators(a.Name, a.Isolators, opts); err != nil {
			return 0, err
		}
	}
	if err := os.MkdirAll(insideRunDir, 0o755); err != nil {
		return 0, err
	}
	sup, err := supervisor.New()
	if err != nil {
		return 0, err
	}
	return apprun.Run(p, sup, apps, flags.Interactive, func(i int, proc *supervisor.Process) error {
		return stage1.WriteFileAtomic(appPIDFile(p.Apps[i].Name.String()), []byte(strconv.Itoa(proc.Pid())))
	})
}

// writableCgroups remounts the container's cgroup hierarchies read-write.
// systemd-nspawn mounts them read-only (for a container without a user
// namespace, only the bind mount is, not the superblock); the supervisor
// must create the apps' cgroups. The cgroup namespace keeps it within the
// pod's own cgroup.
func writableCgroups() error {
	mounts, err := mountinfo.Self()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if (m.FSType != "cgroup" && m.FSType != "cgroup2") || !m.ReadOnly() {
			continue
		}
		if err := unix.Mount("", m.MountPoint, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("making cgroup hierarchy %s writable: %w", m.MountPoint, err)
		}
	}
	return nil
}

// appEnter is the inside half of enter: in the pod's namespaces already, it
// runs the command in the app's root.
func appEnter(args []string) (int, error) {
	flags, err := stage1.ParseEnterFlags(args)
	if err != nil {
		return 0, err
	}
	b, err := readAppPID(flags.AppName)
	if err != nil {
		return 0, fmt.Errorf("app %s is not running in this pod: %w", flags.AppName, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("corrupt %s: %w", appPIDFile(flags.AppName), err)
	}
	p, err := stage1.LoadPod(stage1.PodDir(insidePodDir), "")
	if err != nil {
		return 0, err
	}
	return apprun.Enter(p, pid, flags.AppName, flags.Cmd)
}

// appPIDWait bounds how long enter waits for an app's pid file: PID 1
// writes it just after starting the app, so an enter right after the app's
// first output can come a moment too early.
const appPIDWait = time.Second

// readAppPID reads the pid file of app, waiting up to appPIDWait for it to
// appear.
func readAppPID(app string) ([]byte, error) {
	deadline := time.Now().Add(appPIDWait)
	for {
		b, err := os.ReadFile(appPIDFile(app))
		if !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return b, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
