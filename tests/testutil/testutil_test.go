package testutil

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

// fakeRkt stands in for the rkt binary: it logs its arguments and, after
// the four global flags, obeys a tiny command language.
const fakeRkt = `#!/bin/sh
echo "$*" >> "$FAKE_RKT_LOG"
shift 4
case "$1" in
echo) shift; echo "$@";;
stderr) shift; echo "$@" >&2;;
exit) exit "$2";;
cat) cat;;
spawn) sleep 100 & echo $! > "$2"; echo spawned; sleep 100;;
esac
`

// useFakeRkt points the harness at fakeRkt and dummy images, and returns
// the log of its invocations.
func useFakeRkt(t *testing.T) string {
	dir := t.TempDir()
	bin := filepath.Join(dir, "rkt")
	if err := os.WriteFile(bin, []byte(fakeRkt), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{"busybox.aci", "inspector.aci"} {
		if err := os.WriteFile(filepath.Join(dir, img), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(dir, "log")
	t.Setenv("RKT_BINARY", bin)
	t.Setenv("RKT_IMAGES_DIR", dir)
	t.Setenv("FAKE_RKT_LOG", log)
	return log
}

func TestRun(t *testing.T) {
	useFakeRkt(t)
	c := New(t)
	tests := []struct {
		name string
		args []string
		want Result
	}{
		{"stdout", []string{"echo", "a", "b"}, Result{Stdout: "a b\n"}},
		{"stderr", []string{"stderr", "oops"}, Result{Stderr: "oops\n"}},
		{"exit code", []string{"exit", "42"}, Result{ExitCode: 42}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Run(tt.args...); got != tt.want {
				t.Errorf("Run(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestCmdGlobalFlagsAndStdin(t *testing.T) {
	log := useFakeRkt(t)
	c := New(t)
	cmd := c.Cmd("cat")
	cmd.Stdin = strings.NewReader("in")
	if r := c.RunCmd(cmd); r.Stdout != "in" {
		t.Errorf("stdin not passed: %v", r)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := "--dir=" + c.DataDir() + " --local-config=" + c.LocalConfigDir() +
		" --system-config=" + c.SystemConfigDir() + " --user-config=" + c.UserConfigDir() + " cat\n"
	if string(b) != want {
		t.Errorf("rkt was called with %q, want %q", b, want)
	}
	for _, dir := range []string{c.DataDir(), c.LocalConfigDir(), c.SystemConfigDir(), c.UserConfigDir()} {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("%s: not a directory (%v)", dir, err)
		}
	}
}

// TestTimeoutKillsProcessGroup checks that a timed-out command is killed
// together with the processes it spawned.
func TestTimeoutKillsProcessGroup(t *testing.T) {
	useFakeRkt(t)
	c := New(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	p := c.Start("spawn", pidFile)
	p.Expect("spawned")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := p.waitTimeout(10 * time.Millisecond)
	if ok || r.ExitCode != -1 || r.Stdout != "spawned\n" {
		t.Errorf("waitTimeout() = %+v, %v; want killed with the output so far", r, ok)
	}
	// The orphaned child is gone or a zombie waiting for init to reap it.
	deadline := time.Now().Add(5 * time.Second)
	for !deadOrZombie(child) {
		if time.Now().After(deadline) {
			t.Fatalf("spawned process %d survived the timeout", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func deadOrZombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] == "Z"
}

func TestExpect(t *testing.T) {
	useFakeRkt(t)
	c := New(t)
	p := c.Start("stderr", "serving=127.0.0.1:8080")
	if got, want := p.Expect(`serving=(\S+)`), []string{"serving=127.0.0.1:8080", "127.0.0.1:8080"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Expect() = %q, want %q", got, want)
	}
	if r := p.Wait(); r.ExitCode != 0 {
		t.Errorf("Wait() = %v", r)
	}
}

// TestCleanup checks that a Ctx stops running pods, collects garbage,
// unmounts what is left and removes its directory.
func TestCleanup(t *testing.T) {
	log := useFakeRkt(t)
	var c *Ctx
	t.Run("test", func(t *testing.T) {
		c = New(t)
		if err := os.MkdirAll(filepath.Join(c.DataDir(), "pods", "run", "pod-uuid"), 0o755); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			mnt := filepath.Join(c.DataDir(), "pods", "run", "pod-uuid", "stage1")
			if err := os.Mkdir(mnt, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
				t.Fatal(err)
			}
		}
	})
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{" stop --force pod-uuid\n", " gc --grace-period=0s\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("cleanup did not run %q; rkt calls:\n%s", want, b)
		}
	}
	if _, err := os.Stat(c.root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s not removed: %v", c.root, err)
	}
}

// readACI returns the headers and contents of an image.
func readACI(t *testing.T, p string) ([]*tar.Header, map[string]string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := decompress(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(r)
	var hdrs []*tar.Header
	contents := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return hdrs, contents
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, hdr)
		contents[hdr.Name] = string(b)
	}
}

func TestBuildACI(t *testing.T) {
	const manifest = `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/t"}`
	p := BuildACI(t, manifest, map[string]FileSpec{
		"bin/app":      {Mode: 0o755, Content: "#!/bin/sh\n"},
		"bin/sh":       {Type: tar.TypeSymlink, Linkname: "/bin/app"},
		"etc/shadow":   {Mode: 0o600, UID: 1000, GID: 1000},
		"dev/null":     {Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		"../../escape": {Content: "evil"},
	})
	hdrs, contents := readACI(t, p)
	type entry struct {
		name     string
		typ      byte
		mode     int64
		link     string
		uid, gid int
	}
	var got []entry
	for _, h := range hdrs {
		got = append(got, entry{h.Name, h.Typeflag, h.Mode, h.Linkname, h.Uid, h.Gid})
		if !h.ModTime.Equal(aciMtime) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, aciMtime)
		}
	}
	want := []entry{
		{"manifest", tar.TypeReg, 0o644, "", 0, 0},
		{"rootfs/", tar.TypeDir, 0o755, "", 0, 0},
		{"rootfs/../../escape", tar.TypeReg, 0o644, "", 0, 0},
		{"rootfs/bin/", tar.TypeDir, 0o755, "", 0, 0},
		{"rootfs/bin/app", tar.TypeReg, 0o755, "", 0, 0},
		{"rootfs/bin/sh", tar.TypeSymlink, 0o644, "/bin/app", 0, 0},
		{"rootfs/dev/", tar.TypeDir, 0o755, "", 0, 0},
		{"rootfs/dev/null", tar.TypeChar, 0o666, "", 0, 0},
		{"rootfs/etc/", tar.TypeDir, 0o755, "", 0, 0},
		{"rootfs/etc/shadow", tar.TypeReg, 0o600, "", 1000, 1000},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries:\n%v\nwant\n%v", got, want)
	}
	if contents["manifest"] != manifest || contents["rootfs/bin/app"] != "#!/bin/sh\n" {
		t.Errorf("contents = %q", contents)
	}
	// Same input, same bytes: the image ID is stable.
	again := BuildACI(t, manifest, map[string]FileSpec{
		"bin/app": {Mode: 0o755, Content: "#!/bin/sh\n"}, "bin/sh": {Type: tar.TypeSymlink, Linkname: "/bin/app"},
		"etc/shadow": {Mode: 0o600, UID: 1000, GID: 1000}, "dev/null": {Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		"../../escape": {Content: "evil"},
	})
	a, _ := os.ReadFile(p)
	b, _ := os.ReadFile(again)
	if string(a) != string(b) {
		t.Error("building the same image twice gave different bytes")
	}
}

func TestPatchACI(t *testing.T) {
	base := BuildACI(t, `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/t","app":{"exec":["/app"],"user":"0","group":"0"}}`,
		map[string]FileSpec{"app": {Mode: 0o755, Content: "binary"}})
	p := PatchACI(t, base, func(m *schema.ImageManifest) {
		m.App.Exec = types.Exec{"/app", "--flag"}
		m.App.User = "1000"
	})
	hdrs, contents := readACI(t, p)
	var names []string
	for _, h := range hdrs {
		names = append(names, h.Name)
	}
	if want := []string{"manifest", "rootfs/", "rootfs/app"}; !slices.Equal(names, want) {
		t.Errorf("entries = %q, want %q", names, want)
	}
	if contents["rootfs/app"] != "binary" {
		t.Errorf("rootfs/app = %q", contents["rootfs/app"])
	}
	var m schema.ImageManifest
	if err := m.UnmarshalJSON([]byte(contents["manifest"])); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.App.Exec, types.Exec{"/app", "--flag"}) || m.App.User != "1000" || m.Name != "example.com/t" {
		t.Errorf("patched manifest = %s", contents["manifest"])
	}
}

func TestRequireBuiltSkips(t *testing.T) {
	t.Setenv("RKT_REQUIRE_BUILD", "")
	t.Setenv("RKT_BINARY", filepath.Join(t.TempDir(), "missing"))
	var skipped bool
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		RequireBinaries(t)
	})
	if !skipped {
		t.Error("RequireBinaries did not skip with the binary missing")
	}
}

// TestRequireBuiltFailsInCI runs itself in a child process, since a failed
// subtest would fail this test too.
func TestRequireBuiltFailsInCI(t *testing.T) {
	if os.Getenv("TESTUTIL_CHILD") == "1" {
		RequireBinaries(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRequireBuiltFailsInCI$")
	cmd.Env = append(os.Environ(), "TESTUTIL_CHILD=1", "RKT_REQUIRE_BUILD=1",
		"RKT_BINARY="+filepath.Join(t.TempDir(), "missing"))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "run `make` first") {
		t.Errorf("want a failure telling to run make; err %v, output:\n%s", err, out)
	}
}
