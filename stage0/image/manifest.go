package image

import (
	"errors"
	"fmt"
	"os"

	"github.com/appc/spec/schema"

	"rkt.dev/rkt/stage0/image/aci"
)

// Manifest returns the manifest of the stored image id.
func (s *Store) Manifest(id string) (*schema.ImageManifest, error) {
	if !aci.IsImageID(id, 128) {
		return nil, notFoundError{ref: id}
	}
	b, err := os.ReadFile(s.manifestPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, notFoundError{ref: id}
	}
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of image %s: %w", id, err)
	}
	im, err := aci.ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("the stored manifest of image %s is damaged (%w); remove the image with 'rkt image rm %s' and fetch it again", id, err, id)
	}
	return im, nil
}
