package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// pipeGrace is how long Wait keeps reading output after the command
// exited: a stage1 helper or VM that outlives rkt may hold the pipes open,
// and that must not hang the test.
const pipeGrace = 10 * time.Second

// Result is the outcome of a finished command.
type Result struct {
	Stdout, Stderr string
	// ExitCode is the exit status, or -1 if the process died by a signal
	// (including being killed on timeout).
	ExitCode int
}

// String formats the result for failure messages.
func (r Result) String() string {
	return fmt.Sprintf("exit code %d\n--- stdout:\n%s\n--- stderr:\n%s", r.ExitCode, r.Stdout, r.Stderr)
}

// Process is a command running in the background, started by Start or
// StartCmd. If the test ends before the command does, the command and its
// process group are killed.
type Process struct {
	c    *Ctx // nil for cleanup commands, which never fail the test
	cmd  *exec.Cmd
	out  *output
	done chan struct{}
	term *os.File // the user's side of the terminal (StartOnTerminal), else nil
}

// Start starts rkt with args in the background. See Process.
func (c *Ctx) Start(args ...string) *Process {
	c.t.Helper()
	return c.StartCmd(c.Cmd(args...))
}

// StartCmd starts a command from Cmd in the background; like RunCmd, its
// Stdout and Stderr must be unset.
func (c *Ctx) StartCmd(cmd *exec.Cmd) *Process {
	c.t.Helper()
	p, err := start(cmd)
	if err != nil {
		c.t.Fatal(err)
	}
	p.c = c
	c.t.Cleanup(func() { p.kill() })
	return p
}

// start runs cmd in its own process group, so that killing the group also
// kills what it spawned (systemd-nspawn, QEMU), capturing its output.
func start(cmd *exec.Cmd) (*Process, error) {
	if cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("testutil: the command's Stdout and Stderr must be unset; its output is captured")
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = pipeGrace
	}
	out := newOutput()
	cmd.Stdout = out.writer(&out.stdout)
	cmd.Stderr = out.writer(&out.stderr)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %v: %w", cmd.Args, err)
	}
	p := &Process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		// The exit status is read from ProcessState; Wait's error only
		// repeats it, or reports pipes closed after pipeGrace.
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Wait waits for the command to exit, up to the Ctx's Timeout; then it
// kills the process group and fails the test with the output so far.
func (p *Process) Wait() Result {
	p.c.t.Helper()
	r, ok := p.waitTimeout(p.c.Timeout)
	if !ok {
		p.c.t.Fatalf("%v timed out after %v and was killed: %v", p.cmd.Args, p.c.Timeout, r)
	}
	return r
}

// Expect waits until stdout or stderr matches the regular expression re
// and returns the submatches of the first match (stdout first). It fails
// the test if the command exits, or Timeout passes, without a match.
func (p *Process) Expect(re string) []string {
	p.c.t.Helper()
	rx, err := regexp.Compile(re)
	if err != nil {
		p.c.t.Fatalf("Expect(%q): %v", re, err)
	}
	deadline := time.NewTimer(p.c.Timeout)
	defer deadline.Stop()
	for {
		m, changed := p.out.match(rx)
		if m != nil {
			return m
		}
		select {
		case <-changed:
		case <-p.done:
			// Wait returned, so the output is complete: one last look.
			if m, _ := p.out.match(rx); m != nil {
				return m
			}
			p.c.t.Fatalf("%v exited without output matching %q: %v", p.cmd.Args, re, p.result())
		case <-deadline.C:
			p.c.t.Fatalf("no output matching %q from %v within %v; output so far:\n%v", re, p.cmd.Args, p.c.Timeout, p.result())
		}
	}
}

// Signal sends sig to the command (not its process group), as a user
// pressing ^C or a service manager stopping rkt would.
func (p *Process) Signal(sig os.Signal) {
	p.c.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.c.t.Fatalf("signalling %v: %v", p.cmd.Args, err)
	}
}

// waitTimeout waits up to d; on timeout it kills the process group and
// reports false with the output so far.
func (p *Process) waitTimeout(d time.Duration) (Result, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.result(), true
	case <-timer.C:
		p.kill()
		return p.result(), false
	}
}

// kill kills the process group unless the command already exited (its
// process group ID could then be reused), and waits until it is reaped.
func (p *Process) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	// ESRCH means the group is already gone; nothing else can fail here.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// result snapshots the output; the exit code is known only once done.
func (p *Process) result() Result {
	r := Result{ExitCode: -1}
	select {
	case <-p.done:
		r.ExitCode = p.cmd.ProcessState.ExitCode()
	default:
	}
	r.Stdout, r.Stderr = p.out.strings()
	return r
}

// output collects a command's stdout and stderr and lets Expect wait for
// new data without polling.
type output struct {
	mu             sync.Mutex
	stdout, stderr bytes.Buffer
	changed        chan struct{} // closed (and replaced) on every write
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

// writer returns an io.Writer appending to buf.
func (o *output) writer(buf *bytes.Buffer) *streamWriter { return &streamWriter{o: o, buf: buf} }

// match returns the submatches of rx in stdout, else stderr, and a channel
// closed on the next write.
func (o *output) match(rx *regexp.Regexp) ([]string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, buf := range []*bytes.Buffer{&o.stdout, &o.stderr} {
		if m := rx.FindSubmatch(buf.Bytes()); m != nil {
			s := make([]string, len(m))
			for i, b := range m {
				s[i] = string(b)
			}
			return s, o.changed
		}
	}
	return nil, o.changed
}

func (o *output) strings() (string, string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stdout.String(), o.stderr.String()
}

// streamWriter is one of the two streams of an output.
type streamWriter struct {
	o   *output
	buf *bytes.Buffer
}

// Write implements io.Writer.
func (w *streamWriter) Write(b []byte) (int, error) {
	w.o.mu.Lock()
	defer w.o.mu.Unlock()
	close(w.o.changed)
	w.o.changed = make(chan struct{})
	return w.buf.Write(b)
}
