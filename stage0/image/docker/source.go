package docker

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Kind is where a Docker or OCI image comes from.
type Kind int

// The kinds of source.
const (
	// Registry is docker://[REGISTRY[:PORT]/]NAME[:TAG|@DIGEST].
	Registry Kind = iota + 1
	// OCILayout is oci-layout:PATH[:TAG], an OCI image layout directory.
	OCILayout
	// DockerArchive is docker-archive:PATH, a `docker save` tarball.
	DockerArchive
)

// Source is a parsed Docker or OCI image reference.
type Source struct {
	Kind Kind
	// Raw is the reference as the user gave it, for messages and the
	// appc.io/docker/originalname annotation.
	Raw string
	// Ref is the registry reference, with Docker's defaults applied
	// (index.docker.io, library/, :latest).
	Ref name.Reference
	// Path is the layout directory or archive file, and Tag the image
	// within a layout (its org.opencontainers.image.ref.name).
	Path, Tag string
}

// Prefixes of the references ParseSource accepts.
const (
	registryPrefix      = "docker://"
	ociLayoutPrefix     = "oci-layout:"
	dockerArchivePrefix = "docker-archive:"
)

// IsSource reports whether ref names a Docker or OCI image, so a caller
// can dispatch to this package before parsing.
func IsSource(ref string) bool {
	for _, p := range []string{registryPrefix, ociLayoutPrefix, dockerArchivePrefix} {
		if strings.HasPrefix(ref, p) {
			return true
		}
	}
	return false
}

// ParseSource parses a docker://, oci-layout: or docker-archive:
// reference. insecureHTTP lets a registry that is not on the loopback
// interface be reached over plain HTTP.
func ParseSource(ref string, insecureHTTP bool) (Source, error) {
	src := Source{Raw: ref}
	switch {
	case strings.HasPrefix(ref, registryPrefix):
		src.Kind = Registry
		var opts []name.Option
		if insecureHTTP {
			opts = append(opts, name.Insecure)
		}
		r, err := name.ParseReference(strings.TrimPrefix(ref, registryPrefix), opts...)
		if err != nil {
			return Source{}, fmt.Errorf("image %s: %w (want docker://[REGISTRY[:PORT]/]NAME[:TAG|@DIGEST])", ref, err)
		}
		src.Ref = r
	case strings.HasPrefix(ref, ociLayoutPrefix):
		src.Kind = OCILayout
		src.Path = strings.TrimPrefix(ref, ociLayoutPrefix)
		// PATH:TAG, unless what follows the last colon is a path.
		if i := strings.LastIndexByte(src.Path, ':'); i >= 0 && !strings.Contains(src.Path[i:], "/") {
			src.Path, src.Tag = src.Path[:i], src.Path[i+1:]
		}
	case strings.HasPrefix(ref, dockerArchivePrefix):
		src.Kind = DockerArchive
		src.Path = strings.TrimPrefix(ref, dockerArchivePrefix)
	default:
		return Source{}, fmt.Errorf("image %s is not a docker://, oci-layout: or docker-archive: reference", ref)
	}
	if src.Kind != Registry {
		if src.Path == "" {
			return Source{}, fmt.Errorf("image %s: no path given", ref)
		}
		abs, err := filepath.Abs(src.Path)
		if err != nil {
			return Source{}, fmt.Errorf("image %s: %w", ref, err)
		}
		src.Path = abs
	}
	return src, nil
}
