package netns

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func selfNetns(t *testing.T) string {
	t.Helper()
	p, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNewAndDoComeBack checks that the threads used are returned to the
// original namespace and that a child started in the namespace survives
// (its parent-death signal is tied to the starting thread).
func TestNewAndDoComeBack(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("creating network namespaces needs root")
	}
	path := t.TempDir() + "/ns"
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	var inside string
	if err := New(func() error {
		inside = selfNetns(t)
		return unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, "")
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(path, unix.MNT_DETACH)
	var child *exec.Cmd
	var seen string
	if err := Do(path, func() error {
		seen = selfNetns(t)
		child = exec.Command("sleep", "30")
		child.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		return child.Start()
	}); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	if seen != inside {
		t.Errorf("Do ran in %s, want the namespace New made (%s)", seen, inside)
	}
	childNS, _ := os.Readlink("/proc/" + strconv.Itoa(child.Process.Pid) + "/ns/net")
	if childNS != inside {
		t.Errorf("child is in %s, want %s", childNS, inside)
	}
	// Churn threads: a discarded thread would deliver the child's
	// parent-death signal.
	for i := 0; i < 20; i++ {
		Do(path, func() error { return nil })
	}
	time.Sleep(200 * time.Millisecond)
	if err := child.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the child started in the namespace died: %v", err)
	}
}
