package main

import (
	"fmt"
	"strconv"

	"github.com/appc/spec/schema/types"

	"rkt.dev/rkt/guest-agent/api"
	"rkt.dev/rkt/stage1"
	"rkt.dev/rkt/stage1/apprun"
)

// share is a host directory exported to the guest by one virtiofsd.
type share struct {
	Tag      string
	Source   string
	ReadOnly bool
	// Cache is virtiofsd's cache mode: "always" for image trees, which
	// never change while a pod uses them, "auto" for volumes, which the
	// host may change.
	Cache string
	// Image is set for an image tree (an app's rootfs), which can also
	// reach the guest as an erofs disk; volumes cannot.
	Image bool
}

// vmPlan is everything the VM and the agent are told about a pod.
type vmPlan struct {
	Size     vmSize
	Hostname string
	Shares   []share
	Volumes  []*api.Volume
	Apps     []*api.App
}

// planPod maps a pod onto the VM: one read-only share per distinct image
// tree (apps of the same image share it), one share per kind=host volume
// (read-only when the volume is), and kind=empty volumes as directories in
// guest memory, shared by the pod's apps.
func planPod(p *stage1.Pod, flags stage1.RunFlags, hostCPUs int) (*vmPlan, error) {
	size, err := sizeVM(p.Apps, hostCPUs)
	if err != nil {
		return nil, err
	}
	plan := &vmPlan{Size: size, Hostname: flags.Hostname}
	if plan.Hostname == "" {
		plan.Hostname = "rkt-" + p.UUID
	}
	// Isolators are enforced by the supervisor in the guest, with rkt's
	// defaults as on nspawn; each app with resource limits gets a cgroup
	// under "pod" in the guest's cgroup2 hierarchy.
	isoOpts := apprun.IsolatorOptionsFromFlags(flags)
	isoOpts.Defaults, isoOpts.CgroupParent = true, "pod"
	treeTags := map[string]string{}
	for _, v := range p.Manifest.Volumes {
		vol := &api.Volume{Name: v.Name.String(), ReadOnly: v.ReadOnly != nil && *v.ReadOnly}
		switch v.Kind {
		case "host":
			tag := "v" + strconv.Itoa(len(plan.Shares))
			plan.Shares = append(plan.Shares, share{Tag: tag, Source: v.Source, ReadOnly: vol.ReadOnly, Cache: "auto"})
			vol.Source = &api.Volume_Share{Share: tag}
		case "empty":
			e, err := emptyVolume(v)
			if err != nil {
				return nil, err
			}
			vol.Source = &api.Volume_Empty{Empty: e}
		default:
			return nil, fmt.Errorf("volume %s: kind %q is not supported by the kvm stage1 (use host or empty)", v.Name, v.Kind)
		}
		plan.Volumes = append(plan.Volumes, vol)
	}
	for _, a := range p.Apps {
		tag, ok := treeTags[a.TreeRootfs]
		if !ok {
			tag = "r" + strconv.Itoa(len(treeTags))
			treeTags[a.TreeRootfs] = tag
			plan.Shares = append(plan.Shares, share{Tag: tag, Source: a.TreeRootfs, ReadOnly: true, Cache: "always", Image: true})
		}
		app := &api.App{
			Name:             a.Name.String(),
			RootfsShare:      tag,
			Exec:             a.Exec,
			Env:              a.Env,
			User:             a.User,
			Group:            a.Group,
			WorkingDirectory: a.WorkDir,
			ReadOnlyRootfs:   a.ReadOnlyRootFS,
			Stdin:            flags.Interactive,
		}
		si, err := apprun.SupervisorIsolators(a.Name, a.Isolators, isoOpts)
		if err != nil {
			return nil, err
		}
		app.Isolators = api.NewIsolators(si)
		for _, g := range a.SupplementaryGIDs {
			app.SupplementaryGids = append(app.SupplementaryGids, uint32(g))
		}
		for _, m := range a.Mounts {
			app.Mounts = append(app.Mounts, &api.AppMount{Volume: m.Volume.String(), Path: m.Target, ReadOnly: m.ReadOnly, CopyUp: m.FromImage})
		}
		plan.Apps = append(plan.Apps, app)
	}
	return plan, nil
}

// emptyVolume reads a kind=empty volume's mode and owner (appc defaults:
// 0755, root).
func emptyVolume(v types.Volume) (*api.EmptyVolume, error) {
	e := &api.EmptyVolume{Mode: 0o755}
	if v.Mode != nil {
		m, err := strconv.ParseUint(*v.Mode, 8, 32)
		if err != nil || m > 0o7777 {
			return nil, fmt.Errorf("volume %s: mode %q is not an octal file mode", v.Name, *v.Mode)
		}
		e.Mode = uint32(m)
	}
	if v.UID != nil {
		e.Uid = uint32(*v.UID)
	}
	if v.GID != nil {
		e.Gid = uint32(*v.GID)
	}
	return e, nil
}
