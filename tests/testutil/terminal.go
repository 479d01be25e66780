package testutil

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// OpenPTY opens a new pseudo-terminal of rows × cols and returns its
// master (the user's side) and slave (the terminal a program gets). Both
// are closed when the test ends; it skips where the host has no
// pseudo-terminals.
func OpenPTY(t testing.TB, rows, cols uint16) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// StartOnTerminal starts a command from Cmd as a user's shell would on a
// terminal: in a new session whose controlling terminal is a new
// pseudo-terminal of rows × cols, which is its stdin, stdout and stderr.
// What the terminal shows is the Process's stdout (Expect, Wait); Type
// and Resize act as the user. The command's stdio must be unset. As with
// StartCmd, the command and its process group (the session) are killed if
// the test ends first.
func (c *Ctx) StartOnTerminal(cmd *exec.Cmd, rows, cols uint16) *Process {
	c.t.Helper()
	if cmd.Stdin != nil || cmd.Stdout != nil || cmd.Stderr != nil {
		c.t.Fatal("testutil: StartOnTerminal needs a command with no stdio set")
	}
	master, slave := OpenPTY(c.t, rows, cols)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("starting %v: %v", cmd.Args, err)
	}
	// Only the command holds the terminal now: reading the master ends
	// (EIO) once the command and whatever it started have closed it.
	slave.Close()
	p := &Process{c: c, cmd: cmd, out: newOutput(), done: make(chan struct{}), term: master}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(p.out.writer(&p.out.stdout), master)
	}()
	go func() {
		_ = cmd.Wait()
		// What the command wrote before it exited is still on its way
		// through the terminal; a process it left behind may hold the
		// terminal open, which must not hang the test.
		select {
		case <-copied:
		case <-time.After(pipeGrace):
		}
		close(p.done)
	}()
	c.t.Cleanup(func() { p.kill() })
	return p
}

// Type writes s to the terminal of a command started by StartOnTerminal,
// as keys typed by the user ("\r" is Enter, "\x03" is ^C).
func (p *Process) Type(s string) {
	p.c.t.Helper()
	if _, err := p.term.WriteString(s); err != nil {
		p.c.t.Fatalf("typing %q on the terminal of %v: %v", s, p.cmd.Args, err)
	}
}

// Resize changes the size of the terminal of a command started by
// StartOnTerminal, which sends SIGWINCH to its foreground process group.
func (p *Process) Resize(rows, cols uint16) {
	p.c.t.Helper()
	if err := unix.IoctlSetWinsize(int(p.term.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		p.c.t.Fatalf("resizing the terminal of %v: %v", p.cmd.Args, err)
	}
}

// TerminalAttrs returns the current modes of the terminal of a command
// started by StartOnTerminal, as the programs on it see them: a program
// that put it in raw mode must restore it before it exits.
func (p *Process) TerminalAttrs() *unix.Termios {
	p.c.t.Helper()
	n, err := unix.IoctlGetInt(int(p.term.Fd()), unix.TIOCGPTN)
	if err != nil {
		p.c.t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		p.c.t.Fatalf("opening the terminal of %v: %v", p.cmd.Args, err)
	}
	defer s.Close()
	attrs, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		p.c.t.Fatal(err)
	}
	return attrs
}
