package main

import (
	"testing"

	"rkt.dev/rkt/stage1/testsuite"
)

// TestConformance runs the stage1 conformance suite against the fly
// flavor (build/stage1-fly.aci). It skips without root or a build, like
// every functional test (see tests/testutil).
func TestConformance(t *testing.T) {
	testsuite.Run(t, testsuite.Flavor{Name: "fly", Parallel: true})
}
