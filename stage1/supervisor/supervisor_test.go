package supervisor

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"rkt.dev/rkt/stage1/seccompfilter"
)

func TestMain(m *testing.M) {
	RunHelperIfRequested()
	os.Exit(m.Run())
}

// busyboxRoot builds a tiny rootfs from the host's static busybox.
func busyboxRoot(t *testing.T) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("the supervisor needs root to mount and chroot")
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("busybox-static is not installed (scripts/install-deps installs it)")
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "home/user"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755))
	must(t, os.Symlink("busybox", filepath.Join(root, "bin/sh")))
	must(t, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nusers:x:1000:\n"), 0o644))
	return root
}

// syncBuffer lets an app's stdout and stderr copies share one buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestStartApps(t *testing.T) {
	root := busyboxRoot(t)
	vol := t.TempDir()
	must(t, os.WriteFile(filepath.Join(vol, "in"), []byte("from-host"), 0o644))
	s, err := New()
	must(t, err)

	cases := []struct {
		name     string
		app      App
		wantOut  string
		wantCode int
	}{
		{"exit code", App{Exec: []string{"/bin/sh", "-c", "exit 7"}}, "", 7},
		{"env and app name", App{Exec: []string{"sh", "-c", `echo "$AC_APP_NAME $FOO $PATH"`}, Env: []string{"FOO=bar"}},
			"t bar " + defaultPath + "\n", 0},
		{"user by name", App{Exec: []string{"sh", "-c", `echo $(busybox id -u):$(busybox id -g) $HOME`}, User: "user", Group: "users"}, "1000:1000 /home/user\n", 0},
		{"numeric user and supplementary gids", App{Exec: []string{"sh", "-c", "busybox id -G"}, User: "1000", Group: "1000", SupplementaryGIDs: []int{5, 6}}, "1000 5 6\n", 0},
		{"working dir", App{Exec: []string{"sh", "-c", "busybox pwd"}, WorkDir: "/tmp"}, "/tmp\n", 0},
		{"read-only volume", App{Exec: []string{"sh", "-c", "busybox cat /vol/in; echo x 2>/dev/null > /vol/out || echo refused"},
			Mounts: []Mount{{Source: vol, Target: "/vol", ReadOnly: true}}}, "from-hostrefused\n", 0},
		{"private /dev", App{Exec: []string{"sh", "-c", "busybox ls /dev | busybox tr '\\n' ' '"}, System: PrivateSystemMounts},
			"core fd full null ptmx pts random shm stderr stdin stdout tty urandom zero ", 0},
		{"killed by signal", App{Exec: []string{"sh", "-c", "kill -9 $$"}}, "", 128 + 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			app := tc.app
			app.Name, app.Root, app.Stdout, app.Stderr = "t", root, &out, &out
			if app.System == HostSystemMounts && len(app.Mounts) == 0 {
				app.System = PrivateSystemMounts
			}
			p, err := s.Start(app)
			if err != nil {
				t.Fatal(err)
			}
			st := p.Wait()
			if st.Code != tc.wantCode {
				t.Errorf("exit code %d, want %d (output %q)", st.Code, tc.wantCode, out.String())
			}
			if tc.wantOut != "" && out.String() != tc.wantOut {
				t.Errorf("output %q, want %q", out.String(), tc.wantOut)
			}
		})
	}
}

func TestOverlayRootLeavesLowerUntouched(t *testing.T) {
	lower := busyboxRoot(t)
	dir := t.TempDir()
	app := App{Name: "o", Root: filepath.Join(dir, "rootfs"), Lower: lower, Upper: filepath.Join(dir, "upper"),
		Work: filepath.Join(dir, "work"), Exec: []string{"/bin/sh", "-c", "echo hi > /etc/new"}, System: PrivateSystemMounts}
	must(t, os.MkdirAll(app.Upper, 0o755))
	must(t, os.MkdirAll(app.Work, 0o755))
	s, err := New()
	must(t, err)
	p, err := s.Start(app)
	must(t, err)
	if st := p.Wait(); st.Code != 0 {
		t.Fatalf("exit %d", st.Code)
	}
	if _, err := os.Stat(filepath.Join(lower, "etc/new")); !os.IsNotExist(err) {
		t.Errorf("the write reached the lower layer: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(app.Upper, "etc/new")); err != nil || string(b) != "hi\n" {
		t.Errorf("upper layer has %q, %v", b, err)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), app.Root) {
		t.Errorf("the app's overlay leaked into the parent's mount namespace")
	}
}

func TestStartErrors(t *testing.T) {
	root := busyboxRoot(t)
	s, err := New()
	must(t, err)
	cases := []struct {
		name string
		app  App
		want string
	}{
		{"missing executable", App{Exec: []string{"/nope"}}, "cannot execute /nope"},
		{"not in PATH", App{Exec: []string{"nope"}}, `executable "nope" not found`},
		{"unknown user", App{Exec: []string{"/bin/sh"}, User: "nobody"}, `user "nobody" not found`},
		{"unknown group", App{Exec: []string{"/bin/sh"}, Group: "nogroup"}, `group "nogroup" not found`},
		{"missing workdir", App{Exec: []string{"/bin/sh"}, WorkDir: "/nonexistent"}, "working directory /nonexistent"},
		{"no exec", App{}, "no command to execute"},
		{"relative workdir", App{Exec: []string{"/bin/sh"}, WorkDir: "tmp"}, "not an absolute path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := tc.app
			app.Name, app.Root, app.System = "e", root, PrivateSystemMounts
			_, err := s.Start(app)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestSignalAndEnter(t *testing.T) {
	root := busyboxRoot(t)
	s, err := New()
	must(t, err)
	p, err := s.Start(App{Name: "sleeper", Root: root, Exec: []string{"/bin/sh", "-c", "echo marker > /tmp/m.tmp && mv /tmp/m.tmp /tmp/m; exec busybox sleep 100"}, System: PrivateSystemMounts})
	must(t, err)
	defer p.Signal(syscall.SIGKILL)

	// Wait for the app to have written its marker inside its own root.
	var out bytes.Buffer
	for i := 0; i < 100; i++ {
		out.Reset()
		e, err := s.Enter(p.Pid(), App{Name: "sleeper", Exec: []string{"/bin/busybox", "cat", "/tmp/m"}, Stdout: &out})
		must(t, err)
		if e.Wait().Code == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out.String() != "marker\n" {
		t.Fatalf("enter saw %q, want the app's marker", out.String())
	}
	must(t, p.Signal(syscall.SIGTERM))
	if st := p.Wait(); st.Signal != syscall.SIGTERM || st.Code != 143 {
		t.Errorf("status %+v, want SIGTERM/143", st)
	}
	if err := p.Signal(syscall.SIGTERM); err == nil {
		t.Error("signalling an exited app succeeded")
	}
}

func TestAllowsDirectStart(t *testing.T) {
	oom := 0
	cases := []struct {
		name string
		iso  Isolators
		want bool
	}{
		{"nothing", Isolators{}, true},
		{"caps and no-new-privs", Isolators{Capabilities: []string{"CAP_KILL"}, NoNewPrivileges: true}, true},
		{"default seccomp profile", Isolators{Seccomp: &Seccomp{Mode: SeccompRemove, Syscalls: seccompfilter.DefaultBlocklist}}, true},
		{"remove set hitting the runtime", Isolators{Seccomp: &Seccomp{Mode: SeccompRemove, Syscalls: []string{"mkdir", "futex"}}}, false},
		{"retain set", Isolators{Seccomp: &Seccomp{Mode: SeccompRetain, Syscalls: []string{"read"}}}, false},
		{"cgroup limit", Isolators{MemoryLimit: 1 << 20, Cgroup: "x/y"}, false},
		{"oom-score-adj", Isolators{OOMScoreAdj: &oom}, false},
	}
	for _, tc := range cases {
		if got := tc.iso.allowsDirectStart(); got != tc.want {
			t.Errorf("%s: allowsDirectStart() = %v, want %v", tc.name, got, tc.want)
		}
	}
	for user, want := range map[string]bool{"": true, "0": true, "root": false, "1000": false} {
		app := App{User: user}
		if got := app.allowsDirectStart(); got != want {
			t.Errorf("user %q: allowsDirectStart() = %v, want %v", user, got, want)
		}
	}
}

// TestDirectStartLeavesSupervisorAlone checks that the thread which became
// an app (fewer capabilities, no_new_privs, a seccomp filter, another mount
// namespace, root and supplementary groups) is gone once the app runs: no
// thread of the supervisor's process may keep any of that.
func TestDirectStartLeavesSupervisorAlone(t *testing.T) {
	root := busyboxRoot(t)
	s, err := New()
	must(t, err)
	want, err := threadStates()
	must(t, err)
	if len(want) != 1 {
		t.Fatalf("threads of the test process differ before any start: %v", want)
	}
	app := App{Name: "t", Root: root, Exec: []string{"/bin/sh", "-c", "exit 0"}, Group: "1000", SupplementaryGIDs: []int{7}, System: PrivateSystemMounts,
		Isolators: Isolators{Capabilities: []string{"CAP_KILL"}, NoNewPrivileges: true, MaskKernelPaths: true,
			Seccomp: seccompOf(t, SeccompRemove, seccompfilter.DefaultBlocklist, "")}}
	if !app.Isolators.allowsDirectStart() {
		t.Fatal("the app would not be started directly; the test checks nothing")
	}
	// Enough starts that some would land on the main thread if
	// onThrowawayThread let them.
	for range 30 {
		p, err := s.Start(app)
		must(t, err)
		if st := p.Wait(); st.Code != 0 {
			t.Fatalf("app exited with %d", st.Code)
		}
	}
	// A thread ends shortly after its goroutine: allow it a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := threadStates()
		must(t, err)
		if len(got) == 1 && slices.Equal(slices.Collect(maps.Keys(got)), slices.Collect(maps.Keys(want))) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("threads after direct starts: %v, want all %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// threadStates maps each distinct security state of this process's
// threads (credentials, capabilities, no_new_privs, seccomp, mount
// namespace, root) to the threads in it.
func threadStates() (map[string][]string, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	states := map[string][]string{}
	for _, task := range tasks {
		dir := filepath.Join("/proc/self/task", task.Name())
		status, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			continue // the thread has just exited
		}
		var key []string
		for _, l := range strings.Split(string(status), "\n") {
			for _, f := range []string{"Uid:", "Gid:", "Groups:", "CapPrm:", "CapEff:", "CapBnd:", "NoNewPrivs:", "Seccomp:"} {
				if strings.HasPrefix(l, f) {
					key = append(key, strings.Join(strings.Fields(l), " "))
				}
			}
		}
		mnt, err1 := os.Readlink(filepath.Join(dir, "ns/mnt"))
		rootDir, err2 := os.Readlink(filepath.Join(dir, "root"))
		if err1 != nil || err2 != nil {
			continue
		}
		key = append(key, mnt, "root="+rootDir)
		k := strings.Join(key, "; ")
		states[k] = append(states[k], task.Name())
	}
	return states, nil
}
