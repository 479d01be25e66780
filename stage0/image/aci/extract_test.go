package aci

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	. "rkt.dev/rkt/stage0/image/internal/acitest"
)

func extract(t *testing.T, dest string, opts ExtractOptions, entries ...Entry) error {
	t.Helper()
	return Extract(bytes.NewReader(Build(t, entries...)), dest, opts)
}

func TestExtractWritesEveryKindWithMetadata(t *testing.T) {
	dest := t.TempDir()
	err := extract(t, dest, ExtractOptions{}, Image(t, "example.com/test",
		Entry{Name: "rootfs/bin", Type: tar.TypeDir, Mode: 0o555},
		Entry{Name: "rootfs/bin/busybox", Type: tar.TypeReg, Body: "elf", Mode: 0o4755, Uid: 1234, Gid: 5678},
		Symlink("rootfs/bin/sh", "/bin/busybox"),
		Symlink("rootfs/bin/rel", "../bin/busybox"),
		Hardlink("rootfs/bin/ls", "rootfs/bin/busybox"),
		Entry{Name: "rootfs/fifo", Type: tar.TypeFifo, Mode: 0o640},
		Entry{Name: "rootfs/tmp", Type: tar.TypeDir, Mode: 0o1777},
	)...)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dest, "rootfs")

	if b, err := os.ReadFile(filepath.Join(dest, "manifest")); err != nil || !strings.Contains(string(b), "example.com/test") {
		t.Errorf("manifest = %q, %v", b, err)
	}
	bb := lstat(t, filepath.Join(root, "bin/busybox"))
	if bb.Mode&0o7777 != 0o4755 {
		t.Errorf("busybox mode = %o, want setuid 4755 kept", bb.Mode&0o7777)
	}
	if os.Geteuid() == 0 && (bb.Uid != 1234 || bb.Gid != 5678) {
		t.Errorf("busybox owner = %d:%d, want 1234:5678", bb.Uid, bb.Gid)
	}
	if got := bb.Mtim.Sec; got != Epoch.Unix() {
		t.Errorf("busybox mtime = %d, want %d", got, Epoch.Unix())
	}
	if ls := lstat(t, filepath.Join(root, "bin/ls")); ls.Ino != bb.Ino {
		t.Error("bin/ls is not a hard link of bin/busybox")
	}
	for link, want := range map[string]string{"bin/sh": "/bin/busybox", "bin/rel": "../bin/busybox"} {
		if got, err := os.Readlink(filepath.Join(root, link)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", link, got, err, want)
		}
	}
	if f := lstat(t, filepath.Join(root, "fifo")); f.Mode&syscall.S_IFMT != syscall.S_IFIFO || f.Mode&0o777 != 0o640 {
		t.Errorf("fifo mode = %o", f.Mode)
	}
	if d := lstat(t, filepath.Join(root, "tmp")); d.Mode&0o7777 != 0o1777 {
		t.Errorf("tmp mode = %o, want sticky 1777", d.Mode&0o7777)
	}
	if d := lstat(t, filepath.Join(root, "bin")); d.Mode&0o7777 != 0o555 || d.Mtim.Sec != Epoch.Unix() {
		t.Errorf("bin mode = %o mtime = %d, want read-only dir with the archive's mtime", d.Mode&0o7777, d.Mtim.Sec)
	}
}

func TestExtractRootfsOnly(t *testing.T) {
	dest := t.TempDir()
	if err := extract(t, dest, ExtractOptions{RootfsOnly: true}, Image(t, "example.com/test", File("rootfs/a", "a"))...); err != nil {
		t.Fatal(err)
	}
	AssertEntries(t, dest, "a")
}

// Layering: a later image replaces what an earlier one left, without
// following the earlier image's symlinks.
func TestExtractLayersNeverFollowSymlinks(t *testing.T) {
	dest := t.TempDir()
	outside := t.TempDir()
	opts := ExtractOptions{RootfsOnly: true}
	lower := Image(t, "example.com/lower",
		Dir("rootfs/usr"), Dir("rootfs/usr/lib"),
		Symlink("rootfs/lib", "usr/lib"),
		Symlink("rootfs/etc", outside),
		Dir("rootfs/var"), File("rootfs/var/keep", "kept"),
		Dir("rootfs/opt"), File("rootfs/opt/x", "dir content"),
	)
	upper := Image(t, "example.com/upper",
		File("rootfs/lib/libc.so", "libc"),
		Dir("rootfs/etc"), File("rootfs/etc/passwd", "root:x:0:0"),
		Dir("rootfs/var"), File("rootfs/var/new", "new"),
		File("rootfs/opt", "now a file"),
	)
	for _, layer := range [][]Entry{lower, upper} {
		if err := extract(t, dest, opts, layer...); err != nil {
			t.Fatal(err)
		}
	}
	AssertEntries(t, outside)
	AssertEntries(t, filepath.Join(dest, "usr/lib"))
	if fi, err := os.Lstat(filepath.Join(dest, "lib")); err != nil || !fi.IsDir() {
		t.Errorf("lib should now be a real directory: %v", err)
	}
	AssertEntries(t, filepath.Join(dest, "var"), "keep", "new")
	if b, err := os.ReadFile(filepath.Join(dest, "opt")); err != nil || string(b) != "now a file" {
		t.Errorf("opt = %q, %v; want the upper layer's file", b, err)
	}
}

// A target directory may already contain a symlink pointing anywhere (an
// overwritten extraction); it is replaced, not followed.
func TestExtractReplacesPreexistingSymlink(t *testing.T) {
	dest := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dest, "a")); err != nil {
		t.Fatal(err)
	}
	if err := extract(t, dest, ExtractOptions{RootfsOnly: true}, Image(t, "example.com/test", File("rootfs/a/passwd", "x"))...); err != nil {
		t.Fatal(err)
	}
	AssertEntries(t, outside)
	if _, err := os.Stat(filepath.Join(dest, "a", "passwd")); err != nil {
		t.Error(err)
	}
}

func TestExtractKeep(t *testing.T) {
	entries := Image(t, "example.com/test",
		Dir("rootfs/bin"), File("rootfs/bin/a", "a"), File("rootfs/bin/b", "b"),
		Hardlink("rootfs/bin/c", "rootfs/bin/a"),
	)
	keep := func(allowed ...string) func(string, bool) bool {
		return func(p string, dir bool) bool {
			for _, a := range allowed {
				if p == a || (dir && strings.HasPrefix(a, p+"/")) {
					return true
				}
			}
			return false
		}
	}

	dest := t.TempDir()
	if err := extract(t, dest, ExtractOptions{RootfsOnly: true, Keep: keep("/bin/a", "/bin/c")}, entries...); err != nil {
		t.Fatal(err)
	}
	AssertEntries(t, filepath.Join(dest, "bin"), "a", "c")

	err := extract(t, t.TempDir(), ExtractOptions{RootfsOnly: true, Keep: keep("/bin/c")}, entries...)
	if err == nil || !strings.Contains(err.Error(), "rootfs/bin/c") || !strings.Contains(err.Error(), "pathWhitelist") {
		t.Errorf("hard link to a filtered file: error = %v, want one naming the entry and pathWhitelist", err)
	}
}

func TestExtractAcceptsTarOfDot(t *testing.T) {
	dest := t.TempDir()
	err := extract(t, dest, ExtractOptions{},
		Dir("./"), File("./manifest", validManifest), Dir("./rootfs/"), File("./rootfs/a", "a"))
	if err != nil {
		t.Fatal(err)
	}
	AssertEntries(t, dest, "manifest", "rootfs")
}

func lstat(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}
