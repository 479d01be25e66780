// Package agent implements the guest agent's API (guest-agent/api): the
// pod's shares and volumes, its apps (started through stage1/supervisor),
// their output and exit statuses, exec sessions for `rkt enter`, and the
// shutdown of the pod.
//
// Everything the agent does to the guest besides running apps (mounting
// virtio-fs shares, the hostname) goes through the System interface, so the
// API logic runs unchanged in tests on a host, where System bind-mounts
// directories instead.
package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"rkt.dev/rkt/guest-agent/api"
	"rkt.dev/rkt/stage1/supervisor"
)

// System is what the agent changes in the guest outside the apps.
type System interface {
	// WaitBoot waits until the guest's own setup, which runs while the
	// host connects (the loopback interface), is done, and returns its
	// error. SetupPod calls it before anything else.
	WaitBoot() error
	// SetHostname sets the guest's hostname.
	SetHostname(name string) error
	// MountShare mounts the virtio-fs share tag on target (an existing
	// directory), read-only if asked.
	MountShare(tag, target string, readOnly bool) error
	// MountDisk mounts, read-only on target, the erofs image on the
	// virtio-blk disk with the given serial.
	MountDisk(serial, target string) error
	// SeedRandom credits seed to the kernel's random pool and reseeds
	// its generator at once.
	SeedRandom(seed []byte) error
	// SetClock sets the wall clock.
	SetClock(t time.Time) error
	// KernelRelease is uname -r.
	KernelRelease() string
	// ConfigureNetwork brings up the interfaces (matched by MAC) with
	// their static addresses and routes.
	ConfigureNetwork(ifaces []*api.Interface) error
	// Sync flushes the guest's file systems, so that what the apps wrote
	// to host volumes has reached the host (virtiofsd) when it returns.
	Sync()
}

// Config is how an Agent lays out its state in the guest.
type Config struct {
	// StateDir holds shares/<tag>, volumes/<name> and apps/<app>; in the
	// guest it is on a tmpfs, so the apps' writable layers and the empty
	// volumes live in guest memory and vanish with the VM.
	StateDir string
	// System is the guest's system interface.
	System System
	// Supervisor starts and reaps the apps.
	Supervisor *supervisor.Supervisor
	// KillTimeout bounds how long Shutdown waits for apps after SIGKILL.
	KillTimeout time.Duration
}

// Agent is the service behind api.AgentService.
type Agent struct {
	cfg Config

	mu      sync.Mutex
	setup   bool
	shares  map[string]string  // tag → mount point
	volumes map[string]*volume // name → volume
	apps    map[string]*app
	// etc are files given to every app (/etc/resolv.conf, /etc/hosts):
	// target in the app → file in the state directory.
	etc map[string]string

	stopping     bool // StopApps has begun: no app may start
	shutdownOnce sync.Once
	shutdown     chan struct{}
}

var _ api.AgentService = (*Agent)(nil)

type volume struct {
	path     string
	readOnly bool
	empty    bool // kind=empty, in guest memory: may be filled from an image
}

// app is a started app: its spec, process and the agent's ends of its
// stdio.
type app struct {
	spec    *api.App
	sup     supervisor.App
	proc    *supervisor.Process
	stdio   *stdio // output drained by ReadOutput, input fed by WriteInput
	reading bool   // a ReadOutput stream owns the output
	writing bool   // a WriteInput stream owns the input
}

// New returns an Agent. Register it on a ttrpc server with
// api.RegisterAgentService.
func New(cfg Config) *Agent {
	if cfg.KillTimeout == 0 {
		cfg.KillTimeout = 5 * time.Second
	}
	return &Agent{
		cfg:      cfg,
		shares:   map[string]string{},
		volumes:  map[string]*volume{},
		etc:      map[string]string{},
		apps:     map[string]*app{},
		shutdown: make(chan struct{}),
	}
}

// ShutdownRequested is closed once a Shutdown call has stopped every app:
// the caller then powers the VM off.
func (a *Agent) ShutdownRequested() <-chan struct{} { return a.shutdown }

// Version implements api.AgentService.
func (a *Agent) Version(_ context.Context, req *api.VersionRequest) (*api.VersionResponse, error) {
	resp := &api.VersionResponse{ApiVersion: api.APIVersion, KernelRelease: a.cfg.System.KernelRelease()}
	if req.ApiVersion != api.APIVersion {
		return resp, status.Errorf(codes.FailedPrecondition,
			"the host speaks agent API version %d but the guest agent speaks %d; the stage1 image is inconsistent, rebuild it", req.ApiVersion, api.APIVersion)
	}
	return resp, nil
}

// SetupPod implements api.AgentService.
func (a *Agent) SetupPod(_ context.Context, req *api.SetupPodRequest) (*api.SetupPodResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.setup {
		return nil, status.Error(codes.FailedPrecondition, "the pod is already set up")
	}
	if err := a.cfg.System.WaitBoot(); err != nil {
		return nil, status.Errorf(codes.Internal, "setting up the guest: %v", err)
	}
	// First, before anything of the pod uses them: a VM restored from a
	// template shares its random state and a stale clock with every other.
	if len(req.Entropy) > 0 {
		if err := a.cfg.System.SeedRandom(req.Entropy); err != nil {
			return nil, status.Errorf(codes.Internal, "seeding the guest's random generator: %v", err)
		}
	}
	if req.HostTimeUnixNano != 0 {
		if err := a.cfg.System.SetClock(time.Unix(0, req.HostTimeUnixNano)); err != nil {
			return nil, status.Errorf(codes.Internal, "setting the guest's clock: %v", err)
		}
	}
	if req.Hostname != "" {
		if err := a.cfg.System.SetHostname(req.Hostname); err != nil {
			return nil, status.Errorf(codes.Internal, "setting the hostname to %q: %v", req.Hostname, err)
		}
	}
	if len(req.Interfaces) > 0 {
		if err := a.cfg.System.ConfigureNetwork(req.Interfaces); err != nil {
			return nil, status.Errorf(codes.Internal, "configuring the network: %v", err)
		}
	}
	for target, content := range map[string]string{"/etc/resolv.conf": req.ResolvConf, "/etc/hosts": req.Hosts} {
		if content == "" {
			continue
		}
		p := filepath.Join(a.cfg.StateDir, "etc", filepath.Base(target))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, status.Errorf(codes.Internal, "writing %s: %v", target, err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return nil, status.Errorf(codes.Internal, "writing %s: %v", target, err)
		}
		a.etc[target] = p
	}
	for _, s := range req.Shares {
		if err := checkName("share tag", s.Tag); err != nil {
			return nil, err
		}
		if _, dup := a.shares[s.Tag]; dup {
			return nil, status.Errorf(codes.InvalidArgument, "share %s is given twice", s.Tag)
		}
		target := filepath.Join(a.cfg.StateDir, "shares", s.Tag)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return nil, status.Errorf(codes.Internal, "creating the mount point of share %s: %v", s.Tag, err)
		}
		mount := func() error { return a.cfg.System.MountShare(s.Tag, target, s.ReadOnly) }
		if s.Disk != "" {
			if !s.ReadOnly {
				return nil, status.Errorf(codes.InvalidArgument, "share %s: a disk share is read-only", s.Tag)
			}
			mount = func() error { return a.cfg.System.MountDisk(s.Disk, target) }
		}
		if err := mount(); err != nil {
			return nil, status.Errorf(codes.Internal, "mounting share %s: %v", s.Tag, err)
		}
		a.shares[s.Tag] = target
	}
	for _, v := range req.Volumes {
		if err := checkName("volume name", v.Name); err != nil {
			return nil, err
		}
		if _, dup := a.volumes[v.Name]; dup {
			return nil, status.Errorf(codes.InvalidArgument, "volume %s is given twice", v.Name)
		}
		vol := &volume{readOnly: v.ReadOnly}
		switch src := v.Source.(type) {
		case *api.Volume_Share:
			p, ok := a.shares[src.Share]
			if !ok {
				return nil, status.Errorf(codes.InvalidArgument, "volume %s uses share %s, which the pod does not have", v.Name, src.Share)
			}
			vol.path = p
		case *api.Volume_Empty:
			vol.path, vol.empty = filepath.Join(a.cfg.StateDir, "volumes", v.Name), true
			if err := makeEmptyVolume(vol.path, src.Empty); err != nil {
				return nil, status.Errorf(codes.Internal, "creating empty volume %s: %v", v.Name, err)
			}
		default:
			return nil, status.Errorf(codes.InvalidArgument, "volume %s has no source", v.Name)
		}
		a.volumes[v.Name] = vol
	}
	a.setup = true
	return &api.SetupPodResponse{}, nil
}

// makeEmptyVolume creates the directory of a kind=empty volume with the
// mode and owner the pod manifest asks for.
func makeEmptyVolume(path string, e *api.EmptyVolume) error {
	mode := e.Mode & 0o7777
	if mode == 0 {
		mode = 0o755
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return err
	}
	// Mkdir is subject to the umask and cannot set the sticky or setgid
	// bits (a /tmp-like volume wants 1777): set the mode explicitly.
	if err := unix.Chmod(path, mode); err != nil {
		return err
	}
	return os.Chown(path, int(e.Uid), int(e.Gid))
}

// checkName rejects names that would escape the state directory.
func checkName(what, name string) error {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return status.Errorf(codes.InvalidArgument, "invalid %s %q", what, name)
	}
	return nil
}

// StartApp implements api.AgentService.
func (a *Agent) StartApp(_ context.Context, req *api.StartAppRequest) (*api.StartAppResponse, error) {
	spec := req.App
	if spec == nil {
		return nil, status.Error(codes.InvalidArgument, "no app given")
	}
	if err := checkName("app name", spec.Name); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.setup {
		return nil, status.Error(codes.FailedPrecondition, "SetupPod must be called before StartApp")
	}
	if a.stopping {
		return nil, status.Error(codes.FailedPrecondition, "the pod is shutting down")
	}
	if _, dup := a.apps[spec.Name]; dup {
		return nil, status.Errorf(codes.AlreadyExists, "app %s already exists in the pod", spec.Name)
	}
	if spec.Tty && !spec.Stdin {
		return nil, status.Errorf(codes.InvalidArgument, "app %s: a terminal needs stdin", spec.Name)
	}
	sup, err := a.supervisorApp(spec)
	if err != nil {
		return nil, err
	}
	streams, err := newStdio(spec.Tty, spec.Size, spec.Stdin)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "app %s: %v", spec.Name, err)
	}
	sup.Stdout, sup.Stderr = streams.childOut, streams.childErr
	if streams.childIn != nil {
		// A nil *os.File in the interface would close the app's fd 0
		// rather than give it /dev/null.
		sup.Stdin = streams.childIn
	}
	sup.OwnTerminal = streams.tty
	proc, err := a.cfg.Supervisor.Start(sup)
	streams.closeChildEnds()
	if err != nil {
		streams.close()
		return nil, status.Errorf(codes.FailedPrecondition, "%v", err)
	}
	a.apps[spec.Name] = &app{spec: spec, sup: sup, proc: proc, stdio: streams}
	return &api.StartAppResponse{Pid: int32(proc.Pid())}, nil
}

// supervisorApp turns an API app into a supervisor one: its root is an
// overlay of the image share under a writable layer in the state directory.
func (a *Agent) supervisorApp(spec *api.App) (supervisor.App, error) {
	lower, ok := a.shares[spec.RootfsShare]
	if !ok {
		return supervisor.App{}, status.Errorf(codes.InvalidArgument, "app %s: its rootfs share %q is not one of the pod's shares", spec.Name, spec.RootfsShare)
	}
	dir := filepath.Join(a.cfg.StateDir, "apps", spec.Name)
	sup := supervisor.App{
		Name:         spec.Name,
		Root:         filepath.Join(dir, "rootfs"),
		Lower:        lower,
		Upper:        filepath.Join(dir, "upper"),
		Work:         filepath.Join(dir, "work"),
		Exec:         spec.Exec,
		Env:          spec.Env,
		User:         spec.User,
		Group:        spec.Group,
		WorkDir:      spec.WorkingDirectory,
		System:       supervisor.PrivateSystemMounts,
		ReadOnlyRoot: spec.ReadOnlyRootfs,
		Isolators:    spec.Isolators.Supervisor(),
	}
	for _, g := range spec.SupplementaryGids {
		sup.SupplementaryGIDs = append(sup.SupplementaryGIDs, int(g))
	}
	for target, src := range a.etc {
		sup.Mounts = append(sup.Mounts, supervisor.Mount{Source: src, Target: target, ReadOnly: true})
	}
	for _, m := range spec.Mounts {
		v, ok := a.volumes[m.Volume]
		if !ok {
			return supervisor.App{}, status.Errorf(codes.InvalidArgument, "app %s mounts volume %q, which the pod does not have", spec.Name, m.Volume)
		}
		if m.CopyUp && !v.empty {
			return supervisor.App{}, status.Errorf(codes.InvalidArgument, "app %s: volume %s is not an empty volume and cannot be filled from the image", spec.Name, m.Volume)
		}
		sup.Mounts = append(sup.Mounts, supervisor.Mount{Source: v.path, Target: m.Path, ReadOnly: m.ReadOnly || v.readOnly, CopyUp: m.CopyUp})
	}
	for _, d := range []string{sup.Upper, sup.Work, sup.Root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return supervisor.App{}, status.Errorf(codes.Internal, "app %s: %v", spec.Name, err)
		}
	}
	return sup, nil
}

// lookup returns a started app.
func (a *Agent) lookup(name string) (*app, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ap, ok := a.apps[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no app %q in the pod", name)
	}
	return ap, nil
}

// WaitApp implements api.AgentService.
func (a *Agent) WaitApp(ctx context.Context, req *api.WaitAppRequest) (*api.WaitAppResponse, error) {
	ap, err := a.lookup(req.App)
	if err != nil {
		return nil, err
	}
	select {
	case <-ap.proc.Done():
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &api.WaitAppResponse{Status: exitStatus(ap.proc.Wait())}, nil
}

func exitStatus(st supervisor.ExitStatus) *api.ExitStatus {
	return &api.ExitStatus{Code: int32(st.Code), Signal: int32(st.Signal)}
}

// SignalApp implements api.AgentService.
func (a *Agent) SignalApp(_ context.Context, req *api.SignalAppRequest) (*api.SignalAppResponse, error) {
	ap, err := a.lookup(req.App)
	if err != nil {
		return nil, err
	}
	if req.Signal <= 0 || req.Signal > 64 {
		return nil, status.Errorf(codes.InvalidArgument, "invalid signal %d", req.Signal)
	}
	if err := ap.proc.Signal(syscall.Signal(req.Signal)); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%v", err)
	}
	return &api.SignalAppResponse{}, nil
}

// ReadOutput implements api.AgentService.
func (a *Agent) ReadOutput(_ context.Context, req *api.ReadOutputRequest, srv api.Agent_ReadOutputServer) error {
	ap, err := a.lookup(req.App)
	if err != nil {
		return err
	}
	a.mu.Lock()
	taken := ap.reading
	ap.reading = true
	a.mu.Unlock()
	if taken {
		return status.Errorf(codes.AlreadyExists, "the output of app %s is already being read", req.App)
	}
	err = ap.stdio.copyOutputs(ap.proc.Done(), func(stderr bool, b []byte) error {
		stream := api.Stream_STREAM_STDOUT
		if stderr {
			stream = api.Stream_STREAM_STDERR
		}
		return srv.Send(&api.OutputChunk{Stream: stream, Data: b})
	})
	// The output ended: nothing will ever be read from it again.
	ap.stdio.closeOutputs()
	return err
}

// WriteInput implements api.AgentService.
func (a *Agent) WriteInput(_ context.Context, srv api.Agent_WriteInputServer) (*api.WriteInputResponse, error) {
	first, err := srv.Recv()
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "WriteInput: no first message: %v", err)
	}
	ap, err := a.lookup(first.App)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	taken := ap.writing || ap.stdio.in == nil
	ap.writing = true
	a.mu.Unlock()
	if taken {
		return nil, status.Errorf(codes.FailedPrecondition, "app %s has no stdin to write, or it is already being written", first.App)
	}
	defer ap.stdio.closeInput()
	for msg := first; ; {
		ap.stdio.resize(msg.Resize)
		if len(msg.Data) > 0 {
			if err := ap.stdio.write(msg.Data); err != nil {
				// The app closed its stdin or exited: what is left
				// of the input has no reader.
				return &api.WriteInputResponse{}, nil
			}
		}
		if msg, err = srv.Recv(); err != nil {
			return &api.WriteInputResponse{}, nil
		}
	}
}

// Shutdown implements api.AgentService. Its reply tells the host it may
// end the VM at once, with nothing of the pod's left to lose: StopApps has
// synced the file systems once every app exited.
func (a *Agent) Shutdown(_ context.Context, req *api.ShutdownRequest) (*api.ShutdownResponse, error) {
	a.StopApps(time.Duration(req.GracePeriodMs) * time.Millisecond)
	return &api.ShutdownResponse{}, nil
}

// StopApps sends SIGTERM to every running app, SIGKILL to those still
// running after grace, waits for them (bounded by Config.KillTimeout),
// syncs the file systems, and then closes ShutdownRequested (whose waiter
// powers the VM off after a bounded wait, which must not start before the
// sync is done). No app can start afterwards.
func (a *Agent) StopApps(grace time.Duration) {
	defer a.shutdownOnce.Do(func() { close(a.shutdown) })
	a.mu.Lock()
	a.stopping = true
	procs := a.procsLocked()
	a.mu.Unlock()
	signalAll := func(sig syscall.Signal) { signalProcs(procs, sig) }
	waitAll := func(d time.Duration) {
		deadline := time.After(d)
		for _, p := range procs {
			select {
			case <-p.Done():
			case <-deadline:
				return
			}
		}
	}
	signalAll(syscall.SIGTERM)
	waitAll(grace)
	signalAll(syscall.SIGKILL)
	waitAll(a.cfg.KillTimeout)
	a.cfg.System.Sync()
}

// SignalApps sends sig to every app started so far; the guest's PID 1
// forwards supervisor.ForwardedSignals with it.
func (a *Agent) SignalApps(sig syscall.Signal) {
	a.mu.Lock()
	procs := a.procsLocked()
	a.mu.Unlock()
	signalProcs(procs, sig)
}

// procsLocked returns the processes of the apps started so far; a.mu must
// be held.
func (a *Agent) procsLocked() []*supervisor.Process {
	procs := make([]*supervisor.Process, 0, len(a.apps))
	for _, ap := range a.apps {
		procs = append(procs, ap.proc)
	}
	return procs
}

// signalProcs sends sig to each process; an app that has exited
// meanwhile is no error.
func signalProcs(procs []*supervisor.Process, sig syscall.Signal) {
	for _, p := range procs {
		p.Signal(sig)
	}
}

// NewServer returns a ttrpc server with the agent registered.
func (a *Agent) NewServer(opts ...ttrpc.ServerOpt) (*ttrpc.Server, error) {
	s, err := ttrpc.NewServer(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating the ttrpc server: %w", err)
	}
	api.RegisterAgentService(s, a)
	return s, nil
}
