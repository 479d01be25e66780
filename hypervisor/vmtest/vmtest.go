// Package vmtest holds what tests that boot the rkt guest kernel under
// QEMU need: finding the kernel and building an initramfs whose /init is a
// small Go program. It is imported only from _test.go files (the QEMU
// driver's boot tests and the userspace vsock device's).
package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"rkt.dev/rkt/kernel/initramfs"
)

// QEMUBinary is the emulator the tests boot.
const QEMUBinary = "qemu-system-x86_64"

// GuestKernel returns build/kernel/vmlinux (as written by `kernel/build.sh
// build/kernel`), else the newest kernel in the build cache, and skips the
// test when there is none or QEMU is missing.
func GuestKernel(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath(QEMUBinary); err != nil {
		t.Skipf("%s is not installed (apt-get install qemu-system-x86)", QEMUBinary)
	}
	if root, err := repoRoot(); err == nil {
		if k := filepath.Join(root, "build/kernel/vmlinux"); exists(k) {
			return k
		}
	}
	cache := os.Getenv("RKT_KERNEL_CACHE")
	if cache == "" {
		cache = "/var/cache/rkt/kernel"
	}
	cached, _ := filepath.Glob(filepath.Join(cache, "*", "vmlinux"))
	sort.Slice(cached, func(i, j int) bool { return modTime(cached[i]).After(modTime(cached[j])) })
	if len(cached) == 0 {
		t.Skip("no guest kernel: build it with kernel/build.sh build/kernel (about 11-15 minutes the first time)")
	}
	return cached[0]
}

// repoRoot walks up from the working directory (a package directory under
// go test) to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if exists(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

var (
	mu      sync.Mutex
	workDir string
	built   = map[string]string{} // Go package → initramfs
)

// Initrd builds the Go package pkg statically and packs it as /init of an
// initramfs, once per test binary; Cleanup removes what it built.
func Initrd(t testing.TB, pkg string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	if workDir == "" {
		d, err := os.MkdirTemp("", "rkt-vmtest-")
		if err != nil {
			t.Fatal(err)
		}
		workDir = d
	}
	name := path.Base(pkg)
	bin := filepath.Join(workDir, name)
	build := exec.Command("go", "build", "-trimpath", "-o", bin, pkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s for the guest: %v\n%s", pkg, err, out)
	}
	p := filepath.Join(workDir, name+".initrd")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := initramfs.Write(f, initramfs.Standard(bin)); err != nil {
		t.Fatalf("packing %s as /init: %v", pkg, err)
	}
	built[pkg] = p
	return p
}

// Cleanup removes every initramfs Initrd built; call it from TestMain
// after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if workDir != "" {
		os.RemoveAll(workDir)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func modTime(p string) time.Time {
	fi, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
