package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"rkt.dev/rkt/internal/mountinfo"
)

// DefaultTimeout bounds every command a Ctx runs unless the test changes
// Ctx.Timeout. It is generous because a kvm pod boots a VM under TCG here.
const DefaultTimeout = 120 * time.Second

// cleanupTimeout bounds each rkt command run while cleaning up, so a broken
// rkt cannot hang the suite after its test already ended.
const cleanupTimeout = 60 * time.Second

// Ctx is one test's private rkt installation: a data directory and the
// three configuration directories, passed to every command it runs.
type Ctx struct {
	// Timeout bounds each Run, RunCmd, Wait and Expect; tests that need
	// longer (or want to fail faster) may change it.
	Timeout time.Duration
	// Env is added to the environment of every command from Cmd.
	Env []string

	t      testing.TB
	binary string
	root   string
}

// New creates a Ctx under a fresh temporary directory. It skips the test
// when the build outputs are missing (see RequireBinaries). When the test
// ends, pods still running are stopped, everything is garbage collected,
// anything still mounted under the directory is lazily unmounted, and the
// directory is removed.
//
// The directory is not t.TempDir: testing removes that recursively even if
// a pod's volume is still bind-mounted from the host into it, which would
// delete the host files behind the mount. New removes its directory only
// once nothing is mounted in it.
func New(t testing.TB) *Ctx {
	t.Helper()
	RequireBinaries(t)
	tmp, err := os.MkdirTemp("", "rkt-test-")
	if err != nil {
		t.Fatal(err)
	}
	// mountinfo shows resolved paths, which unmounting must match.
	root, err := filepath.EvalSymlinks(tmp)
	if err != nil {
		t.Fatal(err)
	}
	c := &Ctx{Timeout: DefaultTimeout, t: t, binary: binaryPath(t), root: root}
	t.Cleanup(c.cleanup)
	// Readable by all, so tests can also run rkt as an unprivileged user.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{c.DataDir(), c.LocalConfigDir(), c.SystemConfigDir(), c.UserConfigDir()} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// For returns a view of the Ctx for the subtest t: the same directories,
// but failures are reported to t, and processes it starts are killed
// when t ends. A subtest must use it instead of its parent's Ctx, since
// calling t.Fatal of a parent test from a subtest is not allowed.
func (c *Ctx) For(t testing.TB) *Ctx {
	sub := *c
	sub.t = t
	return &sub
}

// DataDir is the --dir of every command, for tests that inspect the pod
// and image store layout.
func (c *Ctx) DataDir() string { return filepath.Join(c.root, "data") }

// LocalConfigDir is the --local-config directory (the /etc/rkt role).
func (c *Ctx) LocalConfigDir() string { return filepath.Join(c.root, "local-config") }

// SystemConfigDir is the --system-config directory (the /usr/lib/rkt role).
func (c *Ctx) SystemConfigDir() string { return filepath.Join(c.root, "system-config") }

// UserConfigDir is the --user-config directory.
func (c *Ctx) UserConfigDir() string { return filepath.Join(c.root, "user-config") }

// globalFlags come first on every command line; the "=" form keeps them
// unambiguous before the subcommand.
func (c *Ctx) globalFlags() []string {
	return []string{
		"--dir=" + c.DataDir(),
		"--local-config=" + c.LocalConfigDir(),
		"--system-config=" + c.SystemConfigDir(),
		"--user-config=" + c.UserConfigDir(),
	}
}

// Cmd returns an rkt command with the Ctx's global flags followed by args.
// Tests that need stdin, extra environment or another user set them on the
// command and run it with RunCmd or StartCmd.
func (c *Ctx) Cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(c.binary, append(c.globalFlags(), args...)...)
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	return cmd
}

// Run runs rkt with args and returns its output and exit code. A command
// still running after Timeout is killed with its process group and fails
// the test, showing the output so far. Like t.Fatal, Run must be called
// from the test's goroutine.
func (c *Ctx) Run(args ...string) Result { return c.RunCmd(c.Cmd(args...)) }

// RunOK is Run that also fails the test unless rkt exits 0.
func (c *Ctx) RunOK(args ...string) Result {
	c.t.Helper()
	r := c.Run(args...)
	if r.ExitCode != 0 {
		c.t.Fatalf("rkt %v: %v", args, r)
	}
	return r
}

// RunCmd runs a command from Cmd like Run does. The command's Stdout and
// Stderr must be unset: they are captured into the Result.
func (c *Ctx) RunCmd(cmd *exec.Cmd) Result {
	c.t.Helper()
	return c.StartCmd(cmd).Wait()
}

// Image returns the path of the example image name ("busybox" or
// "inspector"), skipping the test if it is not built.
func (c *Ctx) Image(name string) string {
	c.t.Helper()
	p := imagePath(c.t, name)
	requireBuilt(c.t, p)
	return p
}

// Stage1 returns the path of the stage1 image of flavor ("kvm", "nspawn",
// "fly"), for --stage1-path, skipping the test if it is not built.
func (c *Ctx) Stage1(flavor string) string {
	c.t.Helper()
	p := repoPath(c.t, filepath.Join("build", "stage1-"+flavor+".aci"))
	requireBuilt(c.t, p)
	return p
}

// cleanup releases what the test's pods hold, then removes the directory.
// Every step is best effort and reports problems as test errors: cleanup
// must go as far as it safely can even when rkt itself is broken.
func (c *Ctx) cleanup() {
	running, err := os.ReadDir(filepath.Join(c.DataDir(), "pods", "run"))
	if err == nil {
		for _, pod := range running {
			// Pods that already exited fail to stop; that is fine.
			c.runQuietly("stop", "--force", pod.Name())
		}
	}
	if r, err := c.runQuietly("gc", "--grace-period=0s"); err != nil || r.ExitCode != 0 {
		c.t.Logf("cleanup: rkt gc: %v %v", err, r)
	}
	if err := mountinfo.UnmountUnder(c.root); err != nil {
		c.t.Errorf("cleanup: %v; not removing %s", err, c.root)
		return
	}
	if err := os.RemoveAll(c.root); err != nil {
		c.t.Errorf("cleanup: %v", err)
	}
}

// runQuietly runs rkt for cleanup: a timeout is an error, not a test
// failure, so the remaining cleanup steps still run.
func (c *Ctx) runQuietly(args ...string) (Result, error) {
	p, err := start(c.Cmd(args...))
	if err != nil {
		return Result{}, err
	}
	r, ok := p.waitTimeout(cleanupTimeout)
	if !ok {
		return r, fmt.Errorf("rkt %v timed out after %v and was killed", args, cleanupTimeout)
	}
	return r, nil
}
