// Command guest-agent is PID 1 of a KVM stage1 pod's VM: the /init of the
// initramfs that stage1-kvm boots with the rkt guest kernel.
//
// It mounts what the guest needs (proc, sys, devtmpfs, devpts, tmpfs /run
// and /tmp, cgroup2), then serves the agent API (guest-agent/api) to the
// host over AF_VSOCK or, when the VM has no vsock device, over the
// virtio-serial port named rkt.agent. Apps run through stage1/supervisor,
// each on an overlay of its read-only virtio-fs image share under a
// writable layer in guest memory. The agent powers the VM off after a
// Shutdown call (once the host hangs up) or when the ACPI power button is
// pressed.
//
// It must be built static (CGO_ENABLED=0): the initramfs has no libc.
//
// Kernel command-line hooks, for tests of the host's failure handling:
//
//	rkt.test_panic=1        exit at once, so the kernel panics before the
//	                        agent answers ("the guest crashed at boot")
//	rkt.test_agent_exit=1   exit right after the first app started, so the
//	                        kernel panics mid-pod ("the agent died")
//	rkt.test_agent_silent=1 never serve the API ("the agent hangs")
package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"rkt.dev/rkt/guest-agent/agent"
	"rkt.dev/rkt/guest-agent/api"
	"rkt.dev/rkt/stage1/supervisor"
)

// stateDir is where the agent mounts shares and keeps the apps' writable
// layers and empty volumes: on the /run tmpfs, so in guest memory.
const stateDir = "/run/rkt"

// hostHangupTimeout bounds how long the agent waits, after a Shutdown, for
// the host to read the reply and hang up before powering off.
const hostHangupTimeout = 2 * time.Second

// powerButtonGrace is how long apps get between SIGTERM and SIGKILL when
// the VM is stopped with the ACPI power button.
const powerButtonGrace = 10 * time.Second

func main() {
	supervisor.RunHelperIfRequested()
	if err := run(); err != nil {
		// The host shows the console's "rkt-agent:" lines when the VM
		// ends early; exiting makes the kernel panic, which ends it.
		logf("error: %v", err)
		os.Exit(1)
	}
}

// logf prints a line on the console (/dev/console is the agent's stdout).
func logf(format string, args ...any) {
	fmt.Printf("rkt-agent: "+format+"\n", args...)
}

func run() error {
	if os.Getpid() != 1 {
		return fmt.Errorf("must run as PID 1 of the pod's VM (the initramfs /init), not as pid %d", os.Getpid())
	}
	if err := mountSystem(); err != nil {
		return err
	}
	// The loopback interface is only needed once the pod is set up;
	// bringing it up (about 10 ms of kernel work under TCG) overlaps with the
	// host connecting to the agent, which leaves the guest idle.
	loopback := make(chan error, 1)
	go func() { loopback <- loopbackUp() }()
	hooks, err := readHooks("/proc/cmdline")
	if err != nil {
		return err
	}
	if hooks.panic {
		return fmt.Errorf("exiting at start as asked by rkt.test_panic")
	}
	if hooks.silent {
		logf("never answering, as asked by rkt.test_agent_silent")
		for {
			time.Sleep(time.Hour)
		}
	}
	sup, err := supervisor.New()
	if err != nil {
		return err
	}
	a := agent.New(agent.Config{StateDir: stateDir, System: guestSystem{boot: sync.OnceValue(func() error { return <-loopback })}, Supervisor: sup})
	go forwardSignals(a)
	srv, err := a.NewServer(hooks.interceptor())
	if err != nil {
		return err
	}
	l, kind, err := listen(30 * time.Second)
	if err != nil {
		return err
	}
	logf("%s %s", api.ServingNotice, kind)
	go watchPowerButton(a)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), l) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving the agent API: %w", err)
	case <-a.ShutdownRequested():
	}
	// The Shutdown reply is on its way: let the host read it and hang up
	// (the serial listener reports that), then power off.
	select {
	case <-l.hostGone():
	case <-time.After(hostHangupTimeout):
	}
	powerOff()
	return nil
}

// powerOff flushes the file systems (rw volumes are virtio-fs) and ends
// the VM; QEMU then exits with a clean "guest-shutdown".
func powerOff() {
	unix.Sync()
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	logf("power off failed: %v", err)
	os.Exit(1)
}
