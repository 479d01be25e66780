package image

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	at "rkt.dev/rkt/stage0/image/internal/acitest"
)

// usedBy is an InUseFunc for tests: image ID to pods.
type usedBy map[string][]string

func (u usedBy) inUse(id string) []string { return u[id] }

// storeWithChain holds a base image and an app rendered on top of it.
func storeWithChain(t *testing.T) (s *Store, c *clock, base, app, treeID string) {
	t.Helper()
	s, c = newStore(t)
	base = importImage(t, s, "example.com/base", "1.0", nil, at.File("rootfs/base", "b"))
	app = importImage(t, s, "example.com/app", "1.0", deps(dep("example.com/base", nil)), at.File("rootfs/app", "a"))
	treeID, err := s.Render(app)
	if err != nil {
		t.Fatal(err)
	}
	return s, c, base, app, treeID
}

func TestRemove(t *testing.T) {
	s, _, base, app, treeID := storeWithChain(t)
	other := importImage(t, s, "example.com/other", "1.0", nil)

	err := s.Remove(app, usedBy{app: {"pod-1"}}.inUse)
	assertErrorContains(t, err, "image "+app+" is used by pod(s) pod-1; remove the pods first")
	err = s.Remove(base, usedBy{app: {"pod-1", "pod-2"}}.inUse)
	assertErrorContains(t, err, "used by pod(s) pod-1, pod-2 through image "+app)

	if err := s.Remove(base, usedBy{other: {"pod-3"}}.inUse); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{s.recordPath(base), s.blobPath(base), s.manifestPath(base), s.treeDir(treeID), s.casPath("treelocks", treeID)} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Remove", p)
		}
	}
	if im, _ := s.Get(app); im.TreeStoreID != "" {
		t.Errorf("app still points to the removed tree %s", im.TreeStoreID)
	}
	if err := s.Remove(base, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing it again: %v, want ErrNotFound", err)
	}
	images, _ := s.List()
	if len(images) != 2 {
		t.Errorf("List = %v, want app and other", images)
	}
}

func TestGC(t *testing.T) {
	s, c, base, app, treeID := storeWithChain(t)
	inUse := importImage(t, s, "example.com/inuse", "1.0", nil)
	c.t = c.t.Add(2 * time.Hour)
	recent := importImage(t, s, "example.com/recent", "1.0", nil)

	// Debris of killed processes.
	orphanTree := filepath.Join(s.treeRoot(), "deps-sha512-"+base[7:])
	staleImport := filepath.Join(s.casPath("tmp"), "import-stale")
	freshImport := filepath.Join(s.casPath("tmp"), "import-fresh")
	for _, d := range []string{orphanTree, filepath.Join(s.treeTmpDir(), "render-1")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{staleImport, freshImport, filepath.Join(s.casPath("blob", "sha512", "ab"), "sha512-ab00"), s.casPath("index", ".tmp-x")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(staleImport, old, old); err != nil {
		t.Fatal(err)
	}

	removed, err := s.GC(time.Hour, usedBy{inUse: {"pod"}}.inUse)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	want := []string{app, base}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Errorf("GC removed %v, want %v", removed, want)
	}
	images, _ := s.List()
	if len(images) != 2 || images[0].ID != inUse || images[1].ID != recent {
		t.Errorf("left %v, want the in-use and the recent image", images)
	}
	for _, p := range []string{s.treeDir(treeID), orphanTree, staleImport, s.casPath("blob", "sha512", "ab")} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived GC", p)
		}
	}
	at.AssertEntries(t, s.casPath("tmp"), "import-fresh")
	at.AssertEntries(t, s.treeTmpDir())
	at.AssertEntries(t, filepath.Dir(s.blobPath(inUse)), inUse)
	at.AssertEntries(t, s.treeRoot(), "tmp")
}

// Rewriting a record (here: noting another rendering) keeps the time of
// its last use, so that store maintenance does not count as a use.
func TestRecordRewriteKeepsLastUse(t *testing.T) {
	s, c, _, app, _ := storeWithChain(t)
	used := c.t.Add(time.Hour)
	c.t = used
	if err := s.MarkUsed(app); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(48 * time.Hour)
	if err := s.recordTree(app, "deps-sha512-other", 42); err != nil {
		t.Fatal(err)
	}
	im, err := s.Get(app)
	if err != nil {
		t.Fatal(err)
	}
	if im.TreeStoreID != "deps-sha512-other" || !im.LastUsed.Equal(used) {
		t.Errorf("after the rewrite: tree %s, last used %v; want deps-sha512-other, %v", im.TreeStoreID, im.LastUsed, used)
	}
}

// A pod using an image keeps the images it was rendered on alive.
func TestMarkUsedCoversDependencies(t *testing.T) {
	s, c, base, app, _ := storeWithChain(t)
	c.t = c.t.Add(48 * time.Hour)
	if err := s.MarkUsed(app); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{app, base} {
		if im, _ := s.Get(id); !im.LastUsed.Equal(c.t) {
			t.Errorf("%s last used %v, want %v", im.Name, im.LastUsed, c.t)
		}
	}
	if removed, err := s.GC(24*time.Hour, nil); err != nil || len(removed) != 0 {
		t.Errorf("GC = %v, %v; want nothing removed", removed, err)
	}
}
