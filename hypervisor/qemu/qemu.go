// Package qemu runs KVM stage1 VMs with qemu-system-x86_64, driven over
// QMP (github.com/digitalocean/go-qemu).
//
// A VM boots the rkt guest kernel directly (PVH entry of vmlinux, no
// firmware) on the microvm machine by default, with the guest agent as
// /init in the initramfs. QEMU is started paused, the driver connects to
// its monitor and subscribes to events, then lets the guest run: the
// SHUTDOWN and GUEST_PANICKED events, together with QEMU's exit status,
// tell a guest power-off from a guest crash and from a QEMU failure.
package qemu

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mathrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/digitalocean/go-qemu/qmp"

	"rkt.dev/rkt/hypervisor"
	"rkt.dev/rkt/hypervisor/transport"
	"rkt.dev/rkt/hypervisor/vhostuser/vsock"
	"rkt.dev/rkt/internal/netns"
	"rkt.dev/rkt/internal/tail"
)

// DefaultBinary is the QEMU program used when Config.Binary is empty.
const DefaultBinary = "qemu-system-x86_64"

// Time bounds. Stop and Start must end even when QEMU or the guest does
// not cooperate.
const (
	// DefaultGracePeriod is how long a graceful Stop waits for the guest
	// to power off when its context has no deadline.
	DefaultGracePeriod = 10 * time.Second
	// quitTimeout is how long QEMU gets to exit after a QMP quit.
	quitTimeout = 3 * time.Second
	// killTimeout is how long the process gets to be reaped after
	// SIGKILL (it exits at once unless stuck in the kernel).
	killTimeout = 5 * time.Second
	// startTimeout bounds Start when its context has no deadline.
	startTimeout = 30 * time.Second
	// eventDrainTimeout is how long the exit classification waits for the
	// last monitor events after the process is gone.
	eventDrainTimeout = 2 * time.Second
)

// maxSocketPath is the longest Unix socket path Linux accepts (108 bytes
// of sun_path including the terminating NUL).
const maxSocketPath = 107

// Start starts a VM as described by cfg and returns once the guest is
// running. ctx bounds only the start: the VM keeps running after ctx ends.
// On error nothing is left running.
func Start(ctx context.Context, cfg hypervisor.Config) (hypervisor.VM, error) {
	l, notice, cleanup, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	// A random vsock CID can, very rarely, be taken by another VM on the
	// host; vhost-vsock then refuses it and QEMU exits at once. Retry
	// with fresh CIDs rather than keeping a host-wide registry.
	for attempt := 1; ; attempt++ {
		vm, err := start(ctx, l, notice, cleanup)
		if errors.Is(err, errCIDInUse) && attempt < 3 {
			l.cid = randomCID()
			continue
		}
		if errors.Is(err, errNoUserspaceVsock) {
			// Asking QEMU up front would cost every start a QEMU
			// run: the last resort is taken when needed.
			l.Agent = transport.Serial
			continue
		}
		if err != nil {
			cleanup()
			return nil, err
		}
		return vm, nil
	}
}

// errCIDInUse marks a start that failed because the vsock CID was taken.
var errCIDInUse = errors.New("vsock guest CID already in use")

// resolve applies defaults, validates cfg and makes the host-dependent
// choices. cleanup removes what resolve created.
func resolve(cfg hypervisor.Config) (l launch, notice string, cleanup func(), err error) {
	l.Config = cfg
	if l.Binary == "" {
		l.Binary = DefaultBinary
	}
	if l.Machine == "" {
		l.Machine = hypervisor.MicroVM
	}
	if l.Accel == "" {
		l.Accel, notice = hypervisor.DetectAccel()
	} else if l.Accel == hypervisor.TCG {
		notice = "rkt: running the VM under TCG software emulation (slow), as configured"
	}
	if l.Agent == "" {
		l.Agent, _ = transport.Choose()
	}
	if l.Console == nil {
		l.Console = io.Discard
	}
	if err := validate(l.Config); err != nil {
		return launch{}, "", nil, err
	}
	if l.Accel == hypervisor.TCG {
		if l.tscKHz, err = hostTSCkHz(tscSysfs, cpuinfo); err != nil {
			return launch{}, "", nil, err
		}
	}
	switch l.Agent {
	case transport.Vsock:
		l.cid = randomCID()
	case transport.UserspaceVsock:
		// The device is private to the VM: no CID to share with others.
		l.cid = vsock.DefaultGuestCID
	}
	l.vhostNet = l.Accel == hypervisor.KVM && usable("/dev/vhost-net")
	for _, n := range l.NICs {
		mac := n.MAC
		if len(mac) == 0 {
			if mac, err = randomMAC(); err != nil {
				return launch{}, "", nil, err
			}
		}
		l.macs = append(l.macs, mac.String())
	}

	dir, owned := l.RuntimeDir, l.RuntimeDir == ""
	if owned {
		if dir, err = os.MkdirTemp("", "rkt-vm-"); err != nil {
			return launch{}, "", nil, fmt.Errorf("creating a runtime directory for the VM's sockets: %w", err)
		}
		cleanup = func() { os.RemoveAll(dir) }
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return launch{}, "", nil, fmt.Errorf("creating the VM runtime directory: %w", err)
		}
		cleanup = func() {
			os.Remove(l.qmpSocket)
			os.Remove(l.agentSocket)
			os.Remove(l.vsockSocket)
		}
	}
	l.qmpSocket = filepath.Join(dir, "qmp.sock")
	l.agentSocket = filepath.Join(dir, "agent.sock")
	l.vsockSocket = filepath.Join(dir, "vsock.sock")
	for _, p := range []string{l.qmpSocket, l.agentSocket, l.vsockSocket} {
		if len(p) > maxSocketPath {
			if owned {
				cleanup()
			}
			return launch{}, "", nil, fmt.Errorf("socket path %s is longer than the %d bytes Linux allows; use a shorter RuntimeDir", p, maxSocketPath)
		}
	}
	if !owned {
		// Sockets of an earlier VM in the same directory would answer
		// the first connection attempts.
		cleanup()
	}
	return l, notice, cleanup, nil
}

// validate checks what QEMU would otherwise reject with a less direct
// message, or accept and misbehave on.
func validate(c hypervisor.Config) error {
	var problems []string
	for _, f := range []struct{ what, path string }{{"kernel", c.Kernel}, {"initrd", c.Initrd}} {
		if f.path == "" {
			problems = append(problems, "no "+f.what+" given")
		} else if _, err := os.Stat(f.path); err != nil {
			problems = append(problems, f.what+": "+err.Error())
		}
	}
	if c.MemoryMiB < 64 {
		problems = append(problems, fmt.Sprintf("memory %d MiB is below the 64 MiB a guest needs", c.MemoryMiB))
	}
	if c.VCPUs < 1 {
		problems = append(problems, fmt.Sprintf("vCPUs %d is below 1", c.VCPUs))
	}
	switch c.Machine {
	case hypervisor.MicroVM, hypervisor.Q35:
	default:
		problems = append(problems, fmt.Sprintf("unknown machine %q (want %s or %s)", c.Machine, hypervisor.MicroVM, hypervisor.Q35))
	}
	switch c.Accel {
	case hypervisor.KVM, hypervisor.TCG:
	default:
		problems = append(problems, fmt.Sprintf("unknown accelerator %q (want %s or %s)", c.Accel, hypervisor.KVM, hypervisor.TCG))
	}
	switch c.Agent {
	case transport.Vsock, transport.UserspaceVsock, transport.Serial:
	default:
		problems = append(problems, fmt.Sprintf("unknown agent transport %q (want %s, %s or %s)", c.Agent, transport.Vsock, transport.UserspaceVsock, transport.Serial))
	}
	for i, s := range c.Shares {
		if s.Tag == "" || s.Socket == "" {
			problems = append(problems, fmt.Sprintf("share %d needs both a tag and a virtiofsd socket", i))
		}
	}
	// virtio-rng and the agent channel, then one device per share, disk
	// and NIC (args); QEMU's own error for one too many names a missing
	// bus.
	if n := 2 + len(c.Shares) + len(c.Disks) + len(c.NICs); c.Machine == hypervisor.MicroVM && n > microvmVirtioTransports {
		problems = append(problems, fmt.Sprintf("the VM needs %d virtio devices (%d virtio-fs shares, %d disks, %d network interfaces, entropy and the agent channel), more than the %d a microvm machine serves",
			n, len(c.Shares), len(c.Disks), len(c.NICs), microvmVirtioTransports))
	}
	for i, d := range c.Disks {
		if d.Serial == "" || len(d.Serial) > 20 || d.Path == "" {
			problems = append(problems, fmt.Sprintf("disk %d needs a path and a serial of 1 to 20 bytes", i))
		}
	}
	if s := c.Snapshot; s != nil {
		if s.Memory == "" || s.State == "" {
			problems = append(problems, "a snapshot needs both a memory file and a state file")
		}
		if len(c.Shares) > 0 || c.Agent != transport.Serial {
			problems = append(problems, "a template VM and its clones can have neither virtio-fs shares nor a vsock device, whose state QEMU cannot save; give the agent the virtio-serial transport")
		}
	}
	for i, n := range c.NICs {
		if n.Tap == "" {
			problems = append(problems, fmt.Sprintf("NIC %d has no tap device", i))
		}
		if len(n.MAC) != 0 && len(n.MAC) != 6 {
			problems = append(problems, fmt.Sprintf("NIC %d: MAC %v is not a 6-byte Ethernet address", i, n.MAC))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid VM configuration: %s", strings.Join(problems, "; "))
	}
	return nil
}

// microvmVirtioTransports is how many virtio-mmio devices a microvm machine
// serves. QEMU 7.2 has 24 transports (VIRTIO_NUM_TRANSPORTS with the second
// IOAPIC), and QEMU itself refuses a 25th with "No 'virtio-bus' bus found";
// but a device on the 24th never works in the guest: with 22 virtio-fs
// shares, entropy and the agent channel, the last share's mount hangs until
// the setup call times out, while 21 shares work (measured with our kernel).
const microvmVirtioTransports = 23

// randomCID picks a guest context ID: 0-2 are reserved (hypervisor, local,
// host) and 2^32-1 means "any".
func randomCID() uint32 {
	return 3 + mathrand.Uint32N(math.MaxUint32-3)
}

// randomMAC returns a random unicast, locally administered address.
func randomMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, fmt.Errorf("generating a MAC address: %w", err)
	}
	mac[0] = mac[0]&^0x01 | 0x02
	return mac, nil
}

// consoleWriter forwards to the caller's Console but never fails: an error
// from it (say, a closed log file) must not stop the copying of QEMU's
// stdout, or the guest's serial port would block and stall the VM. After
// the first error the console output is dropped.
type consoleWriter struct {
	w      io.Writer
	failed bool
}

// Write implements io.Writer. Only exec's copying goroutine calls it.
func (c *consoleWriter) Write(p []byte) (int, error) {
	if !c.failed {
		if _, err := c.w.Write(p); err != nil {
			c.failed = true
		}
	}
	return len(p), nil
}

// vm is a running QEMU.
type vm struct {
	cmd       *exec.Cmd
	qmpSocket string
	info      hypervisor.Info
	dialer    transport.Dialer
	mon       *qmp.SocketMonitor
	console   *tail.Buffer
	stderr    *tail.Buffer
	cleanup   func()
	uvsock    *userspaceVsock // the in-process vsock device, if any

	// exited is closed once the QEMU process has been reaped; waitErr is
	// cmd.Wait's result.
	exited  chan struct{}
	waitErr error

	// Written by watch, read after watchDone is closed.
	watchDone chan struct{}
	shutdown  string // reason of the SHUTDOWN event
	panicked  bool   // a GUEST_PANICKED event arrived

	killed atomic.Bool // Stop sent SIGKILL

	// snapshot is the Config's; restore is set when QEMU was started to
	// resume from its state, inherited as stateFD.
	snapshot   *hypervisor.Snapshot
	restore    bool
	runtimeDir string

	// done is closed once state and err are final.
	done  chan struct{}
	state hypervisor.ExitState
	err   error

	killOnce sync.Once
}

// start runs QEMU once, connects the monitor and lets the guest run.
func start(ctx context.Context, l launch, notice string, cleanup func()) (*vm, error) {
	var (
		ram, state, tmplRAM *os.File
		memory              string
	)
	switch s := l.Snapshot; {
	case s == nil:
		var ramErr error
		ram, ramErr = guestRAMFile(l.MemoryMiB)
		memory = "shared tmpfs file with transparent huge pages"
		if ramErr == nil {
			l.hugeRAM = true
			// QEMU holds the only other reference once started.
			defer ram.Close()
		} else {
			memory = fmt.Sprintf("shared memfd, 4 KiB pages (%v)", ramErr)
		}
	case s.Restore:
		memory = "private copy-on-write mapping of the template's RAM " + s.Memory
		var err error
		if state, err = os.Open(s.State); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRestore, err)
		}
		defer state.Close()
		// Read-write only because QEMU opens it so; the mapping is
		// private.
		if tmplRAM, err = os.OpenFile(s.Memory, os.O_RDWR, 0); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRestore, err)
		}
		defer tmplRAM.Close()
	default:
		memory = "template RAM file " + s.Memory
	}
	argv := args(l)
	v := &vm{
		cmd:       exec.Command(l.Binary, argv...),
		qmpSocket: l.qmpSocket,
		info: hypervisor.Info{
			Accel:   l.Accel,
			Notice:  notice,
			Machine: l.Machine,
			Agent:   l.Agent,
			Memory:  memory,
			Args:    append([]string{l.Binary}, argv...),
		},
		console:   tail.New(16 << 10),
		stderr:    tail.New(8 << 10),
		cleanup:   cleanup,
		exited:    make(chan struct{}),
		watchDone: make(chan struct{}),
		done:      make(chan struct{}),
	}
	switch l.Agent {
	case transport.Vsock:
		v.dialer = transport.VsockDialer{CID: l.cid, Port: transport.VsockPort}
		v.info.AgentAddress = fmt.Sprintf("vsock cid %d port %d", l.cid, transport.VsockPort)
	case transport.UserspaceVsock:
		u, err := startUserspaceVsock(l)
		if err != nil {
			return nil, err
		}
		v.uvsock = u
		// In this process: no need for the Unix socket, which is
		// there for other processes and tools.
		v.dialer = transport.PortDialer{What: "userspace vsock", DialPort: u.dev.Dial, Port: transport.VsockPort}
		v.info.AgentAddress = fmt.Sprintf("vsock cid %d port %d (host socket %s)", l.cid, transport.VsockPort, l.agentSocket)
	case transport.Serial:
		v.dialer = transport.SerialDialer{Path: l.agentSocket}
		v.info.AgentAddress = l.agentSocket
	}
	if l.hugeRAM {
		v.cmd.ExtraFiles = []*os.File{ram} // descriptor ramFD
	}
	if state != nil {
		v.cmd.ExtraFiles = []*os.File{state, tmplRAM} // descriptors stateFD, memoryFD
		v.restore = true
	}
	v.snapshot = l.Snapshot
	v.runtimeDir = filepath.Dir(l.qmpSocket)
	v.cmd.Stdout = io.MultiWriter(&consoleWriter{w: l.Console}, v.console)
	v.cmd.Stderr = v.stderr
	// QEMU must not outlive the stage1 process that supervises it: if
	// that dies, nothing would ever stop the VM or report its exit.
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var err error
	if l.NetNS != "" {
		err = netns.Do(l.NetNS, v.cmd.Start)
	} else {
		err = v.cmd.Start()
	}
	if err != nil {
		v.closeDevices()
		return nil, fmt.Errorf("starting QEMU (is the qemu-system-x86 package installed?): %w", err)
	}
	go func() {
		v.waitErr = v.cmd.Wait()
		close(v.exited)
	}()

	if err := v.connect(ctx); err != nil {
		v.kill()
		select {
		case <-v.exited:
		case <-time.After(killTimeout):
		}
		if v.mon != nil {
			v.mon.Disconnect()
		}
		v.closeDevices()
		msg := v.stderr.String()
		if strings.Contains(msg, "unable to set guest cid") {
			return nil, fmt.Errorf("%w: %s", errCIDInUse, msg)
		}
		if l.Agent == transport.UserspaceVsock && lacksDevice(msg, userspaceVsockDevice(l.Machine)) {
			return nil, fmt.Errorf("%w: %s", errNoUserspaceVsock, msg)
		}
		if msg != "" {
			return nil, fmt.Errorf("%w; QEMU said: %s", err, msg)
		}
		return nil, err
	}
	go v.finish()
	return v, nil
}

// connect attaches to the QMP monitor, subscribes to events and resumes
// the paused guest.
func (v *vm) connect(ctx context.Context) error {
	for {
		mon, err := qmp.NewSocketMonitor("unix", v.qmpSocket, time.Second)
		if err == nil {
			v.mon = mon
			break
		}
		if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("connecting to QEMU's monitor: %w", err)
		}
		select {
		case <-v.exited:
			return fmt.Errorf("QEMU exited during start (%v)", v.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("QEMU did not open its monitor socket in time: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := v.bounded(ctx, v.mon.Connect); err != nil {
		return fmt.Errorf("QMP handshake with QEMU: %w", err)
	}
	events, err := v.mon.Events(ctx)
	if err != nil {
		return fmt.Errorf("subscribing to QEMU's events: %w", err)
	}
	go v.watch(events)
	if v.snapshot != nil {
		// Guest RAM is the memory file, shared by template and clones:
		// only the CPU and device state goes through the migration.
		caps := map[string]any{"capabilities": []map[string]any{{"capability": "x-ignore-shared", "state": true}}}
		if _, err := v.commandArgs(ctx, "migrate-set-capabilities", caps); err != nil {
			return err
		}
	}
	if v.restore {
		if _, err := v.commandArgs(ctx, "migrate-incoming", map[string]string{"uri": fmt.Sprintf("fd:%d", stateFD)}); err != nil {
			return fmt.Errorf("%w: %w", ErrRestore, err)
		}
		if err := v.waitMigration(ctx); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("resuming the VM template: %w", err)
			}
			return fmt.Errorf("%w: %w", ErrRestore, err)
		}
	}
	if _, err := v.command(ctx, "cont"); err != nil {
		return fmt.Errorf("starting the guest: %w", err)
	}
	return nil
}

// watch records the events that explain how the VM ends. It must keep
// reading until the channel closes: go-qemu delivers events and command
// replies from one reader, so an unread event would block replies.
func (v *vm) watch(events <-chan qmp.Event) {
	defer close(v.watchDone)
	for e := range events {
		switch e.Event {
		case "SHUTDOWN":
			if r, ok := e.Data["reason"].(string); ok {
				v.shutdown = r
			}
		case "GUEST_PANICKED":
			v.panicked = true
		}
	}
}

// finish classifies the exit once QEMU is gone and releases resources.
func (v *vm) finish() {
	<-v.exited
	// The monitor socket closes with the process; the watcher then sees
	// the end of the stream, after the last events.
	select {
	case <-v.watchDone:
	case <-time.After(eventDrainTimeout):
	}
	v.mon.Disconnect()
	<-v.watchDone
	v.state, v.err = v.classify()
	v.closeDevices()
	v.cleanup()
	close(v.done)
}

// closeDevices stops the devices the driver runs in this process.
func (v *vm) closeDevices() {
	if v.uvsock != nil {
		v.uvsock.close()
	}
}

// classify turns the monitor's events and the process status into an
// ExitState.
func (v *vm) classify() (hypervisor.ExitState, error) {
	s := hypervisor.ExitState{ExitCode: v.cmd.ProcessState.ExitCode()}
	if ws, ok := v.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		s.Signal = ws.Signal()
	}
	switch {
	case v.panicked || v.shutdown == "guest-panic":
		s.Reason = hypervisor.ExitGuestCrash
		s.Detail = v.console.LastLineWith("Kernel panic")
		if s.Detail == "" {
			s.Detail = "the guest kernel panicked"
		}
	case v.shutdown == "guest-reset":
		s.Reason = hypervisor.ExitGuestCrash
		s.Detail = v.console.LastLineWith("Kernel panic")
		if s.Detail == "" {
			s.Detail = "the guest reset the machine"
		}
	case v.shutdown == "guest-shutdown" && s.ExitCode == 0:
		s.Reason = hypervisor.ExitPoweroff
	case strings.HasPrefix(v.shutdown, "host-"):
		s.Reason = hypervisor.ExitStopped
		s.Detail = "QEMU shutdown reason " + v.shutdown
	case v.killed.Load():
		s.Reason = hypervisor.ExitStopped
		s.Detail = "QEMU was killed after it did not quit in time"
	default:
		s.Reason = hypervisor.ExitHypervisorFailed
		s.Detail = v.stderr.String()
		if s.Detail == "" {
			s.Detail = "QEMU ended without a shutdown event"
		}
	}
	switch s.Reason {
	case hypervisor.ExitPoweroff, hypervisor.ExitStopped:
		return s, nil
	}
	return s, fmt.Errorf("VM (QEMU pid %d) ended: %s", v.PID(), s)
}

// PID implements hypervisor.VM.
func (v *vm) PID() int { return v.cmd.Process.Pid }

// Info implements hypervisor.VM.
func (v *vm) Info() hypervisor.Info { return v.info }

// Wait implements hypervisor.VM.
func (v *vm) Wait() (hypervisor.ExitState, error) {
	<-v.done
	return v.state, v.err
}

// DialAgent implements hypervisor.VM; it gives up as soon as the VM exits.
func (v *vm) DialAgent(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-v.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	conn, err := v.dialer.Dial(ctx)
	if err != nil && v.isExited() {
		return nil, fmt.Errorf("the VM exited before its agent answered: %w", err)
	}
	return conn, err
}

// Status implements hypervisor.VM.
func (v *vm) Status(ctx context.Context) (hypervisor.Status, error) {
	if v.isExited() {
		return hypervisor.Status{State: "exited"}, nil
	}
	out, err := v.command(ctx, "query-status")
	if err != nil {
		if v.isExited() {
			return hypervisor.Status{State: "exited"}, nil
		}
		return hypervisor.Status{}, fmt.Errorf("querying the VM status: %w", err)
	}
	var reply struct {
		Return struct {
			Running bool   `json:"running"`
			Status  string `json:"status"`
		} `json:"return"`
	}
	if err := json.Unmarshal(out, &reply); err != nil {
		return hypervisor.Status{}, fmt.Errorf("decoding QEMU's query-status reply %q: %w", out, err)
	}
	return hypervisor.Status{Running: reply.Return.Running, State: reply.Return.Status}, nil
}

// Stop implements hypervisor.VM.
func (v *vm) Stop(ctx context.Context, force bool) error {
	if !force {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, DefaultGracePeriod)
			defer cancel()
		}
		// A failed request needs no handling: the escalation below
		// follows when the guest does not power off.
		_, _ = v.command(ctx, "system_powerdown")
		select {
		case <-v.exited:
			return nil
		case <-ctx.Done():
		}
	}

	quitCtx, cancel := context.WithTimeout(context.Background(), quitTimeout)
	defer cancel()
	_, _ = v.command(quitCtx, "quit") // the kill below covers a failure
	select {
	case <-v.exited:
		return nil
	case <-quitCtx.Done():
	}

	v.killed.Store(true)
	v.kill()
	select {
	case <-v.exited:
		return nil
	case <-time.After(killTimeout):
		return fmt.Errorf("QEMU (pid %d) did not exit %v after SIGKILL; it is stuck in the kernel, check its state in /proc/%d/stack", v.PID(), killTimeout, v.PID())
	}
}

// kill sends SIGKILL to QEMU. os.Process signals through a pidfd, so a
// reaped and reused PID is never hit.
func (v *vm) kill() {
	v.killOnce.Do(func() { v.cmd.Process.Kill() })
}

// isExited reports whether the QEMU process is gone.
func (v *vm) isExited() bool {
	select {
	case <-v.exited:
		return true
	default:
		return false
	}
}

// command runs a QMP command without arguments (see commandArgs).
func (v *vm) command(ctx context.Context, name string) ([]byte, error) {
	return v.commandArgs(ctx, name, nil)
}

// commandArgs runs a QMP command, giving up when ctx is done or QEMU exits
// (go-qemu's Run itself cannot be cancelled).
func (v *vm) commandArgs(ctx context.Context, name string, args any) ([]byte, error) {
	cmd, err := json.Marshal(qmp.Command{Execute: name, Args: args})
	if err != nil {
		return nil, err
	}
	var out []byte
	err = v.bounded(ctx, func() error {
		var err error
		out, err = v.mon.Run(cmd)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("QMP %s: %w", name, err)
	}
	return out, nil
}

// bounded runs fn but returns early when ctx is done or QEMU exits; fn
// then finishes in the background (a dead QEMU closes the socket, which
// ends any pending monitor I/O).
func (v *vm) bounded(ctx context.Context, fn func() error) error {
	result := make(chan error, 1)
	go func() { result <- fn() }()
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-v.exited:
		select {
		case err := <-result:
			return err
		default:
			return errors.New("QEMU exited")
		}
	}
}
