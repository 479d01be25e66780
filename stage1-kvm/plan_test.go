package main

import (
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"rkt.dev/rkt/stage1"
)

func TestPlanPod(t *testing.T) {
	ro, mode, uid := true, "1777", 1000
	vols := []types.Volume{
		{Name: "cfg", Kind: "host", Source: "/etc/cfg", ReadOnly: &ro},
		{Name: "data", Kind: "host", Source: "/srv/data"},
		{Name: "scratch", Kind: "empty", Mode: &mode, UID: &uid},
	}
	apps := []stage1.App{
		{Name: "a", TreeRootfs: "/t/1/rootfs", Exec: []string{"/a"}, Mounts: []stage1.Mount{{Volume: "cfg", Target: "/cfg", ReadOnly: true}}},
		{Name: "b", TreeRootfs: "/t/1/rootfs", Exec: []string{"/b"}, Mounts: []stage1.Mount{{Volume: "scratch", Target: "/s"}}},
		{Name: "c", TreeRootfs: "/t/2/rootfs", Exec: []string{"/c"}},
	}
	pod := &stage1.Pod{UUID: "u1", Manifest: &schema.PodManifest{Volumes: vols}, Apps: apps}
	plan, err := planPod(pod, stage1.RunFlags{Interactive: true}, 4)
	if err != nil {
		t.Fatal(err)
	}
	wantShares := []share{
		{Tag: "v0", Source: "/etc/cfg", ReadOnly: true, Cache: "auto"},
		{Tag: "v1", Source: "/srv/data", Cache: "auto"},
		{Tag: "r0", Source: "/t/1/rootfs", ReadOnly: true, Cache: "always", Image: true},
		{Tag: "r1", Source: "/t/2/rootfs", ReadOnly: true, Cache: "always", Image: true},
	}
	if len(plan.Shares) != len(wantShares) {
		t.Fatalf("shares = %+v, want %+v", plan.Shares, wantShares)
	}
	for i := range wantShares {
		if plan.Shares[i] != wantShares[i] {
			t.Errorf("share %d = %+v, want %+v", i, plan.Shares[i], wantShares[i])
		}
	}
	if plan.Hostname != "rkt-u1" {
		t.Errorf("hostname = %q, want the rkt default rkt-UUID", plan.Hostname)
	}
	if e := plan.Volumes[2].GetEmpty(); e == nil || e.Mode != 0o1777 || e.Uid != 1000 || e.Gid != 0 {
		t.Errorf("empty volume = %+v", plan.Volumes[2])
	}
	if !plan.Volumes[0].ReadOnly || plan.Volumes[0].GetShare() != "v0" {
		t.Errorf("read-only host volume = %+v", plan.Volumes[0])
	}
	for i, want := range []string{"r0", "r0", "r1"} {
		if plan.Apps[i].RootfsShare != want || !plan.Apps[i].Stdin {
			t.Errorf("app %s: rootfs share %q stdin %v, want %q and stdin", plan.Apps[i].Name, plan.Apps[i].RootfsShare, plan.Apps[i].Stdin, want)
		}
	}
	if iso := plan.Apps[0].Isolators; iso == nil || !iso.CapabilitiesSet || !iso.MaskKernelPaths || iso.Seccomp == nil {
		t.Errorf("app a isolators = %v; want rkt's defaults (capabilities, seccomp, masked paths)", iso)
	}
	if m := plan.Apps[0].Mounts; len(m) != 1 || m[0].Volume != "cfg" || m[0].Path != "/cfg" || !m[0].ReadOnly {
		t.Errorf("app a mounts = %v", m)
	}
}

func TestPlanPodErrors(t *testing.T) {
	bad := "9z"
	tests := []struct {
		name string
		vol  types.Volume
	}{
		{"unknown kind", types.Volume{Name: "x", Kind: "block"}},
		{"bad mode", types.Volume{Name: "x", Kind: "empty", Mode: &bad}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &stage1.Pod{Manifest: &schema.PodManifest{Volumes: []types.Volume{tt.vol}}, Apps: []stage1.App{{Name: "a"}}}
			if _, err := planPod(pod, stage1.RunFlags{}, 1); err == nil {
				t.Error("planPod succeeded")
			}
		})
	}
}
