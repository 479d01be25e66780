// Package testsuite is the conformance suite every stage1 flavor must pass.
// Like containerd's snapshotter suite, a flavor's own test calls Run with a
// description of the flavor, and every case drives the built rkt binary
// (through tests/testutil) exactly as a user would: exit codes, output,
// environment, users, working directory, exec overrides, volumes,
// multi-app pods, enter, stop, status --wait, --interactive (on pipes and
// on a terminal) and gc.
//
// A flavor that cannot support a case lists it in Flavor.Skip with the
// reason; the case is then reported as skipped with that reason, never
// dropped silently.
//
// The cases need root and the build outputs (`make`); without them they
// skip, or fail with RKT_REQUIRE_BUILD=1 (see tests/testutil).
package testsuite

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"rkt.dev/rkt/tests/testutil"
)

// Flavor describes the stage1 under test.
type Flavor struct {
	// Name is the flavor: "fly", "nspawn" or "kvm".
	Name string
	// Stage1Args returns the flags that select the stage1 on the rkt run
	// command line. Nil means --stage1-path=build/stage1-<Name>.aci, and
	// the suite skips if that image is not built.
	Stage1Args func(c *testutil.Ctx) []string
	// RunArgs are extra flags for every rkt run, such as --net=none.
	RunArgs []string
	// Env is extra environment for every rkt command, for a flavor
	// whose stage1 has more than one way to run a pod.
	Env []string
	// Skip maps the name of a case (see Cases) the flavor cannot support
	// to the reason. Unknown names fail the suite, so a renamed case
	// cannot leave a stale skip behind.
	Skip map[string]string
	// Parallel runs the cases in parallel with each other (bounded by go
	// test's -parallel).
	Parallel bool
	// Timeout, if set, bounds each rkt command instead of
	// testutil.DefaultTimeout.
	Timeout time.Duration
}

// Validate reports a flavor description the suite cannot run.
func (f Flavor) Validate() error {
	if f.Name == "" {
		return fmt.Errorf("testsuite: the flavor has no name")
	}
	for name, reason := range f.Skip {
		if !slices.Contains(Cases(), name) {
			return fmt.Errorf("testsuite: flavor %s skips unknown case %q (cases: %v)", f.Name, name, Cases())
		}
		if reason == "" {
			return fmt.Errorf("testsuite: flavor %s skips case %s without a reason", f.Name, name)
		}
	}
	return nil
}

// testCase is one conformance case; it gets a fresh rkt installation.
type testCase func(t *testing.T, e *env)

// cases maps case names, which are also the subtest names, to cases.
var cases = map[string]testCase{
	"ExitCode":            testExitCode,
	"Output":              testOutput,
	"Env":                 testEnv,
	"UserGroup":           testUserGroup,
	"WorkingDir":          testWorkingDir,
	"Exec":                testExec,
	"VolumeHostReadOnly":  testVolumeHostReadOnly,
	"VolumeHostReadWrite": testVolumeHostReadWrite,
	"VolumeEmptyShared":   testVolumeEmptyShared,
	"TwoApps":             testTwoApps,
	"Enter":               testEnter,
	"Stop":                testStop,
	"SignalPID1":          testSignalPID1,
	"StartErrors":         testStartErrors,
	"StatusWait":          testStatusWait,
	"Interactive":         testInteractive,
	"InteractiveTerminal": testInteractiveTerminal,
	"GC":                  testGC,
}

// Cases returns the names of the conformance cases, sorted.
func Cases() []string {
	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Run runs every conformance case against the flavor, each as a subtest
// named after the case.
func Run(t *testing.T, f Flavor) {
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	testutil.RequireRoot(t)
	for _, name := range Cases() {
		t.Run(name, func(t *testing.T) {
			if reason, ok := f.Skip[name]; ok {
				t.Skipf("stage1 %s does not support this: %s", f.Name, reason)
			}
			if f.Parallel {
				t.Parallel()
			}
			cases[name](t, newEnv(t, f))
		})
	}
}
