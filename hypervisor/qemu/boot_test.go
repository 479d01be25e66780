package qemu

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"rkt.dev/rkt/hypervisor"
	"rkt.dev/rkt/hypervisor/transport"
	"rkt.dev/rkt/hypervisor/vmtest"
)

// marker is what tests/bench/floorinit prints once it runs.
const marker = "rkt-floor-init: up"

// bootTimeout bounds every wait on a booting or stopping VM; TCG on a busy
// 2-core machine can be several times slower than the ~1 s boot measured
// on an idle one.
const bootTimeout = 60 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	vmtest.Cleanup()
	os.Exit(code)
}

// floorInit is the trivial /init the boot tests run.
const floorInit = "rkt.dev/rkt/tests/bench/floorinit"

// boot starts floorinit in the given mode. The QEMU process is killed by
// PID when the test ends, whatever happened.
func boot(t *testing.T, mode string, mod func(*hypervisor.Config)) (hypervisor.VM, *vmtest.Console, time.Time) {
	t.Helper()
	cfg := hypervisor.Config{
		Kernel:     vmtest.GuestKernel(t),
		Initrd:     vmtest.Initrd(t, floorInit),
		Cmdline:    "-- " + mode,
		MemoryMiB:  256,
		VCPUs:      1,
		Agent:      transport.Serial,
		Console:    vmtest.NewConsole(),
		RuntimeDir: shortTempDir(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	started := time.Now()
	vm, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		// Only a QEMU that has not been reaped yet: its PID cannot have
		// been reused. FindProcess holds a pidfd from then on.
		if st, _ := vm.Status(context.Background()); st.State != "exited" {
			if p, err := os.FindProcess(vm.PID()); err == nil {
				p.Signal(syscall.SIGKILL)
			}
		}
		waitExit(t, vm)
	})
	return vm, cfg.Console.(*vmtest.Console), started
}

// shortTempDir returns a temporary directory with a path short enough for
// Unix sockets (t.TempDir includes the test name and can exceed 107 bytes).
func shortTempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "rkt-vm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// waitExit is vm.Wait bounded by bootTimeout.
func waitExit(t *testing.T, vm hypervisor.VM) (hypervisor.ExitState, error) {
	t.Helper()
	type result struct {
		state hypervisor.ExitState
		err   error
	}
	done := make(chan result, 1)
	go func() {
		s, err := vm.Wait()
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		return r.state, r.err
	case <-time.After(bootTimeout):
		t.Fatalf("QEMU pid %d still running %v after it should have exited", vm.PID(), bootTimeout)
		return hypervisor.ExitState{}, nil
	}
}

func TestBootPowerOff(t *testing.T) {
	tests := []struct {
		machine hypervisor.Machine
		agent   transport.Kind
	}{
		{hypervisor.MicroVM, transport.Serial},
		{hypervisor.Q35, transport.Serial},
	}
	for _, tt := range tests {
		t.Run(string(tt.machine), func(t *testing.T) {
			vm, con, started := boot(t, "poweroff", func(c *hypervisor.Config) {
				c.Machine, c.Agent = tt.machine, tt.agent
			})
			up := con.WaitFor(t, marker, nil, bootTimeout)
			state, err := waitExit(t, vm)
			exited := time.Now()
			if err != nil || state.Reason != hypervisor.ExitPoweroff || state.ExitCode != 0 {
				t.Fatalf("Wait = %v, %v; want a clean power-off\nconsole:\n%s", state, err, con)
			}
			if !strings.Contains(con.String(), "-rkt)") {
				t.Errorf("the guest did not run the rkt kernel (no -rkt release); console:\n%s", con)
			}
			info := vm.Info()
			if info.Accel == hypervisor.TCG && !strings.Contains(info.Notice, "TCG") {
				t.Errorf("TCG notice %q", info.Notice)
			}
			t.Logf("%s/%s: QEMU start → marker %v, QEMU start → exit %v",
				info.Machine, info.Accel, up.Sub(started).Round(time.Millisecond), exited.Sub(started).Round(time.Millisecond))
		})
	}
}

func TestBootPanic(t *testing.T) {
	vm, con, started := boot(t, "exit", nil)
	state, err := waitExit(t, vm)
	if err == nil || state.Reason != hypervisor.ExitGuestCrash {
		t.Fatalf("Wait = %v, %v; want a guest crash\nconsole:\n%s", state, err, con)
	}
	if !strings.Contains(state.Detail, "Attempted to kill init") {
		t.Errorf("detail %q does not carry the panic message", state.Detail)
	}
	t.Logf("panic reported after %v: %v", time.Since(started).Round(time.Millisecond), err)
}

func TestStop(t *testing.T) {
	tests := []struct {
		name       string
		mode       string
		ready      string // console line saying the guest is ready for Stop
		force      bool
		grace      time.Duration
		wantReason hypervisor.ExitReason
		maxStop    time.Duration
	}{
		// The guest powers off on the ACPI power button.
		{"graceful", "button", "waiting for the power button", false, bootTimeout, hypervisor.ExitPoweroff, bootTimeout},
		// The guest ignores the button: the grace period runs out, then
		// QEMU is told to quit.
		{"graceful times out", "sleep", marker, false, time.Second, hypervisor.ExitStopped, time.Second + quitTimeout + killTimeout},
		{"force", "sleep", marker, true, bootTimeout, hypervisor.ExitStopped, quitTimeout + killTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm, con, _ := boot(t, tt.mode, nil)
			con.WaitFor(t, tt.ready, nil, bootTimeout)

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			status, err := vm.Status(ctx)
			cancel()
			if err != nil || !status.Running || status.State != "running" {
				t.Errorf("Status = %+v, %v; want running", status, err)
			}

			ctx, cancel = context.WithTimeout(context.Background(), tt.grace)
			defer cancel()
			start := time.Now()
			if err := vm.Stop(ctx, tt.force); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if took := time.Since(start); took > tt.maxStop {
				t.Errorf("Stop took %v, want at most %v", took, tt.maxStop)
			}
			state, err := waitExit(t, vm)
			if state.Reason != tt.wantReason || err != nil {
				t.Fatalf("Wait = %v, %v; want %v\nconsole:\n%s", state, err, tt.wantReason, con)
			}
			if status, err := vm.Status(context.Background()); err != nil || status.State != "exited" {
				t.Errorf("Status after exit = %+v, %v", status, err)
			}
			t.Logf("stopped in %v: %v", time.Since(start).Round(time.Millisecond), state)
		})
	}
}

func TestAgentSerialEcho(t *testing.T) {
	vm, con, started := boot(t, "echo", nil)
	// Two connections in a row: the port must work again after the host
	// side disconnects.
	for i, msg := range []string{"ping over rkt.agent\n", "second connection\n"} {
		agentEcho(t, vm, con, msg)
		if i == 0 {
			t.Logf("first agent round trip %v after QEMU start", time.Since(started).Round(time.Millisecond))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := vm.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
}

// agentEcho connects to the agent channel of a VM running floorinit's
// echo mode, sends msg and checks it comes back, then hangs up.
func agentEcho(t *testing.T, vm hypervisor.VM, con *vmtest.Console, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	conn, err := vm.DialAgent(ctx)
	if err != nil {
		t.Fatalf("DialAgent: %v\nconsole:\n%s", err, con)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(bootTimeout))
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != msg {
		t.Fatalf("echo = %q (%v), want %q\nconsole:\n%s", got, err, msg, con)
	}
}

// signalQEMU sends sig to the VM's QEMU process.
func signalQEMU(t *testing.T, vm hypervisor.VM, sig syscall.Signal) {
	t.Helper()
	p, err := os.FindProcess(vm.PID())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(sig); err != nil {
		t.Fatalf("sending %v to QEMU: %v", sig, err)
	}
}

func TestStopFrozenQEMU(t *testing.T) {
	vm, con, _ := boot(t, "sleep", nil)
	con.WaitFor(t, marker, nil, bootTimeout)
	// A stopped QEMU answers no QMP command: Stop must fall back to
	// SIGKILL after the quit timeout instead of waiting forever.
	signalQEMU(t, vm, syscall.SIGSTOP)
	start := time.Now()
	if err := vm.Stop(context.Background(), true); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if took := time.Since(start); took > quitTimeout+killTimeout {
		t.Errorf("Stop took %v", took)
	}
	state, err := waitExit(t, vm)
	if err != nil || state.Reason != hypervisor.ExitStopped || state.Signal != syscall.SIGKILL {
		t.Fatalf("Wait = %v, %v; want stopped by SIGKILL", state, err)
	}
	t.Logf("frozen QEMU stopped in %v: %v", time.Since(start).Round(time.Millisecond), state)
}

func TestQEMUKilledOutside(t *testing.T) {
	vm, con, _ := boot(t, "sleep", nil)
	con.WaitFor(t, marker, nil, bootTimeout)
	signalQEMU(t, vm, syscall.SIGKILL)
	state, err := waitExit(t, vm)
	if err == nil || state.Reason != hypervisor.ExitHypervisorFailed || state.Signal != syscall.SIGKILL {
		t.Fatalf("Wait = %v, %v; want a hypervisor failure by SIGKILL", state, err)
	}
	t.Logf("%v", err)
}

// TestSnapshot saves a booted guest as a template and resumes two clones
// from it: each answers on the agent port without booting (no new boot
// marker on its console), and the template's memory file is left as the
// template wrote it, whatever the clones do.
func TestSnapshot(t *testing.T) {
	dir := shortTempDir(t)
	snap := hypervisor.Snapshot{Memory: dir + "/memory", State: dir + "/state"}
	stop := func(t *testing.T, vm hypervisor.VM) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
		defer cancel()
		if err := vm.Stop(ctx, true); err != nil {
			t.Fatal(err)
		}
	}

	template, con, _ := boot(t, "echo", func(c *hypervisor.Config) { s := snap; c.Snapshot = &s })
	agentEcho(t, template, con, "template\n")
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	if err := template.SaveSnapshot(ctx); err != nil {
		t.Fatalf("SaveSnapshot: %v\nconsole:\n%s", err, con)
	}
	stop(t, template)
	saved, err := os.ReadFile(snap.Memory)
	if err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"clone 1", "clone 2"} {
		t.Run(name, func(t *testing.T) {
			started := time.Now()
			clone, con, _ := boot(t, "echo", func(c *hypervisor.Config) { s := snap; s.Restore = true; c.Snapshot = &s })
			agentEcho(t, clone, con, name+"\n")
			t.Logf("first echo %v after QEMU start", time.Since(started).Round(time.Millisecond))
			if strings.Contains(con.String(), marker) {
				t.Errorf("the clone booted instead of resuming:\n%s", con)
			}
			stop(t, clone)
		})
	}
	if now, err := os.ReadFile(snap.Memory); err != nil || !bytes.Equal(now, saved) {
		t.Errorf("the template's memory changed while clones ran (%v)", err)
	}
}
