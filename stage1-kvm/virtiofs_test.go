package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rkt.dev/rkt/tests/testutil"
)

// TestReadOnlyStart: a process started for a read-only share sees its
// source read-only while the host still writes there, and afterwards no
// thread of the stage1 is left in the share's mount namespace, which would
// keep a copy of the host's mount table alive. Two starts check that the
// thread serves again once it is back.
func TestReadOnlyStart(t *testing.T) {
	testutil.RequireRoot(t)
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		src, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
		cmd := exec.Command("/bin/sh", "-c", `if touch "$1/x" 2>/dev/null; then r=writable; else r=read-only; fi; echo $r > "$2.tmp"; mv "$2.tmp" "$2"; exec sleep 1000`, "sh", src, out)
		if err := readOnlyStarter.start(cmd, src); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		waited := make(chan struct{})
		go func() { cmd.Wait(); close(waited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-waited })

		var got []byte
		for j := 0; ; j++ {
			if got, err = os.ReadFile(out); err == nil || j == 500 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if strings.TrimSpace(string(got)) != "read-only" {
			t.Errorf("start %d: the process found its source %q (%v), want read-only", i, got, err)
		}
		if err := os.WriteFile(filepath.Join(src, "host"), nil, 0o644); err != nil {
			t.Errorf("start %d: the host can no longer write to the source: %v", i, err)
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", cmd.Process.Pid)); err != nil || ns == self {
			t.Errorf("start %d: the process runs in mount namespace %s (%v), want a private one", i, ns, err)
		}
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			if ns, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns/mnt")); err == nil && ns != self {
				t.Errorf("start %d: thread %s stayed in mount namespace %s, want %s", i, task.Name(), ns, self)
			}
		}
	}
}
