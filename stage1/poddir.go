package stage1

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/appc/spec/schema/types"
)

// PodDir is a pod directory. Its methods return the paths of everything
// stage0 and stage1 exchange; no other package builds these paths.
//
// Layout:
//
//	pod                          the pod manifest (JSON)
//	pod-created                  its mtime is the pod's creation time
//	stage1/manifest              the stage1 image manifest
//	stage1/rootfs                the stage1 rootfs (a symlink into the tree store)
//	stage1TreeStoreID            tree store ID of the stage1 image
//	stage1ImageID                image ID of the stage1 image
//	appsinfo/<app>/manifest      the app's image manifest
//	appsinfo/<app>/treeStoreID   tree store ID of the app's rendered image
//	apps/<app>/rootfs            where a host-side flavor mounts the app's writable rootfs
//	apps/<app>/upper, work       overlayfs upper and work directories of that rootfs
//	sharedVolumes/<volume>       backing directories of kind=empty volumes
//	status/<app>                 the app's exit code, decimal, written once it exits
//	log/<app>                    the app's stdout and stderr, as the stage1 saw them
//	pid                          the process `enter` targets (its ctime is the start time)
//	stage1.json                  the stage1 flags of the run (RunFlags) for enter/stop/gc
//	resolv.conf                  the apps' /etc/resolv.conf, when stage0 was given --dns
//	hosts                        entries for the apps' /etc/hosts (--hosts-entry)
//	etc/resolv.conf, etc/hosts   what the stage1 gives every app as /etc/resolv.conf and /etc/hosts
//	netns                        the pod's network namespace (a bind mount), when it has one
//	net-info.json                network result (written by the networking layer)
type PodDir string

// Path returns the pod directory itself.
func (p PodDir) Path() string { return string(p) }

func (p PodDir) join(elem ...string) string {
	return filepath.Join(append([]string{string(p)}, elem...)...)
}

// Manifest is the pod manifest file.
func (p PodDir) Manifest() string { return p.join("pod") }

// Created is the file whose mtime records when the pod was created.
func (p PodDir) Created() string { return p.join("pod-created") }

// Stage1Manifest is the stage1 image manifest file.
func (p PodDir) Stage1Manifest() string { return p.join("stage1", "manifest") }

// Stage1Rootfs is the stage1 image's root filesystem.
func (p PodDir) Stage1Rootfs() string { return p.join("stage1", "rootfs") }

// Stage1TreeStoreID is the file holding the stage1 image's tree store ID.
func (p PodDir) Stage1TreeStoreID() string { return p.join("stage1TreeStoreID") }

// Stage1ImageID is the file holding the stage1 image's ID, so image gc can
// tell the image is in use.
func (p PodDir) Stage1ImageID() string { return p.join("stage1ImageID") }

// AppInfoDir is the directory with the app's image manifest and tree ID.
func (p PodDir) AppInfoDir(app types.ACName) string { return p.join("appsinfo", app.String()) }

// AppImageManifest is the image manifest of the app's image.
func (p PodDir) AppImageManifest(app types.ACName) string {
	return filepath.Join(p.AppInfoDir(app), "manifest")
}

// AppTreeStoreID is the file naming the app's rendered image in the tree store.
func (p PodDir) AppTreeStoreID(app types.ACName) string {
	return filepath.Join(p.AppInfoDir(app), "treeStoreID")
}

// AppDir holds the app's writable rootfs on the host (fly, nspawn).
func (p PodDir) AppDir(app types.ACName) string { return p.join("apps", app.String()) }

// AppRootfs is where a host-side flavor mounts the app's writable rootfs.
func (p PodDir) AppRootfs(app types.ACName) string {
	return filepath.Join(p.AppDir(app), "rootfs")
}

// AppUpper is the overlayfs upper directory of the app's rootfs.
func (p PodDir) AppUpper(app types.ACName) string { return filepath.Join(p.AppDir(app), "upper") }

// AppWork is the overlayfs work directory of the app's rootfs.
func (p PodDir) AppWork(app types.ACName) string { return filepath.Join(p.AppDir(app), "work") }

// SharedVolume is the backing directory of a kind=empty volume.
func (p PodDir) SharedVolume(vol types.ACName) string {
	return p.join("sharedVolumes", vol.String())
}

// StatusDir holds one exit-code file per app.
func (p PodDir) StatusDir() string { return p.join("status") }

// StatusFile is the exit-code file of an app.
func (p PodDir) StatusFile(app types.ACName) string { return p.join("status", app.String()) }

// LogDir holds one output file per app.
func (p PodDir) LogDir() string { return p.join("log") }

// LogFile is the saved output of an app.
func (p PodDir) LogFile(app types.ACName) string { return p.join("log", app.String()) }

// PIDFile names the process that `rkt enter` targets.
func (p PodDir) PIDFile() string { return p.join("pid") }

// RunFlagsFile records the flags of the run entrypoint, for the other entrypoints.
func (p PodDir) RunFlagsFile() string { return p.join("stage1.json") }

// ResolvConf is the resolv.conf stage0 wrote for --dns; absent otherwise.
func (p PodDir) ResolvConf() string { return p.join("resolv.conf") }

// Hosts holds /etc/hosts entries stage0 wrote for --hosts-entry; absent
// otherwise.
func (p PodDir) Hosts() string { return p.join("hosts") }

// AppsEtc holds the /etc files every app of the pod gets.
func (p PodDir) AppsEtc() string { return p.join("etc") }

// Netns is the bind mount of the pod's network namespace.
func (p PodDir) Netns() string { return p.join("netns") }

// NetInfo is the saved network result.
func (p PodDir) NetInfo() string { return p.join("net-info.json") }

// DataDir returns the rkt data directory that holds this pod: pods live in
// <data>/pods/<state>/<uuid>, and the tree store in <data>/tree.
func (p PodDir) DataDir() string {
	if d := os.Getenv(EnvDataDir); d != "" {
		return d
	}
	return filepath.Clean(p.join("..", "..", ".."))
}

// TreeRootfs returns the read-only rendered rootfs of an image in the tree store.
func TreeRootfs(dataDir, treeStoreID string) string {
	return filepath.Join(dataDir, "tree", treeStoreID, "rootfs")
}

// AppTreeRootfs returns the read-only rendered image rootfs of an app: the
// lower layer of its writable rootfs.
func (p PodDir) AppTreeRootfs(app types.ACName) (string, error) {
	b, err := os.ReadFile(p.AppTreeStoreID(app))
	if err != nil {
		return "", fmt.Errorf("reading tree store ID of app %s: %w", app, err)
	}
	return TreeRootfs(p.DataDir(), strings.TrimSpace(string(b))), nil
}

// WriteExitStatus records an app's exit code. It writes a temporary file
// and renames it, so a reader never sees a half-written code.
func (p PodDir) WriteExitStatus(app types.ACName, code int) error {
	if err := os.MkdirAll(p.StatusDir(), 0o755); err != nil {
		return fmt.Errorf("recording exit status of %s: %w", app, err)
	}
	return WriteFileAtomic(p.StatusFile(app), []byte(strconv.Itoa(code)+"\n"))
}

// ReadExitStatus returns an app's recorded exit code. The error satisfies
// errors.Is(err, os.ErrNotExist) while the app has not exited.
func (p PodDir) ReadExitStatus(app types.ACName) (int, error) {
	b, err := os.ReadFile(p.StatusFile(app))
	if err != nil {
		return 0, err
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("corrupt exit status of app %s: %w", app, err)
	}
	return code, nil
}

// WritePID records the process `enter` targets.
func (p PodDir) WritePID(pid int) error {
	return WriteFileAtomic(p.PIDFile(), []byte(strconv.Itoa(pid)+"\n"))
}

// ReadPID returns the recorded pid.
func (p PodDir) ReadPID() (int, error) {
	b, err := os.ReadFile(p.PIDFile())
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("corrupt pid file %s: %w", p.PIDFile(), err)
	}
	return pid, nil
}

// WriteFileAtomic replaces path with data through a rename, so that a
// reader polling for the file never sees it empty or half written.
func WriteFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
