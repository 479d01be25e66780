package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// virtiofsdPath is where Debian's qemu-system-x86 package installs
// virtiofsd (QEMU 7.2's C implementation).
const virtiofsdPath = "/usr/lib/qemu/virtiofsd"

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
// in a private mount namespace (see readOnlyMounts). Nothing is mounted on
// the host, so gc has nothing to unmount.
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

	cmd := exec.Command(virtiofsdPath, "--fd=3", "-o", "source="+s.Source, "-o", "cache="+s.Cache, "-o", "sandbox=namespace", "-o", "log_level=warn")
	// Like QEMU, virtiofsd must not outlive the run process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.ExtraFiles = []*os.File{lf}
	cmd.Stdout, cmd.Stderr = log, log
	if s.ReadOnly {
		err = readOnlyMounts.startReadOnly(cmd, s.Source)
	} else {
		err = cmd.Start()
	}
	if err != nil {
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

// readOnlyMounts is the run process's thread for read-only virtiofsds.
var readOnlyMounts mountNSThread

// mountNSThread is an OS thread in a private mount namespace of its own,
// which it never leaves and never gives back to the Go scheduler. In that
// namespace a read-only share's source is made a read-only bind mount of
// itself, and virtiofsd is started from the same thread, so it inherits the
// namespace and its own sandbox bind mount of the source inherits the
// read-only flag.
//
// Why a thread rather than a helper process: the helper used to be this
// binary re-executed for each read-only share, a 7 MB Go program started
// just as QEMU starts, which measurably delayed QEMU (docs/kvm.md). Why it
// lives as long as the process: a child started with Pdeathsig is killed
// when the thread that started it exits, and virtiofsd must live as long as
// the run process.
type mountNSThread struct {
	once sync.Once
	err  error
	work chan func()
}

// startReadOnly makes src read-only in the thread's namespace and starts
// cmd from the thread.
func (t *mountNSThread) startReadOnly(cmd *exec.Cmd, src string) error {
	t.once.Do(func() {
		t.work = make(chan func())
		ready := make(chan error)
		go t.serve(ready)
		t.err = <-ready
	})
	if t.err != nil {
		return t.err
	}
	errc := make(chan error, 1)
	t.work <- func() {
		if err := unix.Mount(src, src, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			errc <- fmt.Errorf("bind-mounting %s: %w", src, err)
			return
		}
		if err := unix.Mount("", src, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			errc <- fmt.Errorf("making %s read-only: %w", src, err)
			return
		}
		errc <- cmd.Start()
	}
	return <-errc
}

// serve locks its goroutine to its thread for good, moves the thread into a
// new mount namespace with private propagation (so the read-only mounts
// never reach the host), and runs the work it is sent. If the namespace
// cannot be made, the goroutine ends still locked, and Go ends the thread
// with it.
func (t *mountNSThread) serve(ready chan<- error) {
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		ready <- fmt.Errorf("creating a mount namespace for read-only shares: %w", err)
		return
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		ready <- fmt.Errorf("making the read-only shares' mount namespace private: %w", err)
		return
	}
	ready <- nil
	for f := range t.work {
		f()
	}
}
