package image

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	at "rkt.dev/rkt/stage0/image/internal/acitest"
	"rkt.dev/rkt/stage0/image/progress"
)

func dep(name string, fields map[string]any) map[string]any {
	d := map[string]any{"imageName": name}
	for k, v := range fields {
		d[k] = v
	}
	return d
}

func deps(d ...map[string]any) map[string]any { return map[string]any{"dependencies": d} }

func TestRenderLayersDependencies(t *testing.T) {
	s, _ := newStore(t)
	base := importImage(t, s, "example.com/base", "1.0", nil,
		at.Dir("rootfs/etc"), at.File("rootfs/etc/os-release", "base"), at.File("rootfs/etc/base-only", "b"),
		at.Dir("rootfs/usr"), at.Dir("rootfs/usr/lib"), at.Symlink("rootfs/lib", "usr/lib"),
	)
	importImage(t, s, "example.com/tools", "0.9", nil, at.File("rootfs/tools", "old"))
	importImage(t, s, "example.com/tools", "1.0", nil,
		at.Dir("rootfs/etc"), at.File("rootfs/etc/os-release", "tools"), at.File("rootfs/tools", "new"),
	)
	app := importImage(t, s, "example.com/app", "1.0",
		deps(dep("example.com/base", map[string]any{"imageID": base}),
			dep("example.com/tools", map[string]any{"labels": []map[string]string{{"name": "version", "value": "1.0"}}})),
		at.File("rootfs/lib/libapp.so", "app"),
	)

	treeID, err := s.Render(app)
	if err != nil {
		t.Fatal(err)
	}
	root, err := s.TreePath(treeID)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"etc/os-release": "tools", // the later dependency wins
		"etc/base-only":  "b",
		"tools":          "new", // resolved by the version label
		"lib/libapp.so":  "app",
		"../manifest":    readFile(t, s.manifestPath(app)),
	} {
		if got := readFile(t, filepath.Join(root, p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	// The app's lib/ replaced the base's symlink instead of following it.
	if fi, err := os.Lstat(filepath.Join(root, "lib")); err != nil || !fi.IsDir() {
		t.Errorf("lib is not a directory: %v", err)
	}
	at.AssertEntries(t, filepath.Join(root, "usr/lib"))

	im, _ := s.Get(app)
	if im.TreeStoreID != treeID || im.TreeStoreSize != int64(len("tools"+"b"+"new"+"app")) {
		t.Errorf("record tree = %s, %d", im.TreeStoreID, im.TreeStoreSize)
	}
	before := snapshot(t, s)
	if again, err := s.Render(app); err != nil || again != treeID {
		t.Errorf("second Render = %s, %v; want %s", again, err, treeID)
	}
	assertSnapshot(t, s, before)
}

func TestRenderPathWhitelist(t *testing.T) {
	s, _ := newStore(t)
	base := importImage(t, s, "example.com/base", "1.0", nil,
		at.Dir("rootfs/bin"), at.File("rootfs/bin/sh", "sh"), at.File("rootfs/bin/ls", "ls"),
		at.Dir("rootfs/etc"), at.File("rootfs/etc/passwd", "root"),
	)
	app := importImage(t, s, "example.com/app", "1.0",
		map[string]any{
			"dependencies":  []map[string]any{dep("example.com/base", map[string]any{"imageID": base})},
			"pathWhitelist": []string{"/bin/sh", "/app"},
		},
		at.File("rootfs/app", "app"), at.File("rootfs/extra", "dropped"),
	)
	treeID, err := s.Render(app)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := s.TreePath(treeID)
	at.AssertEntries(t, root, "app", "bin")
	at.AssertEntries(t, filepath.Join(root, "bin"), "sh")
}

func TestRenderRefusesBrokenDependencies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, s *Store) string
		want  []string
	}{
		{"missing dependency", func(t *testing.T, s *Store) string {
			return importImage(t, s, "example.com/app", "1.0", deps(dep("example.com/nothere", nil)))
		}, []string{"resolving dependency example.com/nothere", "not found in the store"}},
		{"dependency cycle by name", func(t *testing.T, s *Store) string {
			importImage(t, s, "example.com/b", "1.0", deps(dep("example.com/a", nil)))
			return importImage(t, s, "example.com/a", "1.0", deps(dep("example.com/b", nil)))
		}, []string{"depends on itself"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			id := tc.setup(t, s)
			before := snapshot(t, s)
			_, err := s.Render(id)
			assertErrorContains(t, err, tc.want...)
			assertSnapshot(t, s, before)
		})
	}
}

// Many rkt processes may render the same image at once; the tree is
// rendered once and everybody gets it.
func TestRenderConcurrently(t *testing.T) {
	s, _ := newStore(t)
	id := importImage(t, s, "example.com/app", "1.0", nil, at.File("rootfs/a", "a"))
	var wg sync.WaitGroup
	ids := make([]string, 8)
	errs := make([]error, len(ids))
	for i := range ids {
		wg.Go(func() {
			// A Store per goroutine, like separate processes.
			other, err := Open(s.dataDir)
			if err != nil {
				errs[i] = err
				return
			}
			ids[i], errs[i] = other.Render(id)
		})
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Errorf("render %d = %s, %v; want %s", i, ids[i], errs[i], ids[0])
		}
	}
	trees, _ := s.treeIDs()
	if len(trees) != 1 {
		t.Errorf("tree store holds %v, want one tree", trees)
	}
	at.AssertEntries(t, s.treeTmpDir())
}

func TestTreePathRefusesOtherPaths(t *testing.T) {
	s, _ := newStore(t)
	for _, id := range []string{"", "..", "tmp", "deps-sha512-00", "deps-sha512-" + string(make([]byte, 128))} {
		if _, err := s.TreePath(id); err == nil {
			t.Errorf("TreePath(%q) succeeded", id)
		}
	}
}

// Without a terminal, a render prints one line per image it extracts and
// one when done; a render the tree store already holds prints nothing.
func TestRenderProgress(t *testing.T) {
	s, _ := newStore(t)
	base := importImage(t, s, "example.com/base", "1.0", nil, at.File("rootfs/b", strings.Repeat("b", 3000)))
	app := importImage(t, s, "example.com/app", "1.0",
		deps(dep("example.com/base", map[string]any{"imageID": base})), at.File("rootfs/a", "a"))
	alone := importImage(t, s, "example.com/alone", "", nil, at.File("rootfs/x", "x"))
	size := func(id string) string {
		im, err := s.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		return progress.Size(im.Size)
	}

	var buf bytes.Buffer
	ps := s.WithProgress(&buf)
	for _, tc := range []struct {
		id   string
		want string
	}{
		{app, "rkt: rendering image 1/2 example.com/base:1.0 (" + size(base) + ")\n" +
			"rkt: rendering image 2/2 example.com/app:1.0 (" + size(app) + ")\n" +
			"rkt: rendered example.com/app:1.0 (2.9 KiB of files)\n"},
		{alone, "rkt: rendering example.com/alone (" + size(alone) + ")\n" +
			"rkt: rendered example.com/alone (1 B of files)\n"},
	} {
		buf.Reset()
		if _, err := ps.Render(tc.id); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tc.want {
			t.Errorf("first render:\n%s\nwant:\n%s", buf.String(), tc.want)
		}
		buf.Reset()
		if _, err := ps.Render(tc.id); err != nil {
			t.Fatal(err)
		}
		if buf.Len() != 0 {
			t.Errorf("rendering again printed %q, want nothing", buf.String())
		}
	}
}
