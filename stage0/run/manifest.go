package run

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"rkt.dev/rkt/stage1"
)

// podManifest builds the pod manifest from the images and the flags: each
// image's app, with the per-app overrides applied, its mounts, and the pod's
// volumes, including an implicit empty volume for every mount point an app
// declares but the user did not mount (as the original rkt does).
func (s *state) podManifest() (*schema.PodManifest, error) {
	pm := schema.BlankPodManifest()
	vols := map[types.ACName]bool{}
	for _, v := range s.opts.Volumes {
		if vols[v.Name] {
			return nil, fmt.Errorf("volume %s is given twice", v.Name)
		}
		if v.Kind == "host" {
			if !filepath.IsAbs(v.Source) {
				return nil, fmt.Errorf("volume %s: source %q must be an absolute path", v.Name, v.Source)
			}
		}
		vols[v.Name] = true
		pm.Volumes = append(pm.Volumes, v)
	}
	explicit := len(pm.Volumes)
	names := map[types.ACName]bool{}
	for i, a := range s.opts.Apps {
		im := s.images[i]
		ra, err := s.runtimeApp(a, im, vols, pm)
		if err != nil {
			return nil, err
		}
		if names[ra.Name] {
			return nil, fmt.Errorf("two apps are named %s; give one of them another name with --name", ra.Name)
		}
		names[ra.Name] = true
		pm.Apps = append(pm.Apps, *ra)
	}
	// The volumes runtimeApp added are the images' own: the stage1 fills
	// them with the images' content.
	var implicit []string
	for _, v := range pm.Volumes[explicit:] {
		implicit = append(implicit, v.Name.String())
	}
	if len(implicit) > 0 {
		pm.Annotations.Set(stage1.AnnotationImageVolumes, strings.Join(implicit, ","))
	}
	for _, p := range s.opts.Ports {
		if !appsDeclarePort(pm, p.Name) {
			return nil, fmt.Errorf("--port=%s: no app of the pod declares a port named %s (see 'rkt image cat-manifest')", p.Name, p.Name)
		}
		pm.Ports = append(pm.Ports, p)
	}
	if s.opts.Interactive && len(pm.Apps) != 1 {
		return nil, fmt.Errorf("--interactive works with exactly one app, not %d", len(pm.Apps))
	}
	return pm, nil
}

func (s *state) runtimeApp(a AppOptions, im fetchedImage, vols map[types.ACName]bool, pm *schema.PodManifest) (*schema.RuntimeApp, error) {
	name := types.ACName(a.Name)
	if a.Name == "" {
		base := path.Base(im.manifest.Name.String())
		n, err := types.SanitizeACName(base)
		if err != nil {
			return nil, fmt.Errorf("image %s: cannot derive an app name; give one with --name: %w", im.manifest.Name, err)
		}
		name = types.ACName(n)
	} else if err := name.Set(a.Name); err != nil {
		return nil, fmt.Errorf("app name %q: %w", a.Name, err)
	}
	app := &types.App{}
	if im.manifest.App != nil {
		cp := *im.manifest.App
		app = &cp
		app.Exec = append(types.Exec{}, cp.Exec...)
		app.Environment = append(types.Environment{}, cp.Environment...)
	}
	switch {
	case a.Exec != "":
		app.Exec = append(types.Exec{a.Exec}, a.Args...)
	case a.HasArgs:
		if len(app.Exec) == 0 {
			return nil, fmt.Errorf("image %s has no command to pass arguments to; give one with --exec", im.manifest.Name)
		}
		app.Exec = append(types.Exec{app.Exec[0]}, a.Args...)
	}
	if len(app.Exec) == 0 {
		return nil, fmt.Errorf("image %s has no app to run; give a command with --exec", im.manifest.Name)
	}
	if !path.IsAbs(app.Exec[0]) && im.manifest.App == nil {
		return nil, fmt.Errorf("--exec %q must be an absolute path", app.Exec[0])
	}
	if a.User != "" {
		app.User = a.User
	}
	if a.Group != "" {
		app.Group = a.Group
	}
	if app.User == "" {
		app.User = "0"
	}
	if app.Group == "" {
		app.Group = "0"
	}
	if a.SupplementaryGIDs != nil {
		app.SupplementaryGIDs = a.SupplementaryGIDs
	}
	if a.WorkingDir != "" {
		if !path.IsAbs(a.WorkingDir) {
			return nil, fmt.Errorf("--working-dir %q must be an absolute path", a.WorkingDir)
		}
		app.WorkingDirectory = a.WorkingDir
	}
	for _, ev := range append(append([]types.EnvironmentVariable{}, s.opts.Env...), a.Env...) {
		app.Environment.Set(ev.Name, ev.Value)
	}
	app.Isolators = append(types.Isolators{}, app.Isolators...)
	if err := a.Isolators.apply(&app.Isolators); err != nil {
		return nil, fmt.Errorf("app %s: %w", name, err)
	}

	ra := &schema.RuntimeApp{
		Name:           name,
		Image:          schema.RuntimeImage{Name: &im.manifest.Name, Labels: im.manifest.Labels},
		App:            app,
		ReadOnlyRootFS: a.ReadOnlyRootFS,
	}
	if err := ra.Image.ID.Set(im.id); err != nil {
		return nil, fmt.Errorf("image ID %s: %w", im.id, err)
	}
	mounted := map[string]bool{}
	for _, m := range a.Mounts {
		if !vols[m.Volume] {
			return nil, fmt.Errorf("app %s: --mount refers to volume %s, which no --volume defines", name, m.Volume)
		}
		if !path.IsAbs(m.Target) {
			return nil, fmt.Errorf("app %s: --mount target %q must be an absolute path", name, m.Target)
		}
		ra.Mounts = append(ra.Mounts, schema.Mount{Volume: m.Volume, Path: path.Clean(m.Target)})
		mounted[path.Clean(m.Target)] = true
	}
	for _, mp := range app.MountPoints {
		if mounted[path.Clean(mp.Path)] {
			continue
		}
		if !vols[mp.Name] {
			// An implicit empty volume, as rkt does, so the app finds a
			// writable directory where it declared one, holding what the
			// image has there (see stage1.AnnotationImageVolumes).
			mode, uid, gid := "0755", 0, 0
			pm.Volumes = append(pm.Volumes, types.Volume{Name: mp.Name, Kind: "empty", Mode: &mode, UID: &uid, GID: &gid})
			vols[mp.Name] = true
			s.logf("app %s: mount point %s (%s) has no volume; using an empty one", name, mp.Name, mp.Path)
		}
		ra.Mounts = append(ra.Mounts, schema.Mount{Volume: mp.Name, Path: path.Clean(mp.Path)})
	}
	return ra, nil
}

// appsDeclarePort reports whether an app's image declares a port name.
func appsDeclarePort(pm *schema.PodManifest, name types.ACName) bool {
	for _, a := range pm.Apps {
		for _, p := range a.App.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}
