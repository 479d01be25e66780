package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"rkt.dev/rkt/internal/procstat"
	"rkt.dev/rkt/stage1"
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
	return p.Enter(flags.PID, flags.AppName, flags.Cmd)
}

// stop ends the pod. Without --force it sends SIGTERM to the run
// entrypoint, which forwards it to every app and records their exits; with
// --force it SIGKILLs every app directly.
func stop(args []string) error {
	flags, err := stage1.ParseStopFlags(args)
	if err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	pid, err := stage1.PodDir(wd).ReadPID()
	if err != nil {
		return fmt.Errorf("pod %s has no pid yet: %w", flags.UUID, err)
	}
	init, err := parentPID(pid)
	if err != nil {
		return fmt.Errorf("pod %s is not running: %w", flags.UUID, err)
	}
	// The pid file may be stale; the run entrypoint works in the pod
	// directory, which identifies it.
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", init)); err != nil || cwd != wd {
		return fmt.Errorf("pod %s is not running (process %d is not its stage1)", flags.UUID, init)
	}
	if !flags.Force {
		return sendSignal(init, syscall.SIGTERM)
	}
	kids, err := childrenOf(init)
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := sendSignal(k, syscall.SIGKILL); err != nil {
			return err
		}
	}
	return nil
}

func sendSignal(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling pid %d: %w", pid, err)
	}
	return nil
}

// parentPID is a process's parent.
func parentPID(pid int) (int, error) {
	st, err := procstat.Read(pid)
	return st.PPID, err
}

// childrenOf lists the direct children of pid.
func childrenOf(pid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var kids []int
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, err := parentPID(c); err == nil && pp == pid {
			kids = append(kids, c)
		}
	}
	return kids, nil
}

// gc releases what a fly pod held on the host. Its mounts lived in the
// apps' private mount namespaces and died with them, so only the writable
// layers remain, and those go with the pod directory.
func gc(args []string) error {
	_, err := stage1.ParseGCFlags(args)
	return err
}
