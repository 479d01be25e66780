package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"rkt.dev/rkt/stage0/image/aci"
	"rkt.dev/rkt/stage0/image/progress"
	"rkt.dev/rkt/stage1"
)

// tree is the record of a rendered tree, stored as its "rendered" file.
// The file is written before the tree is renamed into place, so a tree
// directory with this file is complete.
type tree struct {
	// Images are the IDs of the layers in application order; the last
	// one is the rendered image.
	Images []string `json:"images"`
	// Size is the size of the rendered rootfs in bytes.
	Size int64 `json:"size"`
}

const renderedFile = "rendered"

// Render renders the image id with its dependencies into the tree store,
// unless that exact chain is rendered already, and returns the tree store
// ID. The rootfs is at TreePath(treeStoreID); it must be treated as
// read-only, since every pod of the image shares it.
func (s *Store) Render(id string) (string, error) {
	out := s.output()
	defer out.Close()
	treeID, size, err := s.render(id, out)
	if err != nil {
		return "", fmt.Errorf("rendering image %s: %w", id, err)
	}
	if err := s.recordTree(id, treeID, size); err != nil {
		return "", err
	}
	return treeID, nil
}

func (s *Store) render(id string, out *progress.Output) (string, int64, error) {
	im, l, err := s.readRecordLocked(id)
	if err != nil {
		return "", 0, err
	}
	defer l.Close()
	layers, err := s.chain(id)
	if err != nil {
		return "", 0, err
	}
	treeID := treeStoreID(layers)
	if t, err := s.readTree(treeID); err == nil {
		return treeID, t.Size, nil
	}

	tl, err := s.lockTree(treeID)
	if err != nil {
		return "", 0, err
	}
	defer tl.Close()
	// Another process may have rendered it while this one waited.
	if t, err := s.readTree(treeID); err == nil {
		return treeID, t.Size, nil
	}
	// A directory without its record is debris; clear it.
	if err := s.removeTree(treeID); err != nil {
		return "", 0, err
	}
	size, err := s.renderNew(treeID, layers, out)
	if err != nil {
		return "", 0, err
	}
	// Below the finished bars on a terminal, not above them.
	out.Close()
	out.Stepf("rendered %s (%s of files)", im.nameVersion(), progress.Size(size))
	return treeID, size, nil
}

// renderNew renders into a temporary directory and renames it into place.
func (s *Store) renderNew(treeID string, layers []layer, out *progress.Output) (int64, error) {
	tmp, err := os.MkdirTemp(s.treeTmpDir(), "render-")
	if err != nil {
		return 0, fmt.Errorf("creating a temporary tree: %w", err)
	}
	renamed := false
	defer func() {
		if !renamed {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return 0, err
	}
	if err := s.writeLayers(layers, tmp, false, out); err != nil {
		return 0, err
	}
	size, err := dirSize(filepath.Join(tmp, "rootfs"))
	if err != nil {
		return 0, err
	}
	t := tree{Size: size}
	for _, l := range layers {
		t.Images = append(t.Images, l.id)
	}
	b, err := json.Marshal(t)
	if err != nil {
		return 0, err
	}
	if err := writeFileAtomic(filepath.Join(tmp, renderedFile), b); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, s.treeDir(treeID)); err != nil {
		return 0, fmt.Errorf("moving the rendered tree into place: %w", err)
	}
	renamed = true
	return size, nil
}

// writeLayers renders layers into dir: the image's manifest and its
// rootfs/ there, or with rootfsOnly the rootfs contents in dir itself.
// Each layer shows as a task on out: extraction reads the whole stored,
// uncompressed blob, so its size is the total.
func (s *Store) writeLayers(layers []layer, dir string, rootfsOnly bool, out *progress.Output) error {
	root := dir
	if !rootfsOnly {
		root = filepath.Join(dir, "rootfs")
		if err := os.Mkdir(root, 0o755); err != nil {
			return err
		}
		top := layers[len(layers)-1].id
		b, err := os.ReadFile(s.manifestPath(top))
		if err != nil {
			return fmt.Errorf("reading the manifest of image %s: %w", top, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "manifest"), b, 0o644); err != nil {
			return err
		}
	}
	for i, l := range layers {
		im, err := s.readRecord(l.id)
		if err != nil {
			return err
		}
		name := im.nameVersion()
		if len(layers) > 1 {
			name = fmt.Sprintf("image %d/%d %s", i+1, len(layers), name)
		}
		opts := aci.ExtractOptions{RootfsOnly: true, Keep: l.keep()}
		if err := s.extractBlob(l.id, "rendering", name, im.Size, out, root, opts); err != nil {
			return err
		}
	}
	return nil
}

// extractBlob extracts the stored image id into root, shown on out as the
// task "VERB NAME" of size bytes.
func (s *Store) extractBlob(id, verb, name string, size int64, out *progress.Output, root string, opts aci.ExtractOptions) error {
	bar := out.Task(verb, name, size)
	err := s.readBlob(id, func(r io.Reader) error { return aci.Extract(bar.Reader(r), root, opts) })
	if err != nil {
		bar.Abort()
		return fmt.Errorf("extracting image %s: %w", id, err)
	}
	bar.Done()
	return nil
}

// recordTree notes the image's latest rendering in its index record.
func (s *Store) recordTree(id, treeID string, size int64) error {
	if im, err := s.readRecord(id); err == nil && im.TreeStoreID == treeID && im.TreeStoreSize == size {
		return nil
	}
	l, err := s.lockStore(true)
	if err != nil {
		return err
	}
	defer l.Close()
	im, err := s.readRecord(id)
	if errors.Is(err, ErrNotFound) {
		return nil // removed meanwhile; the tree goes at the next GC
	}
	if err != nil {
		return err
	}
	im.TreeStoreID, im.TreeStoreSize = treeID, size
	return s.writeRecord(im)
}

// TreePath returns the rootfs of a rendered tree, or an error if there is
// no such tree.
func (s *Store) TreePath(treeStoreID string) (string, error) {
	if _, err := s.readTree(treeStoreID); err != nil {
		return "", err
	}
	return stage1.TreeRootfs(s.dataDir, treeStoreID), nil
}

// isTreeStoreID accepts only names Render produces, because tree IDs are
// read back from pod directories and must not name other paths.
func isTreeStoreID(id string) bool {
	rest, ok := strings.CutPrefix(id, "deps-")
	return ok && aci.IsImageID(rest, 128)
}

func (s *Store) readTree(treeID string) (tree, error) {
	if !isTreeStoreID(treeID) {
		return tree{}, fmt.Errorf("%q is not a tree store ID", treeID)
	}
	b, err := os.ReadFile(filepath.Join(s.treeDir(treeID), renderedFile))
	if err != nil {
		return tree{}, fmt.Errorf("tree %s is not rendered: %w", treeID, err)
	}
	var t tree
	if err := json.Unmarshal(b, &t); err != nil || len(t.Images) == 0 {
		return tree{}, fmt.Errorf("tree %s has a damaged record", treeID)
	}
	return t, nil
}

// treeIDs lists the directories of the tree store that may be trees.
func (s *Store) treeIDs() ([]string, error) {
	des, err := os.ReadDir(s.treeRoot())
	if err != nil {
		return nil, fmt.Errorf("reading the tree store: %w", err)
	}
	var ids []string
	for _, de := range des {
		if isTreeStoreID(de.Name()) {
			ids = append(ids, de.Name())
		}
	}
	return ids, nil
}

// removeTree deletes a tree: first renamed into tree/tmp, so no half
// deleted tree is ever visible under its ID, then removed. The store lock
// must be held exclusively, or shared together with the tree's lock.
func (s *Store) removeTree(treeID string) error {
	dir := s.treeDir(treeID)
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	trash, err := os.MkdirTemp(s.treeTmpDir(), "remove-")
	if err != nil {
		return fmt.Errorf("removing tree %s: %w", treeID, err)
	}
	if err := os.Rename(dir, filepath.Join(trash, "tree")); err != nil {
		os.Remove(trash)
		return fmt.Errorf("removing tree %s: %w", treeID, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("removing tree %s: %w", treeID, err)
	}
	return nil
}

// dirSize adds up the sizes of the files and symlinks below root, counting
// hard-linked files once.
func dirSize(root string) (int64, error) {
	var size int64
	seen := make(map[uint64]bool)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		size += fi.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measuring the rendered tree: %w", err)
	}
	return size, nil
}
