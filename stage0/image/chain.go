package image

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"path"
	"slices"

	"rkt.dev/rkt/stage0/image/aci"
)

// Bounds on a dependency graph. Image IDs cannot form a cycle, but names
// can (a depends on b, b on a), and a small diamond-shaped graph can
// expand into an exponential number of layers.
const (
	maxDepth  = 32
	maxLayers = 256
)

// layer is one image applied during a render.
type layer struct {
	id    string
	depth int
	// whitelists are the non-empty pathWhitelists of this image and of
	// every image depending on it on the path from the rendered image.
	whitelists []whitelist
}

// chain returns the layers that render the image id, in application
// order: dependencies depth-first in the order listed, each before the
// image that needs it, the image itself last. The store lock must be held.
func (s *Store) chain(id string) ([]layer, error) {
	c := &chainer{s: s}
	if err := c.visit(id, 0, nil, nil); err != nil {
		return nil, err
	}
	return c.layers, nil
}

type chainer struct {
	s      *Store
	layers []layer
}

func (c *chainer) visit(id string, depth int, ancestors []string, wls []whitelist) error {
	if depth > maxDepth {
		return fmt.Errorf("image %s: dependencies nest deeper than %d levels", id, maxDepth)
	}
	if slices.Contains(ancestors, id) {
		return fmt.Errorf("image %s depends on itself through its dependencies", id)
	}
	im, err := c.s.Manifest(id)
	if err != nil {
		return err
	}
	if len(im.PathWhitelist) > 0 {
		wls = append(slices.Clip(wls), newWhitelist(im.PathWhitelist))
	}
	ancestors = append(slices.Clip(ancestors), id)
	for _, d := range im.Dependencies {
		depID, err := c.s.resolveDependency(d)
		if err != nil {
			return fmt.Errorf("image %s: %w", id, err)
		}
		if err := c.visit(depID, depth+1, ancestors, wls); err != nil {
			return err
		}
	}
	if len(c.layers) == maxLayers {
		return fmt.Errorf("image %s: more than %d layers with its dependencies", ancestors[0], maxLayers)
	}
	c.layers = append(c.layers, layer{id: id, depth: depth, whitelists: wls})
	return nil
}

// treeStoreID names the rendering of a chain. The depths are hashed with
// the IDs because together they fix which whitelists apply to which layer.
// The version tag changes whenever rendering rules change, so old trees
// are not mistaken for new ones.
func treeStoreID(layers []layer) string {
	h := sha512.New()
	fmt.Fprintln(h, "rkt tree v1")
	for _, l := range layers {
		fmt.Fprintln(h, l.depth, l.id)
	}
	return "deps-" + aci.ImageIDPrefix + hex.EncodeToString(h.Sum(nil))
}

// whitelist is a pathWhitelist: the listed paths, and the directories
// that must exist to hold them.
type whitelist struct {
	paths   map[string]bool
	parents map[string]bool
}

func newWhitelist(list []string) whitelist {
	w := whitelist{paths: make(map[string]bool), parents: map[string]bool{"/": true}}
	for _, p := range list {
		p = path.Clean(p)
		w.paths[p] = true
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			w.parents[d] = true
		}
	}
	return w
}

func (w whitelist) keeps(p string, dir bool) bool {
	return w.paths[p] || (dir && w.parents[p])
}

// keep is the aci.ExtractOptions.Keep of a layer: an entry must pass every
// whitelist that applies to it.
func (l layer) keep() func(string, bool) bool {
	if len(l.whitelists) == 0 {
		return nil
	}
	return func(p string, dir bool) bool {
		for _, w := range l.whitelists {
			if !w.keeps(p, dir) {
				return false
			}
		}
		return true
	}
}
