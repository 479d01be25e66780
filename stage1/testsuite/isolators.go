package testsuite

import (
	"fmt"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"rkt.dev/rkt/stage1/apprun"
	"rkt.dev/rkt/stage1/supervisor"
	"rkt.dev/rkt/tests/testutil"
)

// The isolation cases: what the inspector sees of its hostname, cgroup
// limits, capabilities, no_new_privs, seccomp, OOM score and /proc, with
// rkt's defaults, with per-app flags and image isolators, and with
// --insecure-options relaxing them. They register themselves here so the
// list of cases in testsuite.go stays the lifecycle list.
func init() {
	for name, c := range map[string]testCase{
		"Hostname":             testHostname,
		"MemoryLimit":          testMemoryLimit,
		"CPUQuota":             testCPUQuota,
		"CapabilitiesDefault":  testCapabilitiesDefault,
		"CapabilitiesFlags":    testCapabilitiesFlags,
		"InsecureCapabilities": testInsecureCapabilities,
		"NoNewPrivileges":      testNoNewPrivileges,
		"SeccompDefault":       testSeccompDefault,
		"SeccompFlag":          testSeccompFlag,
		"OOMScoreAdj":          testOOMScoreAdj,
		"ProcMasking":          testProcMasking,
	} {
		cases[name] = c
	}
}

// expectLine runs the inspector with podFlags before the image, appFlags
// after it and args for the app, and fails unless it exits 0 printing line.
func (e *env) expectLine(line string, podFlags, appFlags []string, args ...string) {
	e.t.Helper()
	a := append(append(append([]string{}, podFlags...), e.inspector), appFlags...)
	r, _ := e.run(append(append(a, "--"), args...)...)
	if r.ExitCode != 0 || !testutil.HasLine(r.Stdout, line) {
		e.t.Errorf("want exit code 0 and the line %q: %v", line, r)
	}
}

// testHostname: --hostname names the pod's UTS namespace.
func testHostname(t *testing.T, e *env) {
	e.expectLine("hostname=conformance-pod", []string{"--hostname=conformance-pod"}, nil, "--print-hostname")
}

// testMemoryLimit: --memory becomes the limit of the app's cgroup; 64M is
// 64 MiB, as for docker run. rkt's inspector flag name is accepted too.
func testMemoryLimit(t *testing.T, e *env) {
	e.expectLine("memory-limit=67108864", nil, []string{"--memory=64M"}, "--print-memorylimit")
}

// testCPUQuota: --cpu becomes the CFS quota of the app's cgroup.
func testCPUQuota(t *testing.T, e *env) {
	e.expectLine("cpu-quota=500m", nil, []string{"--cpu=500m"}, "--print-cpu-quota")
}

// caps is the inspector's --print-caps line for a root app whose sets
// are all names.
func caps(t *testing.T, names []string) string {
	m, err := supervisor.CapabilityMask(names)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("cap-effective=0x%016x cap-permitted=0x%016x cap-bounding=0x%016x", m, m, m)
}

// testCapabilitiesDefault: an app that asks for nothing gets the appc
// default set of 14 capabilities.
func testCapabilitiesDefault(t *testing.T, e *env) {
	e.expectLine(caps(t, apprun.DefaultCapabilities), nil, nil, "--print-caps")
}

// testCapabilitiesFlags: --caps-retain keeps exactly its set, and
// --caps-remove takes its set from the default one.
func testCapabilitiesFlags(t *testing.T, e *env) {
	e.expectLine(caps(t, []string{"CAP_NET_BIND_SERVICE"}), nil, []string{"--caps-retain=CAP_NET_BIND_SERVICE"}, "--print-caps-pid=0")
	var rest []string
	for _, c := range apprun.DefaultCapabilities {
		if c != "CAP_CHOWN" && c != "CAP_KILL" {
			rest = append(rest, c)
		}
	}
	e.expectLine(caps(t, rest), nil, []string{"--caps-remove=CAP_CHOWN,CAP_KILL"}, "--print-caps")
}

// testInsecureCapabilities: --insecure-options=capabilities leaves the app
// root's full set, CAP_SYS_ADMIN included, even with --caps-retain.
func testInsecureCapabilities(t *testing.T, e *env) {
	r, _ := e.runInspector(0, []string{"--insecure-options=image,capabilities"}, "--print-caps")
	sysAdmin, _ := supervisor.CapabilityMask([]string{"CAP_SYS_ADMIN"})
	var eff, prm, bnd uint64
	if _, err := fmt.Sscanf(r.Stdout, "cap-effective=0x%x cap-permitted=0x%x cap-bounding=0x%x", &eff, &prm, &bnd); err != nil || bnd&sysAdmin == 0 {
		t.Errorf("want CAP_SYS_ADMIN in the bounding set: %v", r)
	}
}

// testNoNewPrivileges: the os/linux/no-new-privileges isolator of an image
// sets no_new_privs; a root app without it does not get it.
func testNoNewPrivileges(t *testing.T, e *env) {
	e.expectLine("no-new-privs=0", nil, nil, "--print-no-new-privs")
	img := testutil.PatchACI(t, e.inspector, func(m *schema.ImageManifest) {
		var iso types.Isolator
		if err := iso.UnmarshalJSON([]byte(`{"name":"` + types.LinuxNoNewPrivilegesName + `","value":true}`)); err != nil {
			t.Fatal(err)
		}
		m.App.Isolators = append(m.App.Isolators, iso)
	})
	r, _ := e.run(img, "--", "--print-no-new-privs")
	if r.ExitCode != 0 || !testutil.HasLine(r.Stdout, "no-new-privs=1") {
		t.Errorf("an image with os/linux/no-new-privileges: want no-new-privs=1: %v", r)
	}
}

// testSeccompDefault: apps get the default seccomp profile, unless
// --insecure-options=seccomp.
func testSeccompDefault(t *testing.T, e *env) {
	e.expectLine("seccomp=2", nil, nil, "--print-seccomp")
	e.expectLine("seccomp=0", []string{"--insecure-options=image,seccomp"}, nil, "--print-seccomp")
}

// testSeccompFlag: --seccomp refuses the listed system calls with its
// errno.
func testSeccompFlag(t *testing.T, e *env) {
	r, _ := e.run(e.inspector, "--seccomp=mode=remove,errno=ENOTSUP,uname", "--", "--print-kernel")
	if r.ExitCode != 1 || !strings.Contains(r.Stderr, "inspector: --print-kernel: uname: operation not supported") {
		t.Errorf("uname refused with ENOTSUP: want the inspector to fail saying so: %v", r)
	}
}

// testOOMScoreAdj: --oom-score-adj sets the app's OOM score adjustment.
func testOOMScoreAdj(t *testing.T, e *env) {
	e.expectLine("<<<500", nil, []string{"--oom-score-adj=500"}, "--read-file=/proc/self/oom_score_adj")
}

// testProcMasking: the host kernel's knobs in /proc are read-only for the
// app, unless --insecure-options=paths.
func testProcMasking(t *testing.T, e *env) {
	e.expectLine("mount=/proc/sys mountpoint=true readonly=true fstype=proc", nil, nil, "--check-mount=/proc/sys")
	e.expectLine("mount=/proc/sys mountpoint=false readonly=false fstype=proc", []string{"--insecure-options=image,paths"}, nil, "--check-mount=/proc/sys")
}
