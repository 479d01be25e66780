package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/appc/spec/schema/types"
	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"

	"rkt.dev/rkt/guest-agent/api"
	"rkt.dev/rkt/hypervisor"
	"rkt.dev/rkt/hypervisor/qemu"
	"rkt.dev/rkt/hypervisor/transport"
	"rkt.dev/rkt/internal/tail"
	"rkt.dev/rkt/network"
	"rkt.dev/rkt/stage1"
	"rkt.dev/rkt/stage1/supervisor"
)

// Files of the stage1 image rootfs besides the entrypoints.
const (
	kernelFile = "vmlinux"
	initrdFile = "initrd.img"
)

// EnvExtraKernelParams adds kernel parameters to the guest's command line
// (rkt's original name for it). The agent reads its test hooks from there.
const EnvExtraKernelParams = "RKT_HYPERVISOR_EXTRA_KERNEL_PARAMS"

// Time bounds of the run entrypoint: whatever the guest does, `rkt run`
// ends.
const (
	// bootTimeout bounds QEMU's start and the wait for the agent's first
	// answer; generous because TCG on a busy host boots slowly.
	bootTimeout = 60 * time.Second
	// callTimeout bounds the setup calls.
	callTimeout = 30 * time.Second
	// signalGrace is how long apps get between SIGTERM and SIGKILL when
	// rkt run itself is signalled.
	signalGrace = 10 * time.Second
	// outputDrain bounds the wait for an exited app's last output.
	outputDrain = 5 * time.Second
	// powerOffTimeout bounds the wait for the VM to power off after the
	// pod is done; then QEMU is stopped by force.
	powerOffTimeout = 30 * time.Second
	// vmEndGrace is how long a failed agent call waits for the VM to
	// report that it ended, to explain the failure.
	vmEndGrace = 5 * time.Second
	// proxyDrain bounds how long a pod whose apps have all exited waits
	// for calls still running through its proxy (rkt stop, rkt enter).
	proxyDrain = 2 * time.Second
	// lostAgentGrace is how long a broken agent connection waits for the
	// VM to end by itself (a panicking guest) before it is killed.
	lostAgentGrace = 10 * time.Second
)

// podRun is one run of a pod: the host side of its VM.
type podRun struct {
	flags  stage1.RunFlags
	nets   network.Spec
	dir    stage1.PodDir
	pod    *stage1.Pod
	plan   *vmPlan
	rtDir  string
	state  podState
	stderr io.Writer

	// netInfo and taps are the pod's CNI networks and the tap devices
	// joined to them (nil with --net=none).
	netInfo *network.Info
	taps    []network.Tap

	// tmpl is set when the pod resumes a VM template (template.go)
	// instead of booting.
	tmpl *templatePlan

	fsds    []*virtiofsd
	fsdLog  *tail.Buffer
	console *tail.Buffer

	vm      hypervisor.VM
	vmDone  chan struct{}
	vmState hypervisor.ExitState
	vmErr   error

	client   *ttrpc.Client
	agent    api.AgentClient
	proxySrv *ttrpc.Server

	// sigc receives the signals that stop the pod; setupCtx is cancelled
	// by one arriving before the apps run.
	sigc     chan os.Signal
	setupCtx context.Context

	outputs sync.WaitGroup
	// restoreTerminal takes rkt's terminal out of raw mode, once an
	// interactive app on a terminal has exited or the run ends.
	restoreTerminal func()
}

// runPod is the run entrypoint: stage0 has chdir'ed to the pod directory and
// passes the pod lock in RKT_LOCK_FD, which this process keeps open until it
// exits.
func runPod(args []string) (int, error) {
	flags, err := stage1.ParseRunFlags(args)
	if err != nil {
		return 0, err
	}
	if flags.PrivateUsers != "" {
		return 0, errors.New("the kvm stage1 does not support --private-users: the VM already separates the pod's users from the host's")
	}
	nets, err := network.ParseNets(flags.Nets)
	if err != nil {
		return 0, err
	}
	if nets.Mode == network.ModeHost {
		return 0, errors.New("the kvm stage1 cannot use --net=host: a VM has its own network stack; use --net=default, a CNI network, or --net=none")
	}
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	keepLockFromChildren()
	r := &podRun{
		flags:   flags,
		nets:    nets,
		dir:     stage1.PodDir(wd),
		stderr:  os.Stderr,
		fsdLog:  tail.New(8 << 10),
		console: tail.New(16 << 10),
		vmDone:  make(chan struct{}),

		restoreTerminal: func() {},
	}
	// A signal that would stop the pod once its apps run (runApps)
	// cancels its setup before that: teardown then releases what was
	// made, rather than the process dying with QEMU, virtiofsd and the
	// runtime directory left for gc. Signals stay caught until teardown
	// is done (deferred calls run last first), so a second ^C cannot cut
	// it short.
	r.sigc = make(chan os.Signal, 4)
	supervisor.NotifyForwarded(r.sigc)
	defer signal.Stop(r.sigc)
	defer r.teardown()
	var cancelSetup context.CancelFunc
	r.setupCtx, cancelSetup = context.WithCancel(context.Background())
	defer cancelSetup()
	var interrupted atomic.Value // the os.Signal that cancelled the setup
	setupDone, watched := make(chan struct{}), make(chan struct{})
	endSetup := sync.OnceFunc(func() { close(setupDone); <-watched })
	defer endSetup() // a failed setup ends the watcher too
	go func() {
		defer close(watched)
		select {
		case sig := <-r.sigc:
			interrupted.Store(sig)
			cancelSetup()
		case <-setupDone:
		}
	}()
	stopped := func(step string) (int, error) {
		sig := interrupted.Load().(syscall.Signal)
		return 128 + int(sig), fmt.Errorf("stopped by %s while %s: the apps were not started", unix.SignalName(sig), step)
	}
	for _, step := range []struct {
		name string
		do   func() error
	}{
		{"loading the pod", r.load},
		{"preparing the runtime directory", r.prepareRuntime},
		{"preparing the VM template", r.prepareTemplate},
		{"starting virtiofsd", r.startShares},
		{"setting up the network", r.setupNetwork},
		{"booting the VM", r.boot},
		{"connecting to the guest agent", r.connect},
		{"setting up the pod in the VM", r.setupPod},
	} {
		err := step.do()
		if interrupted.Load() != nil {
			return stopped(step.name)
		}
		if err != nil {
			return 0, r.explain(fmt.Errorf("%s: %w", step.name, err))
		}
	}
	endSetup()
	if interrupted.Load() != nil {
		return stopped("setting up the pod in the VM")
	}
	return r.runApps()
}

// keepLockFromChildren marks the pod lock close-on-exec: QEMU and virtiofsd
// must not hold it, so the pod reads "exited" as soon as this process is
// gone (they die with it, see Pdeathsig, and gc kills any straggler).
func keepLockFromChildren() {
	if fd, err := strconv.Atoi(os.Getenv(stage1.EnvLockFD)); err == nil {
		unix.CloseOnExec(fd)
	}
}

func (r *podRun) debugf(format string, args ...any) {
	if r.flags.Debug {
		fmt.Fprintf(r.stderr, "stage1-kvm: "+format+"\n", args...)
	}
}

func (r *podRun) load() error {
	p, err := stage1.LoadPod(r.dir, r.flags.UUID)
	if err != nil {
		return err
	}
	if len(p.Apps) == 0 {
		return errors.New("the pod has no apps")
	}
	if r.flags.Interactive && len(p.Apps) != 1 {
		return fmt.Errorf("--interactive needs exactly one app, the pod has %d", len(p.Apps))
	}
	r.pod = p
	r.plan, err = planPod(p, r.flags, hostCPUs())
	if err != nil {
		return err
	}
	if r.flags.Interactive && onTerminal() {
		app := r.plan.Apps[0]
		app.Tty, app.Size = true, windowSize()
	}
	r.debugf("VM size: %d MiB, %d vCPUs; %d virtio-fs shares", r.plan.Size.MemoryMiB, r.plan.Size.VCPUs, len(r.plan.Shares))
	return os.MkdirAll(r.dir.LogDir(), 0o755)
}

func (r *podRun) prepareRuntime() error {
	dir, err := runtimeDir(r.flags.UUID)
	if err != nil {
		return err
	}
	// Left over by an earlier run of this pod that was killed: its
	// processes died with it, its sockets would confuse this one.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	r.rtDir = dir
	if r.state.Run, err = procOf(os.Getpid(), "stage1 run process"); err != nil {
		return err
	}
	return r.state.save(dir)
}

// prepareTemplate decides whether the pod resumes a VM template, and
// makes the image disks it needs (template.go).
func (r *podRun) prepareTemplate() error {
	tp, why := r.planTemplate(qemu.DefaultBinary)
	if tp == nil {
		r.debugf("booting the VM, not resuming a template: %s", why)
	}
	r.tmpl = tp
	return nil
}

func (r *podRun) startShares() error {
	if r.tmpl != nil {
		return nil // image disks instead
	}
	var log io.Writer = r.fsdLog
	if r.flags.Debug {
		log = io.MultiWriter(r.stderr, r.fsdLog)
	}
	for _, s := range r.plan.Shares {
		v, err := startVirtiofsd(s, filepath.Join(r.rtDir, "fs-"+s.Tag+".sock"), log)
		if err != nil {
			return err
		}
		r.fsds = append(r.fsds, v)
		p, err := procOf(v.cmd.Process.Pid, "virtiofsd for "+s.Source)
		if err != nil {
			return fmt.Errorf("virtiofsd for %s exited at once: %s", s.Source, r.fsdLog)
		}
		r.state.Virtiofsd = append(r.state.Virtiofsd, p)
		r.debugf("share %s: %s (read-only %v, pid %d)", s.Tag, s.Source, s.ReadOnly, p.PID)
	}
	return r.state.save(r.rtDir)
}

// setupNetwork joins the pod to its CNI networks in its own namespace and
// joins a tap device to each interface for QEMU. Teardown is gc's job, so
// `rkt status` still shows the pod's addresses after it exits, as in rkt.
func (r *podRun) setupNetwork() error {
	if r.nets.Mode != network.ModeCNI {
		return nil
	}
	opts, err := network.PodOptions(r.pod, r.flags)
	if err != nil {
		return err
	}
	info, err := network.Setup(r.setupCtx, network.PodInfo(r.dir, r.flags.UUID), r.nets, opts)
	if err != nil {
		return err
	}
	r.netInfo = info
	if r.taps, err = network.AttachTaps(info); err != nil {
		return err
	}
	for _, t := range r.taps {
		r.debugf("network %s: %s on %s (MAC %s), joined to %s", t.Attachment.NetName, t.Attachment.IP, t.Attachment.IfName, t.Attachment.MAC, t.Name)
	}
	return nil
}

func (r *podRun) boot() error {
	cfg, err := r.vmConfig()
	if err != nil {
		return err
	}
	if r.tmpl != nil {
		err := r.resume(cfg)
		if err == nil || r.setupCtx.Err() != nil || r.forceStopped() {
			return err
		}
		if !r.abandonVM() {
			return fmt.Errorf("%w; the resumed VM could not be stopped to boot one instead", err)
		}
		fmt.Fprintf(r.stderr, "stage1-kvm: %v; booting the VM instead\n", err)
		r.tmpl = nil
		if err := r.startShares(); err != nil {
			return err
		}
	}
	kind, why := transport.Choose()
	r.debugf("%s", why)
	cfg.Agent = kind
	for i, s := range r.plan.Shares {
		cfg.Shares = append(cfg.Shares, hypervisor.Share{Tag: s.Tag, Socket: r.fsds[i].socket})
	}
	ctx, cancel := context.WithTimeout(r.setupCtx, bootTimeout)
	defer cancel()
	// A missing QEMU is reported by the driver with the package to install.
	vm, err := qemu.Start(ctx, cfg)
	if err != nil {
		return err
	}
	return r.started(vm)
}

// resumeConnectTimeout bounds reaching the agent of a resumed VM, which
// answers within a fraction of a second when its template is sound.
const resumeConnectTimeout = 15 * time.Second

// resume starts the pod's VM from its template, making the template first
// if there is none yet, and connects to its agent. Each of the three gets
// its own time bound. A template QEMU cannot resume, or whose agent does
// not answer, is discarded (unless time ran out or the run was stopped).
func (r *podRun) resume(cfg hypervisor.Config) error {
	cfg = templateConfig(cfg, r.tmpl)
	ctx, cancel := context.WithTimeout(r.setupCtx, bootTimeout)
	lock, err := r.tmpl.ensure(ctx, cfg, r.debugf)
	cancel()
	if err != nil {
		return err
	}
	defer lock.Close()
	cfg.Snapshot = r.tmpl.clone()
	ctx, cancel = context.WithTimeout(r.setupCtx, bootTimeout)
	defer cancel()
	vm, err := qemu.Start(ctx, cfg)
	if err != nil {
		if errors.Is(err, qemu.ErrRestore) && ctx.Err() == nil {
			r.tmpl.discard(lock)
		}
		return fmt.Errorf("resuming VM template %s: %w", r.tmpl.dir, err)
	}
	r.tmpl.markUsed()
	r.debugf("resumed VM template %s", r.tmpl.dir)
	if err := r.started(vm); err != nil {
		return err
	}
	if err := r.connectWithin(resumeConnectTimeout); err != nil {
		if r.setupCtx.Err() == nil && !r.forceStopped() {
			r.tmpl.discard(lock)
		}
		return fmt.Errorf("the agent of the VM resumed from template %s: %w", r.tmpl.dir, err)
	}
	return nil
}

// abandonVM stops a VM the pod will not use, and forgets it and its agent
// connection. It reports false if the VM could not be stopped: the pod
// must then not start another.
func (r *podRun) abandonVM() bool {
	if r.client != nil {
		r.client.Close()
		r.client, r.agent = nil, nil
	}
	if r.vm == nil {
		return true
	}
	if !r.stopVM() {
		return false
	}
	r.vm, r.vmDone = nil, make(chan struct{})
	r.state.QEMU = hostProc{}
	return r.state.save(r.rtDir) == nil
}

// forceStopped reports whether `rkt stop --force` killed the pod's VM.
func (r *podRun) forceStopped() bool {
	_, err := os.Stat(filepath.Join(r.rtDir, forceStopMarker))
	return err == nil
}

// vmConfig is the pod's VM without its agent transport and virtio-fs
// shares, which depend on whether it boots or resumes a template.
func (r *podRun) vmConfig() (hypervisor.Config, error) {
	stage1Root := r.dir.Stage1Rootfs()
	var console io.Writer = r.console
	if r.flags.Debug {
		console = io.MultiWriter(r.stderr, r.console)
	}
	cfg := hypervisor.Config{
		Kernel:     filepath.Join(stage1Root, kernelFile),
		Initrd:     filepath.Join(stage1Root, initrdFile),
		Cmdline:    os.Getenv(EnvExtraKernelParams),
		MemoryMiB:  r.plan.Size.MemoryMiB,
		VCPUs:      r.plan.Size.VCPUs,
		Console:    console,
		RuntimeDir: r.rtDir,
		Debug:      r.flags.Debug,
	}
	for _, t := range r.taps {
		mac, err := net.ParseMAC(t.Attachment.MAC)
		if err != nil {
			return cfg, fmt.Errorf("network %s: %w", t.Attachment.NetName, err)
		}
		cfg.NICs = append(cfg.NICs, hypervisor.NIC{Tap: t.Name, MAC: mac})
	}
	if r.netInfo != nil {
		cfg.NetNS = r.netInfo.Netns
	}
	return cfg, nil
}

// started records the pod's running VM.
func (r *podRun) started(vm hypervisor.VM) error {
	var err error
	r.vm = vm
	vmDone := r.vmDone // abandonVM replaces the field
	go func() {
		r.vmState, r.vmErr = vm.Wait()
		close(vmDone)
	}()
	info := vm.Info()
	if info.Notice != "" {
		fmt.Fprintln(r.stderr, info.Notice)
	}
	r.debugf("QEMU pid %d: %s machine, %s, agent over %s at %s; guest RAM: %s", vm.PID(), info.Machine, info.Accel, info.Agent, info.AgentAddress, info.Memory)
	if r.state.QEMU, err = procOf(vm.PID(), "QEMU"); err != nil {
		return fmt.Errorf("QEMU exited at once: %w", err)
	}
	if err := r.state.save(r.rtDir); err != nil {
		return err
	}
	return r.dir.WritePID(vm.PID())
}

// untilVMExit returns a context that is cancelled when the VM ends, so
// that no call to the agent outlives it.
func (r *podRun) untilVMExit(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	vmDone := r.vmDone // abandonVM replaces the field
	go func() {
		select {
		case <-vmDone:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// connect reaches the agent, unless resume did.
func (r *podRun) connect() error {
	if r.agent != nil {
		return nil
	}
	return r.connectWithin(bootTimeout)
}

// connectWithin connects to the agent and checks its API version.
func (r *podRun) connectWithin(timeout time.Duration) error {
	started := time.Now()
	ctx, cancel := r.untilVMExit(r.setupCtx, timeout)
	defer cancel()
	conn, err := r.vm.DialAgent(ctx)
	if err != nil {
		switch {
		case ctx.Err() == nil:
			// The driver gave up at once because the VM ended (a
			// vsock dial fails as soon as it does): give Wait a
			// moment, so that explain says how it ended.
			select {
			case <-r.vmDone:
			case <-time.After(vmEndGrace):
			}
		case !r.vmExited():
			// Over vsock an agent that never listens refuses every
			// connection, where virtio-serial accepts one nobody
			// serves.
			return fmt.Errorf("the guest agent did not answer within %v: %w", timeout, err)
		}
		return err
	}
	r.client = ttrpc.NewClient(conn, ttrpc.WithUnaryClientInterceptor(plainAgentErrors))
	r.agent = api.NewAgentClient(r.client)
	v, err := r.agent.Version(ctx, &api.VersionRequest{ApiVersion: api.APIVersion})
	if err != nil {
		if ctx.Err() != nil && !r.vmExited() {
			return fmt.Errorf("the guest agent did not answer within %v", timeout)
		}
		return err
	}
	r.debugf("guest agent API v%d on kernel %s, ready %v after QEMU start", v.ApiVersion, v.KernelRelease, time.Since(started).Round(time.Millisecond))
	return nil
}

func (r *podRun) setupPod() error {
	ctx, cancel := r.untilVMExit(r.setupCtx, callTimeout)
	defer cancel()
	req := &api.SetupPodRequest{Hostname: r.plan.Hostname, Volumes: r.plan.Volumes, HostTimeUnixNano: time.Now().UnixNano()}
	req.Entropy = make([]byte, 32)
	if _, err := rand.Read(req.Entropy); err != nil {
		return fmt.Errorf("reading entropy for the guest: %w", err)
	}
	for _, s := range r.plan.Shares {
		sh := &api.Share{Tag: s.Tag, ReadOnly: s.ReadOnly}
		if r.tmpl != nil {
			sh.Disk = s.Tag
		}
		req.Shares = append(req.Shares, sh)
	}
	if err := r.guestNetwork(req); err != nil {
		return err
	}
	if _, err := r.agent.SetupPod(ctx, req); err != nil {
		return err
	}
	srv, err := serveProxy(filepath.Join(r.rtDir, apiSocket), r.agent)
	if err != nil {
		return err
	}
	r.proxySrv = srv
	return nil
}

// guestNetwork tells the agent how to configure the guest's interfaces
// (the CNI interfaces' MACs, addresses, routes and MTUs: no DHCP) and what
// /etc/resolv.conf and /etc/hosts the apps get.
func (r *podRun) guestNetwork(req *api.SetupPodRequest) error {
	var ips []string
	fromCNI := ""
	if r.netInfo != nil {
		fromCNI = network.ResolvConf(r.netInfo)
		for _, t := range r.taps {
			a := t.Attachment
			ifc := &api.Interface{Mac: a.MAC, Address: a.IP, Mtu: uint32(a.MTU)}
			for _, rt := range a.Routes {
				ifc.Routes = append(ifc.Routes, &api.Route{Destination: rt.Dst, Gateway: rt.GW})
			}
			req.Interfaces = append(req.Interfaces, ifc)
			ips = append(ips, a.IPv4())
		}
	}
	var err error
	if req.ResolvConf, err = stage1.PodResolvConf(r.dir, fromCNI); err != nil {
		return err
	}
	req.Hosts, err = stage1.PodHosts(r.dir, r.plan.Hostname, ips)
	return err
}

func (r *podRun) vmExited() bool {
	select {
	case <-r.vmDone:
		return true
	default:
		return false
	}
}

// runApps starts every app, streams its output, records its exit status,
// and powers the VM off once all have exited.
func (r *podRun) runApps() (int, error) {
	// From here a signal to rkt run (r.sigc, see runPod) stops the pod.
	var flushes []func()
	for _, app := range r.plan.Apps {
		flush, err := r.startApp(app)
		if err != nil {
			r.shutdown(0)
			return 0, r.explain(err)
		}
		flushes = append(flushes, flush)
	}

	type exit struct {
		i    int
		code int
		err  error
	}
	exits := make(chan exit, len(r.plan.Apps))
	for i, app := range r.plan.Apps {
		go func() {
			resp, err := r.agent.WaitApp(context.Background(), &api.WaitAppRequest{App: app.Name})
			if err != nil {
				exits <- exit{i: i, err: err}
				return
			}
			exits <- exit{i: i, code: int(resp.Status.Code)}
		}()
	}
	codes := make([]int, len(r.plan.Apps))
	reported := make([]bool, len(r.plan.Apps))
	var stopOnce sync.Once
	for left := len(r.plan.Apps); left > 0; {
		select {
		case e := <-exits:
			if e.err != nil {
				return r.lostPod(reported, e.err)
			}
			left--
			codes[e.i], reported[e.i] = e.code, true
			r.restoreTerminal() // --interactive has one app
			name := r.pod.Apps[e.i].Name
			if err := r.dir.WriteExitStatus(name, e.code); err != nil {
				fmt.Fprintf(r.stderr, "stage1-kvm: %v\n", err)
			}
			r.debugf("app %s exited with code %d", name, e.code)
		case sig := <-r.sigc:
			r.debugf("%v: stopping the pod (apps get SIGTERM, SIGKILL after %v)", sig, signalGrace)
			stopOnce.Do(func() { go r.shutdown(signalGrace) })
		case <-r.vmDone:
			return r.lostPod(reported, nil)
		}
	}

	// Every app has exited: its output ends with it, bounded in case a
	// descendant keeps it open.
	drained := make(chan struct{})
	go func() { r.outputs.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(outputDrain):
	}
	for _, f := range flushes {
		f()
	}
	r.powerOff()
	return stage1.ExitCode(codes), nil
}

// startApp starts one app and the copying of its output to rkt's stdout
// and stderr (prefixed by the app's name when the pod has several) and to
// log/<app>. The returned flush writes any pending partial line.
func (r *podRun) startApp(app *api.App) (flush func(), err error) {
	ctx, cancel := r.untilVMExit(context.Background(), callTimeout)
	defer cancel()
	if _, err := r.agent.StartApp(ctx, &api.StartAppRequest{App: app}); err != nil {
		if errors.As(err, new(agentError)) {
			return nil, err // the agent's message names the app
		}
		return nil, fmt.Errorf("starting app %s: %w", app.Name, err)
	}
	if app.Tty {
		restore, err := makeRaw()
		if err != nil {
			return nil, fmt.Errorf("putting the terminal in raw mode for app %s: %w", app.Name, err)
		}
		r.restoreTerminal = restore
	}
	log, err := os.Create(r.dir.LogFile(types.ACName(app.Name)))
	if err != nil {
		return nil, err
	}
	var stdout, stderr io.Writer = os.Stdout, os.Stderr
	flush = func() {}
	if len(r.plan.Apps) > 1 {
		po := stage1.NewPrefixWriter(os.Stdout, app.Name+": ")
		pe := stage1.NewPrefixWriter(os.Stderr, app.Name+": ")
		stdout, stderr = po, pe
		flush = func() { po.Flush(); pe.Flush() }
	}
	stdout, stderr = io.MultiWriter(stdout, log), io.MultiWriter(stderr, log)
	stream, err := r.agent.ReadOutput(context.Background(), &api.ReadOutputRequest{App: app.Name})
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("reading the output of app %s: %w", app.Name, err)
	}
	r.outputs.Add(1)
	go func() {
		defer r.outputs.Done()
		defer log.Close()
		for {
			c, err := stream.Recv()
			if err != nil {
				return
			}
			switch c.Stream {
			case api.Stream_STREAM_STDOUT:
				stdout.Write(c.Data)
			case api.Stream_STREAM_STDERR:
				stderr.Write(c.Data)
			}
		}
	}()
	if app.Stdin {
		go r.feedStdin(app)
	}
	return flush, nil
}

// feedStdin copies rkt's stdin to an interactive app until EOF, and the
// size of rkt's terminal to the app's, if it has one.
func (r *podRun) feedStdin(app *api.App) {
	in, err := r.agent.WriteInput(context.Background())
	if err != nil {
		return
	}
	// Input and resizes are sent from two goroutines; the stream's end
	// must not race with a resize (ttrpc's close flag is unguarded).
	var (
		mu     sync.Mutex
		closed bool
	)
	send := func(c *api.InputChunk) error {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return io.ErrClosedPipe
		}
		return in.Send(c)
	}
	if err := send(&api.InputChunk{App: app.Name}); err != nil {
		return
	}
	if app.Tty {
		go forwardResizes(func(ws *api.WindowSize) error { return send(&api.InputChunk{Resize: ws}) })
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := os.Stdin.Read(buf)
		if n > 0 {
			if send(&api.InputChunk{Data: append([]byte(nil), buf[:n]...)}) != nil {
				return
			}
		}
		if err != nil {
			mu.Lock()
			closed = true
			mu.Unlock()
			in.CloseAndRecv()
			return
		}
	}
}

// shutdown asks the agent to stop every app.
func (r *podRun) shutdown(grace time.Duration) error {
	ctx, cancel := r.untilVMExit(context.Background(), grace+callTimeout)
	defer cancel()
	_, err := r.agent.Shutdown(ctx, &api.ShutdownRequest{GracePeriodMs: uint32(grace.Milliseconds())})
	return err
}

// powerOff ends a pod whose apps have all exited. Once the agent has
// answered Shutdown (the apps are gone and the guest's file systems are
// synced), QEMU is told to quit: the guest kernel's own power-off would only
// add its shutdown path, about 20 ms under TCG, with nothing left to save.
// If the agent does not answer, hanging up tells it to power off (once
// its Shutdown, if it got one, is done), and teardown stops QEMU by force
// if the guest does not power off in time.
func (r *podRun) powerOff() {
	err := r.shutdown(0)
	// A call through the proxy may still be on its way back: the
	// Shutdown of `rkt stop`, whose apps' exit is what brought the pod
	// here. Closing at once would fail it with "ttrpc: closed".
	ctx, cancel := context.WithTimeout(context.Background(), proxyDrain)
	if r.proxySrv.Shutdown(ctx) != nil {
		r.proxySrv.Close()
	}
	cancel()
	r.client.Close()
	if err == nil {
		if r.stopVM() {
			r.debugf("VM ended: %v", r.vmState)
		}
		return
	}
	r.debugf("shutdown request failed (%v); waiting for the guest to power off", err)
	select {
	case <-r.vmDone:
		r.debugf("VM ended: %v", r.vmState)
	case <-time.After(powerOffTimeout):
		fmt.Fprintf(r.stderr, "stage1-kvm: the VM did not power off within %v; stopping QEMU\n", powerOffTimeout)
	}
}

// lostPod handles a VM or agent that went away while apps were running:
// it reports why and which apps left no exit status.
func (r *podRun) lostPod(reported []bool, callErr error) (int, error) {
	select {
	case <-r.vmDone:
	case <-time.After(lostAgentGrace):
	}
	var missing []string
	for i, ok := range reported {
		if !ok {
			missing = append(missing, r.pod.Apps[i].Name.String())
		}
	}
	if r.forceStopped() {
		for i, ok := range reported {
			if !ok {
				r.dir.WriteExitStatus(r.pod.Apps[i].Name, exitForceStopped)
			}
		}
		return exitForceStopped, fmt.Errorf("pod stopped by rkt stop --force; apps %v were killed", missing)
	}
	why := "the connection to the guest agent broke"
	if callErr != nil {
		why += " (" + callErr.Error() + ")"
	}
	if r.vmExited() {
		// explain adds the VM's failure; a clean end needs saying here.
		why = "the VM ended"
		if r.vmErr == nil {
			why += " (" + r.vmState.String() + ")"
		}
	}
	return 0, r.explain(fmt.Errorf("%s before apps %v exited; their exit status is unknown", why, missing))
}

// explain adds why the VM ended, if it did, and, unless the error is the
// agent's own answer, what the guest agent said on the console, which
// tells why a guest failed far better than a broken connection or the
// kernel's panic line does.
func (r *podRun) explain(err error) error {
	if r.vm != nil && errors.Is(err, ttrpc.ErrClosed) {
		// The connection broke: the VM is most likely going down; give
		// it a moment to report how.
		select {
		case <-r.vmDone:
		case <-time.After(vmEndGrace):
		}
	}
	if r.vm != nil && r.vmExited() && r.vmErr != nil {
		err = fmt.Errorf("%w; %v", err, r.vmErr)
	}
	// An error the agent itself returned already says what went wrong.
	if errors.As(err, new(agentError)) {
		return err
	}
	if said := r.console.LinesWith("rkt-agent:"); said != "" {
		err = fmt.Errorf("%w; guest console: %s", err, said)
	}
	return err
}

// stopVM ends QEMU if it still runs and reports whether it has ended. A
// forced Stop is bounded (QMP quit, then SIGKILL); a QEMU it could not end
// is reported rather than waited for.
func (r *podRun) stopVM() bool {
	if r.vm == nil {
		return false
	}
	if !r.vmExited() {
		if err := r.vm.Stop(context.Background(), true); err != nil {
			fmt.Fprintf(r.stderr, "stage1-kvm: %v\n", err)
			return false
		}
	}
	<-r.vmDone
	return true
}

// teardown releases what the run holds on the host, whatever happened:
// the proxy socket, the VM, the virtiofsd processes and the runtime
// directory.
func (r *podRun) teardown() {
	r.restoreTerminal()
	if r.proxySrv != nil {
		r.proxySrv.Close()
	}
	if r.client != nil {
		r.client.Close()
	}
	r.stopVM()
	for _, v := range r.fsds {
		v.stop()
	}
	if r.rtDir != "" {
		os.RemoveAll(r.rtDir)
	}
}
