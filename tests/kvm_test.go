package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"rkt.dev/rkt/hypervisor/transport"
	"rkt.dev/rkt/hypervisor/vhostuser/vsock"
	"rkt.dev/rkt/tests/testutil"
)

// kvmRuntimeRoot is where stage1-kvm keeps each pod's sockets and state.
const kvmRuntimeRoot = "/run/rkt/kvm"

// kvmPod is one test's rkt installation with the kvm stage1.
type kvmPod struct {
	*testutil.Ctx
	t      *testing.T
	stage1 string
	// needles identify the host processes a pod may start (QEMU's argv
	// names the runtime directory, virtiofsd's the shared directories,
	// all of which live under these paths).
	needles []string
}

func newKVM(t *testing.T) *kvmPod {
	t.Helper()
	testutil.RequireRoot(t)
	c := testutil.New(t)
	k := &kvmPod{Ctx: c, t: t, stage1: c.Stage1("kvm"), needles: []string{c.DataDir()}}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
	}
	return k
}

// runArgs is the start of every `rkt run` of a kvm pod.
func (k *kvmPod) runArgs(uuidFile string, args ...string) []string {
	return append([]string{"run", "--stage1-path=" + k.stage1, "--insecure-options=image", "--net=none", "--uuid-file-save=" + uuidFile}, args...)
}

// run runs a pod to its end and returns rkt's result and the pod's UUID.
func (k *kvmPod) run(env []string, args ...string) (testutil.Result, string) {
	k.t.Helper()
	uuidFile := filepath.Join(k.t.TempDir(), "uuid")
	cmd := k.Cmd(k.runArgs(uuidFile, args...)...)
	cmd.Env = append(os.Environ(), env...)
	r := k.RunCmd(cmd)
	return r, k.uuid(uuidFile)
}

func (k *kvmPod) uuid(file string) string {
	k.t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		k.t.Fatalf("reading the pod UUID: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// podFile reads a file of the pod directory, wherever its state put it.
func (k *kvmPod) podFile(uuid, rel string) string {
	k.t.Helper()
	matches, _ := filepath.Glob(filepath.Join(k.DataDir(), "pods", "*", uuid, rel))
	if len(matches) != 1 {
		k.t.Fatalf("pod %s: want one %s, found %v", uuid, rel, matches)
	}
	b, err := os.ReadFile(matches[0])
	if err != nil {
		k.t.Fatal(err)
	}
	return string(b)
}

// podNeedles are the strings that name the pod's host processes (QEMU,
// virtiofsd) in their arguments.
func (k *kvmPod) podNeedles(uuid string) []string {
	return append([]string{filepath.Join(kvmRuntimeRoot, uuid)}, k.needles...)
}

// runningWith returns the processes (pid and command line) whose arguments
// contain one of needles. A zombie has no arguments, so it is not counted.
func runningWith(needles []string) []string {
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmdline := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		for _, n := range needles {
			if strings.Contains(cmdline, n) {
				found = append(found, filepath.Base(filepath.Dir(p))+": "+cmdline)
				break
			}
		}
	}
	return found
}

// checkReleased fails the test if anything of the pod remains on the host
// after gc: a process (QEMU, virtiofsd), a mount, its runtime directory.
func (k *kvmPod) checkReleased(uuid string) {
	k.t.Helper()
	k.RunOK("gc", "--grace-period=0s")
	needles := k.podNeedles(uuid)
	for _, p := range runningWith(needles) {
		k.t.Errorf("after gc, still running: %s", p)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		k.t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		for _, n := range append(needles, uuid) {
			if strings.Contains(line, n) {
				k.t.Errorf("after gc, still mounted: %s", line)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(kvmRuntimeRoot, uuid)); err == nil {
		k.t.Errorf("after gc, %s still exists", filepath.Join(kvmRuntimeRoot, uuid))
	}
}

func hostRelease(t *testing.T) string {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(uts.Release[:])
}

func TestKVMRun(t *testing.T) {
	k := newKVM(t)
	inspector, busybox := k.Image("inspector"), k.Image("busybox")
	roDir, rwDir := t.TempDir(), t.TempDir()
	k.needles = append(k.needles, roDir, rwDir)
	if err := os.WriteFile(filepath.Join(roDir, "in"), []byte("host-content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
		// wantStatus maps app names to their recorded exit codes.
		wantStatus map[string]string
		check      func(t *testing.T, stdout string)
	}{
		{
			name: "one app: exit code, output, env, hostname, guest kernel",
			args: []string{"--hostname=kvmpod", "--set-env=FOO=bar", inspector, "--",
				"--print-msg=hello", "--stderr-msg=oops", "--print-env=FOO,AC_APP_NAME", "--print-user", "--print-hostname", "--print-kernel", "--exit-code=7"},
			wantCode:   7,
			wantStdout: []string{"hello\n", "FOO=bar\n", "AC_APP_NAME=inspector\n", "uid=0 gid=0", "hostname=kvmpod\n", "kernel="},
			wantStderr: []string{"oops\n"},
			wantStatus: map[string]string{"inspector": "7"},
			check: func(t *testing.T, stdout string) {
				if !strings.Contains(stdout, "-rkt\n") || strings.Contains(stdout, "kernel="+hostRelease(t)+"\n") {
					t.Errorf("the app did not run on the rkt guest kernel (host: %s):\n%s", hostRelease(t), stdout)
				}
			},
		},
		{
			name:       "isolators: rkt's default capabilities and seccomp profile, a memory limit",
			args:       []string{inspector, "--memory=64Mi", "--", "--print-caps", "--print-seccomp"},
			wantStdout: []string{"cap-bounding=0x00000000a80425fb", "seccomp=2"},
			wantStatus: map[string]string{"inspector": "0"},
		},
		{
			name: "two apps: user and group, killed by a signal",
			args: []string{inspector, "--name=first", "--user=1000", "--group=1000", "--", "--print-user", "---",
				inspector, "--name=second", "--", "--kill-self=TERM"},
			wantCode:   143,
			wantStdout: []string{"first: uid=1000 gid=1000"},
			wantStatus: map[string]string{"first": "0", "second": "143"},
		},
		{
			name: "volumes: host read-only and read-write, empty shared by two apps",
			args: []string{
				"--volume=ro,kind=host,source=" + roDir + ",readOnly=true",
				"--volume=rw,kind=host,source=" + rwDir,
				"--volume=shared,kind=empty",
				busybox, "--name=writer", "--mount=volume=ro,target=/ro", "--mount=volume=rw,target=/rw", "--mount=volume=shared,target=/shared", "--exec=/bin/sh", "--",
				"-c", "cat /ro/in; touch /ro/x 2>/dev/null || echo ro-refused; echo from-guest > /rw/out; echo via-empty > /shared/f.tmp && mv /shared/f.tmp /shared/f", "---",
				busybox, "--name=reader", "--mount=volume=shared,target=/data", "--exec=/bin/sh", "--",
				"-c", "i=0; while [ ! -f /data/f ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; cat /data/f",
			},
			wantStdout: []string{"writer: host-content\n", "writer: ro-refused\n", "reader: via-empty\n"},
			wantStatus: map[string]string{"writer": "0", "reader": "0"},
			check: func(t *testing.T, _ string) {
				if b, err := os.ReadFile(filepath.Join(rwDir, "out")); err != nil || string(b) != "from-guest\n" {
					t.Errorf("read-write volume on the host: %q, %v", b, err)
				}
				if _, err := os.Stat(filepath.Join(roDir, "x")); err == nil {
					t.Error("the guest wrote to a read-only volume")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, uuid := k.run(nil, tt.args...)
			if r.ExitCode != tt.wantCode {
				t.Errorf("exit code %d, want %d\n%v", r.ExitCode, tt.wantCode, r)
			}
			for _, s := range tt.wantStdout {
				if !strings.Contains(r.Stdout, s) {
					t.Errorf("stdout lacks %q\n%v", s, r)
				}
			}
			for _, s := range tt.wantStderr {
				if !strings.Contains(r.Stderr, s) {
					t.Errorf("stderr lacks %q\n%v", s, r)
				}
			}
			for app, code := range tt.wantStatus {
				if got := strings.TrimSpace(k.podFile(uuid, "status/"+app)); got != code {
					t.Errorf("status/%s = %q, want %q", app, got, code)
				}
			}
			if tt.check != nil {
				tt.check(t, r.Stdout)
			}
			k.checkReleased(uuid)
		})
	}
	t.Run("interactive: stdin reaches the app", func(t *testing.T) {
		uuidFile := filepath.Join(t.TempDir(), "uuid")
		cmd := k.Cmd(k.runArgs(uuidFile, "--interactive", inspector, "--", "--print-stdin")...)
		cmd.Stdin = strings.NewReader("typed line\n")
		r := k.RunCmd(cmd)
		if r.ExitCode != 0 || !strings.Contains(r.Stdout, "typed line\n") {
			t.Errorf("rkt run --interactive: %v", r)
		}
		k.checkReleased(k.uuid(uuidFile))
	})
	t.Run("log file", func(t *testing.T) {
		r, uuid := k.run(nil, inspector, "--", "--print-msg=to-log", "--stderr-msg=err-to-log")
		if r.ExitCode != 0 {
			t.Fatal(r)
		}
		if log := k.podFile(uuid, "log/inspector"); !strings.Contains(log, "to-log\n") || !strings.Contains(log, "err-to-log\n") {
			t.Errorf("log/inspector = %q", log)
		}
		k.checkReleased(uuid)
	})
	t.Run("the agent API refuses guest processes", func(t *testing.T) {
		// AF_VSOCK is not namespaced: an app can reach the agent's port
		// through the guest's own CID. An app can only know that CID
		// with the userspace device; with /dev/vhost-vsock rkt picks it
		// at random (guest-agent's TestHostOnlyListener covers the
		// check on any host).
		if kind, _ := transport.Choose(); kind != transport.UserspaceVsock {
			t.Skipf("the guest's vsock CID is random with the %s transport", kind)
		}
		target := fmt.Sprintf("%d:%d", vsock.DefaultGuestCID, transport.VsockPort)
		// A pod resumed from a VM template talks to its agent over
		// virtio-serial: the vsock transport needs a booted VM.
		r, uuid := k.run([]string{"RKT_STAGE1_KVM_TEMPLATE=off"}, inspector, "--user=1000", "--", "--probe-vsock="+target)
		if r.ExitCode != 0 || !strings.Contains(r.Stdout, "vsock="+target+" closed\n") {
			t.Errorf("an unprivileged app connecting to the agent's port: want the agent to hang up at once: %v", r)
		}
		k.checkReleased(uuid)
	})
}

// startSleeper starts a pod whose app sleeps, and returns once it runs.
func (k *kvmPod) startSleeper() (*testutil.Process, string) {
	k.t.Helper()
	uuidFile := filepath.Join(k.t.TempDir(), "uuid")
	p := k.Start(k.runArgs(uuidFile, k.Image("inspector"), "--", "--sleep=1h")...)
	p.Expect("sleeping=1h")
	return p, k.uuid(uuidFile)
}

func TestKVMEnterAndStop(t *testing.T) {
	k := newKVM(t)
	t.Run("enter, then graceful stop", func(t *testing.T) {
		p, uuid := k.startSleeper()
		enter := k.Cmd("enter", uuid, "/bin/sh", "-c", "echo entered $AC_APP_NAME; echo to-stderr >&2; exit 5")
		enter.Stdin = strings.NewReader("")
		r := k.RunCmd(enter)
		if r.ExitCode != 5 || !strings.Contains(r.Stdout, "entered inspector") || !strings.Contains(r.Stderr, "to-stderr") {
			t.Errorf("rkt enter: %v", r)
		}
		// With a terminal as stdin, rkt enter asks for a guest terminal.
		_, tty := testutil.OpenPTY(t, 24, 80)
		enter = k.Cmd("enter", uuid, "/bin/sh", "-c", "test -t 0 && test -t 1 && echo on-a-tty")
		enter.Stdin = tty
		if r := k.RunCmd(enter); r.ExitCode != 0 || !strings.Contains(r.Stdout, "on-a-tty") {
			t.Errorf("rkt enter with a terminal: %v", r)
		}
		k.RunOK("stop", uuid)
		if r := p.Wait(); r.ExitCode != 143 {
			t.Errorf("rkt run after a graceful stop: %v; want exit 143 (SIGTERM)", r)
		}
		if got := strings.TrimSpace(k.podFile(uuid, "status/inspector")); got != "143" {
			t.Errorf("status = %q, want 143", got)
		}
		k.checkReleased(uuid)
	})
	t.Run("run process killed: gc releases the rest", func(t *testing.T) {
		p, uuid := k.startSleeper()
		// stage0 execs stage1, so rkt run is the stage1 run process.
		p.Signal(unix.SIGKILL)
		if r := p.Wait(); r.ExitCode != -1 {
			t.Errorf("rkt run after SIGKILL: %v", r)
		}
		k.checkReleased(uuid)
	})
	t.Run("stop --force", func(t *testing.T) {
		p, uuid := k.startSleeper()
		k.RunOK("stop", "--force", uuid)
		if r := p.Wait(); r.ExitCode != 137 || !strings.Contains(r.Stderr, "stop --force") {
			t.Errorf("rkt run after stop --force: %v; want exit 137", r)
		}
		k.checkReleased(uuid)
	})
}

func TestKVMGuestFailures(t *testing.T) {
	k := newKVM(t)
	tests := []struct {
		name      string
		hook      string
		wantInErr []string
	}{
		{"guest panics at boot", "rkt.test_panic=1", []string{"guest crashed", "rkt.test_panic"}},
		{"agent dies mid-pod", "rkt.test_agent_exit=1", []string{"rkt.test_agent_exit"}},
		// Waits out the agent readiness bound (60 s).
		{"agent never answers", "rkt.test_agent_silent=1", []string{"did not answer", "rkt.test_agent_silent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, uuid := k.run([]string{"RKT_HYPERVISOR_EXTRA_KERNEL_PARAMS=" + tt.hook}, k.Image("inspector"), "--", "--sleep=1h")
			if r.ExitCode == 0 {
				t.Errorf("rkt run succeeded: %v", r)
			}
			for _, s := range tt.wantInErr {
				if !strings.Contains(r.Stderr, s) {
					t.Errorf("stderr lacks %q\n%v", s, r)
				}
			}
			k.checkReleased(uuid)
		})
	}
}

// TestKVMStopDuringSetup: SIGTERM to rkt run before the apps start ends
// the run at once with 143 and says so, and the run itself stops the VM
// and removes its runtime directory, without waiting for gc. The guest
// agent never answers here (a kernel command-line hook), which holds the
// pod in setup for as long as the test needs.
func TestKVMStopDuringSetup(t *testing.T) {
	k := newKVM(t)
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	cmd := k.Cmd(k.runArgs(uuidFile, k.Image("inspector"), "--", "--sleep=1h")...)
	cmd.Env = append(os.Environ(), "RKT_HYPERVISOR_EXTRA_KERNEL_PARAMS=rkt.test_agent_silent=1")
	p := k.StartCmd(cmd)
	for i := 0; ; i++ {
		if _, err := os.Stat(uuidFile); err == nil {
			break
		}
		if i == 600 {
			t.Fatalf("rkt run saved no pod UUID in 30 s: %v", p.Wait())
		}
		time.Sleep(50 * time.Millisecond)
	}
	uuid := k.uuid(uuidFile)
	k.WaitPID(uuid) // written once QEMU runs
	p.Signal(syscall.SIGTERM)
	r := p.Wait()
	if r.ExitCode != 128+int(syscall.SIGTERM) || !strings.Contains(r.Stderr, "stopped by SIGTERM while connecting to the guest agent") {
		t.Errorf("want exit code 143 saying the setup was stopped: %v", r)
	}
	if _, err := os.Stat(filepath.Join(kvmRuntimeRoot, uuid)); !os.IsNotExist(err) {
		t.Errorf("the run left its runtime directory behind (%v)", err)
	}
	for _, p := range runningWith(k.podNeedles(uuid)) {
		t.Errorf("the run left a process running (before any gc): %s", p)
	}
	k.checkReleased(uuid)
}
