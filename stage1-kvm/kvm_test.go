package main

import (
	"testing"

	"rkt.dev/rkt/stage1/testsuite"
)

// TestConformance runs the stage1 conformance suite against the kvm flavor
// (build/stage1-kvm.aci): every case runs real VMs under QEMU, resumed
// from a VM template where the pod allows it (cases with host volumes
// boot). It skips without root or a build, like every functional test (see
// tests/testutil). --net=none keeps the suite independent of CNI;
// networking has its own tests (tests/network_test.go).
func TestConformance(t *testing.T) {
	testsuite.Run(t, testsuite.Flavor{Name: "kvm", RunArgs: []string{"--net=none"}, Parallel: true})
}

// TestConformanceBooted runs the suite with templates off: every VM boots,
// with its images on virtio-fs and the agent on the host's vsock transport.
func TestConformanceBooted(t *testing.T) {
	testsuite.Run(t, testsuite.Flavor{Name: "kvm", RunArgs: []string{"--net=none"}, Env: []string{EnvTemplate + "=off"}, Parallel: true})
}
