package stage1

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"rkt.dev/rkt/internal/procstat"
)

// ReadStopTarget is the common start of the host flavors' stop entrypoint:
// it parses the flags and reads the pid the run entrypoint recorded in the
// pod directory, which is the working directory. The flavor then checks
// that the pid is still the pod's (it may be stale) before StopApps.
func ReadStopTarget(args []string) (flags StopFlags, dir PodDir, pid int, err error) {
	if flags, err = ParseStopFlags(args); err != nil {
		return flags, "", 0, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return flags, "", 0, err
	}
	dir = PodDir(wd)
	if pid, err = dir.ReadPID(); err != nil {
		return flags, dir, 0, fmt.Errorf("pod %s has no pid yet: %w", flags.UUID, err)
	}
	return flags, dir, pid, nil
}

// StopApps is the common end of the host flavors' stop entrypoint, once
// the flavor has checked that supervisor is the running pod's supervisor
// (the process that started its apps). Without force it sends that process
// SIGTERM, which it forwards to every app before recording their exits;
// with force it SIGKILLs every app, its children, and the supervisor
// records that. A process already gone is not an error: the pod is ending
// anyway.
func StopApps(supervisor int, force bool) error {
	if !force {
		return signalProcess(supervisor, syscall.SIGTERM)
	}
	for _, app := range procstat.Children(supervisor) {
		if err := signalProcess(app, syscall.SIGKILL); err != nil {
			return err
		}
	}
	return nil
}

func signalProcess(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling pid %d: %w", pid, err)
	}
	return nil
}
