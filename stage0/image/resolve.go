package image

import (
	"fmt"
	"strings"

	"github.com/appc/spec/schema/types"

	"rkt.dev/rkt/stage0/image/aci"
)

// minPrefixHex is the fewest hex digits an ID prefix may have; fewer would
// match an arbitrary image of a large store by accident.
const minPrefixHex = 4

// Resolve returns the ID of the stored image that ref names: a full image
// ID, an unambiguous ID prefix ("sha512-" and at least 4 hex digits), or an
// image name with an optional ":version", which picks the most recently
// imported image of that name (and version label). An unknown image gives
// an error satisfying errors.Is(err, ErrNotFound).
func (s *Store) Resolve(ref string) (string, error) {
	if strings.HasPrefix(ref, aci.ImageIDPrefix) {
		return s.resolveID(ref)
	}
	name, version, _ := strings.Cut(ref, ":")
	if _, err := types.NewACIdentifier(name); err != nil {
		return "", fmt.Errorf("%q is neither an image ID (sha512-...) nor an image name: %w", ref, err)
	}
	var labels map[string]string
	if version != "" {
		labels = map[string]string{"version": version}
	}
	return s.resolveName(ref, name, labels)
}

// resolveID finds the image whose ID is or starts with ref.
func (s *Store) resolveID(ref string) (string, error) {
	prefix := strings.ToLower(ref)
	if !aci.IsImageID(prefix, minPrefixHex) {
		return "", fmt.Errorf("%q is not an image ID: want sha512- and %d to 128 hex digits", ref, minPrefixHex)
	}
	ids, err := s.ids()
	if err != nil {
		return "", err
	}
	var matches []string
	for _, id := range ids {
		if strings.HasPrefix(id, prefix) {
			matches = append(matches, id)
		}
	}
	switch len(matches) {
	case 0:
		return "", notFoundError{ref: ref}
	case 1:
		return matches[0], nil
	default:
		return "", fmt.Errorf("image ID prefix %q is ambiguous: it matches %d images; give more digits", ref, len(matches))
	}
}

// resolveName finds the most recently imported image called name that has
// all the given labels.
func (s *Store) resolveName(ref, name string, labels map[string]string) (string, error) {
	images, err := s.List()
	if err != nil {
		return "", err
	}
	found := ""
	for _, im := range images { // oldest first, so the last match wins
		if im.Name == name && hasLabels(im, labels) {
			found = im.ID
		}
	}
	if found == "" {
		return "", notFoundError{ref: ref}
	}
	return found, nil
}

func hasLabels(im Image, want map[string]string) bool {
	for k, v := range want {
		if im.Labels[k] != v {
			return false
		}
	}
	return true
}

// resolveDependency finds a dependency by its image ID when the manifest
// pins one, else by name and labels, as the appc spec's dependency
// matching does with the store as the only discovery source.
func (s *Store) resolveDependency(d types.Dependency) (string, error) {
	var (
		id  string
		err error
	)
	if d.ImageID != nil && !d.ImageID.Empty() {
		id, err = s.resolveID(d.ImageID.String())
	} else {
		labels := make(map[string]string, len(d.Labels))
		for _, l := range d.Labels {
			labels[l.Name.String()] = l.Value
		}
		id, err = s.resolveName(d.ImageName.String(), d.ImageName.String(), labels)
	}
	if err != nil {
		return "", fmt.Errorf("resolving dependency %s: %w", d.ImageName, err)
	}
	return id, nil
}
