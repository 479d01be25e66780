package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// virtiofsdPath is where Debian's qemu-system-x86 package installs
// virtiofsd (QEMU 7.2's C implementation).
const virtiofsdPath = "/usr/lib/qemu/virtiofsd"

// roHelperArg is argv[1] of the stage1 binary re-executed to start a
// read-only virtiofsd (see runReadOnlyHelper).
const roHelperArg = "__rkt_kvm_readonly_virtiofsd"

// virtiofsd is one running virtiofsd serving one share.
type virtiofsd struct {
	cmd    *exec.Cmd
	share  share
	socket string
	exited chan struct{}
}

// startVirtiofsd starts virtiofsd for s, listening on socket. The run
// process creates the listening socket itself and hands it over (--fd), so
// QEMU can connect as soon as this returns: no waiting for a socket file.
//
// virtiofsd 7.2 has no read-only mode; a read-only share is served by a
// virtiofsd whose whole view of the source is a read-only bind mount, made
// in a private mount namespace by the stage1 binary re-executed as a
// helper. Nothing is mounted on the host, so gc has nothing to unmount.
func startVirtiofsd(s share, socket string, log io.Writer) (*virtiofsd, error) {
	if _, err := os.Stat(virtiofsdPath); err != nil {
		return nil, fmt.Errorf("virtiofsd is needed to share app images with the VM: %w; install it with: apt-get install qemu-system-x86", err)
	}
	if fi, err := os.Stat(s.Source); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("share %s: source %s is not a directory (%v)", s.Tag, s.Source, err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("creating the virtiofsd socket for %s: %w", s.Source, err)
	}
	l.SetUnlinkOnClose(false)
	lf, err := l.File()
	l.Close()
	if err != nil {
		return nil, fmt.Errorf("creating the virtiofsd socket for %s: %w", s.Source, err)
	}
	defer lf.Close()

	args := []string{"--fd=3", "-o", "source=" + s.Source, "-o", "cache=" + s.Cache, "-o", "sandbox=namespace", "-o", "log_level=warn"}
	var cmd *exec.Cmd
	if s.ReadOnly {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the stage1 binary: %w", err)
		}
		cmd = exec.Command(self, append([]string{roHelperArg, s.Source, virtiofsdPath}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	} else {
		cmd = exec.Command(virtiofsdPath, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Like QEMU, virtiofsd must not outlive the run process.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.ExtraFiles = []*os.File{lf}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting virtiofsd for %s: %w", s.Source, err)
	}
	v := &virtiofsd{cmd: cmd, share: s, socket: socket, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(v.exited) }()
	return v, nil
}

// stop kills virtiofsd (it normally exits by itself when QEMU hangs up)
// and waits for it.
func (v *virtiofsd) stop() {
	select {
	case <-v.exited:
	default:
		v.cmd.Process.Kill()
		<-v.exited
	}
	os.Remove(v.socket)
}

// runReadOnlyHelper runs in a fresh mount namespace (the parent set
// CLONE_NEWNS; Go made every mount private). It turns the source into a
// read-only bind mount of itself, then execs virtiofsd, whose own sandbox
// bind mount of the source inherits the read-only flag.
// Arguments: SOURCE PROGRAM ARGS...
func runReadOnlyHelper(args []string) {
	err := func() error {
		if len(args) < 2 {
			return fmt.Errorf("want arguments SOURCE PROGRAM [ARGS], got %q", args)
		}
		src := args[0]
		if err := unix.Mount(src, src, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mounting %s: %w", src, err)
		}
		if err := unix.Mount("", src, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", src, err)
		}
		return unix.Exec(args[1], args[1:], os.Environ())
	}()
	fmt.Fprintf(os.Stderr, "stage1-kvm: read-only virtiofsd: %v\n", err)
	os.Exit(exitStage1Failure)
}
