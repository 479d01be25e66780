package tests

import (
	"archive/tar"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"rkt.dev/rkt/tests/testutil"
)

const maliciousManifest = `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/malicious"}`

// climbToRoot climbs from any directory of the store to "/", so that
// climbToRoot followed by a host path names that path wherever the image
// is extracted.
var climbToRoot = strings.Repeat("../", 40)

// tarFile is a regular file entry.
func tarFile(name, content string) testutil.TarEntry {
	return testutil.TarEntry{Name: name, FileSpec: testutil.FileSpec{Content: content}}
}

// tarEntry is an entry of type typ; devices get the numbers 1,1.
func tarEntry(name string, typ byte, link string) testutil.TarEntry {
	return testutil.TarEntry{Name: name, FileSpec: testutil.FileSpec{Type: typ, Linkname: link, Devmajor: 1, Devminor: 1}}
}

// validImage is the start of a valid image: its manifest and rootfs/.
func validImage(extra ...testutil.TarEntry) []testutil.TarEntry {
	return append([]testutil.TarEntry{tarFile("manifest", maliciousManifest), tarEntry("rootfs", tar.TypeDir, "")}, extra...)
}

// TestFetchMaliciousImages fetches archives that try to write outside
// the store, or are malformed: each is refused with exit code 254 and an
// error naming the offending entry, nothing is written outside, and the
// store (cas/ and tree/) is left exactly as it was.
func TestFetchMaliciousImages(t *testing.T) {
	t.Parallel()
	c := flyCtx(t)
	outside := t.TempDir() // where an escape would land
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("host file"), 0o644); err != nil {
		t.Fatal(err)
	}
	rel := strings.TrimPrefix(outside, "/")

	tests := []struct {
		name    string
		entries []testutil.TarEntry
		// offending is the entry the error must name.
		offending string
	}{
		{"dotdot path", validImage(tarFile("rootfs/"+climbToRoot+rel+"/dotdot", "x")), "rootfs/" + climbToRoot + rel + "/dotdot"},
		{"absolute path", validImage(tarFile(outside+"/absolute", "x")), outside + "/absolute"},
		{"symlink escaping via relative target", validImage(tarEntry("rootfs/escape", tar.TypeSymlink, climbToRoot+rel)), "rootfs/escape"},
		{"write through symlink", validImage(tarEntry("rootfs/abs", tar.TypeSymlink, outside), tarFile("rootfs/abs/through", "x")), "rootfs/abs/through"},
		{"hardlink outside", validImage(tarEntry("rootfs/hl", tar.TypeLink, "rootfs/"+climbToRoot+rel+"/victim")), "rootfs/hl"},
		{"hardlink to a host path", validImage(tarEntry("rootfs/hl", tar.TypeLink, victim)), "rootfs/hl"},
		{"hardlink to a path not in the archive", validImage(tarEntry("rootfs/hl", tar.TypeLink, "rootfs/not-in-archive")), "rootfs/hl"},
		{"char device", validImage(tarEntry("rootfs/mem", tar.TypeChar, "")), "rootfs/mem"},
		{"block device", validImage(tarEntry("rootfs/sda", tar.TypeBlock, "")), "rootfs/sda"},
		{"duplicate entries", validImage(tarFile("rootfs/a", "1"), tarFile("rootfs/a", "2")), "rootfs/a"},
		{"duplicate manifest", validImage(tarFile("manifest", maliciousManifest)), "manifest"},
		{"extra top-level entry", validImage(tarFile("etc/passwd", "x")), "etc/passwd"},
		{"missing manifest", []testutil.TarEntry{tarEntry("rootfs", tar.TypeDir, ""), tarFile("rootfs/a", "x")}, "manifest"},
		{"manifest not JSON", []testutil.TarEntry{tarFile("manifest", "{not json"), tarEntry("rootfs", tar.TypeDir, "")}, "manifest"},
		{"manifest with an invalid name", []testutil.TarEntry{
			tarFile("manifest", `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"Not A Name!"}`), tarEntry("rootfs", tar.TypeDir, "")}, "manifest"},
	}

	// A store with images and rendered trees (prepare renders the
	// inspector and the stage1), so that "unchanged" means something.
	id := c.Fetch(c.Image("busybox"))
	flyPrepare(t, c)
	if trees := treeEntries(t, c); len(trees) == 0 {
		t.Fatal("rkt prepare rendered nothing into tree/")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := c.For(t)
			cas := testutil.ListTree(t, filepath.Join(c.DataDir(), "cas"))
			tree := testutil.ListTree(t, filepath.Join(c.DataDir(), "tree"))
			r := c.Run("fetch", "--insecure-options=image", testutil.BuildRawACI(t, tt.entries))
			checkRktError(t, r, tt.offending)
			if got := testutil.ListTree(t, filepath.Join(c.DataDir(), "cas")); !slices.Equal(got, cas) {
				t.Errorf("cas/ changed:\nbefore %q\nafter  %q", cas, got)
			}
			if got := testutil.ListTree(t, filepath.Join(c.DataDir(), "tree")); !slices.Equal(got, tree) {
				t.Errorf("tree/ changed:\nbefore %q\nafter  %q", tree, got)
			}
			checkOutsideUntouched(t, outside, victim)
		})
	}
	ims := imageList(t, c)
	if len(ims) != 3 || !slices.ContainsFunc(ims, func(im jsonImage) bool { return im.ID == id }) {
		t.Errorf("the store should hold busybox, the inspector and the stage1 only: %+v", ims)
	}
}

// checkOutsideUntouched fails the test if anything but the victim file
// exists in outside, or if the victim gained a link or changed.
func checkOutsideUntouched(t *testing.T, outside, victim string) {
	t.Helper()
	ents, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != filepath.Base(victim) {
			t.Errorf("an image wrote %s outside the store", filepath.Join(outside, e.Name()))
		}
	}
	fi, err := os.Stat(victim)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Nlink != 1 {
		t.Errorf("an image hard-linked %s (%d links)", victim, st.Nlink)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "host file" {
		t.Errorf("%s changed: %q, %v", victim, b, err)
	}
}
