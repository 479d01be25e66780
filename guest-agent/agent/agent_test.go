package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"rkt.dev/rkt/guest-agent/api"
	"rkt.dev/rkt/stage1/supervisor"
)

// The apps started by these tests are real processes run by the real
// supervisor, so the test binary must serve as its exec helper.
func TestMain(m *testing.M) {
	supervisor.RunHelperIfRequested()
	os.Exit(m.Run())
}

// testTimeout bounds every call, so a broken agent fails the test instead
// of hanging it.
const testTimeout = 30 * time.Second

// hostSystem stands in for the guest: a "share" is a host directory
// bind-mounted where the agent wants it.
type hostSystem struct {
	t        *testing.T
	sources  map[string]string
	hostname string
	ifaces   []*api.Interface
	synced   atomic.Bool
	// calls lists MountShare, MountDisk, SeedRandom and SetClock calls in
	// order, with their main argument.
	calls []string
	seed  []byte
	clock time.Time
}

func (h *hostSystem) SetHostname(name string) error { h.hostname = name; return nil }
func (h *hostSystem) KernelRelease() string         { return "test-release" }
func (h *hostSystem) WaitBoot() error               { return nil }
func (h *hostSystem) Sync()                         { h.synced.Store(true) }

// ConfigureNetwork records what the agent asked for; the real netlink
// calls run only in a VM (tests/kvm_*).
func (h *hostSystem) ConfigureNetwork(ifaces []*api.Interface) error {
	h.ifaces = append(h.ifaces, ifaces...)
	return nil
}

// MountDisk stands a disk in with the source named "disk:SERIAL".
func (h *hostSystem) MountDisk(serial, target string) error {
	h.calls = append(h.calls, "disk "+serial)
	return h.bind("disk:"+serial, target, true)
}

// SeedRandom records the seed.
func (h *hostSystem) SeedRandom(seed []byte) error {
	h.calls, h.seed = append(h.calls, "seed"), seed
	return nil
}

// SetClock records the time.
func (h *hostSystem) SetClock(t time.Time) error {
	h.calls, h.clock = append(h.calls, "clock"), t
	return nil
}

// MountShare bind-mounts the source named tag.
func (h *hostSystem) MountShare(tag, target string, readOnly bool) error {
	h.calls = append(h.calls, "share "+tag)
	return h.bind(tag, target, readOnly)
}

// bind mounts the named source on target, unmounted when the test ends.
func (h *hostSystem) bind(source, target string, readOnly bool) error {
	src, ok := h.sources[source]
	if !ok {
		return errors.New("no such share " + source)
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	h.t.Cleanup(func() { unix.Unmount(target, unix.MNT_DETACH) })
	if readOnly {
		return unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
	}
	return nil
}

// busyboxRootfs returns an image rootfs holding the host's static busybox
// as /bin/sh and friends.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("needs a static /bin/busybox (apt-get install busybox-static): %v", err)
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "cat", "echo", "id", "sleep", "test", "touch", "ls", "head", "cut"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	passwd := "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// fixture is an agent served over a Unix socket and a client connected to
// it.
type fixture struct {
	agent  *Agent
	client api.AgentClient
	sys    *hostSystem
	volume string // host directory behind the "hostvol" share
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: apps run in mount namespaces on overlay roots")
	}
	sup, err := supervisor.New()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{volume: t.TempDir()}
	f.sys = &hostSystem{t: t, sources: map[string]string{"image": busyboxRootfs(t), "hostvol": f.volume}}
	f.agent = New(Config{StateDir: t.TempDir(), System: f.sys, Supervisor: sup})
	// Apps a test leaves running (TestExec's target) must not outlive
	// it: they run on the host here.
	t.Cleanup(func() { f.agent.StopApps(0) })
	srv, err := f.agent.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(context.Background(), l)
	t.Cleanup(func() { srv.Close() })
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c := ttrpc.NewClient(conn)
	t.Cleanup(func() { c.Close() })
	f.client = api.NewAgentClient(c)
	return f
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return c
}

// setup sets the pod up with the image share, a read-only and a read-write
// view of the host volume, and two empty volumes.
func (f *fixture) setup(t *testing.T) {
	t.Helper()
	_, err := f.client.SetupPod(ctx(t), &api.SetupPodRequest{
		Hostname: "pod-host",
		Shares:   []*api.Share{{Tag: "image", ReadOnly: true}, {Tag: "hostvol"}},
		Volumes: []*api.Volume{
			{Name: "ro", Source: &api.Volume_Share{Share: "hostvol"}, ReadOnly: true},
			{Name: "rw", Source: &api.Volume_Share{Share: "hostvol"}},
			{Name: "scratch", Source: &api.Volume_Empty{Empty: &api.EmptyVolume{Mode: 0o1777}}},
			{Name: "seeded", Source: &api.Volume_Empty{Empty: &api.EmptyVolume{Mode: 0o700}}},
		},
	})
	if err != nil {
		t.Fatalf("SetupPod: %v", err)
	}
}

// run starts an app running sh -c script and returns its output and exit
// status.
func (f *fixture) run(t *testing.T, app *api.App) (stdout, stderr string, st *api.ExitStatus) {
	t.Helper()
	if _, err := f.client.StartApp(ctx(t), &api.StartAppRequest{App: app}); err != nil {
		t.Fatalf("StartApp %s: %v", app.Name, err)
	}
	stdout, stderr = f.output(t, app.Name)
	return stdout, stderr, f.wait(t, app.Name)
}

func (f *fixture) output(t *testing.T, name string) (stdout, stderr string) {
	t.Helper()
	stream, err := f.client.ReadOutput(ctx(t), &api.ReadOutputRequest{App: name})
	if err != nil {
		t.Fatalf("ReadOutput %s: %v", name, err)
	}
	var out, errOut bytes.Buffer
	for {
		c, err := stream.Recv()
		if err == io.EOF {
			return out.String(), errOut.String()
		}
		if err != nil {
			t.Fatalf("ReadOutput %s: %v", name, err)
		}
		switch c.Stream {
		case api.Stream_STREAM_STDOUT:
			out.Write(c.Data)
		case api.Stream_STREAM_STDERR:
			errOut.Write(c.Data)
		}
	}
}

func (f *fixture) wait(t *testing.T, name string) *api.ExitStatus {
	t.Helper()
	resp, err := f.client.WaitApp(ctx(t), &api.WaitAppRequest{App: name})
	if err != nil {
		t.Fatalf("WaitApp %s: %v", name, err)
	}
	return resp.Status
}

func shApp(name, script string) *api.App {
	return &api.App{Name: name, RootfsShare: "image", Exec: []string{"/bin/sh", "-c", script}}
}

func TestVersion(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name    string
		version uint32
		ok      bool
	}{
		{"same", api.APIVersion, true},
		{"newer host", api.APIVersion + 1, false},
		{"unset", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := f.client.Version(ctx(t), &api.VersionRequest{ApiVersion: tt.version})
			if (err == nil) != tt.ok {
				t.Fatalf("Version(%d) error = %v, want ok=%v", tt.version, err, tt.ok)
			}
			if err != nil && status.Code(err) != codes.FailedPrecondition {
				t.Errorf("error code = %v, want FailedPrecondition", status.Code(err))
			}
			if err == nil && (resp.ApiVersion != api.APIVersion || resp.KernelRelease != "test-release") {
				t.Errorf("Version = %+v", resp)
			}
		})
	}
}

func TestApps(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	if f.sys.hostname != "pod-host" {
		t.Errorf("hostname = %q, want pod-host", f.sys.hostname)
	}
	if err := os.WriteFile(filepath.Join(f.volume, "hostfile"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name               string
		app                *api.App
		wantOut, wantErr   string
		wantCode, wantSig  int32
		wantOutputContains bool
	}{
		{name: "exit 0", app: shApp("zero", "echo hello"), wantOut: "hello\n"},
		{name: "exit 7 with stderr", app: shApp("seven", "echo oops >&2; exit 7"), wantErr: "oops\n", wantCode: 7},
		{name: "killed by signal", app: shApp("killed", "kill -9 $$"), wantCode: 137, wantSig: 9},
		{
			name:    "env and app name",
			app:     &api.App{Name: "env", RootfsShare: "image", Exec: []string{"/bin/sh", "-c", "echo $FOO $AC_APP_NAME"}, Env: []string{"FOO=bar"}},
			wantOut: "bar env\n",
		},
		{
			name:    "user, group and working directory",
			app:     &api.App{Name: "user", RootfsShare: "image", Exec: []string{"/bin/sh", "-c", "echo $(id -u):$(id -g) $PWD"}, User: "user", Group: "1001", WorkingDirectory: "/tmp"},
			wantOut: "1000:1001 /tmp\n",
		},
		{
			name: "read-only host volume",
			app: &api.App{Name: "ro", RootfsShare: "image", Exec: []string{"/bin/sh", "-c", "cat /vol/hostfile; touch /vol/new 2>/dev/null || echo read-only"},
				Mounts: []*api.AppMount{{Volume: "ro", Path: "/vol"}}},
			wantOut: "from hostread-only\n",
		},
		{
			name: "read-write host volume",
			app: &api.App{Name: "rw", RootfsShare: "image", Exec: []string{"/bin/sh", "-c", "echo written > /vol/fromapp"},
				Mounts: []*api.AppMount{{Volume: "rw", Path: "/vol"}}},
		},
		{
			name: "empty volume, written",
			app: &api.App{Name: "writer", RootfsShare: "image", Exec: []string{"/bin/sh", "-c", "echo shared > /scratch/f"},
				Mounts: []*api.AppMount{{Volume: "scratch", Path: "/scratch"}}},
		},
		{
			name: "empty volume, read by another app",
			app: &api.App{Name: "reader", RootfsShare: "image", Exec: []string{"/bin/sh", "-c", "cat /data/scratch/f"},
				Mounts: []*api.AppMount{{Volume: "scratch", Path: "/data/scratch"}}},
			wantOut: "shared\n",
		},
		{
			name: "empty volume filled from the image",
			app: &api.App{Name: "seeded", RootfsShare: "image", Exec: []string{"/bin/sh", "-c", "head -1 /etc/passwd; ls -ld /etc | cut -c1-10"},
				Mounts: []*api.AppMount{{Volume: "seeded", Path: "/etc", CopyUp: true}}},
			wantOut: "root:x:0:0:root:/root:/bin/sh\ndrwxr-xr-x\n",
		},
		{
			name: "writable rootfs layer stays private",
			app:  shApp("layer", "echo x > /bin/new && ls /bin/new"), wantOut: "/bin/new\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, st := f.run(t, tt.app)
			if out != tt.wantOut || errOut != tt.wantErr || st.Code != tt.wantCode || st.Signal != tt.wantSig {
				t.Errorf("got stdout %q stderr %q status %v; want %q %q code %d signal %d",
					out, errOut, st, tt.wantOut, tt.wantErr, tt.wantCode, tt.wantSig)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(f.volume, "fromapp")); err != nil || string(b) != "written\n" {
		t.Errorf("host volume after the rw app: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(f.sys.sources["image"], "bin/new")); err == nil {
		t.Error("an app wrote through to the image rootfs")
	}
}

// TestOutputOfExitedApp: a daemon the app started keeps the app's stdout
// open; once the app has exited, its output stream still ends (after
// supervisor.OutputDrain) with what the app wrote, while the daemon runs on.
func TestOutputOfExitedApp(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	resp, err := f.client.StartApp(ctx(t), &api.StartAppRequest{App: shApp("app", "sleep 1000 & echo daemon=$!")})
	if err != nil {
		t.Fatalf("StartApp: %v", err)
	}
	// The app leads its own process group, which the daemon shares (a
	// shell without job control): end them both, whatever happens.
	t.Cleanup(func() { unix.Kill(-int(resp.Pid), unix.SIGKILL) })
	stdout, _ := f.output(t, "app")
	if st := f.wait(t, "app"); st.Code != 0 {
		t.Errorf("exit status %v, want 0", st)
	}
	var pid int
	if _, err := fmt.Sscanf(stdout, "daemon=%d", &pid); err != nil {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	if err := unix.Kill(pid, 0); err != nil {
		t.Errorf("the daemon (pid %d) is gone (%v): the stream should have ended on the drain bound, with the daemon running", pid, err)
	}
}

func TestStartErrors(t *testing.T) {
	f := newFixture(t)
	if _, err := f.client.StartApp(ctx(t), &api.StartAppRequest{App: shApp("early", "true")}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("StartApp before SetupPod: %v, want FailedPrecondition", err)
	}
	f.setup(t)
	tests := []struct {
		name string
		app  *api.App
		code codes.Code
	}{
		{"no app", nil, codes.InvalidArgument},
		{"bad name", shApp("../x", "true"), codes.InvalidArgument},
		{"unknown share", &api.App{Name: "a", RootfsShare: "nope", Exec: []string{"/bin/true"}}, codes.InvalidArgument},
		{"unknown volume", &api.App{Name: "b", RootfsShare: "image", Exec: []string{"/bin/sh"}, Mounts: []*api.AppMount{{Volume: "nope", Path: "/x"}}}, codes.InvalidArgument},
		{"missing executable", &api.App{Name: "c", RootfsShare: "image", Exec: []string{"/no/such"}}, codes.FailedPrecondition},
		{"host volume filled from the image", &api.App{Name: "d", RootfsShare: "image", Exec: []string{"/bin/sh"}, Mounts: []*api.AppMount{{Volume: "rw", Path: "/x", CopyUp: true}}}, codes.InvalidArgument},
		{"terminal without stdin", &api.App{Name: "e", RootfsShare: "image", Exec: []string{"/bin/sh"}, Tty: true}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.client.StartApp(ctx(t), &api.StartAppRequest{App: tt.app})
			if status.Code(err) != tt.code {
				t.Errorf("StartApp: %v, want code %v", err, tt.code)
			}
		})
	}
	f.run(t, shApp("once", "true"))
	if _, err := f.client.StartApp(ctx(t), &api.StartAppRequest{App: shApp("once", "true")}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("second StartApp of the same name: %v, want AlreadyExists", err)
	}
	if _, err := f.client.WaitApp(ctx(t), &api.WaitAppRequest{App: "ghost"}); status.Code(err) != codes.NotFound {
		t.Errorf("WaitApp of an unknown app: %v, want NotFound", err)
	}
}

func TestSignalAndShutdown(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	for _, name := range []string{"a", "b"} {
		if _, err := f.client.StartApp(ctx(t), &api.StartAppRequest{App: shApp(name, "exec sleep 1000")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.client.SignalApp(ctx(t), &api.SignalAppRequest{App: "a", Signal: int32(syscall.SIGUSR1)}); err != nil {
		t.Fatalf("SignalApp: %v", err)
	}
	if st := f.wait(t, "a"); st.Code != 128+int32(syscall.SIGUSR1) {
		t.Errorf("after SIGUSR1: %v", st)
	}
	if _, err := f.client.Shutdown(ctx(t), &api.ShutdownRequest{GracePeriodMs: 5000}); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !f.sys.synced.Load() {
		t.Error("Shutdown replied before syncing the file systems: the host may end the VM on its reply")
	}
	if st := f.wait(t, "b"); st.Signal != int32(syscall.SIGTERM) {
		t.Errorf("after Shutdown: %v, want killed by SIGTERM", st)
	}
	select {
	case <-f.agent.ShutdownRequested():
	default:
		t.Error("ShutdownRequested is not closed after Shutdown")
	}
	if _, err := f.client.StartApp(ctx(t), &api.StartAppRequest{App: shApp("late", "true")}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("StartApp after Shutdown: %v, want FailedPrecondition", err)
	}
}

func TestInput(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	app := shApp("cat", "cat")
	app.Stdin = true
	if _, err := f.client.StartApp(ctx(t), &api.StartAppRequest{App: app}); err != nil {
		t.Fatal(err)
	}
	in, err := f.client.WriteInput(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []*api.InputChunk{{App: "cat", Data: []byte("one ")}, {Data: []byte("two\n")}} {
		if err := in.Send(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.CloseAndRecv(); err != nil {
		t.Fatalf("WriteInput: %v", err)
	}
	out, _ := f.output(t, "cat")
	if st := f.wait(t, "cat"); out != "one two\n" || st.Code != 0 {
		t.Errorf("cat: %q %v", out, st)
	}
}

// TestTerminal: an app started with a terminal (rkt run --interactive on
// a terminal) has it as stdin, stdout, stderr and controlling terminal, of
// the size asked; WriteInput types into it and resizes it, and its output
// arrives as stdout.
func TestTerminal(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	start := func(t *testing.T, name, script string) (pid int) {
		t.Helper()
		app := shApp(name, script)
		app.Stdin, app.Tty, app.Size = true, true, &api.WindowSize{Rows: 24, Cols: 80}
		resp, err := f.client.StartApp(ctx(t), &api.StartAppRequest{App: app})
		if err != nil {
			t.Fatalf("StartApp: %v", err)
		}
		t.Cleanup(func() { unix.Kill(-int(resp.Pid), unix.SIGKILL) })
		return int(resp.Pid)
	}
	type chunk struct {
		data   string
		resize *api.WindowSize
	}
	tests := []struct {
		name   string
		script string
		input  []chunk
		want   []string // in this order in the output
		code   int32
	}{
		{
			name:   "stdio and size",
			script: `test -t 0 && test -t 1 && test -t 2 && echo on-a-tty; set -- $(cat /proc/$$/stat); [ "$7" != 0 ] && echo controlling; stty size; echo to-stderr >&2`,
			want:   []string{"on-a-tty\r\n", "controlling\r\n", "24 80\r\n", "to-stderr\r\n"},
		},
		{
			name:   "typed input and resize",
			script: `read line; echo got-$line; stty size`,
			input:  []chunk{{resize: &api.WindowSize{Rows: 30, Cols: 120}}, {data: "hello\r"}},
			want:   []string{"got-hello\r\n", "30 120\r\n"},
		},
		{
			name:   "^C interrupts the app",
			script: `read line; exec sleep 1000`,
			input:  []chunk{{data: "go\r"}, {data: "\x03"}},
			code:   128 + int32(syscall.SIGINT),
		},
		{
			name:   "end of input types ^D",
			script: `cat; echo cat-ended`,
			input:  []chunk{{data: "abc\r"}},
			want:   []string{"abc\r\n", "cat-ended\r\n"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("term%d", i)
			start(t, name, tt.script)
			in, err := f.client.WriteInput(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := in.Send(&api.InputChunk{App: name}); err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.input {
				if err := in.Send(&api.InputChunk{Data: []byte(c.data), Resize: c.resize}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := in.CloseAndRecv(); err != nil {
				t.Fatalf("WriteInput: %v", err)
			}
			out, errOut := f.output(t, name)
			st := f.wait(t, name)
			rest := out
			for _, w := range tt.want {
				_, after, ok := strings.Cut(rest, w)
				if !ok {
					t.Errorf("output %q lacks %q (in order %q)", out, w, tt.want)
					break
				}
				rest = after
			}
			if errOut != "" || st.Code != tt.code {
				t.Errorf("stderr %q, exit %v; want everything on stdout and exit code %d", errOut, st, tt.code)
			}
		})
	}
	// A daemon that keeps the terminal open (it ignores the hang-up the
	// app's exit sends it) does not hold the output stream beyond
	// supervisor.OutputDrain.
	t.Run("a daemon holding the terminal", func(t *testing.T) {
		start(t, "daemon", `trap "" HUP; sleep 1000 & echo daemon=$!`)
		out, _ := f.output(t, "daemon")
		var pid int
		if _, err := fmt.Sscanf(out, "daemon=%d", &pid); err != nil {
			t.Fatalf("stdout %q: %v", out, err)
		}
		t.Cleanup(func() { unix.Kill(pid, unix.SIGKILL) })
		if st := f.wait(t, "daemon"); st.Code != 0 {
			t.Errorf("exit status %v, want 0", st)
		}
		if err := unix.Kill(pid, 0); err != nil {
			t.Errorf("the daemon (pid %d) is gone (%v): the stream should have ended on the drain bound, with the daemon running", pid, err)
		}
	})
}

// TestStdinWithoutInput: an app started without stdin reads /dev/null: an
// open descriptor at its end, not a closed fd 0 (which the app's first
// open would take).
func TestStdinWithoutInput(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	out, errOut, st := f.run(t, shApp("quiet", "cat; echo cat=$?"))
	if st.Code != 0 || out != "cat=0\n" {
		t.Errorf("the app's stdin: %q (exit %v, stderr %q), want cat=0, reading nothing", out, st, errOut)
	}
}

func TestExec(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	// The marker appears whole (renamed into place), and the cases run
	// only once it is there: StartApp returns when the shell runs, not
	// when it has written the file.
	if _, err := f.client.StartApp(ctx(t), &api.StartAppRequest{App: shApp("target", "echo marker > /tmp/m.tmp && mv /tmp/m.tmp /tmp/m; exec sleep 1000")}); err != nil {
		t.Fatal(err)
	}
	runExec := func(t *testing.T, start *api.ExecStart, stdin string) (stdout, stderr string, code int32) {
		t.Helper()
		stream, err := f.client.Exec(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		send := func(m *api.ExecInput) {
			if err := stream.Send(m); err != nil {
				t.Fatal(err)
			}
		}
		send(&api.ExecInput{Input: &api.ExecInput_Start{Start: start}})
		if stdin != "" {
			send(&api.ExecInput{Input: &api.ExecInput_Stdin{Stdin: []byte(stdin)}})
		}
		send(&api.ExecInput{Input: &api.ExecInput_CloseStdin{CloseStdin: true}})
		var out, errOut strings.Builder
		for {
			m, err := stream.Recv()
			if err != nil {
				t.Fatalf("Exec: %v (stdout so far %q)", err, out.String())
			}
			switch o := m.Output.(type) {
			case *api.ExecOutput_Stdout:
				out.Write(o.Stdout)
			case *api.ExecOutput_Stderr:
				errOut.Write(o.Stderr)
			case *api.ExecOutput_Exit:
				return out.String(), errOut.String(), o.Exit.Code
			}
		}
	}
	for i := 0; ; i++ {
		if _, _, code := runExec(t, &api.ExecStart{App: "target", Args: []string{"/bin/sh", "-c", "test -f /tmp/m"}}, ""); code == 0 {
			break
		}
		if i == 500 {
			t.Fatal("the app did not write its marker within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	tests := []struct {
		name     string
		start    *api.ExecStart
		stdin    string
		wantOut  string
		wantErr  string
		wantCode int32
	}{
		{
			name:    "sees the app's root and env",
			start:   &api.ExecStart{App: "target", Args: []string{"/bin/sh", "-c", "cat /tmp/m; echo $AC_APP_NAME $EXTRA; echo e >&2; exit 3"}, Env: []string{"EXTRA=x"}},
			wantOut: "marker\ntarget x\n", wantErr: "e\n", wantCode: 3,
		},
		{
			name:    "stdin",
			start:   &api.ExecStart{App: "target", Args: []string{"/bin/cat"}},
			stdin:   "piped\n",
			wantOut: "piped\n",
		},
		{
			name:    "tty",
			start:   &api.ExecStart{App: "target", Args: []string{"/bin/sh", "-c", "test -t 0 && test -t 1 && echo on-a-tty"}, Tty: true, Size: &api.WindowSize{Rows: 24, Cols: 80}},
			wantOut: "on-a-tty\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runExec(t, tt.start, tt.stdin)
			if out != tt.wantOut || errOut != tt.wantErr || code != tt.wantCode {
				t.Errorf("got %q %q code %d; want %q %q code %d", out, errOut, code, tt.wantOut, tt.wantErr, tt.wantCode)
			}
		})
	}
	// A daemon the command started keeps the terminal open (it ignores
	// the hang-up the command's exit sends it): the session still ends,
	// with the exit status, once supervisor.OutputDrain has passed.
	t.Run("tty: a daemon holding the terminal", func(t *testing.T) {
		out, _, code := runExec(t, &api.ExecStart{App: "target", Args: []string{"/bin/sh", "-c", `trap "" HUP; sleep 1000 & echo daemon=$!`}, Tty: true}, "")
		var pid int
		if _, err := fmt.Sscanf(out, "daemon=%d", &pid); err != nil {
			t.Fatalf("stdout %q: %v", out, err)
		}
		unix.Kill(pid, unix.SIGKILL)
		if code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	})
	// ^C typed on the terminal interrupts the command: the terminal is
	// its controlling terminal (the agent, PID 1 in the guest, has none to
	// share). Without that, the sleep would run until the call's timeout.
	t.Run("tty: ^C interrupts", func(t *testing.T) {
		stream, err := f.client.Exec(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		start := &api.ExecStart{App: "target", Args: []string{"/bin/sh", "-c", "echo ready $$; exec sleep 1000"}, Tty: true}
		if err := stream.Send(&api.ExecInput{Input: &api.ExecInput_Start{Start: start}}); err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		sent := false
		for {
			m, err := stream.Recv()
			if err != nil {
				t.Fatalf("Exec: %v (output so far %q)", err, out.String())
			}
			switch o := m.Output.(type) {
			case *api.ExecOutput_Stdout:
				out.Write(o.Stdout)
			case *api.ExecOutput_Exit:
				if o.Exit.Code != 128+int32(syscall.SIGINT) {
					t.Errorf("exit status %v after ^C, want killed by SIGINT", o.Exit)
				}
				return
			}
			var pid int
			if _, err := fmt.Sscanf(out.String(), "ready %d\r\n", &pid); !sent && err == nil {
				// The sleep runs as that pid: it must not outlive a failure.
				t.Cleanup(func() { unix.Kill(pid, unix.SIGKILL) })
				if err := stream.Send(&api.ExecInput{Input: &api.ExecInput_Stdin{Stdin: []byte{3}}}); err != nil {
					t.Fatal(err)
				}
				sent = true
			}
		}
	})
}

// TestSetupFromTemplate: a pod in a VM restored from a template gets the
// host's entropy and clock before anything else, and its image from a disk.
func TestSetupFromTemplate(t *testing.T) {
	f := newFixture(t)
	f.sys.sources["disk:img0"] = f.sys.sources["image"]
	now := time.Now()
	seed := []byte("0123456789abcdef0123456789abcdef")
	_, err := f.client.SetupPod(ctx(t), &api.SetupPodRequest{
		Shares:           []*api.Share{{Tag: "rootfs", ReadOnly: true, Disk: "img0"}},
		Entropy:          seed,
		HostTimeUnixNano: now.UnixNano(),
	})
	if err != nil {
		t.Fatalf("SetupPod: %v", err)
	}
	if want := []string{"seed", "clock", "disk img0"}; !slices.Equal(f.sys.calls, want) {
		t.Errorf("calls %q, want %q", f.sys.calls, want)
	}
	if !bytes.Equal(f.sys.seed, seed) || !f.sys.clock.Equal(time.Unix(0, now.UnixNano())) {
		t.Errorf("seed %q, clock %v; want %q and %v", f.sys.seed, f.sys.clock, seed, now)
	}
	app := shApp("fromdisk", "echo ran")
	app.RootfsShare = "rootfs"
	if out, _, st := f.run(t, app); out != "ran\n" || st.Code != 0 {
		t.Errorf("app on the disk share: %q %v", out, st)
	}
}

// TestDiskShareIsReadOnly: an erofs disk cannot be asked for writable.
func TestDiskShareIsReadOnly(t *testing.T) {
	f := newFixture(t)
	_, err := f.client.SetupPod(ctx(t), &api.SetupPodRequest{Shares: []*api.Share{{Tag: "rootfs", Disk: "img0"}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("SetupPod with a writable disk share: %v, want InvalidArgument", err)
	}
}

func TestNetworkAndEtcFiles(t *testing.T) {
	f := newFixture(t)
	ifc := &api.Interface{Mac: "0a:58:ac:10:1c:02", Address: "172.16.28.2/24", Mtu: 1500,
		Routes: []*api.Route{{Destination: "172.16.28.1/32"}, {Destination: "0.0.0.0/0", Gateway: "172.16.28.1"}}}
	_, err := f.client.SetupPod(ctx(t), &api.SetupPodRequest{
		Shares:     []*api.Share{{Tag: "image", ReadOnly: true}},
		Interfaces: []*api.Interface{ifc},
		ResolvConf: "nameserver 10.0.0.53\n",
		Hosts:      "127.0.0.1 localhost\n10.1.2.3 db\n",
	})
	if err != nil {
		t.Fatalf("SetupPod: %v", err)
	}
	if len(f.sys.ifaces) != 1 || f.sys.ifaces[0].Address != ifc.Address || len(f.sys.ifaces[0].Routes) != 2 {
		t.Fatalf("ConfigureNetwork got %v, want the interface with its routes", f.sys.ifaces)
	}
	out, _, st := f.run(t, shApp("etc", "cat /etc/resolv.conf /etc/hosts; echo x > /etc/hosts || echo read-only"))
	if st.Code != 0 || out != "nameserver 10.0.0.53\n127.0.0.1 localhost\n10.1.2.3 db\nread-only\n" {
		t.Fatalf("app saw %q (exit %d), want the pod's resolv.conf and hosts, read-only", out, st.Code)
	}
}
