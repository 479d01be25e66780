package testsuite

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/appc/spec/schema"
	"golang.org/x/sys/unix"

	"rkt.dev/rkt/tests/testutil"
)

func itoa(n int) string { return strconv.Itoa(n) }

// readUUIDIfAny reads a --uuid-file-save file, or returns "".
func readUUIDIfAny(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// testExitCode: rkt run returns the app's exit code, and status records
// it; an app killed by signal N counts as 128+N.
func testExitCode(t *testing.T, e *env) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"zero", []string{"--exit-code=0"}, 0},
		{"seven", []string{"--exit-code=7"}, 7},
		{"SIGTERM", []string{"--kill-self=TERM"}, 128 + int(syscall.SIGTERM)},
		{"SIGKILL", []string{"--kill-self=KILL"}, 128 + int(syscall.SIGKILL)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.sub(t)
			_, uuid := e.runInspector(tt.want, nil, tt.args...)
			e.checkStatus(uuid, map[string]int{"inspector": tt.want})
		})
	}
}

// testOutput: the app's stdout reaches rkt's stdout and its stderr rkt's
// stderr, each only there.
func testOutput(t *testing.T, e *env) {
	r, _ := e.runInspector(0, nil, "--print-msg=to-stdout", "--stderr-msg=to-stderr")
	if !testutil.HasLine(r.Stdout, "to-stdout") || strings.Contains(r.Stdout, "to-stderr") {
		t.Errorf("stdout should have the app's stdout only: %v", r)
	}
	if !testutil.HasLine(r.Stderr, "to-stderr") || strings.Contains(r.Stderr, "to-stdout") {
		t.Errorf("stderr should have the app's stderr only: %v", r)
	}
}

// testEnv: the image's environment, --set-env for every app and
// --environment for one app, in increasing precedence, and AC_APP_NAME.
func testEnv(t *testing.T, e *env) {
	img := testutil.PatchACI(t, e.inspector, func(m *schema.ImageManifest) {
		m.App.Environment.Set("IMAGE_ONLY", "image")
		m.App.Environment.Set("SET_OVERRIDES", "image")
		m.App.Environment.Set("APP_OVERRIDES", "image")
	})
	want := []struct{ name, value string }{
		{"IMAGE_ONLY", "image"},
		{"SET_OVERRIDES", "set"},
		{"APP_OVERRIDES", "app"},
		{"SET_ONLY", "set"},
		{"APP_ONLY", "app"},
		{"SPACES_AND_EQUALS", "a b=c"},
		{"AC_APP_NAME", "envapp"},
	}
	var names []string
	for _, w := range want {
		names = append(names, w.name)
	}
	r, _ := e.run("--set-env=SET_OVERRIDES=set", "--set-env=APP_OVERRIDES=set", "--set-env=SET_ONLY=set",
		"--set-env=SPACES_AND_EQUALS=a b=c",
		img, "--name=envapp", "--environment=APP_OVERRIDES=app", "--environment=APP_ONLY=app",
		"--", "--print-env="+strings.Join(names, ","))
	if r.ExitCode != 0 {
		t.Fatalf("rkt run: %v", r)
	}
	for _, w := range want {
		if line := w.name + "=" + w.value; !testutil.HasLine(r.Stdout, line) {
			t.Errorf("want %q in the app's environment; got:\n%s", line, r.Stdout)
		}
	}
}

// testUserGroup: --user and --group as numbers or as names from the
// image's /etc/passwd and /etc/group, the image's own user, and a clear
// failure for a name the image does not know.
func testUserGroup(t *testing.T, e *env) {
	imageUser := testutil.PatchACI(t, e.inspector, func(m *schema.ImageManifest) {
		m.App.User, m.App.Group = "user", "user"
	})
	tests := []struct {
		name      string
		image     string
		flags     []string
		uid, gid  string
		wantError string // a failure naming this, instead of uid and gid
	}{
		{"default", e.inspector, nil, "0", "0", ""},
		{"numeric", e.inspector, []string{"--user=1000", "--group=1000"}, "1000", "1000", ""},
		{"numeric not in passwd", e.inspector, []string{"--user=4242", "--group=4343"}, "4242", "4343", ""},
		{"names", e.inspector, []string{"--user=user", "--group=user"}, "1000", "1000", ""},
		{"from the image manifest", imageUser, nil, "1000", "1000", ""},
		{"flags override the image", imageUser, []string{"--user=0", "--group=0"}, "0", "0", ""},
		{"unknown user", e.inspector, []string{"--user=nosuchuser"}, "", "", "nosuchuser"},
		{"unknown group", e.inspector, []string{"--group=nosuchgroup"}, "", "", "nosuchgroup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.sub(t)
			args := append(append([]string{tt.image}, tt.flags...), "--", "--print-user")
			r, _ := e.run(args...)
			if tt.wantError != "" {
				if r.ExitCode != 254 || !strings.Contains(r.Stderr, tt.wantError) {
					t.Errorf("want exit code 254 and an error naming %q; got %v", tt.wantError, r)
				}
				return
			}
			m := userRx.FindStringSubmatch(r.Stdout)
			if r.ExitCode != 0 || m == nil {
				t.Fatalf("rkt run: %v", r)
			}
			if m[1] != tt.uid || m[2] != tt.gid {
				t.Errorf("app ran as uid=%s gid=%s, want uid=%s gid=%s", m[1], m[2], tt.uid, tt.gid)
			}
		})
	}
}

// testWorkingDir: "/" by default, the image's workingDirectory, and
// --working-dir over both.
func testWorkingDir(t *testing.T, e *env) {
	inEtc := testutil.PatchACI(t, e.inspector, func(m *schema.ImageManifest) { m.App.WorkingDirectory = "/etc" })
	tests := []struct {
		name  string
		image string
		flags []string
		want  string
	}{
		{"default", e.inspector, nil, "/"},
		{"flag", e.inspector, []string{"--working-dir=/tmp"}, "/tmp"},
		{"image", inEtc, nil, "/etc"},
		{"flag overrides image", inEtc, []string{"--working-dir=/bin"}, "/bin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.sub(t)
			r, _ := e.run(append(append([]string{tt.image}, tt.flags...), "--", "--print-cwd")...)
			if r.ExitCode != 0 || !testutil.HasLine(r.Stdout, "cwd="+tt.want) {
				t.Errorf("want cwd=%s; got %v", tt.want, r)
			}
		})
	}
}

// testExec: arguments after "--" go to the image's command, and --exec
// replaces the command.
func testExec(t *testing.T, e *env) {
	tests := []struct {
		name string
		app  []string
		want string
	}{
		{"arguments to the image's exec", []string{"--", "--print-msg=from-args"}, "from-args"},
		{"exec override with arguments", []string{"--exec=/bin/busybox", "--", "echo", "override", "works"}, "override works"},
		{"exec override through a symlink", []string{"--exec=/bin/sh", "--", "-c", "echo shell $0", "arg0"}, "shell arg0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.sub(t)
			r, _ := e.run(append([]string{e.inspector}, tt.app...)...)
			if r.ExitCode != 0 || !testutil.HasLine(r.Stdout, tt.want) {
				t.Errorf("want output %q; got %v", tt.want, r)
			}
		})
	}
}

// hostDir makes a host directory holding the file "in".
func hostDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in"), []byte("from-host"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testVolumeHostReadOnly: a read-only host volume shows the host's files
// and refuses writes.
func testVolumeHostReadOnly(t *testing.T, e *env) {
	dir := hostDir(t)
	vol := []string{"--volume=data,kind=host,source=" + dir + ",readOnly=true"}
	r, _ := e.runInspector(0, vol, "--read-file=/data/in")
	if !strings.Contains(r.Stdout, "<<<from-host>>>") {
		t.Errorf("the app does not see the host file: %v", r)
	}
	r, _ = e.run(append(vol, e.inspector, "--", "--write-file=/data/out")...)
	if r.ExitCode != 1 || !strings.Contains(r.Stderr, "read-only file system") {
		t.Errorf("writing to a read-only volume: want the app to fail with EROFS; got %v", r)
	}
	if _, err := os.Lstat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("a write to a read-only volume reached the host: %v", err)
	}
}

// testVolumeHostReadWrite: what the app writes to a read-write host
// volume, mounted with --mount at a path the image does not have, is on
// the host.
func testVolumeHostReadWrite(t *testing.T, e *env) {
	dir := hostDir(t)
	r, _ := e.run("--volume=rw,kind=host,source="+dir, e.inspector, "--mount=volume=rw,target=/mnt/rw",
		"--", "--write-file=/mnt/rw/out", "--content=from-pod", "--read-file=/mnt/rw/in")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "<<<from-host>>>") {
		t.Fatalf("rkt run: %v", r)
	}
	b, err := os.ReadFile(filepath.Join(dir, "out"))
	if err != nil || string(b) != "from-pod" {
		t.Errorf("host file written by the app: %q, %v; want %q", b, err, "from-pod")
	}
}

// testVolumeEmptyShared: two apps of one pod share an empty volume.
func testVolumeEmptyShared(t *testing.T, e *env) {
	// The reader waits (boundedly) for the writer's file.
	const wait = `i=0; while [ ! -f /data/f ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; echo "got $(cat /data/f)"`
	r, uuid := e.run("--volume=data,kind=empty",
		e.inspector, "--name=writer", "--", "--write-file=/data/f", "--content=shared-content", "---",
		e.inspector, "--name=reader", "--exec=/bin/sh", "--", "-c", wait)
	if r.ExitCode != 0 || !testutil.HasLine(r.Stdout, "got shared-content") {
		t.Errorf("the reader app did not see the writer's file: %v", r)
	}
	e.checkStatus(uuid, map[string]int{"writer": 0, "reader": 0})
}

// testTwoApps: both apps of a pod run and their output reaches rkt's
// stdout, even a last line without a newline; the pod's exit code is the
// first failing app's (in command-line order), and status shows every
// app's.
func testTwoApps(t *testing.T, e *env) {
	tests := []struct {
		name          string
		first, second int
		want          int
	}{
		{"both succeed", 0, 0, 0},
		{"second fails", 0, 5, 5},
		{"both fail", 3, 5, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.sub(t)
			r, uuid := e.run(
				e.inspector, "--name=first", "--", "--print-msg=msg-first", "--exit-code="+itoa(tt.first), "---",
				// The second app's output ends without a newline, which
				// must not be lost.
				e.inspector, "--name=second", "--exec=/bin/sh", "--", "-c", "printf msg-second; exit "+itoa(tt.second))
			if r.ExitCode != tt.want {
				t.Errorf("exit code %d, want %d: %v", r.ExitCode, tt.want, r)
			}
			if !testutil.HasLine(r.Stdout, "msg-first") || !testutil.HasLine(r.Stdout, "msg-second") {
				t.Errorf("want both apps' output: %v", r)
			}
			e.checkStatus(uuid, map[string]int{"first": tt.first, "second": tt.second})
		})
	}
}

// testEnter: rkt enter runs a command in a running app's filesystem and
// environment and returns its exit code.
func testEnter(t *testing.T, e *env) {
	p, uuid := e.startSleeper(nil, "--write-file=/tmp/marker", "--content=in-app")
	tests := []struct {
		name   string
		args   []string
		want   int
		out    []string
		errOut string // on stderr, when the enter fails
	}{
		{"sees the app", []string{uuid, "/bin/sh", "-c", `cat /tmp/marker; echo; echo "app=$AC_APP_NAME"`}, 0,
			[]string{"in-app", "app=inspector"}, ""},
		{"exit code", []string{uuid, "/bin/sh", "-c", "exit 3"}, 3, nil, ""},
		{"with --app", []string{"--app=inspector", uuid, "/bin/busybox", "echo", "entered"}, 0, []string{"entered"}, ""},
		{"unknown app", []string{"--app=nosuch", uuid, "/bin/busybox", "true"}, 254, nil, `has no app "nosuch"; its apps: [inspector]`},
		{"missing command", []string{uuid, "/nonexistent"}, 254, nil, "app inspector: cannot execute /nonexistent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.sub(t)
			r := e.Run(append([]string{"enter"}, tt.args...)...)
			if r.ExitCode != tt.want {
				t.Errorf("exit code %d, want %d: %v", r.ExitCode, tt.want, r)
			}
			for _, line := range tt.out {
				if !testutil.HasLine(r.Stdout, line) {
					t.Errorf("want %q on stdout: %v", line, r)
				}
			}
			if !strings.Contains(r.Stderr, tt.errOut) || strings.Contains(r.Stderr, "rpc error") {
				t.Errorf("want %q on stderr, and no RPC status: %v", tt.errOut, r)
			}
		})
	}
	// Without a command, enter runs a shell: the busybox-based inspector
	// image has /bin/sh but no bash.
	t.Run("default shell", func(t *testing.T) {
		e := e.sub(t)
		cmd := e.Cmd("enter", uuid)
		cmd.Stdin = strings.NewReader("echo shell=$0\n")
		if r := e.RunCmd(cmd); r.ExitCode != 0 || !testutil.HasLine(r.Stdout, "shell=/bin/sh") {
			t.Errorf("want the default shell to run /bin/sh: %v", r)
		}
	})
	e.RunOK("stop", "--force", uuid)
	p.Wait()
}

// testStop: rkt stop ends a running pod with SIGTERM, --force with
// SIGKILL, and status then shows the pod exited with that code.
func testStop(t *testing.T, e *env) {
	tests := []struct {
		name  string
		flags []string
		want  int
	}{
		{"stop", nil, 128 + int(syscall.SIGTERM)},
		{"force", []string{"--force"}, 128 + int(syscall.SIGKILL)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.sub(t)
			p, uuid := e.startSleeper(nil)
			if st := e.Status(uuid); st["state"] != "running" {
				t.Errorf("state=%q before stop, want running", st["state"])
			}
			e.RunOK(append(append([]string{"stop"}, tt.flags...), uuid)...)
			if r := p.Wait(); r.ExitCode != tt.want {
				t.Errorf("rkt run exited %d, want %d: %v", r.ExitCode, tt.want, r)
			}
			e.checkStatus(uuid, map[string]int{"inspector": tt.want})
		})
	}
}

// testStartErrors: an app that cannot be started fails the pod with rkt's
// own exit code and a message that says why in the app's terms, the same
// on every flavor: nothing of the transport that carried it (the kvm
// agent's RPC status) or of the guest's console.
func testStartErrors(t *testing.T, e *env) {
	tests := []struct {
		name string
		app  []string
		want string
	}{
		{"missing executable", []string{"--exec=/nonexistent"}, "app inspector: cannot execute /nonexistent: stat /nonexistent: no such file or directory"},
		{"unknown user", []string{"--user=nosuchuser"}, `app inspector: user "nosuchuser" not found in the image's /etc/passwd`},
		{"missing working directory", []string{"--working-dir=/nonexistent-dir"}, "app inspector: working directory /nonexistent-dir: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.sub(t)
			r, _ := e.run(append([]string{e.inspector}, tt.app...)...)
			if r.ExitCode != 254 || !strings.Contains(r.Stderr, tt.want) {
				t.Fatalf("want exit code 254 and %q on stderr: %v", tt.want, r)
			}
			for _, noise := range []string{"rpc error", "guest console"} {
				if strings.Contains(r.Stderr, noise) {
					t.Errorf("the message carries %q: %v", noise, r)
				}
			}
		})
	}
}

// testSignalPID1: an app that signals PID 1 of its pod, as scripts do to
// stop their container (`kill 1`), has the signal passed back to it (PID
// 1 is the nspawn supervisor, or the kvm guest agent, and forwards
// supervisor.ForwardedSignals to every app), and the pod ends with the
// app's own code. Signals the Go runtime would crash on (ABRT, TRAP) are
// dropped. PID 1 never dies of a signal an app sends: in a VM that would
// panic the guest kernel and lose the exit statuses.
func testSignalPID1(t *testing.T, e *env) {
	tests := []struct {
		sig       string
		forwarded bool
	}{
		{"TERM", true}, {"INT", true}, {"HUP", true}, {"QUIT", true},
		{"ABRT", false}, {"TRAP", false},
	}
	for _, tt := range tests {
		t.Run(tt.sig, func(t *testing.T) {
			e := e.sub(t)
			// The trap fires while the shell waits for the sleep; the
			// sleep must not hold the output open, which would delay
			// the pod's end. A dropped signal leaves the app to run on.
			want := "got-" + tt.sig
			script := "trap 'echo got-" + tt.sig + "; exit 7' " + tt.sig + "; kill -" + tt.sig + " 1; sleep 20 >/dev/null 2>&1 & wait"
			if !tt.forwarded {
				want = "still-running"
				script = "kill -" + tt.sig + " 1; sleep 1; echo still-running; exit 7"
			}
			r, uuid := e.run(e.inspector, "--exec=/bin/busybox", "--", "sh", "-c", script)
			if r.ExitCode != 7 || !testutil.HasLine(r.Stdout, want) {
				t.Fatalf("kill -%s 1: want %q and exit code 7: %v", tt.sig, want, r)
			}
			e.checkStatus(uuid, map[string]int{"inspector": 7})
		})
	}
}

// testStatusWait: status --wait returns once the pod exited, showing its
// app's exit code; with a duration it gives up on a pod still running.
func testStatusWait(t *testing.T, e *env) {
	p, uuid := e.startSleeper(nil)
	if r := e.Run("status", "--wait=100ms", uuid); r.ExitCode != 254 || !strings.Contains(r.Stderr, "running") {
		t.Errorf("status --wait=100ms of a running pod: want exit 254 saying it still runs; got %v", r)
	}
	w := e.Start("status", "--wait", uuid)
	e.RunOK("stop", uuid)
	p.Wait()
	r := w.Wait()
	st := testutil.ParseKV(r.Stdout)
	if r.ExitCode != 0 || st["exited"] != "true" || st["app-inspector"] != itoa(128+int(syscall.SIGTERM)) {
		t.Errorf("status --wait: want exited=true and app-inspector=143; got %v", r)
	}
}

// testInteractive: with --interactive, rkt's stdin reaches the app;
// without it, the app's stdin is empty.
func testInteractive(t *testing.T, e *env) {
	tests := []struct {
		name  string
		flags []string
		want  string
	}{
		{"interactive", []string{"--interactive"}, "line one\nline two\n"},
		{"not interactive", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.sub(t)
			a := append(append([]string{}, tt.flags...), e.inspector, "--", "--print-stdin", "--print-msg=end-of-stdin")
			cmd := e.Cmd(e.runArgs(e.UUIDFile(), a...)...)
			cmd.Stdin = strings.NewReader("line one\nline two\n")
			r := e.RunCmd(cmd)
			// --print-msg runs first, so the app's stdin follows its line.
			_, got, ok := strings.Cut(strings.ReplaceAll(r.Stdout, "\r\n", "\n"), "end-of-stdin\n")
			if r.ExitCode != 0 || !ok || got != tt.want {
				t.Errorf("want the app to read %q; got %q: %v", tt.want, got, r)
			}
		})
	}
}

// testInteractiveTerminal: with --interactive on a terminal, the app
// runs on a terminal of the user's size that follows resizes, reads what
// the user types, is interrupted by ^C, and the user's terminal is left
// as it was.
func testInteractiveTerminal(t *testing.T, e *env) {
	run := func(t *testing.T, e *env, script string) *testutil.Process {
		t.Helper()
		cmd := e.Cmd(e.runArgs(e.UUIDFile(), "--interactive", e.inspector, "--exec=/bin/busybox", "--", "sh", "-c", script)...)
		return e.StartOnTerminal(cmd, 24, 100)
	}
	restored := func(t *testing.T, p *testutil.Process) {
		t.Helper()
		if attrs := p.TerminalAttrs(); attrs.Lflag&unix.ICANON == 0 || attrs.Lflag&unix.ECHO == 0 {
			t.Errorf("after rkt run, the terminal is left without line editing or echo (lflag %#x)", attrs.Lflag)
		}
	}
	t.Run("size, resize and typed input", func(t *testing.T) {
		e := e.sub(t)
		// The loop waits, boundedly, for the resize to reach the app.
		p := run(t, e, `test -t 0 && test -t 1 && test -t 2 && echo on-a-tty; echo size=$(stty size)
for i in $(seq 100); do [ "$(stty size)" = "30 120" ] && break; sleep 0.1; done; echo resized=$(stty size)
read line; echo got-$line; exit 4`)
		p.Expect(`on-a-tty\r?\nsize=24 100`)
		p.Resize(30, 120)
		p.Expect(`resized=30 120`)
		p.Type("hello\r")
		if r := p.Wait(); r.ExitCode != 4 || !strings.Contains(r.Stdout, "got-hello") {
			t.Errorf("want the app to read the typed line and exit 4; got %v", r)
		}
		restored(t, p)
	})
	t.Run("^C interrupts the app", func(t *testing.T) {
		e := e.sub(t)
		p := run(t, e, `echo ready; exec sleep 60`)
		p.Expect(`ready`)
		p.Type("\x03")
		if r := p.Wait(); r.ExitCode != 128+int(syscall.SIGINT) {
			t.Errorf("want the app killed by SIGINT (exit 130); got %v", r)
		}
		restored(t, p)
	})
}

// testGC: after gc --grace-period=0s, nothing of any pod is left: no pod
// directory, no process, no mount under the data directory, and host
// volumes are untouched.
func testGC(t *testing.T, e *env) {
	dir := hostDir(t)
	e.runInspector(0, nil, "--print-msg=short")
	e.runInspector(3, []string{"--volume=data,kind=host,source=" + dir}, "--exit-code=3")
	e.run("--volume=data,kind=empty", e.inspector, "--", "--write-file=/data/x")
	p, uuid := e.startSleeper([]string{"--volume=data,kind=host,source=" + dir})
	e.RunOK("stop", "--force", uuid)
	p.Wait()
	e.RunOK("gc", "--grace-period=0s")
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("after gc --grace-period=0s:\n%s", strings.Join(left, "\n"))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "in")); err != nil || string(b) != "from-host" {
		t.Errorf("gc damaged a host volume: %q, %v", b, err)
	}
}
