package main

import (
	"testing"

	"rkt.dev/rkt/stage1/testsuite"
)

// TestConformance runs the stage1 conformance suite against the nspawn
// flavor (build/stage1-nspawn.aci). It skips without root or a build, like
// every functional test (see tests/testutil). --net=none: nspawn pods get
// a private network namespace with loopback only until CNI networking
// drives them.
func TestConformance(t *testing.T) {
	testsuite.Run(t, testsuite.Flavor{Name: "nspawn", RunArgs: []string{"--net=none"}, Parallel: true})
}

// TestConformancePrivateUsers runs the suite again with every pod in a
// user namespace (--private-users).
func TestConformancePrivateUsers(t *testing.T) {
	testsuite.Run(t, testsuite.Flavor{Name: "nspawn", RunArgs: []string{"--net=none", "--private-users"}, Parallel: true,
		Skip: map[string]string{
			"VolumeHostReadWrite": "host volumes are not shifted: to root in a user namespace, files of host root belong to nobody (docs/security.md)",
		}})
}
