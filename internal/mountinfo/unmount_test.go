package mountinfo

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func TestMountsUnder(t *testing.T) {
	mounts := []Mount{
		{MountPoint: "/"},
		{MountPoint: "/t/dir"},
		{MountPoint: "/t/dir/pods/a/stage1/rootfs"},
		{MountPoint: "/t/dir/pods/a/stage1/rootfs/proc"},
		{MountPoint: "/t/dir/pods/a/stage1/rootfs", Source: "stacked"},
		{MountPoint: "/t/dir2"},
		{MountPoint: "/t/dir/volume"},
	}
	tests := []struct {
		dir  string
		want []string
	}{
		{"/t/dir", []string{
			"/t/dir/pods/a/stage1/rootfs/proc",
			"/t/dir/pods/a/stage1/rootfs",
			"/t/dir/pods/a/stage1/rootfs",
			"/t/dir/volume",
			"/t/dir",
		}},
		{"/t/dir2", []string{"/t/dir2"}},
		{"/t/none", nil},
	}
	for _, tt := range tests {
		if got := Under(mounts, tt.dir); !slices.Equal(got, tt.want) {
			t.Errorf("Under(%q) = %q, want %q", tt.dir, got, tt.want)
		}
	}
}

// TestUnmountUnder mounts a small tree with stacked and nested mounts and
// checks that all of it goes.
func TestUnmountUnder(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting needs root")
	}
	dir := t.TempDir()
	mount := func(target string) {
		t.Helper()
		if err := os.MkdirAll(target, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", target, "tmpfs", 0, ""); err != nil {
			t.Fatal(err)
		}
	}
	mount(filepath.Join(dir, "a"))
	mount(filepath.Join(dir, "a", "b", "c"))
	mount(filepath.Join(dir, "a")) // stacked on top of the first
	mount(filepath.Join(dir, "a", "d"))
	if err := UnmountUnder(dir); err != nil {
		t.Fatal(err)
	}
	mounts, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if left := Under(mounts, dir); len(left) > 0 {
		t.Errorf("still mounted: %q", left)
	}
}
