package agent

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"rkt.dev/rkt/guest-agent/api"
	"rkt.dev/rkt/stage1/supervisor"
)

// outputDrainTimeout bounds how long an exec session keeps forwarding
// output after its command exited: a background process it started may
// hold the output open forever.
const outputDrainTimeout = 2 * time.Second

// Exec implements api.AgentService.
func (a *Agent) Exec(_ context.Context, srv api.Agent_ExecServer) error {
	first, err := srv.Recv()
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "Exec: no start message: %v", err)
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "Exec: the first message must be a start")
	}
	if len(start.Args) == 0 {
		return status.Error(codes.InvalidArgument, "Exec: no command given")
	}
	ap, err := a.lookup(start.App)
	if err != nil {
		return err
	}
	select {
	case <-ap.proc.Done():
		return status.Errorf(codes.FailedPrecondition, "app %s has exited; a command can only be run in a running app", start.App)
	default:
	}

	// The app's environment, but as root in "/" and without the app's
	// isolators: whoever enters a pod is debugging it, not acting as the
	// app (as with the other flavors); the VM stays the boundary.
	spec := ap.sup
	spec.Exec = start.Args
	spec.Env = append(slices.Clone(ap.sup.Env), start.Env...)
	spec.User, spec.Group, spec.SupplementaryGIDs, spec.WorkDir = "0", "0", nil, "/"
	spec.Isolators = supervisor.Isolators{}
	sess, err := newSession(start)
	if err != nil {
		return status.Errorf(codes.Internal, "exec in app %s: %v", start.App, err)
	}
	defer sess.close()
	spec.Stdin, spec.Stdout, spec.Stderr = sess.childIn, sess.childOut, sess.childErr
	spec.OwnTerminal = sess.tty
	proc, err := a.cfg.Supervisor.Enter(ap.proc.Pid(), spec)
	sess.closeChildEnds()
	if err != nil {
		return status.Errorf(codes.FailedPrecondition, "%v", err)
	}

	var sendMu sync.Mutex
	send := func(m *api.ExecOutput) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return srv.Send(m)
	}
	var copies sync.WaitGroup
	for _, o := range sess.outputs() {
		copies.Add(1)
		go func() {
			defer copies.Done()
			copyChunks(o.f, func(b []byte) error { return send(o.wrap(b)) })
		}()
	}
	go sess.feed(srv)

	st := proc.Wait()
	drained := make(chan struct{})
	go func() { copies.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(outputDrainTimeout):
		sess.closeOutputs() // ends the copies
		<-drained
	}
	return send(&api.ExecOutput{Output: &api.ExecOutput_Exit{Exit: exitStatus(st)}})
}

// session holds the stdio of one exec: either a pseudo-terminal or three
// pipes. The child ends go to the command; the agent keeps the others.
type session struct {
	tty                          bool
	childIn, childOut, childErr  *os.File
	in, out, errOut              *os.File // agent ends; errOut is nil with a tty
	closeInOnce, closeOutputOnce sync.Once
}

// output is an agent-side read end and how its chunks are sent.
type output struct {
	f    *os.File
	wrap func([]byte) *api.ExecOutput
}

func newSession(start *api.ExecStart) (*session, error) {
	s := &session{tty: start.Tty}
	if s.tty {
		master, slave, err := openPTY()
		if err != nil {
			return nil, err
		}
		s.in, s.out = master, master
		s.childIn, s.childOut, s.childErr = slave, slave, slave
		if start.Size != nil {
			s.resize(start.Size)
		}
		return s, nil
	}
	var err error
	if s.childIn, s.in, err = os.Pipe(); err != nil {
		return nil, err
	}
	if s.out, s.childOut, err = os.Pipe(); err != nil {
		s.close()
		return nil, err
	}
	if s.errOut, s.childErr, err = os.Pipe(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *session) outputs() []output {
	outs := []output{{s.out, func(b []byte) *api.ExecOutput { return &api.ExecOutput{Output: &api.ExecOutput_Stdout{Stdout: b}} }}}
	if s.errOut != nil {
		outs = append(outs, output{s.errOut, func(b []byte) *api.ExecOutput { return &api.ExecOutput{Output: &api.ExecOutput_Stderr{Stderr: b}} }})
	}
	return outs
}

// feed copies the host's input to the command until the host closes its
// side of the stream or asks to close stdin.
func (s *session) feed(srv api.Agent_ExecServer) {
	for {
		msg, err := srv.Recv()
		if err != nil {
			s.closeInput()
			return
		}
		switch in := msg.Input.(type) {
		case *api.ExecInput_Stdin:
			s.in.Write(in.Stdin) // a command that stopped reading drops the rest
		case *api.ExecInput_CloseStdin:
			s.closeInput()
		case *api.ExecInput_Resize:
			if s.tty {
				s.resize(in.Resize)
			}
		}
	}
}

// closeInput ends the command's input: EOF on a pipe; on a terminal, the
// end-of-file character, as a user typing ^D.
func (s *session) closeInput() {
	s.closeInOnce.Do(func() {
		if s.tty {
			s.in.Write([]byte{4})
			return
		}
		s.in.Close()
	})
}

func (s *session) resize(ws *api.WindowSize) {
	unix.IoctlSetWinsize(int(s.out.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(ws.Rows), Col: uint16(ws.Cols)})
}

func (s *session) closeChildEnds() {
	for _, f := range uniqueFiles(s.childIn, s.childOut, s.childErr) {
		f.Close()
	}
}

func (s *session) closeOutputs() {
	s.closeOutputOnce.Do(func() {
		for _, f := range uniqueFiles(s.out, s.errOut) {
			f.Close()
		}
	})
}

func (s *session) close() {
	s.closeChildEnds()
	s.closeOutputs()
	if !s.tty && s.in != nil {
		s.closeInput()
	}
}

// uniqueFiles drops nil and repeated files (a terminal is stdin, stdout
// and stderr at once).
func uniqueFiles(files ...*os.File) []*os.File {
	var out []*os.File
	for _, f := range files {
		if f != nil && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// openPTY opens a new pseudo-terminal pair. The peer is opened through the
// master (TIOCGPTPEER) rather than by its /dev/pts path, so it works
// whatever devpts instance the caller sees.
func openPTY() (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("unlocking the pseudo-terminal: %w", err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(m)
		return nil, nil, fmt.Errorf("opening the pseudo-terminal's peer: %w", errno)
	}
	return os.NewFile(uintptr(m), "ptmx"), os.NewFile(sfd, "pts"), nil
}
