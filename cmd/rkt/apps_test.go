package main

import (
	"reflect"
	"testing"

	"rkt.dev/rkt/stage0/run"
)

// TestParseAppIsolators: the isolator flags are per app, follow their
// image, and only the ones given are set.
func TestParseAppIsolators(t *testing.T) {
	shares, oom := 512, -5
	apps, err := parseApps([]string{"a.aci", "--memory", "64M", "--caps-retain=CAP_NET_RAW,CAP_KILL", "--cpu-shares", "512",
		"--seccomp=mode=remove,errno=ENOSYS,mkdir", "--", "x", "---", "b.aci", "--oom-score-adj=-5", "--cpu=1", "--caps-remove", "CAP_CHOWN"})
	if err != nil {
		t.Fatal(err)
	}
	want := []run.IsolatorOptions{
		{Memory: "64M", CapsRetain: []string{"CAP_NET_RAW", "CAP_KILL"}, CPUShares: &shares, Seccomp: "mode=remove,errno=ENOSYS,mkdir"},
		{CPU: "1", OOMScoreAdj: &oom, CapsRemove: []string{"CAP_CHOWN"}},
	}
	if len(apps) != 2 {
		t.Fatalf("got %d apps, want 2: %+v", len(apps), apps)
	}
	for i, a := range apps {
		if !reflect.DeepEqual(a.Isolators, want[i]) {
			t.Errorf("app %s: got %+v, want %+v", a.Image, a.Isolators, want[i])
		}
	}
}
