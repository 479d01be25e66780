package main

import (
	"path/filepath"

	"rkt.dev/rkt/stage1"
)

// Paths inside the container. The pod directory, the tree store and every
// host volume are bind-mounted under /rkt, so PID 1 reads the pod exactly
// as a host-side flavor would, with RKT_DATA_DIR=/rkt.
const (
	insideBinaryName = "stage1"
	insideBinary     = "/rkt/" + insideBinaryName
	insideDataDir    = "/rkt"
	insidePodDir     = "/rkt/pod"
	insideTree       = "/rkt/tree"
	insideVolumes    = "/rkt/volumes"
	// insideRunDir holds one file per app with its pid in the container,
	// for enter; it is on the container's private /run.
	insideRunDir = "/run/rkt"
)

// containerRoot is the container's root directory, private to the pod:
// systemd-nspawn creates its mountpoints there, and refuses a directory
// without /usr, so the shared, read-only stage1 image cannot be it.
func containerRoot(dir stage1.PodDir) string {
	return filepath.Join(dir.Path(), "stage1", "nspawn-root")
}

// cgroupsFile lists the pod's cgroup directories on the host, one per line,
// for gc. It is written before they are created.
func cgroupsFile(dir stage1.PodDir) string {
	return filepath.Join(dir.Path(), "stage1", "nspawn-cgroups")
}

// appPIDFile holds the pid, in the container, of an app's process.
func appPIDFile(app string) string { return filepath.Join(insideRunDir, app+".pid") }
