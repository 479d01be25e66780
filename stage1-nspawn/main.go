// Command stage1-nspawn is the nspawn stage1: it runs a pod in its own PID,
// mount, UTS, IPC, cgroup and network namespaces, made by the host's
// systemd-nspawn (Debian package systemd-container), with
// stage1/supervisor as the pod's PID 1.
//
// One static binary serves every entrypoint; the stage1 image links it as
// /init (run), /enter, /stop and /gc, and it dispatches on its name. The
// same binary is bind-mounted into the container as /rkt/stage1, where it
// runs as the pod's PID 1 ("pod-init") and as the inside half of enter
// ("app-enter").
//
// systemd-nspawn runs with --register=no --keep-unit, so the host needs no
// systemd, no machined and no system bus. The container's root is a small
// per-pod directory; the pod directory, the tree store and the host volumes
// are bind-mounted into it, and each app then gets its own mount namespace
// rooted at an overlay of its image (the supervisor's PrivateSystemMounts),
// so nothing is ever mounted in the host's mount namespace.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"rkt.dev/rkt/stage1/supervisor"
)

func main() {
	supervisor.RunHelperIfRequested()
	var err error
	code := 0
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == insideBinaryName && len(args) > 0 {
		name, args = args[0], args[1:]
	}
	switch name {
	case "init", "run":
		code, err = runPod(args)
	case "enter":
		err = enter(args)
	case "stop":
		err = stop(args)
	case "gc":
		err = gc(args)
	case "pod-init":
		code, err = podInit()
	case "app-enter":
		code, err = appEnter(args)
	default:
		err = fmt.Errorf("unknown entrypoint %q; run me as init, enter, stop or gc", name)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage1-nspawn: %v\n", err)
		os.Exit(254)
	}
	os.Exit(code)
}
