package main

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"rkt.dev/rkt/internal/procstat"
)

// TestKillTakesChildren: killing a recorded process also ends the children
// it had (as virtiofsd's sandbox child), which would otherwise outlive it.
func TestKillTakesChildren(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 1000 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	defer func() { cmd.Process.Kill(); <-waited }()
	var kids []int
	for i := 0; len(kids) == 0; i++ {
		if i == 500 {
			t.Fatal("the shell started no child in 10 s")
		}
		time.Sleep(20 * time.Millisecond)
		kids = procstat.Children(cmd.Process.Pid)
	}
	child, err := procOf(kids[0], "child")
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(child.PID, syscall.SIGKILL)
	// Orphaned, the child is reaped by whoever adopts it, maybe late: its
	// pidfd tells whether it has exited, zombie or not.
	fd, err := unix.PidfdOpen(child.PID, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	p, err := procOf(cmd.Process.Pid, "parent")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.kill(); err != nil {
		t.Fatal(err)
	}
	<-waited
	if n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0); n != 1 {
		t.Errorf("the child (pid %d) survived its parent's kill", child.PID)
	}
}
