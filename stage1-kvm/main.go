// Command stage1-kvm is the KVM stage1: it boots each pod as a small QEMU
// virtual machine running rkt's own guest kernel, with the guest agent
// (guest-agent/) as PID 1, and drives the pod through the agent's ttrpc API.
//
// One static binary serves every entrypoint; the stage1 image links it as
// /init (run), /enter, /stop and /gc, and it dispatches on its name. The
// image also carries the guest kernel (/vmlinux) and the agent's initramfs
// (/initrd.img). QEMU and virtiofsd come from the host (Debian package
// qemu-system-x86).
//
// Host side of a running pod (see docs/kvm.md):
//
//	rkt run ─ stage1 run process ─┬─ qemu-system-x86_64 (pid file) ── guest agent ── apps
//	                              ├─ virtiofsd per share (app images, host volumes)
//	                              └─ api.sock: the agent API proxied for enter and stop
//
// Every socket and the pids gc needs live in /run/rkt/kvm/<uuid>.
package main

import (
	"rkt.dev/rkt/stage1"
)

// exitForceStopped is the run entrypoint's exit code when `rkt stop
// --force` killed the VM: 128+SIGKILL, as for a killed process. Its other
// codes are the apps' own, or stage1.ExitFailure (254, from stage1.Main)
// when the pod could not be run or its VM failed (a crashed guest, an agent
// that stopped answering).
const exitForceStopped = 137

func main() {
	stage1.Main("stage1-kvm", map[string]stage1.Command{
		"init":  runPod,
		"enter": enter,
		"stop":  stage1.NoCode(stop),
		"gc":    stage1.NoCode(gc),
	})
}
