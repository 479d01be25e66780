package testsuite

import (
	"regexp"
	"testing"

	"rkt.dev/rkt/tests/testutil"
)

// env is one case's rkt installation with the flavor selected.
type env struct {
	*testutil.Ctx
	t         *testing.T
	f         Flavor
	stage1    []string
	inspector string
}

func newEnv(t *testing.T, f Flavor) *env {
	t.Helper()
	c := testutil.New(t)
	if f.Timeout > 0 {
		c.Timeout = f.Timeout
	}
	c.Env = f.Env
	e := &env{Ctx: c, t: t, f: f, inspector: c.Image("inspector")}
	if f.Stage1Args != nil {
		e.stage1 = f.Stage1Args(c)
	} else {
		e.stage1 = []string{"--stage1-path=" + c.Stage1(f.Name)}
	}
	return e
}

// sub returns the env for a subtest t (see testutil.Ctx.For).
func (e *env) sub(t *testing.T) *env {
	cp := *e
	cp.Ctx, cp.t = e.Ctx.For(t), t
	return &cp
}

// runArgs is a complete `rkt run` command line: the flavor's flags, a
// --uuid-file-save, then args (pod flags, images, app flags and
// arguments).
func (e *env) runArgs(uuidFile string, args ...string) []string {
	a := append([]string{"run", "--insecure-options=image"}, e.stage1...)
	a = append(a, e.f.RunArgs...)
	a = append(a, "--uuid-file-save="+uuidFile)
	return append(a, args...)
}

// run runs a pod to its end; it returns rkt's result and the pod's UUID
// ("" if rkt never created the pod).
func (e *env) run(args ...string) (testutil.Result, string) {
	e.t.Helper()
	f := e.UUIDFile()
	r := e.Run(e.runArgs(f, args...)...)
	return r, readUUIDIfAny(f)
}

// runInspector runs the inspector image alone with the given arguments
// and fails the test unless the pod exits with want.
func (e *env) runInspector(want int, podFlags []string, args ...string) (testutil.Result, string) {
	e.t.Helper()
	a := append(append([]string{}, podFlags...), e.inspector, "--")
	r, uuid := e.run(append(a, args...)...)
	if r.ExitCode != want {
		e.t.Fatalf("rkt run %v: want exit code %d, got %v", args, want, r)
	}
	return r, uuid
}

// startSleeper starts an inspector pod that runs appArgs and then sleeps,
// and returns once the app is sleeping and the pod shows its pid (which
// stop and enter need), with the pod's UUID. The harness
// kills the rkt process if the test ends first.
func (e *env) startSleeper(podFlags []string, appArgs ...string) (*testutil.Process, string) {
	e.t.Helper()
	f := e.UUIDFile()
	a := append(append([]string{}, podFlags...), e.inspector, "--")
	a = append(append(a, appArgs...), "--sleep=1h")
	p := e.Start(e.runArgs(f, a...)...)
	p.Expect(`sleeping=`)
	uuid := e.ReadUUID(f)
	e.WaitPID(uuid)
	return p, uuid
}

// checkStatus fails the test unless `rkt status` shows an exited pod with
// the given app exit codes.
func (e *env) checkStatus(uuid string, apps map[string]int) {
	e.t.Helper()
	st := e.Status(uuid)
	if st["state"] != "exited" || st["exited"] != "true" {
		e.t.Errorf("status of pod %s: state=%q exited=%q, want exited/true", uuid, st["state"], st["exited"])
	}
	for app, code := range apps {
		if got, want := st["app-"+app], itoa(code); got != want {
			e.t.Errorf("status of pod %s: app-%s=%q, want %q (status: %v)", uuid, app, got, want, st)
		}
	}
}

// userRx matches the inspector's --print-user line.
var userRx = regexp.MustCompile(`(?m)uid=(\d+) gid=(\d+) groups=(\S*)`)
