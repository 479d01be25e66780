// Command nspawn measures what rkt's host-side stage1s cost over the plain
// tools they compete with. In one run it alternates, on the same busybox
// rootfs:
//
//	nspawn-vs-runc:  rkt run --stage1-name=nspawn --net=none BUSYBOX --exec=/bin/true
//	                 against runc run of an OCI bundle of the same rootfs
//	                 (runc's default spec: its own PID, mount, IPC, UTS and
//	                 network namespaces, as the nspawn pod has)
//	fly-vs-chroot:   rkt run --stage1-name=fly BUSYBOX --exec=/bin/true
//	                 against chroot ROOTFS /bin/true
//
// and prints the medians and their ratios:
//
//	BENCH nspawn-vs-runc <median rkt> <median runc> ratio=<rkt/runc>
//	BENCH fly-vs-chroot <median rkt> <median chroot> ratio=<rkt/chroot>
//
// BUSYBOX is the busybox image's ID, fetched into the store beforehand, as a
// user runs an image already fetched. The rkt runs include everything a
// user then waits for: stage0 (stage1 resolution, which finds
// stage1-<flavor>.aci next to the rkt binary, pod directory) and the
// stage1. One warm-up of each is not counted, so tree rendering (done once
// per image) is excluded.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"rkt.dev/rkt/tests/bench/benchutil"
)

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 7, "measured runs of each (at least 5)")
	flag.StringVar(&o.rkt, "rkt", "build/bin/rkt", "rkt binary")
	flag.StringVar(&o.image, "image", "build/images/busybox.aci", "busybox image")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/nspawn:", err)
		os.Exit(1)
	}
}

type options struct {
	runs       int
	rkt, image string
}

func run(o options) error {
	if _, err := exec.LookPath("runc"); err != nil {
		return fmt.Errorf("runc is not installed (apt-get install runc; scripts/install-deps does)")
	}
	dir, err := os.MkdirTemp("", "rkt-bench-nspawn-")
	if err != nil {
		return err
	}
	data := filepath.Join(dir, "data")
	defer func() {
		exec.Command(o.rkt, "--dir="+data, "gc", "--grace-period=0s").Run()
		os.RemoveAll(dir)
	}()
	bundle := filepath.Join(dir, "bundle")
	id, err := makeBundle(o, data, bundle)
	if err != nil {
		return err
	}
	rootfs := filepath.Join(bundle, "rootfs")
	rktRun := func(flavor string, extra ...string) benchutil.Measure {
		args := append([]string{"--dir=" + data, "run", "--stage1-name=" + flavor}, extra...)
		args = append(args, id, "--exec=/bin/true")
		return func() (time.Duration, error) { return timed(o.rkt, args...) }
	}
	n := 0
	runcRun := func() (time.Duration, error) {
		n++
		return timed("runc", "--root="+filepath.Join(dir, "runc"), "run", "--bundle="+bundle, fmt.Sprintf("bench-%d-%d", os.Getpid(), n))
	}
	return benchutil.Compare(o.runs, os.Stderr,
		benchutil.Pair{Name: "nspawn-vs-runc", A: runcRun, B: rktRun("nspawn", "--net=none")},
		benchutil.Pair{Name: "fly-vs-chroot", A: func() (time.Duration, error) { return timed("chroot", rootfs, "/bin/true") }, B: rktRun("fly")},
	)
}

// makeBundle renders the busybox image into an OCI bundle: the rootfs
// (the same files rkt's pods get) and runc's default spec running
// /bin/true without a terminal. It returns the image's ID.
func makeBundle(o options, data, bundle string) (string, error) {
	out, err := exec.Command(o.rkt, "--dir="+data, "--insecure-options=image", "fetch", o.image).Output()
	if err != nil {
		return "", fmt.Errorf("rkt fetch %s: %w", o.image, err)
	}
	id := strings.TrimSpace(string(out))
	rootfs := filepath.Join(bundle, "rootfs")
	if b, err := exec.Command(o.rkt, "--dir="+data, "image", "render", "--rootfs-only", id, rootfs).CombinedOutput(); err != nil {
		return "", fmt.Errorf("rkt image render: %w\n%s", err, b)
	}
	if b, err := exec.Command("runc", "spec", "--bundle="+bundle).CombinedOutput(); err != nil {
		return "", fmt.Errorf("runc spec: %w\n%s", err, b)
	}
	path := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		return "", fmt.Errorf("runc's spec: %w", err)
	}
	process, ok := spec["process"].(map[string]any)
	if !ok {
		return "", fmt.Errorf("runc's spec has no process section")
	}
	process["terminal"] = false
	process["args"] = []string{"/bin/true"}
	if b, err = json.MarshalIndent(spec, "", "\t"); err != nil {
		return "", err
	}
	return id, os.WriteFile(path, b, 0o644)
}

// timed runs a command to its end and returns how long it took.
func timed(name string, args ...string) (time.Duration, error) {
	cmd := exec.Command(name, args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return d, nil
}
