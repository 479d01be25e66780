package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// ForwardedSignals are the signals a pod's PID 1, or the process that
// stands for the pod (fly's rkt run), passes on to every app instead of
// acting on them itself: the nspawn stage1's supervisor, the kvm guest
// agent and the host run loop all forward exactly these. An app may signal
// PID 1 as it would its container's init (`kill 1` to stop the pod), and
// the user signals rkt run (Ctrl-C, Ctrl-\). Left to the Go runtime, each
// of them would end the process; as the guest's PID 1 that panics the VM.
var ForwardedSignals = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT}

// NotifyForwarded relays ForwardedSignals to c, except those the process
// was started with ignored: `nohup rkt run` must not stop the pod when the
// terminal hangs up, nor a pod started in the background of a
// non-interactive shell on SIGINT, while signal.Notify alone would catch
// them anyway. (The Go runtime keeps an inherited "ignored" for SIGHUP and
// SIGINT only; the others are caught from the start regardless.)
func NotifyForwarded(c chan<- os.Signal) {
	for _, sig := range ForwardedSignals {
		if !signal.Ignored(sig) {
			signal.Notify(c, sig)
		}
	}
}

// PID1DroppedSignals are the other signals the Go runtime crashes on even
// when another process sends them (`kill -ABRT 1`). A pod's PID 1 catches
// and drops them, as an init does. A fault in PID 1 itself still crashes
// it: the runtime lets a program catch SIGILL, SIGTRAP, SIGSTKFLT and
// SIGSYS only when they come from another process.
var PID1DroppedSignals = []os.Signal{unix.SIGILL, unix.SIGTRAP, unix.SIGABRT, unix.SIGSTKFLT, unix.SIGSYS}

// DropSignals catches sigs and discards them, for the life of the
// process. Unlike signal.Ignore it leaves the apps' dispositions alone:
// a caught signal is reset to its default on exec, an ignored one is not.
func DropSignals(sigs ...os.Signal) {
	c := make(chan os.Signal, 8)
	signal.Notify(c, sigs...)
	go func() {
		for range c {
		}
	}()
}

// Supervisor starts apps and reaps every child process, including orphans
// re-parented to it. It must be the only code in its process that waits for
// children: it reaps with wait4(-1), so an os/exec.Cmd run beside it would
// lose its exit status.
type Supervisor struct {
	mu    sync.Mutex
	procs map[int]*Process
}

// ExitStatus is how an app ended. Code follows the shell convention: the
// exit code, or 128+N when the app was killed by signal N, so that a pod's
// exit code is always one number.
type ExitStatus struct {
	Code   int
	Signal syscall.Signal // 0 unless killed by a signal
}

// Process is a started app.
type Process struct {
	// Name is the app name the process was started for.
	Name   string
	pid    int
	done   chan struct{}
	status ExitStatus
	copies sync.WaitGroup
	closer []io.Closer // parent ends of stdio pipes, closed after the copies
	cgroup *appCgroup  // the app's own cgroup, removed once it exits
}

// The process has one reaper: wait4(-1) collects any child, so two
// supervisors in one process would steal each other's exit statuses.
var (
	instance     *Supervisor
	instanceErr  error
	instanceOnce sync.Once
)

// New returns the process's Supervisor, starting its reaper on first use.
// Unless it is already PID 1 it makes itself a child subreaper, so an app's
// daemonised descendants are re-parented to it rather than to the host's
// init and are reaped here.
func New() (*Supervisor, error) {
	instanceOnce.Do(func() {
		if os.Getpid() != 1 {
			if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
				instanceErr = fmt.Errorf("becoming a child subreaper: %w", err)
				return
			}
		}
		s := &Supervisor{procs: map[int]*Process{}}
		sigc := make(chan os.Signal, 16)
		signal.Notify(sigc, unix.SIGCHLD)
		go func() {
			for range sigc {
				s.reap()
			}
		}()
		instance = s
	})
	return instance, instanceErr
}

// reap collects every exited child. It holds the lock for the whole loop so
// that a child cannot be reaped between its fork and its registration in
// Start.
func (s *Supervisor) reap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		p, ok := s.procs[pid]
		if !ok {
			continue // an orphan re-parented to us: reaping it is all we owe
		}
		delete(s.procs, pid)
		st := ExitStatus{Code: ws.ExitStatus()}
		if ws.Signaled() {
			st = ExitStatus{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
		}
		go p.finish(st)
	}
}

// OutputDrain bounds how long an app's output is still read once the app
// has exited. A descendant that keeps its stdout or stderr open (a daemon
// it started) must not keep the app, and so the pod, running: the
// supervisor's own copies and the kvm guest agent's output streams both
// stop then.
const OutputDrain = 2 * time.Second

// finish waits briefly for the output copies to drain (OutputDrain), then
// publishes the status.
func (p *Process) finish(st ExitStatus) {
	drained := make(chan struct{})
	go func() { p.copies.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(OutputDrain):
	}
	for _, c := range p.closer {
		c.Close()
	}
	if p.cgroup != nil {
		p.cgroup.remove()
	}
	p.status = st
	close(p.done)
}

// Pid returns the app's process ID (the app's command runs in that process
// from the start, or the exec helper execs it in place).
func (p *Process) Pid() int { return p.pid }

// Wait blocks until the app has exited and its output has been copied.
func (p *Process) Wait() ExitStatus {
	<-p.done
	return p.status
}

// Done is closed when the app has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to the app.
func (p *Process) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return fmt.Errorf("app %s has already exited", p.Name)
	default:
	}
	if err := unix.Kill(p.pid, sig); err != nil {
		return fmt.Errorf("signalling app %s (pid %d): %w", p.Name, p.pid, err)
	}
	return nil
}

// Start starts an app and returns once the app's own command is running: a
// failure to set up its root, mounts, user or working directory, or to find
// its executable, is returned here with the reason rather than as an exit
// code.
func (s *Supervisor) Start(app App) (*Process, error) {
	if err := app.validate(); err != nil {
		return nil, err
	}
	if app.allowsDirectStart() {
		return s.startDirect(app)
	}
	return s.spawn(helperStart, app, true)
}

// startDirect starts an app without the exec helper. A new OS thread of
// this process, locked to one goroutine, enters a fresh mount namespace,
// builds the app's root there, becomes the app (user, working directory,
// capabilities, no_new_privs, seccomp filter: all per-thread state) and
// forks the app's command; the child inherits exactly that thread's state.
// The thread has become the app and is never given back to the Go
// scheduler: its goroutine exits while locked, which ends the thread.
//
// Why: it saves a whole Go process start per app, most of an app's start
// time in the kvm guest under TCG (about 70 of 130 ms) and about 10 ms on
// the host. It is only used when nothing has to happen between the fork
// and the exec (see App.allowsDirectStart); otherwise the helper runs.
func (s *Supervisor) startDirect(app App) (*Process, error) {
	p := &Process{Name: app.Name, done: make(chan struct{})}
	stdio, childEnds, err := p.stdio(app)
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	if err != nil {
		p.closeAll()
		return nil, fmt.Errorf("starting app %s: %w", app.Name, err)
	}
	fds := make([]uintptr, len(stdio))
	for i, f := range stdio {
		fds[i] = f.Fd()
	}
	session := app.session()
	type forked struct {
		pid int
		err error
	}
	res := make(chan forked, 1)
	// Holding the lock from before the fork until the pid is registered
	// keeps the reaper from collecting an app that exits at once.
	s.mu.Lock()
	onThrowawayThread(func() {
		pid, err := forkApp(&app, fds, session)
		res <- forked{pid, err}
	})
	r := <-res
	if r.err == nil {
		p.pid = r.pid
		s.procs[p.pid] = p
	}
	s.mu.Unlock()
	runtime.KeepAlive(stdio)
	if r.err != nil {
		p.closeAll()
		return nil, r.err
	}
	return p, nil
}

// onThrowawayThread runs fn in a new goroutine locked to an OS thread that
// ends with it, so that whatever fn changes about its thread (namespaces,
// root, credentials, filters) dies with the thread. That thread must not
// be the main one: Go never ends the process's main thread but parks it
// forever, still changed, and /proc/PID/{root,cwd,status} of the whole
// process describe the main thread. While a goroutine holds the main
// thread locked, no other goroutine can run there.
func onThrowawayThread(fn func()) {
	go func() {
		runtime.LockOSThread() // never unlocked on the thread running fn
		if unix.Gettid() != unix.Getpid() {
			fn()
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread()
			fn()
		}()
		<-done
		runtime.UnlockOSThread()
	}()
}

// forkApp is startDirect's work on its throwaway thread.
func forkApp(app *App, fds []uintptr, session *syscall.SysProcAttr) (int, error) {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return 0, fmt.Errorf("app %s: creating its mount namespace: %w", app.Name, err)
	}
	if err := setupRoot(app); err != nil {
		return 0, fmt.Errorf("setting up the root filesystem of app %s: %w", app.Name, err)
	}
	path, env, err := becomeApp(app)
	if err != nil {
		return 0, err
	}
	pid, err := syscall.ForkExec(path, app.Exec, &syscall.ProcAttr{Env: env, Files: fds, Sys: session})
	if err != nil {
		return 0, fmt.Errorf("app %s: executing %s: %w", app.Name, path, err)
	}
	return pid, nil
}

// Enter runs cmd inside the root of the running process pid (`rkt enter`):
// the command sees the app's filesystem, with the app's environment, as the
// given user. The returned Process is waited for like an app.
func (s *Supervisor) Enter(pid int, app App) (*Process, error) {
	app.Root = fmt.Sprintf("/proc/%d/root", pid)
	app.Lower, app.Mounts = "", nil
	if err := app.validate(); err != nil {
		return nil, err
	}
	return s.spawn(helperEnter, app, false)
}

// spawn forks the current binary as the exec helper in the given mode. The
// app spec travels over a pipe, and a second, close-on-exec pipe reports
// whether the helper reached exec: EOF means the app is running, anything
// else is the helper's error.
func (s *Supervisor) spawn(mode string, app App, newMountNS bool) (*Process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("starting app %s: finding own executable: %w", app.Name, err)
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting app %s: %w", app.Name, err)
	}
	defer specR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		specW.Close()
		return nil, fmt.Errorf("starting app %s: %w", app.Name, err)
	}
	defer errR.Close()

	p := &Process{Name: app.Name, done: make(chan struct{})}
	if app.Isolators.hasLimits() {
		if p.cgroup, err = newAppCgroup(&app.Isolators); err != nil {
			specW.Close()
			errW.Close()
			return nil, fmt.Errorf("starting app %s: %w", app.Name, err)
		}
	}
	stdio, childEnds, err := p.stdio(app)
	if err != nil {
		if p.cgroup != nil {
			p.cgroup.remove()
		}
		specW.Close()
		errW.Close()
		return nil, fmt.Errorf("starting app %s: %w", app.Name, err)
	}
	attr := &os.ProcAttr{
		Files: append(stdio, specR, errW),
		Sys:   app.session(),
		Env:   []string{},
	}
	if newMountNS {
		attr.Sys.Unshareflags = syscall.CLONE_NEWNS
	}

	s.mu.Lock()
	proc, err := os.StartProcess(self, []string{self, helperArg, mode}, attr)
	if err == nil {
		p.pid = proc.Pid
		s.procs[p.pid] = p
	}
	s.mu.Unlock()
	for _, f := range childEnds {
		f.Close()
	}
	errW.Close()
	if err != nil {
		specW.Close()
		p.closeAll()
		if p.cgroup != nil {
			p.cgroup.remove()
		}
		return nil, fmt.Errorf("starting app %s: %w", app.Name, err)
	}
	proc.Release()

	// The helper waits for its spec before doing anything, so it enters
	// the app's cgroup before it runs any code of its own.
	if p.cgroup != nil {
		if err := p.cgroup.join(p.pid); err != nil {
			specW.Close()
			unix.Kill(p.pid, unix.SIGKILL)
			p.Wait()
			return nil, fmt.Errorf("starting app %s: %w", app.Name, err)
		}
	}
	err = json.NewEncoder(specW).Encode(app)
	specW.Close()
	if err != nil {
		return nil, fmt.Errorf("starting app %s: sending its spec: %w", app.Name, err)
	}
	msg, _ := io.ReadAll(errR)
	if len(msg) > 0 {
		// The helper has exited (or is exiting); its status is reaped and
		// dropped with the process.
		p.Wait()
		return nil, errors.New(string(msg))
	}
	return p, nil
}

// stdio returns the files handed to the child as fds 0-2, the child ends to
// close in the parent after the fork, and starts the copies for non-file
// streams.
func (p *Process) stdio(app App) (files, childEnds []*os.File, err error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	childEnds = append(childEnds, devnull)

	in := devnull
	switch r := app.Stdin.(type) {
	case nil:
	case *os.File:
		in = r
	default:
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, childEnds, err
		}
		in = pr
		childEnds = append(childEnds, pr)
		go func() { io.Copy(pw, r); pw.Close() }()
	}
	files = append(files, in)
	for _, w := range []io.Writer{app.Stdout, app.Stderr} {
		switch w := w.(type) {
		case nil:
			files = append(files, devnull)
		case *os.File:
			files = append(files, w)
		default:
			pr, pw, err := os.Pipe()
			if err != nil {
				return nil, childEnds, err
			}
			files = append(files, pw)
			childEnds = append(childEnds, pw)
			p.closer = append(p.closer, pr)
			p.copies.Add(1)
			go func() { defer p.copies.Done(); io.Copy(w, pr) }()
		}
	}
	return files, childEnds, nil
}

func (p *Process) closeAll() {
	for _, c := range p.closer {
		c.Close()
	}
}

// session returns how the app's process starts: in a session of its own,
// away from the supervisor's controlling terminal, unless its stdin is a
// terminal. A terminal made for the process (App.OwnTerminal) becomes the
// controlling terminal of that new session: without one, ^C typed there
// would signal nobody. Any other terminal is the caller's (an interactive
// app on nspawn or fly), which the app shares as it is; making it the app's
// own would take it from the caller's session, as Go's Setctty forces.
func (a *App) session() *syscall.SysProcAttr {
	f, ok := a.Stdin.(*os.File)
	switch {
	case !ok || !term.IsTerminal(int(f.Fd())):
		return &syscall.SysProcAttr{Setsid: true}
	case a.OwnTerminal:
		return &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0} // stdin, in the child
	default:
		return &syscall.SysProcAttr{}
	}
}
