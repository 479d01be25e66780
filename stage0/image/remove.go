package image

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"rkt.dev/rkt/stage0/image/aci"
)

// InUseFunc reports the pods (their UUIDs) that use an image; none means
// the image may be removed. The pod code provides it, which keeps this
// package ignorant of pod directories.
type InUseFunc func(imageID string) (pods []string)

// MarkUsed records that a pod is using the images ids now, which keeps
// them from GC for the grace period. The images each was last rendered on
// top of are marked too, since removing them would remove its tree.
//
// The time goes into each index record's modification time (see
// readRecord), not its JSON: every rkt run marks its images, and setting a
// time is one metadata update that a crash cannot tear, where rewriting a
// record safely needs an fsync on the way to every pod start.
func (s *Store) MarkUsed(ids ...string) error {
	// Shared: only Remove and GC, which lock exclusively, must not run
	// meanwhile; marks by concurrent runs set the same kind of time.
	l, err := s.lockStore(false)
	if err != nil {
		return err
	}
	defer l.Close()
	now := s.now()
	marked := map[string]bool{}
	mark := func(id string) error {
		if marked[id] {
			return nil
		}
		marked[id] = true
		err := os.Chtimes(s.recordPath(id), now, now)
		if errors.Is(err, os.ErrNotExist) {
			return nil // removed meanwhile: nothing to keep
		}
		if err != nil {
			return fmt.Errorf("recording the use of image %s: %w", id, err)
		}
		return nil
	}
	for _, id := range ids {
		im, err := s.readRecord(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := mark(id); err != nil {
			return err
		}
		if t, err := s.readTree(im.TreeStoreID); err == nil {
			for _, dep := range t.Images {
				if err := mark(dep); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Remove deletes the image id: its record, blob and manifest, and every
// rendered tree that contains it. It refuses when inUse (which may be nil)
// reports pods using the image or an image rendered on top of it.
func (s *Store) Remove(id string, inUse InUseFunc) error {
	l, err := s.lockStore(true)
	if err != nil {
		return err
	}
	defer l.Close()
	// A damaged record still names an image that can be removed.
	if _, err := s.readRecord(id); errors.Is(err, ErrNotFound) {
		return err
	}
	if err := s.checkUnused(id, inUse); err != nil {
		return err
	}
	return s.removeImage(id)
}

// checkUnused returns an *InUseError if pods use id directly or use an
// image whose rendered tree contains id.
func (s *Store) checkUnused(id string, inUse InUseFunc) error {
	if inUse == nil {
		return nil
	}
	if pods := inUse(id); len(pods) > 0 {
		return &InUseError{ID: id, Pods: pods}
	}
	trees, err := s.treesWith(id)
	if err != nil {
		return err
	}
	for _, t := range trees {
		top := t.Images[len(t.Images)-1]
		if top == id {
			continue
		}
		if pods := inUse(top); len(pods) > 0 {
			return &InUseError{ID: id, Pods: pods, Via: top}
		}
	}
	return nil
}

// treesWith returns the IDs and records of the trees containing image id.
func (s *Store) treesWith(id string) (map[string]tree, error) {
	ids, err := s.treeIDs()
	if err != nil {
		return nil, err
	}
	trees := make(map[string]tree)
	for _, treeID := range ids {
		if t, err := s.readTree(treeID); err == nil && slices.Contains(t.Images, id) {
			trees[treeID] = t
		}
	}
	return trees, nil
}

// removeImage deletes an image with the store lock held exclusively. The
// record goes first: from then on the image does not exist, and anything a
// failure leaves behind is debris for GC.
func (s *Store) removeImage(id string) error {
	trees, err := s.treesWith(id)
	if err != nil {
		return err
	}
	// A damaged record names no signed file; GC's sweep removes it then.
	rec, _ := s.readRecord(id)
	if err := os.Remove(s.recordPath(id)); err != nil {
		return fmt.Errorf("removing image %s: %w", id, err)
	}
	paths := []string{s.manifestPath(id), s.blobPath(id)}
	if rec.Signed != "" && rec.Signed != id && aci.IsImageID(rec.Signed, 128) {
		paths = append(paths, s.signedPath(rec.Signed))
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing image %s: %w", id, err)
		}
	}
	for treeID := range trees {
		if err := s.removeTree(treeID); err != nil {
			return err
		}
		os.Remove(s.casPath("treelocks", treeID))
	}
	return s.forgetTrees(trees)
}

// forgetTrees clears index records that point to removed trees.
func (s *Store) forgetTrees(removed map[string]tree) error {
	images, err := s.List()
	if err != nil {
		return err
	}
	for _, im := range images {
		if _, ok := removed[im.TreeStoreID]; ok {
			im.TreeStoreID, im.TreeStoreSize = "", 0
			if err := s.writeRecord(im); err != nil {
				return err
			}
		}
	}
	return nil
}

// GC removes the images that no pod has used within gracePeriod and that
// inUse (which may be nil) does not report, then everything in the store
// that belongs to no image: trees of removed images, files left by
// interrupted imports, renders and removals. It returns the IDs of the
// removed images.
func (s *Store) GC(gracePeriod time.Duration, inUse InUseFunc) ([]string, error) {
	l, err := s.lockStore(true)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	images, err := s.List()
	if err != nil {
		return nil, err
	}
	cutoff := s.now().Add(-gracePeriod)
	var removed []string
	for _, im := range images {
		if im.LastUsed.After(cutoff) {
			continue
		}
		err := s.checkUnused(im.ID, inUse)
		if errors.As(err, new(*InUseError)) {
			continue
		}
		if err != nil {
			return removed, err
		}
		if err := s.removeImage(im.ID); err != nil {
			return removed, err
		}
		removed = append(removed, im.ID)
	}
	return removed, s.sweep()
}
