package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// parseSignal accepts "SIGTERM", "TERM", "term" or "15".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal number %d is outside 1..64", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("unknown signal %q", s)
	}
	return sig, nil
}

// killGrace is how long killSelf waits for a signal to take effect.
const killGrace = 5 * time.Second

// killSelf makes the process die by sig, so tests can check how rkt
// reports an app killed by a signal. The Go runtime catches many signals
// (and silently drops some, such as SIGUSR1) unless the program asks for
// them, so the default disposition is restored first; rt_sigaction is
// called directly because os/signal cannot restore SIG_DFL for signals the
// runtime handles itself.
func killSelf(w io.Writer, name string, sig syscall.Signal) error {
	if _, err := fmt.Fprintf(w, "kill-self=%s\n", name); err != nil {
		return err
	}
	// SIGKILL and SIGSTOP cannot be caught, so their action cannot be set.
	if sig != syscall.SIGKILL && sig != syscall.SIGSTOP {
		// An all-zero struct sigaction is SIG_DFL with no flags on every
		// Linux layout; the kernel's sigset is 8 bytes.
		var dfl [4]uint64
		if _, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig),
			uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0); errno != 0 {
			return fmt.Errorf("restoring the default action of %s: %w", name, errno)
		}
	}
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		return fmt.Errorf("sending %s to itself: %w", name, err)
	}
	time.Sleep(killGrace)
	return fmt.Errorf("still alive %v after %s: its default action is not to terminate, or this process is a PID namespace's init", killGrace, name)
}
