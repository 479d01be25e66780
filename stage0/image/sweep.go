package image

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// staleImport is how long an import's temporary file may go unwritten
// before GC takes it for the leftover of a killed rkt. Imports hold no lock
// while they stream, so age is the only sign.
const staleImport = 24 * time.Hour

// sweep removes what belongs to no image. The store lock must be held
// exclusively: then no render, removal or import commit is in progress,
// so every temporary file except streaming imports is debris.
func (s *Store) sweep() error {
	ids, err := s.ids()
	if err != nil {
		return err
	}
	stored := make(map[string]bool, len(ids))
	for _, id := range ids {
		stored[id] = true
	}
	return errors.Join(
		s.sweepTrees(stored),
		removeChildren(s.treeTmpDir(), func(os.DirEntry) bool { return true }),
		removeChildren(s.casPath("treelocks"), func(de os.DirEntry) bool {
			_, err := os.Lstat(s.treeDir(de.Name()))
			return errors.Is(err, os.ErrNotExist)
		}),
		removeChildren(s.casPath("index"), isTempName),
		s.sweepSharded("blob", stored),
		s.sweepSharded("imageManifest", stored),
		s.sweepSigned(),
		removeChildren(s.casPath("tmp"), func(de os.DirEntry) bool {
			fi, err := de.Info()
			return err == nil && time.Since(fi.ModTime()) > staleImport
		}),
	)
}

// sweepTrees removes trees that are damaged or contain a removed image.
func (s *Store) sweepTrees(stored map[string]bool) error {
	treeIDs, err := s.treeIDs()
	if err != nil {
		return err
	}
	var errs []error
	for _, treeID := range treeIDs {
		t, err := s.readTree(treeID)
		keep := err == nil
		for _, id := range t.Images {
			keep = keep && stored[id]
		}
		if !keep {
			errs = append(errs, s.removeTree(treeID))
		}
	}
	return errors.Join(errs...)
}

// sweepSigned removes the kept signed files (cas/signed/) that no stored
// image's record names. Where a record cannot be read, it cannot tell, and
// removes nothing.
func (s *Store) sweepSigned() error {
	images, err := s.List()
	if err != nil {
		return err
	}
	kept := make(map[string]bool)
	for _, im := range images {
		if im.Signed != "" {
			kept[im.Signed] = true
		}
	}
	return s.sweepSharded("signed", kept)
}

// sweepSharded removes files of cas/<kind>/sha512/<xx>/ whose names are
// not in keep.
func (s *Store) sweepSharded(kind string, keep map[string]bool) error {
	shards, err := os.ReadDir(s.casPath(kind, "sha512"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, shard := range shards {
		dir := s.casPath(kind, "sha512", shard.Name())
		errs = append(errs, removeChildren(dir, func(de os.DirEntry) bool {
			return !keep[de.Name()]
		}))
		// Drop the shard if it is empty now; failing because it is not
		// is the expected case.
		os.Remove(dir)
	}
	return errors.Join(errs...)
}

func isTempName(de os.DirEntry) bool { return strings.HasPrefix(de.Name(), ".tmp-") }

// removeChildren removes the entries of dir that match.
func removeChildren(dir string, match func(os.DirEntry) bool) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, de := range des {
		if match(de) {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, de.Name())))
		}
	}
	return errors.Join(errs...)
}
