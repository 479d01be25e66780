package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"

	"rkt.dev/rkt/guest-agent/agent"
	"rkt.dev/rkt/internal/guestos"
	"rkt.dev/rkt/stage1/supervisor"
)

// mountSystem mounts the guest's own file systems. The kernel only unpacks
// the initramfs; everything else is the agent's job.
func mountSystem() error {
	mounts := []struct {
		source, target, fstype, data string
		flags                        uintptr
		mode                         os.FileMode
	}{
		{"proc", "/proc", "proc", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, 0o555},
		{"sysfs", "/sys", "sysfs", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, 0o555},
		{"devtmpfs", "/dev", "devtmpfs", "mode=0755", unix.MS_NOSUID, 0o755},
		// /dev/ptmx of devtmpfs finds its devpts instance at /dev/pts:
		// exec sessions with a tty need it.
		{"devpts", "/dev/pts", "devpts", "mode=0620,ptmxmode=0666", unix.MS_NOSUID | unix.MS_NOEXEC, 0o755},
		{"shm", "/dev/shm", "tmpfs", "mode=1777", unix.MS_NOSUID | unix.MS_NODEV, 0o1777},
		{"run", "/run", "tmpfs", "mode=0755", unix.MS_NOSUID | unix.MS_NODEV, 0o755},
		{"tmp", "/tmp", "tmpfs", "mode=1777", unix.MS_NOSUID | unix.MS_NODEV, 0o1777},
		// For the apps' resource isolators (cgroup v2 only in the guest).
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, 0o755},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, m.mode); err != nil {
			return fmt.Errorf("creating %s: %w", m.target, err)
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mounting %s on %s: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

// guestSystem is agent.System in the VM.
type guestSystem struct {
	// boot waits for the setup the agent runs in the background while
	// the host connects, and returns its error.
	boot func() error
}

var _ agent.System = guestSystem{}

// WaitBoot implements agent.System.
func (g guestSystem) WaitBoot() error { return g.boot() }

// SetHostname implements agent.System.
func (guestSystem) SetHostname(name string) error { return unix.Sethostname([]byte(name)) }

// MountShare implements agent.System: the tag names a virtio-fs device.
func (guestSystem) MountShare(tag, target string, readOnly bool) error {
	flags := uintptr(unix.MS_NODEV)
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	return unix.Mount(tag, target, "virtiofs", flags, "")
}

// MountDisk implements agent.System. The block device's cache is dropped
// first: a VM restored from a template may hold blocks its template read
// from the placeholder disk the image has since replaced.
func (guestSystem) MountDisk(serial, target string) error {
	dev, err := guestos.FindDisk(serial)
	if err != nil {
		return err
	}
	f, err := os.Open(dev)
	if err != nil {
		return err
	}
	err = unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0)
	f.Close()
	if err != nil {
		return fmt.Errorf("dropping the cache of %s: %w", dev, err)
	}
	return unix.Mount(dev, target, "erofs", unix.MS_RDONLY|unix.MS_NODEV, "")
}

// SeedRandom implements agent.System: RNDADDENTROPY credits the seed (the
// host's getrandom output, so fully), RNDRESEEDCRNG makes the generator
// use it now rather than at its next periodic reseed.
func (guestSystem) SeedRandom(seed []byte) error {
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// struct rand_pool_info: int entropy_count, int buf_size, then the
	// bytes.
	info := make([]byte, 8+len(seed))
	binary.NativeEndian.PutUint32(info[0:], uint32(8*len(seed)))
	binary.NativeEndian.PutUint32(info[4:], uint32(len(seed)))
	copy(info[8:], seed)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&info[0]))); errno != 0 {
		return fmt.Errorf("RNDADDENTROPY: %w", errno)
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDRESEEDCRNG, 0); errno != 0 {
		return fmt.Errorf("RNDRESEEDCRNG: %w", errno)
	}
	return nil
}

// SetClock implements agent.System.
func (guestSystem) SetClock(t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.ClockSettime(unix.CLOCK_REALTIME, &ts)
}

// Sync implements agent.System.
func (guestSystem) Sync() { unix.Sync() }

// KernelRelease implements agent.System.
func (guestSystem) KernelRelease() string {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return ""
	}
	return unix.ByteSliceToString(uts.Release[:])
}

// hooks are the test switches read from the kernel command line. The
// kernel passes dotted parameters to neither init's argv nor its
// environment, so they are read from /proc/cmdline.
type hooks struct {
	panic     bool
	agentExit bool
	silent    bool
}

func readHooks(cmdline string) (hooks, error) {
	b, err := os.ReadFile(cmdline)
	if err != nil {
		return hooks{}, fmt.Errorf("reading the kernel command line: %w", err)
	}
	return parseHooks(string(b)), nil
}

func parseHooks(cmdline string) hooks {
	var h hooks
	for _, f := range strings.Fields(cmdline) {
		switch f {
		case "rkt.test_panic=1":
			h.panic = true
		case "rkt.test_agent_exit=1":
			h.agentExit = true
		case "rkt.test_agent_silent=1":
			h.silent = true
		}
	}
	return h
}

// startAppMethod is the full ttrpc name of StartApp.
const startAppMethod = "/rkt.agent.v1.Agent/StartApp"

// interceptor implements rkt.test_agent_exit: the agent dies right after
// the first app started, before replying.
func (h hooks) interceptor() ttrpc.ServerOpt {
	return ttrpc.WithUnaryServerInterceptor(func(ctx context.Context, u ttrpc.Unmarshaler, info *ttrpc.UnaryServerInfo, m ttrpc.Method) (any, error) {
		resp, err := m(ctx, u)
		if h.agentExit && info.FullMethod == startAppMethod && err == nil {
			logf("exiting after the first app started, as asked by rkt.test_agent_exit")
			os.Exit(1)
		}
		return resp, err
	})
}

// forwardSignals passes the signals an app may send to PID 1 on to every
// app (see supervisor.ForwardedSignals), as the nspawn stage1's PID 1 does,
// so that `kill 1` in an app stops the pod the same way on both flavors.
// It also drops supervisor.PID1DroppedSignals. Left to the Go runtime,
// these signals would end the agent, and PID 1 ending panics the guest
// kernel.
func forwardSignals(a *agent.Agent) {
	supervisor.DropSignals(supervisor.PID1DroppedSignals...)
	sigc := make(chan os.Signal, 8)
	supervisor.NotifyForwarded(sigc)
	for sig := range sigc {
		a.SignalApps(sig.(syscall.Signal))
	}
}

// watchPowerButton stops the pod when QEMU presses the ACPI power button
// (a graceful VM stop from the host): apps get SIGTERM, then SIGKILL after
// powerButtonGrace, and the VM powers off.
func watchPowerButton(a *agent.Agent) {
	devices, _ := filepath.Glob("/dev/input/event*")
	pressed := make(chan struct{}, len(devices))
	for _, dev := range devices {
		go func() {
			f, err := os.Open(dev)
			if err != nil {
				return
			}
			defer f.Close()
			if guestos.WaitPowerKey(f) == nil {
				pressed <- struct{}{}
			}
		}()
	}
	if len(devices) == 0 {
		return
	}
	<-pressed
	logf("power button pressed: stopping the pod")
	a.StopApps(powerButtonGrace)
	powerOff()
}
