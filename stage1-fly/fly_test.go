package main

import (
	"testing"

	"rkt.dev/rkt/stage1/testsuite"
)

// TestConformance runs the stage1 conformance suite against the fly
// flavor (build/stage1-fly.aci). It skips without root or a build, like
// every functional test (see tests/testutil).
//
// fly runs privileged host software in the host's namespaces: it enforces
// the isolators an image or the user asks for (cgroup limits, capability
// sets, no_new_privs, seccomp sets, oom-score-adj) but applies none of
// rkt's defaults, and has no UTS namespace or /proc of its own.
func TestConformance(t *testing.T) {
	const noDefaults = "fly applies no default isolation: it runs privileged host software (apprun.IsolatorOptions.Defaults)"
	testsuite.Run(t, testsuite.Flavor{Name: "fly", Parallel: true, Skip: map[string]string{
		"Hostname":            "fly shares the host's UTS namespace",
		"ProcMasking":         "fly shares the host's /proc on purpose",
		"SignalPID1":          "fly shares the host's PID namespace: PID 1 is the host's init",
		"CapabilitiesDefault": noDefaults,
		"SeccompDefault":      noDefaults,
	}})
}
