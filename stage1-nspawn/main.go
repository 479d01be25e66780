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
	"os"
	"path/filepath"

	"rkt.dev/rkt/stage1"
	"rkt.dev/rkt/stage1/supervisor"
)

func main() {
	supervisor.RunHelperIfRequested()
	// Inside the container the binary is started by its own name with
	// the command as the first argument (see nspawnArgs).
	if filepath.Base(os.Args[0]) == insideBinaryName && len(os.Args) > 1 {
		os.Args = os.Args[1:]
	}
	stage1.Main("stage1-nspawn", map[string]stage1.Command{
		"init":      runPod,
		"enter":     stage1.NoCode(enter),
		"stop":      stage1.NoCode(stop),
		"gc":        stage1.NoCode(gc),
		"pod-init":  func([]string) (int, error) { return podInit() },
		"app-enter": appEnter,
	})
}
