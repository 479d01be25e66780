package docker

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

// Annotations the converted manifest carries, with the names docker2aci
// gave them, so tools written for rkt's Docker images keep working.
const (
	AnnotationRepository   = "appc.io/docker/repository"
	AnnotationRegistryURL  = "appc.io/docker/registryurl"
	AnnotationTag          = "appc.io/docker/tag"
	AnnotationImageID      = "appc.io/docker/imageid"
	AnnotationManifestHash = "appc.io/docker/manifesthash"
	AnnotationEntrypoint   = "appc.io/docker/entrypoint"
	AnnotationCmd          = "appc.io/docker/cmd"
	AnnotationOriginalName = "appc.io/docker/originalname"
)

// Info describes where a converted image came from.
type Info struct {
	// Name is the image name, an appc identifier, and Version its version
	// label (the tag), "" for none.
	Name, Version string
	// Registry ("index.docker.io", "127.0.0.1:5000"), Repository
	// ("library/busybox") and Tag are the Docker coordinates, "" when the
	// source has none.
	Registry, Repository, Tag string
	// ManifestDigest is the digest of the image manifest ("sha256:…"),
	// "" for a docker-archive, which has none.
	ManifestDigest string
	// Original is the reference the user gave.
	Original string
}

// passwd and group are the files Squash captures for User resolution.
const (
	passwdFile = "/etc/passwd"
	groupFile  = "/etc/group"
)

// appManifest converts an image configuration into an appc image
// manifest: Entrypoint+Cmd become the exec, Env the environment,
// WorkingDir the working directory, User the user and group (resolved
// through the image's own /etc/passwd and /etc/group, as Docker does),
// ExposedPorts the ports ("<port>-<proto>") and Volumes the mount points
// ("volume-<path>").
func appManifest(cfg *v1.ConfigFile, configDigest string, info Info, files map[string][]byte) (*schema.ImageManifest, error) {
	im := schema.BlankImageManifest()
	if err := im.Name.Set(info.Name); err != nil {
		return nil, fmt.Errorf("image name %q: %w", info.Name, err)
	}
	im.Labels = labels(cfg, info.Version)

	c := cfg.Config
	app := &types.App{
		Exec:        append(append(types.Exec{}, c.Entrypoint...), c.Cmd...),
		Environment: environment(c.Env),
	}
	app.User, app.Group = resolveUser(c.User, files[passwdFile], files[groupFile])
	if wd := c.WorkingDir; wd != "" {
		app.WorkingDirectory = path.Clean("/" + wd)
	}
	app.Ports = ports(c.ExposedPorts)
	app.MountPoints = mountPoints(c.Volumes)
	im.App = app

	ann := map[string]string{
		AnnotationRepository:   info.Repository,
		AnnotationRegistryURL:  info.Registry,
		AnnotationTag:          info.Tag,
		AnnotationImageID:      configDigest,
		AnnotationManifestHash: info.ManifestDigest,
		AnnotationOriginalName: info.Original,
		AnnotationEntrypoint:   jsonList(c.Entrypoint),
		AnnotationCmd:          jsonList(c.Cmd),
	}
	for _, k := range sortedKeys(ann) {
		if ann[k] != "" {
			im.Annotations.Set(types.ACIdentifier(k), ann[k])
		}
	}
	return im, nil
}

// labels are the version, os and arch labels. An architecture appc has no
// name for gets no arch label rather than a wrong one.
func labels(cfg *v1.ConfigFile, version string) types.Labels {
	var ls types.Labels
	if version != "" {
		ls = append(ls, types.Label{Name: "version", Value: version})
	}
	os := cfg.OS
	if os == "" {
		os = "linux"
	}
	ls = append(ls, types.Label{Name: "os", Value: os})
	if arch, ok := appcArch(cfg.Architecture, cfg.Variant); ok {
		ls = append(ls, types.Label{Name: "arch", Value: arch})
	}
	return ls
}

// appcArch maps Go/OCI architecture names to appc's (uname -m style).
func appcArch(arch, variant string) (string, bool) {
	switch arch {
	case "amd64", "ppc64le", "s390x", "ppc64":
		return arch, true
	case "386":
		return "i386", true
	case "arm64":
		return "aarch64", true
	case "arm":
		switch variant {
		case "v6":
			return "armv6l", true
		case "v7", "":
			return "armv7l", true
		}
	}
	return "", false
}

// environment keeps the variables appc can represent; Docker accepts
// names appc refuses (with dots, say), which would make the whole
// manifest invalid.
func environment(env []string) types.Environment {
	e := types.Environment{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		probe := types.Environment{{Name: k, Value: v}}
		if _, err := json.Marshal(probe); err != nil {
			continue
		}
		e.Set(k, v)
	}
	return e
}

// ports turns {"80/tcp": {}} into a port named "80-tcp".
func ports(exposed map[string]struct{}) []types.Port {
	var out []types.Port
	for _, k := range sortedKeys(exposed) {
		num, proto, ok := strings.Cut(k, "/")
		if !ok {
			proto = "tcp"
		}
		n, err := strconv.ParseUint(num, 10, 16)
		if err != nil || n == 0 {
			continue
		}
		pname, err := types.SanitizeACName(num + "-" + proto)
		if err != nil {
			continue
		}
		out = append(out, types.Port{Name: types.ACName(pname), Protocol: proto, Port: uint(n), Count: 1})
	}
	return out
}

// mountPoints turns {"/var/lib/db": {}} into a mount point named
// "volume-var-lib-db".
func mountPoints(volumes map[string]struct{}) []types.MountPoint {
	var out []types.MountPoint
	seen := map[string]bool{}
	for _, v := range sortedKeys(volumes) {
		p := path.Clean("/" + v)
		n, err := types.SanitizeACName("volume-" + strings.Trim(p, "/"))
		if err != nil || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, types.MountPoint{Name: types.ACName(n), Path: p})
	}
	return out
}

func jsonList(l []string) string {
	if len(l) == 0 {
		return ""
	}
	b, _ := json.Marshal(l)
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// imageName turns Docker coordinates into an appc image name:
// "127.0.0.1:5000/library/busybox" becomes "127.0.0.1-5000/library/busybox",
// since appc names have no colons.
func imageName(s string) (string, error) {
	n, err := types.SanitizeACIdentifier(strings.ReplaceAll(s, ":", "-"))
	if err != nil {
		return "", fmt.Errorf("cannot make an image name of %q: %w", s, err)
	}
	// Sanitizing replaces other invalid characters with "_", which appc
	// names do not allow either.
	n = strings.ReplaceAll(n, "_", "-")
	if _, err := types.NewACIdentifier(n); err != nil {
		return "", fmt.Errorf("cannot make an image name of %q: %w", s, err)
	}
	return n, nil
}
