// Command stage1-fly is the fly stage1: it runs a pod's apps with a chroot-
// like root only, sharing the host's network, PID, IPC and UTS namespaces.
// It is for system software that must see the host, such as a kubelet.
//
// One static binary serves every entrypoint; the stage1 image links it as
// /init (run), /enter, /stop and /gc, and it dispatches on its name.
//
// Each app gets its own mount namespace (made by the supervisor), in which
// its rootfs is an overlay of the image and the host's /proc, /sys and /dev
// are bind-mounted: the overlay and the volumes therefore vanish with the
// app and never need unmounting on the host. This departs from the original
// rkt fly, which mounted in the host namespace.
package main

import (
	"rkt.dev/rkt/stage1"
	"rkt.dev/rkt/stage1/supervisor"
)

func main() {
	supervisor.RunHelperIfRequested()
	stage1.Main("stage1-fly", map[string]stage1.Command{
		"init":  runPod,
		"enter": enter,
		"stop":  stage1.NoCode(stop),
		"gc":    stage1.NoCode(gc),
	})
}
