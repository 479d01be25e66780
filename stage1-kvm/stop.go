package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/ttrpc"

	"rkt.dev/rkt/guest-agent/api"
	"rkt.dev/rkt/stage1"
)

// stopGrace is how long apps get between SIGTERM and SIGKILL on a graceful
// stop; the whole stop is bounded by stopGrace plus stopSlack.
const (
	stopGrace = 10 * time.Second
	stopSlack = 20 * time.Second
)

// stop ends a running pod. Gracefully: the agent sends SIGTERM to every
// app, SIGKILL after stopGrace, and returns when all have exited; the run
// process then records their exit statuses and powers the VM off. With
// --force: QEMU is killed at once, by its recorded pid.
func stop(args []string) error {
	flags, err := stage1.ParseStopFlags(args)
	if err != nil {
		return err
	}
	if flags.Force {
		return forceStop(flags.UUID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	client, agent, err := dialProxy(ctx, flags.UUID)
	cancel()
	if err != nil {
		return fmt.Errorf("%w; to kill the pod anyway use rkt stop --force", err)
	}
	defer client.Close()
	ctx, cancel = context.WithTimeout(context.Background(), stopGrace+stopSlack)
	defer cancel()
	_, err = agent.Shutdown(ctx, &api.ShutdownRequest{GracePeriodMs: uint32(stopGrace.Milliseconds())})
	if errors.Is(err, ttrpc.ErrClosed) {
		// The pod went down while the answer was on its way: the run
		// process saw the apps exit and powered the VM off, closing
		// the proxy. That is the stop succeeding.
		return nil
	}
	if err != nil {
		return fmt.Errorf("stopping pod %s: %w; to kill it anyway use rkt stop --force", flags.UUID, err)
	}
	return nil
}

// forceStop kills the pod's QEMU. The run process sees the VM die, records
// exit code 137 for the apps that had not exited, and cleans up.
func forceStop(uuid string) error {
	dir, err := runtimeDir(uuid)
	if err != nil {
		return err
	}
	st, err := loadState(dir)
	if err != nil {
		return err
	}
	if !st.QEMU.alive() {
		return fmt.Errorf("pod %s is not running (no live QEMU recorded in %s)", uuid, dir)
	}
	// Tells the run process that the host asked for this death.
	if err := os.WriteFile(filepath.Join(dir, forceStopMarker), nil, 0o600); err != nil {
		return fmt.Errorf("stopping pod %s: %w", uuid, err)
	}
	return st.QEMU.kill()
}
