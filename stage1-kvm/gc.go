package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"rkt.dev/rkt/network"
	"rkt.dev/rkt/stage1"
)

// gc releases what an exited pod still holds on the host. Normally the run
// process has released everything itself; after it was killed, QEMU and
// virtiofsd die with it (they have a parent-death signal) but may still be
// exiting, and the runtime directory with its sockets remains. gc kills
// every recorded process that still runs (checked by pid and start time,
// so a reused pid is never hit) and removes the directory. Nothing is ever
// mounted on the host for a kvm pod. Then it tears the pod's network down.
// gc is idempotent.
func gc(args []string) error {
	flags, err := stage1.ParseGCFlags(args)
	if err != nil {
		return err
	}
	dir, err := runtimeDir(flags.UUID)
	if err != nil {
		return err
	}
	st, err := loadState(dir)
	if err != nil {
		return err
	}
	var errs []error
	// The run process first: it must not start anything new meanwhile.
	for _, p := range append([]hostProc{st.Run, st.QEMU}, st.Virtiofsd...) {
		if p.alive() && flags.Debug {
			fmt.Fprintf(os.Stderr, "stage1-kvm gc: killing leftover %s (pid %d)\n", p.What, p.PID)
		}
		if err := p.kill(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("pod %s: %w", flags.UUID, errors.Join(errs...))
	}
	// With its processes gone, the pod's network can go: CNI DEL for every
	// network, then the namespace (with the taps in it).
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := network.TeardownPod(context.Background(), stage1.PodDir(wd), flags.UUID); err != nil {
		return fmt.Errorf("pod %s: %w", flags.UUID, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("pod %s: removing its runtime directory: %w", flags.UUID, err)
	}
	return nil
}
