package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"rkt.dev/rkt/internal/procstat"
)

// runtimeRoot holds one directory per running kvm pod with its sockets and
// state. It is short on purpose: Unix socket paths are limited to 107
// bytes, and a pod directory under a long --dir could exceed that.
const runtimeRoot = "/run/rkt/kvm"

// Files in a pod's runtime directory, besides the ones the QEMU driver
// creates (qmp.sock, agent.sock).
const (
	stateFile       = "state.json" // the host processes of the pod
	apiSocket       = "api.sock"   // the agent API, proxied by the run process
	forceStopMarker = "force-stopped"
)

// runtimeDir is the runtime directory of pod uuid.
func runtimeDir(uuid string) (string, error) {
	// The UUID becomes a path component: refuse anything that is not one.
	if uuid == "" || filepath.Base(uuid) != uuid || strings.HasPrefix(uuid, ".") {
		return "", fmt.Errorf("invalid pod UUID %q", uuid)
	}
	return filepath.Join(runtimeRoot, uuid), nil
}

// hostProc identifies a host process across PID reuse: its start time
// (in clock ticks since boot) must match too.
type hostProc struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"startTime"`
	What      string `json:"what"`
}

// podState records the host processes of a pod, for stop --force and gc.
type podState struct {
	Run       hostProc   `json:"run"`
	QEMU      hostProc   `json:"qemu"`
	Virtiofsd []hostProc `json:"virtiofsd"`
}

func (s podState) save(dir string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("recording the pod's host processes: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("recording the pod's host processes: %w", err)
	}
	return nil
}

// loadState reads a pod's recorded processes; a missing file is an empty
// state.
func loadState(dir string) (podState, error) {
	var s podState
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("corrupt %s: %w", filepath.Join(dir, stateFile), err)
	}
	return s, nil
}

// procOf returns pid's identity.
func procOf(pid int, what string) (hostProc, error) {
	st, err := startTime(pid)
	if err != nil {
		return hostProc{}, err
	}
	return hostProc{PID: pid, StartTime: st, What: what}, nil
}

// startTime is a process's start time in clock ticks since boot.
func startTime(pid int) (uint64, error) {
	st, err := procstat.Read(pid)
	return st.StartTime, err
}

// killTimeout bounds the wait for a SIGKILLed process to be gone.
const killTimeout = 10 * time.Second

// kill SIGKILLs the process if it is still the recorded one, and waits
// until it is gone (bounded), then does the same for the children it had:
// virtiofsd's namespace sandbox is a child process, which only gets a
// SIGTERM when its parent dies and may still be shutting down. A process
// that is gone already is no error.
func (p hostProc) kill() error {
	var kids []hostProc
	// Only the recorded process's children: the PID may name another one
	// by now. (killOne checks again, through a pidfd.)
	if p.alive() {
		for _, pid := range procstat.Children(p.PID) {
			if k, err := procOf(pid, p.What+" child"); err == nil {
				kids = append(kids, k)
			}
		}
	}
	if err := p.killOne(); err != nil {
		return err
	}
	for _, k := range kids {
		if err := k.kill(); err != nil {
			return err
		}
	}
	return nil
}

// killOne is kill without the children.
func (p hostProc) killOne() error {
	if p.PID <= 0 {
		return nil
	}
	// A pidfd pins the process: after the start time check, the signal
	// cannot reach a different process that reused the PID.
	fd, err := unix.PidfdOpen(p.PID, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s (pid %d): %w", p.What, p.PID, err)
	}
	defer unix.Close(fd)
	if st, err := startTime(p.PID); err != nil || st != p.StartTime {
		return nil // exited, and the PID now names another process
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("killing %s (pid %d): %w", p.What, p.PID, err)
	}
	// The pidfd becomes readable when the process has exited.
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(killTimeout)
	for {
		n, err := unix.Poll(fds, int(time.Until(deadline).Milliseconds()))
		if n > 0 {
			return nil
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("waiting for %s (pid %d) to exit: %w", p.What, p.PID, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) is still there %v after SIGKILL; it is stuck in the kernel (see /proc/%d/stack)", p.What, p.PID, killTimeout, p.PID)
		}
	}
}

// alive reports whether the recorded process still runs.
func (p hostProc) alive() bool {
	if p.PID <= 0 {
		return false
	}
	st, err := startTime(p.PID)
	return err == nil && st == p.StartTime
}
