package agent

import (
	"context"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"rkt.dev/rkt/guest-agent/api"
	"rkt.dev/rkt/stage1/supervisor"
)

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
	sess, err := newStdio(start.Tty, start.Size, true)
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

	go feedExec(sess, srv)
	err = sess.copyOutputs(proc.Done(), func(stderr bool, b []byte) error {
		if stderr {
			return srv.Send(&api.ExecOutput{Output: &api.ExecOutput_Stderr{Stderr: b}})
		}
		return srv.Send(&api.ExecOutput{Output: &api.ExecOutput_Stdout{Stdout: b}})
	})
	st := proc.Wait()
	if err != nil {
		return err
	}
	return srv.Send(&api.ExecOutput{Output: &api.ExecOutput_Exit{Exit: exitStatus(st)}})
}

// feedExec copies the host's input to the command until the host closes
// its side of the stream or asks to close stdin.
func feedExec(s *stdio, srv api.Agent_ExecServer) {
	for {
		msg, err := srv.Recv()
		if err != nil {
			s.closeInput()
			return
		}
		switch in := msg.Input.(type) {
		case *api.ExecInput_Stdin:
			s.write(in.Stdin) // a command that stopped reading drops the rest
		case *api.ExecInput_CloseStdin:
			s.closeInput()
		case *api.ExecInput_Resize:
			s.resize(in.Resize)
		}
	}
}
