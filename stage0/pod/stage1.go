package pod

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"rkt.dev/rkt/stage1"
)

// Stage1Manifest reads the manifest of the stage1 image the pod was prepared
// with.
func (p *Pod) Stage1Manifest() (*schema.ImageManifest, error) {
	b, err := os.ReadFile(p.Dir().Stage1Manifest())
	if err != nil {
		return nil, fmt.Errorf("pod %s: reading its stage1 manifest: %w", p.UUID, err)
	}
	im := &schema.ImageManifest{}
	if err := im.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("pod %s: invalid stage1 manifest: %w", p.UUID, err)
	}
	return im, nil
}

// Stage1Entrypoint returns the host path of the stage1 binary named by the
// entrypoint annotation (stage1.AnnotationRun, …).
func (p *Pod) Stage1Entrypoint(annotation string) (string, error) {
	im, err := p.Stage1Manifest()
	if err != nil {
		return "", err
	}
	return Entrypoint(p.Dir(), im, annotation)
}

// Entrypoint resolves an entrypoint annotation of a stage1 manifest to the
// binary inside the pod's stage1 rootfs.
func Entrypoint(dir stage1.PodDir, im *schema.ImageManifest, annotation string) (string, error) {
	v, ok := im.Annotations.Get(annotation)
	if !ok {
		return "", fmt.Errorf("stage1 image %s has no %s entrypoint", im.Name, annotation)
	}
	return filepath.Join(dir.Stage1Rootfs(), filepath.Clean("/"+v)), nil
}

// Manifest reads the pod manifest.
func (p *Pod) Manifest() (*schema.PodManifest, error) {
	b, err := os.ReadFile(p.Dir().Manifest())
	if err != nil {
		return nil, fmt.Errorf("pod %s has no manifest yet (state %s): %w", p.UUID, p.State(), err)
	}
	pm := &schema.PodManifest{}
	if err := pm.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("pod %s: invalid pod manifest: %w", p.UUID, err)
	}
	return pm, nil
}

// ImageIDs returns the images the pod uses, its stage1 included, so that
// image removal can refuse images in use.
func (p *Pod) ImageIDs() []string {
	var ids []string
	if pm, err := p.Manifest(); err == nil {
		for _, a := range pm.Apps {
			ids = append(ids, a.Image.ID.String())
		}
	}
	if b, err := os.ReadFile(p.Dir().Stage1ImageID()); err == nil {
		ids = append(ids, strings.TrimSpace(string(b)))
	}
	return ids
}

// AppNames returns the names of the pod's apps in manifest order.
func (p *Pod) AppNames() []types.ACName {
	pm, err := p.Manifest()
	if err != nil {
		return nil
	}
	var names []types.ACName
	for _, a := range pm.Apps {
		names = append(names, a.Name)
	}
	return names
}
