package vsock_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"rkt.dev/rkt/hypervisor/qemu"
	"rkt.dev/rkt/hypervisor/vhostuser"
	"rkt.dev/rkt/hypervisor/vhostuser/vsock"
	"rkt.dev/rkt/hypervisor/vmtest"
	"rkt.dev/rkt/tests/vsockguest/wire"
)

// These tests boot the rkt guest kernel under QEMU with tests/vsockguest
// as /init and the device behind vhost-user-vsock-device. They need
// qemu-system-x86_64 and a built guest kernel, and skip without them.

// waitLimit bounds every wait on the VM: TCG on a busy 2-core machine is
// slow, but nothing here should take minutes (except the big transfers,
// which have their own bound).
const waitLimit = 2 * time.Minute

func TestMain(m *testing.M) {
	code := m.Run()
	vmtest.Cleanup()
	os.Exit(code)
}

// guestInitrd is tests/vsockguest packed as /init.
func guestInitrd(t *testing.T) string {
	return vmtest.Initrd(t, "rkt.dev/rkt/tests/vsockguest")
}

// vm is a booted test VM.
type vm struct {
	dev     *vsock.Device
	srv     *vhostuser.Server
	cmd     *exec.Cmd
	console *vmtest.Console
	exited  chan struct{}
}

// boot starts the device, its vhost-user server and QEMU, and waits until
// the guest program listens. Everything is stopped in t.Cleanup.
func boot(t *testing.T) *vm {
	t.Helper()
	kernel, initrd := vmtest.GuestKernel(t), guestInitrd(t)
	dir, err := os.MkdirTemp("", "rkt-vsock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	v := &vm{console: vmtest.NewConsole(), exited: make(chan struct{})}
	v.dev = vsock.New(vsock.Options{Logf: t.Logf})
	t.Cleanup(func() { v.dev.Close() })
	sock := filepath.Join(dir, "vsock.sock")
	v.srv, err = vhostuser.Listen(vhostuser.Config{Path: sock, Device: v.dev, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.srv.Close() })

	// The guest settings of the QEMU driver: without the host's TSC rate
	// a TCG guest calibrates against emulated timers and can hang.
	tscKHz, err := qemu.HostTSCkHz()
	if err != nil {
		t.Fatal(err)
	}
	const memMiB = 256
	v.cmd = exec.Command(vmtest.QEMUBinary,
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-machine", "microvm,accel=tcg,acpi=on,pit=off,pic=off,rtc=on,isa-serial=on,x-option-roms=off,memory-backend=mem",
		"-global", "virtio-mmio.force-legacy=false",
		"-cpu", qemu.TCGCPU, "-smp", "1", "-m", fmt.Sprintf("%dM", memMiB),
		"-object", fmt.Sprintf("memory-backend-memfd,id=mem,size=%dM,share=on", memMiB),
		"-kernel", kernel, "-initrd", initrd,
		"-append", fmt.Sprintf("console=ttyS0 panic=-1 tsc_early_khz=%d", tscKHz),
		"-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
		"-chardev", "socket,id=vsock,path="+sock,
		"-device", "vhost-user-vsock-device,chardev=vsock",
	)
	v.cmd.Stdout = v.console
	v.cmd.Stderr = v.console
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		v.cmd.Wait()
		close(v.exited)
	}()
	t.Cleanup(func() {
		v.cmd.Process.Kill() // by PID (pidfd); a no-op once it has exited
		<-v.exited
		if t.Failed() {
			t.Logf("guest console:\n%s", v.console)
		}
	})
	v.console.WaitFor(t, wire.Marker, v.exited, waitLimit)
	return v
}

// dial connects to the guest program, retrying while it is not listening
// (after a restart). A connection that stalls fails at the deadline
// instead of hanging the test.
func (v *vm) dial(t *testing.T) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for {
		c, err := v.dev.Dial(ctx, wire.Port)
		if err == nil {
			c.SetDeadline(time.Now().Add(waitLimit))
			return c
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("dialing the guest: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("dialing the guest: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// command sends a command line and returns the answer line.
func command(t *testing.T, c net.Conn, r *bufio.Reader, cmd string) string {
	t.Helper()
	if _, err := fmt.Fprintf(c, "%s\n", cmd); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("%s: reading the answer: %v", cmd, err)
	}
	return strings.TrimSpace(line)
}

// send has the guest SINK n bytes of pattern seed and checks its checksum.
func send(c net.Conn, r *bufio.Reader, n int64, seed uint64) error {
	if _, err := fmt.Fprintf(c, "SINK %d\n", n); err != nil {
		return err
	}
	h := crc32.New(wire.Table)
	if _, err := io.CopyN(io.MultiWriter(c, h), wire.NewPattern(seed), n); err != nil {
		return fmt.Errorf("sending %d bytes: %w", n, err)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the guest's checksum: %w", err)
	}
	if want := fmt.Sprintf("%08x", h.Sum32()); strings.TrimSpace(line) != want {
		return fmt.Errorf("guest checksum %q, want %s", strings.TrimSpace(line), want)
	}
	return nil
}

// receive has the guest SOURCE n bytes of pattern seed and checks them;
// the guest closes the connection after the last byte.
func receive(c net.Conn, n int64, seed uint64) error {
	if _, err := fmt.Fprintf(c, "SOURCE %d %d\n", n, seed); err != nil {
		return err
	}
	got, want := crc32.New(wire.Table), crc32.New(wire.Table)
	m, err := io.Copy(got, c)
	if err != nil {
		return fmt.Errorf("receiving: %w after %d bytes", err, m)
	}
	io.CopyN(want, wire.NewPattern(seed), n)
	if m != n || got.Sum32() != want.Sum32() {
		return fmt.Errorf("received %d bytes with checksum %08x, want %d with %08x", m, got.Sum32(), n, want.Sum32())
	}
	return nil
}

// waitConns waits until the device tracks n connections.
func (v *vm) waitConns(t *testing.T, n int) {
	t.Helper()
	limit := time.Now().Add(waitLimit)
	for v.dev.Stats().Conns != n {
		if time.Now().After(limit) {
			t.Fatalf("device still tracks %d connections, want %d", v.dev.Stats().Conns, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestQEMU(t *testing.T) {
	v := boot(t)

	t.Run("echo", func(t *testing.T) {
		c := v.dial(t)
		defer c.Close()
		fmt.Fprintf(c, "ECHO\n")
		msg := []byte("hello over userspace vsock")
		c.Write(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo %q, %v", got, err)
		}
	})

	t.Run("host closes", func(t *testing.T) {
		c := v.dial(t)
		fmt.Fprintf(c, "ECHO\n")
		c.Write([]byte("x"))
		io.ReadFull(c, make([]byte, 1))
		c.Close()
		v.waitConns(t, 0)
	})

	t.Run("guest closes", func(t *testing.T) {
		c := v.dial(t)
		defer c.Close()
		if err := receive(c, 100000, 1); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("8 concurrent connections", func(t *testing.T) {
		const size = 4 << 20
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := v.dial(t)
				defer c.Close()
				r := bufio.NewReader(c)
				if err := send(c, r, size, uint64(i)); err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				if err := receive(c, size, uint64(100+i)); err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("transfer", func(t *testing.T) {
		size := int64(256 << 20)
		if testing.Short() {
			size = 16 << 20
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			c := v.dial(t)
			defer c.Close()
			start := time.Now()
			if err := send(c, bufio.NewReader(c), size, 7); err != nil {
				t.Errorf("host to guest: %v", err)
				return
			}
			t.Logf("host to guest: %d MiB in %v", size>>20, time.Since(start).Round(time.Millisecond))
		}()
		go func() {
			defer wg.Done()
			c := v.dial(t)
			defer c.Close()
			start := time.Now()
			if err := receive(c, size, 8); err != nil {
				t.Errorf("guest to host: %v", err)
				return
			}
			t.Logf("guest to host: %d MiB in %v", size>>20, time.Since(start).Round(time.Millisecond))
		}()
		wg.Wait()
	})

	t.Run("guest connects to the host", func(t *testing.T) {
		l, err := v.dev.Listen(5000)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			line, _ := bufio.NewReader(c).ReadString('\n')
			fmt.Fprintf(c, "welcome, %s", line)
		}()
		c := v.dial(t)
		defer c.Close()
		r := bufio.NewReader(c)
		if got := command(t, c, r, "DIAL 5000"); got != "OK welcome, hello" {
			t.Fatalf("DIAL 5000: %q", got)
		}
		if got := command(t, c, r, "DIAL 5001"); !strings.HasPrefix(got, "ERR") {
			t.Fatalf("DIAL 5001 (nobody listening): %q", got)
		}
	})

	t.Run("reconnect after the guest restarts its listener", func(t *testing.T) {
		c := v.dial(t)
		if got := command(t, c, bufio.NewReader(c), "RESTART 300"); got != "OK" {
			t.Fatalf("RESTART: %q", got)
		}
		c.Close()
		v.console.WaitFor(t, "listening again", v.exited, waitLimit)
		c = v.dial(t)
		defer c.Close()
		if err := receive(c, 1000, 3); err != nil {
			t.Fatal(err)
		}
	})
}

// openFDs counts this process's file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestQEMUShutdownLeavesNothing powers the VM off with connections open in
// both directions and checks that, once the device and server are closed,
// no goroutine or file descriptor of theirs remains.
func TestQEMUShutdownLeavesNothing(t *testing.T) {
	vmtest.GuestKernel(t)
	guestInitrd(t)
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	t.Run("vm", func(t *testing.T) {
		v := boot(t)
		l, err := v.dev.Listen(6000)
		if err != nil {
			t.Fatal(err)
		}
		var conns []net.Conn
		for range 4 {
			c := v.dial(t)
			fmt.Fprintf(c, "ECHO\n")
			conns = append(conns, c)
		}
		// A guest-initiated connection, left open: the guest's DIAL
		// waits for an answer that never comes.
		c := v.dial(t)
		fmt.Fprintf(c, "DIAL 6000\n")
		if _, err := l.Accept(); err != nil {
			t.Fatal(err)
		}
		// Blocked host calls must end too.
		blocked := make(chan error, 1)
		go func() {
			_, err := conns[0].Read(make([]byte, 1))
			blocked <- err
		}()
		// The guest may power off before its answer leaves: only the
		// end of QEMU counts.
		p := v.dial(t)
		fmt.Fprintf(p, "POWEROFF\n")
		select {
		case <-v.exited:
		case <-time.After(waitLimit):
			t.Fatal("the VM did not power off")
		}
		v.srv.Close()
		v.dev.Close()
		if err := <-blocked; err == nil {
			t.Fatal("a blocked Read returned no error after the VM went away")
		}
	})
	// Goroutines of exec and timers wind down asynchronously.
	limit := time.Now().Add(10 * time.Second)
	for {
		g, f := runtime.NumGoroutine(), openFDs(t)
		if g <= goroutines && f <= fds {
			return
		}
		if time.Now().After(limit) {
			t.Fatalf("after the VM: %d goroutines (before: %d), %d fds (before: %d)", g, goroutines, f, fds)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
