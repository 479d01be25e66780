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
// in a private mount namespace (see roThread). Nothing is mounted on
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
		err = readOnlyStarter.start(cmd, s.Source)
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

// readOnlyStarter is the run process's thread for read-only virtiofsds.
var readOnlyStarter roThread

// roThread is an OS thread, locked for the run process's whole life, that
// starts the read-only virtiofsds. For each one it moves into a new mount
// namespace with private propagation, makes the share's source a read-only
// bind mount of itself there, starts virtiofsd (which inherits that
// namespace, and whose own sandbox bind mount of the source inherits the
// read-only flag), and goes back to the process's namespace. virtiofsd
// leaves that namespace for its sandbox's at once, so no copy of the host's
// mount table outlives its start: such a copy would keep every file system
// mounted on the host at the time busy (a host umount would not release the
// device) for as long as the pod runs.
//
// Why a thread rather than a helper process: the helper used to be this
// binary re-executed for each read-only share, a 7 MB Go program started
// just as QEMU starts, which measurably delayed QEMU (docs/kvm.md). Why it
// lives as long as the process: a child started with Pdeathsig is killed
// when the thread that started it exits, and virtiofsd must live as long as
// the run process. The thread runs nothing else: Go never schedules other
// goroutines on a locked thread, nor clones new threads from it.
type roThread struct {
	once sync.Once
	err  error // why the thread could not be started
	reqs chan roRequest
}

// roRequest asks the thread to start cmd with src read-only.
type roRequest struct {
	cmd  *exec.Cmd
	src  string
	done chan error
}

// start makes src read-only in a private mount namespace and starts cmd
// there, from the thread.
func (t *roThread) start(cmd *exec.Cmd, src string) error {
	t.once.Do(func() {
		t.reqs = make(chan roRequest)
		ready := make(chan error)
		go t.serve(ready)
		t.err = <-ready
	})
	if t.err != nil {
		return t.err
	}
	req := roRequest{cmd: cmd, src: src, done: make(chan error, 1)}
	t.reqs <- req
	return <-req.done
}

// serve locks its goroutine to its thread for good and serves the requests.
// Should the thread fail to return to the process's mount namespace, it
// refuses every later request: it must stay alive for the virtiofsds it
// started, but must not start more from a namespace it cannot leave.
func (t *roThread) serve(ready chan<- error) {
	runtime.LockOSThread()
	host, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		// Nothing was started from the thread: it may end with its
		// goroutine, still locked.
		ready <- fmt.Errorf("opening the mount namespace of the stage1: %w", err)
		return
	}
	ready <- nil
	var broken error
	for req := range t.reqs {
		if broken != nil {
			req.done <- broken
			continue
		}
		var err error
		err, broken = startReadOnly(req.cmd, req.src, host)
		req.done <- err
	}
}

// startReadOnly does one request on the locked thread; host is the
// process's mount namespace, to return to.
func startReadOnly(cmd *exec.Cmd, src string, host int) (err, broken error) {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("creating a mount namespace for read-only share %s: %w", src, err), nil
	}
	defer func() {
		if e := unix.Setns(host, unix.CLONE_NEWNS); e != nil {
			broken = fmt.Errorf("the stage1 could not return to its mount namespace after starting a read-only share's virtiofsd: %w", e)
		}
	}()
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making the mount namespace of read-only share %s private: %w", src, err), nil
	}
	if err := unix.Mount(src, src, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting %s: %w", src, err), nil
	}
	if err := unix.Mount("", src, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("making %s read-only: %w", src, err), nil
	}
	return cmd.Start(), nil
}
