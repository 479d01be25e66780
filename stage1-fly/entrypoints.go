package main

import (
	"fmt"
	"os"

	"rkt.dev/rkt/internal/procstat"
	"rkt.dev/rkt/stage1"
	"rkt.dev/rkt/stage1/apprun"
)

// enter runs a command in a running app's root: fly shares the host's
// namespaces, so the app's /proc/PID/root is all it needs.
func enter(args []string) (int, error) {
	flags, err := stage1.ParseEnterFlags(args)
	if err != nil {
		return 0, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	p, err := stage1.LoadPod(stage1.PodDir(wd), "")
	if err != nil {
		return 0, err
	}
	return apprun.Enter(p, flags.PID, flags.AppName, flags.Cmd)
}

// stop ends the pod. Without --force it sends SIGTERM to the run
// entrypoint, which forwards it to every app and records their exits; with
// --force it SIGKILLs every app directly.
func stop(args []string) error {
	flags, dir, pid, err := stage1.ReadStopTarget(args)
	if err != nil {
		return err
	}
	init, err := parentPID(pid)
	if err != nil {
		return fmt.Errorf("pod %s is not running: %w", flags.UUID, err)
	}
	// The pid file may be stale; the run entrypoint works in the pod
	// directory, which identifies it.
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", init)); err != nil || cwd != dir.Path() {
		return fmt.Errorf("pod %s is not running (process %d is not its stage1)", flags.UUID, init)
	}
	return stage1.StopApps(init, flags.Force)
}

// parentPID is a process's parent.
func parentPID(pid int) (int, error) {
	st, err := procstat.Read(pid)
	return st.PPID, err
}

// gc releases what a fly pod held on the host. Its mounts lived in the
// apps' private mount namespaces and died with them, so only the writable
// layers remain, and those go with the pod directory.
func gc(args []string) error {
	_, err := stage1.ParseGCFlags(args)
	return err
}
