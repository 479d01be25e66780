package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"rkt.dev/rkt/network"
	"rkt.dev/rkt/stage1"
)

// enter joins the pod's namespaces and runs the inside half of enter there.
//
// A Go program cannot join a mount namespace itself: setns(CLONE_NEWNS)
// fails in a multithreaded process, and the Go runtime always has several
// threads. So enter replaces itself with nsenter (util-linux), which joins
// the namespaces of the container's PID 1 and its root, then runs this
// binary's copy inside the container, single-threaded C code doing the one
// thing Go cannot.
func enter(args []string) error {
	flags, err := stage1.ParseEnterFlags(args)
	if err != nil {
		return err
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return errors.New("nsenter is not installed; install the Debian package util-linux")
	}
	pid := fmt.Sprint(flags.PID)
	argv := []string{nsenter, "--target=" + pid, "--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--root", "--wd"}
	if own, err := os.Readlink("/proc/self/ns/user"); err == nil {
		if theirs, err := os.Readlink("/proc/" + pid + "/ns/user"); err == nil && theirs != own {
			argv = append(argv, "--user")
		}
	}
	inside := stage1.EnterFlags{PID: flags.PID, AppName: flags.AppName, TTY: flags.TTY, Cmd: flags.Cmd}
	argv = append(append(argv, "--", insideBinary, "app-enter"), inside.Args()...)
	env := append(os.Environ(), stage1.EnvDataDir+"="+insideDataDir)
	if err := syscall.Exec(nsenter, argv, env); err != nil {
		return fmt.Errorf("executing nsenter: %w", err)
	}
	return nil
}

// stop ends the pod. Without --force it sends SIGTERM to the container's
// PID 1, which forwards it to every app and records their exits; with
// --force it SIGKILLs the apps, and PID 1 records that.
func stop(args []string) error {
	flags, _, pid, err := stage1.ReadStopTarget(args)
	if err != nil {
		return err
	}
	// The pid file may be stale: the pod's PID 1 is in its cgroup.
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil || !strings.Contains(string(cg), "/rkt-"+flags.UUID) {
		return fmt.Errorf("pod %s is not running (process %d is not its PID 1)", flags.UUID, pid)
	}
	return stage1.StopApps(pid, flags.Force)
}

// gc releases what an nspawn pod held on the host: its cgroups. Every
// mount lived in the container's mount namespaces and died with them, and
// the container's root goes with the pod directory. It is idempotent.
func gc(args []string) error {
	flags, err := stage1.ParseGCFlags(args)
	if err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := network.TeardownPod(context.Background(), stage1.PodDir(wd), flags.UUID); err != nil {
		return err
	}
	return removePodCgroups(stage1.PodDir(wd))
}
