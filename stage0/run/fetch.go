package run

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"rkt.dev/rkt/stage0/image"
)

// fetchImages puts every app's image in the store. A local file is imported
// (it has no verifiable signature yet, so it needs --insecure-options=image);
// anything else must already be in the store.
func (s *state) fetchImages() error {
	if len(s.opts.Apps) == 0 {
		return errors.New("no image given; usage: rkt run [flags] IMAGE [app flags] [-- args] [--- IMAGE ...]")
	}
	for _, a := range s.opts.Apps {
		id, err := FetchImage(s.store, a.Image, s.opts.InsecureImage)
		if err != nil {
			return err
		}
		im, err := s.store.Manifest(id)
		if err != nil {
			return err
		}
		s.images = append(s.images, fetchedImage{id: id, manifest: im})
	}
	return nil
}

// IsFileRef reports whether an image reference names a local file rather
// than an image name or ID: it has a path separator or an .aci suffix.
func IsFileRef(ref string) bool {
	return strings.HasPrefix(ref, "file://") || strings.HasSuffix(ref, ".aci") ||
		strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../")
}

// FetchImage returns the store ID of ref: an image file (imported), or a
// name or ID already in the store. It is shared by `rkt fetch` and the run
// pipeline so both accept the same references.
func FetchImage(store *image.Store, ref string, insecureImage bool) (string, error) {
	if scheme, _, ok := strings.Cut(ref, "://"); ok && scheme != "file" {
		return "", fmt.Errorf("image %s: %s:// images are not supported yet; fetch an ACI file instead", ref, scheme)
	}
	if !IsFileRef(ref) {
		return store.Resolve(ref)
	}
	path := strings.TrimPrefix(ref, "file://")
	if !insecureImage {
		return "", fmt.Errorf("image %s: signature verification is not implemented yet for file images; rerun with --insecure-options=image", ref)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", ref, err)
	}
	defer f.Close()
	id, err := store.Import(f)
	if err != nil {
		return "", fmt.Errorf("importing %s: %w", ref, err)
	}
	return id, nil
}

// render makes sure the stage1 and every app image are rendered in the tree
// store.
func (s *state) render() error {
	tree, err := s.store.Render(s.stage1ID)
	if err != nil {
		return fmt.Errorf("rendering stage1 image: %w", err)
	}
	s.stage1Tree = tree
	for i := range s.images {
		im := &s.images[i]
		if im.treeID, err = s.store.Render(im.id); err != nil {
			return fmt.Errorf("rendering image %s: %w", im.manifest.Name, err)
		}
	}
	return nil
}

// markUsed records that the pod's images were used now, for image gc.
func (s *state) markUsed() {
	for _, id := range append([]string{s.stage1ID}, imageIDs(s.images)...) {
		if id == "" {
			continue
		}
		if err := s.store.MarkUsed(id); err != nil {
			s.logf("warning: %v", err)
		}
	}
}

func imageIDs(ims []fetchedImage) []string {
	var ids []string
	for _, im := range ims {
		ids = append(ids, im.id)
	}
	return ids
}
