// Command kvmboot measures what rkt adds on top of booting its guest
// kernel. In one run it alternates
//
//	a) the bare floor: QEMU booting the same kernel with a trivial /init
//	   (tests/bench/floorinit) that powers the VM off at once, and
//	b) a whole pod: rkt run --stage1-name=kvm --net=none busybox.aci --exec /bin/true,
//
// and prints the medians and their ratio on one line:
//
//	BENCH kvm-boot <median b> <median a> ratio=<b/a>
//
// A pod like b resumes a VM template (docs/kvm.md), made by the warm-up
// run. A second line measures the same pod with templates off, booted as
// pods with host volumes or CNI networks are:
//
//	BENCH kvm-boot-booted <median b> <median a> ratio=<b/a>
//
// Both are measured on the same machine in the same run, so the ratio holds
// whatever the machine's speed (or TCG emulation) does to absolute times.
// The rkt run includes everything a user waits for: stage0 (image store,
// pod directory), stage1, virtiofsd, QEMU, the guest agent and the app.
// One warm-up of each is not counted, so image import, tree rendering and
// the erofs image (done once per image), and the VM template (once per
// stage1 and machine shape) are excluded.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"rkt.dev/rkt/hypervisor"
	"rkt.dev/rkt/hypervisor/qemu"
	"rkt.dev/rkt/tests/bench/benchutil"
)

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", benchutil.MinRuns, "measured runs of each")
	flag.StringVar(&o.kernel, "kernel", "build/kernel/vmlinux", "guest kernel")
	flag.StringVar(&o.floorInitrd, "floor-initrd", "build/bench/floor-initrd.img", "initramfs with tests/bench/floorinit as /init")
	flag.StringVar(&o.rkt, "rkt", "build/bin/rkt", "rkt binary")
	flag.StringVar(&o.stage1, "stage1", "build/stage1-kvm.aci", "kvm stage1 image")
	flag.StringVar(&o.image, "image", "build/images/busybox.aci", "busybox image")
	flag.IntVar(&o.memoryMiB, "memory", 256, "floor VM memory in MiB (as rkt sizes a pod without memory isolators)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "kvmboot:", err)
		os.Exit(1)
	}
}

type options struct {
	runs                                    int
	kernel, floorInitrd, rkt, stage1, image string
	memoryMiB                               int
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "rkt-bench-")
	if err != nil {
		return err
	}
	defer func() {
		exec.Command(o.rkt, "--dir="+dir, "gc", "--grace-period=0s").Run()
		os.RemoveAll(dir)
	}()
	return benchutil.Compare(o.runs, os.Stderr, benchutil.Pair{
		Name: "kvm-boot",
		A:    func() (time.Duration, error) { return bootFloor(o) },
		B:    func() (time.Duration, error) { return runPod(o, dir, nil) },
	}, benchutil.Pair{
		Name: "kvm-boot-booted",
		A:    func() (time.Duration, error) { return bootFloor(o) },
		B:    func() (time.Duration, error) { return runPod(o, dir, []string{"RKT_STAGE1_KVM_TEMPLATE=off"}) },
	})
}

// bootFloor boots the kernel with floorinit and waits for its power-off.
func bootFloor(o options) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	vm, err := qemu.Start(ctx, hypervisor.Config{
		Kernel: o.kernel, Initrd: o.floorInitrd, MemoryMiB: o.memoryMiB, VCPUs: 1,
		RuntimeDir: filepath.Join(os.TempDir(), fmt.Sprintf("rkt-bench-%d", os.Getpid())),
	})
	if err != nil {
		return 0, fmt.Errorf("booting the floor VM: %w", err)
	}
	st, err := vm.Wait()
	d := time.Since(start)
	if err != nil || st.Reason != hypervisor.ExitPoweroff {
		vm.Stop(ctx, true)
		return 0, fmt.Errorf("floor VM did not power off cleanly: %s (%v)", st, err)
	}
	return d, nil
}

// runPod times one rkt run of /bin/true in a VM, with env added to rkt's
// environment.
func runPod(o options, dir string, env []string) (time.Duration, error) {
	cmd := exec.Command(o.rkt, "--dir="+dir, "--insecure-options=image", "run",
		"--stage1-path="+o.stage1, "--net=none", o.image, "--exec=/bin/true")
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("rkt run: %v\n%s", err, out)
	}
	return d, nil
}
