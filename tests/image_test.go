package tests

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"rkt.dev/rkt/tests/testutil"
)

const busyboxName = "rkt.dev/examples/busybox"

// TestFetch covers the ways to name an image to rkt fetch, and the refusal
// of unsigned files without --insecure-options=image.
func TestFetch(t *testing.T) {
	t.Parallel()
	c := testutil.New(t)
	busybox := c.Image("busybox")
	id := c.Fetch(busybox)
	if !imageIDRx.MatchString(id) {
		t.Fatalf("rkt fetch printed %q, want an image ID", id)
	}
	tests := []struct {
		name string
		args []string
	}{
		{"the same file again", []string{"--insecure-options=image", busybox}},
		{"a file:// URL", []string{"--insecure-options=image", "file://" + busybox}},
		{"a name in the store", []string{busyboxName}},
		{"an ID in the store", []string{id}},
		{"an ID prefix", []string{id[:len("sha512-")+12]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := c.For(t)
			r := c.RunOK(append([]string{"fetch"}, tt.args...)...)
			if got := strings.TrimSpace(r.Stdout); got != id {
				t.Errorf("printed %q, want %s", got, id)
			}
		})
	}
	t.Run("without --insecure-options=image", func(t *testing.T) {
		c := c.For(t)
		other := c.Image("inspector")
		r := c.Run("fetch", other)
		if r.ExitCode != 254 || !strings.HasPrefix(r.Stderr, "rkt: ") || !strings.Contains(r.Stderr, "--insecure-options=image") {
			t.Errorf("want exit code 254 and a message pointing to --insecure-options=image; got %v", r)
		}
		if ims := imageList(t, c); len(ims) != 1 {
			t.Errorf("the refused image was stored: %+v", ims)
		}
	})
}

// TestImageList checks the table and JSON listings.
func TestImageList(t *testing.T) {
	t.Parallel()
	c := testutil.New(t)
	if r := c.RunOK("image", "list", "--format=json"); strings.TrimSpace(r.Stdout) != "[]" {
		t.Errorf("empty store: want [], got %q", r.Stdout)
	}
	ids := map[string]string{
		busyboxName:                  c.Fetch(c.Image("busybox")),
		"rkt.dev/examples/inspector": c.Fetch(c.Image("inspector")),
	}

	t.Run("json", func(t *testing.T) {
		c := c.For(t)
		ims := imageList(t, c)
		if len(ims) != len(ids) {
			t.Fatalf("want %d images, got %+v", len(ids), ims)
		}
		for _, im := range ims {
			if ids[im.Name] != im.ID || im.Size <= 0 || im.ImportTime <= 0 || im.LastUsedTime <= 0 {
				t.Errorf("bad entry %+v (want IDs %v, positive size and times)", im, ids)
			}
		}
	})
	t.Run("json-pretty", func(t *testing.T) {
		c := c.For(t)
		var ims []jsonImage
		decodeJSON(t, c.RunOK("image", "list", "--format=json-pretty").Stdout, &ims)
		if len(ims) != len(ids) {
			t.Errorf("want %d images, got %+v", len(ids), ims)
		}
	})

	tests := []struct {
		name   string
		flags  []string
		header []string // nil: no header line
		idLen  int      // how much of the ID the table shows
	}{
		{"table", nil, []string{"ID", "NAME", "SIZE", "IMPORT TIME", "LAST USED"}, len("sha512-") + 32},
		{"no legend", []string{"--no-legend"}, nil, len("sha512-") + 32},
		{"full", []string{"--full"}, []string{"ID", "NAME", "SIZE", "IMPORT TIME", "LAST USED"}, len(ids[busyboxName])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := c.For(t)
			rows := tableRows(c.RunOK(append([]string{"image", "list"}, tt.flags...)...).Stdout)
			if tt.header != nil {
				if len(rows) == 0 || !slices.Equal(rows[0], tt.header) {
					t.Fatalf("header %q, want %q", rows, tt.header)
				}
				rows = rows[1:]
			}
			if len(rows) != len(ids) {
				t.Fatalf("want %d image rows, got %q", len(ids), rows)
			}
			for _, row := range rows {
				name, _, _ := strings.Cut(row[1], ":") // NAME:VERSION
				id := ids[name]
				if id == "" || row[0] != id[:tt.idLen] {
					t.Errorf("row %q: want ID %s for %s", row, id[:min(len(id), tt.idLen)], name)
				}
			}
		})
	}
}

// TestImageRm removes images with their rendered trees, reports unknown
// images, and refuses images that pods use.
func TestImageRm(t *testing.T) {
	t.Parallel()
	c := flyCtx(t)
	id := c.Fetch(c.Image("busybox"))
	c.RunOK("image", "render", id, filepath.Join(t.TempDir(), "r")) // leaves a tree
	r := c.RunOK("image", "rm", id)
	if !strings.Contains(r.Stdout, id) {
		t.Errorf("image rm should name the removed image: %v", r)
	}
	if ims := imageList(t, c); len(ims) != 0 {
		t.Errorf("still listed after rm: %+v", ims)
	}
	if trees := treeEntries(t, c); len(trees) != 0 {
		t.Errorf("rendered trees left after rm: %q", trees)
	}
	if r := c.Run("image", "rm", id); r.ExitCode != 254 || !strings.Contains(r.Stderr, "not found") {
		t.Errorf("removing it again: want 254 and 'not found', got %v", r)
	}

	t.Run("in use by a pod", func(t *testing.T) {
		c := c.For(t)
		uuid := flyRunInspector(t, c, 0)
		r := c.Run("image", "rm", "rkt.dev/examples/inspector")
		if r.ExitCode != 254 || !strings.Contains(r.Stderr, uuid) {
			t.Errorf("want 254 and the error naming pod %s; got %v", uuid, r)
		}
		c.RunOK("rm", uuid)
		c.RunOK("image", "rm", "rkt.dev/examples/inspector")
	})
}

// treeEntries lists the rendered trees in the store (ignoring its tmp/).
func treeEntries(t *testing.T, c *testutil.Ctx) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(c.DataDir(), "tree"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Name() != "tmp" {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestImageCatManifest prints the stored manifest, by ID or by name.
func TestImageCatManifest(t *testing.T) {
	t.Parallel()
	c := testutil.New(t)
	id := c.Fetch(c.Image("busybox"))
	for _, tt := range []struct{ name, ref string }{{"by ID", id}, {"by name", busyboxName}} {
		for _, pretty := range []bool{false, true} {
			name := tt.name
			if pretty {
				name += " pretty"
			}
			t.Run(name, func(t *testing.T) {
				c := c.For(t)
				args := []string{"image", "cat-manifest", tt.ref}
				if pretty {
					args = append(args, "--pretty-print")
				}
				var m schema.ImageManifest
				decodeJSON(t, c.RunOK(args...).Stdout, &m)
				if m.Name.String() != busyboxName || m.App == nil || len(m.App.Exec) == 0 || m.App.Exec[0] != "/bin/sh" {
					t.Errorf("unexpected manifest %+v", m)
				}
			})
		}
	}
}

// TestImageExport round-trips an image: exporting it and fetching the
// export, even into an empty store, gives the same ID.
func TestImageExport(t *testing.T) {
	t.Parallel()
	c := testutil.New(t)
	id := c.Fetch(c.Image("busybox"))
	out := filepath.Join(t.TempDir(), "exported.aci")
	c.RunOK("image", "export", id, out)

	if r := c.Run("image", "export", id, out); r.ExitCode != 254 || !strings.Contains(r.Stderr, "--overwrite") {
		t.Errorf("exporting over an existing file: want 254 suggesting --overwrite, got %v", r)
	}
	c.RunOK("image", "export", "--overwrite", busyboxName, out)

	c.RunOK("image", "rm", id)
	if got := c.Fetch(out); got != id {
		t.Errorf("re-fetching the export gave %s, want %s", got, id)
	}
	other := testutil.New(t)
	if got := other.Fetch(out); got != id {
		t.Errorf("fetching the export into a new store gave %s, want %s", got, id)
	}
}

// TestImageExtractRender writes an image that depends on busybox to a
// directory: extract writes the image alone, render applies its
// dependency too; --rootfs-only writes just the root filesystem.
func TestImageExtractRender(t *testing.T) {
	t.Parallel()
	c := testutil.New(t)
	bb := c.Fetch(c.Image("busybox"))
	app := testutil.BuildACI(t, `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/dependent",`+
		`"dependencies":[{"imageName":"`+busyboxName+`","imageID":"`+bb+`"}]}`,
		map[string]testutil.FileSpec{"etc/mine": {Content: "mine"}})
	id := c.Fetch(app)

	tests := []struct {
		cmd        string
		rootfsOnly bool
		want       []string // files that must exist
		absent     []string // files that must not
	}{
		{"extract", false, []string{"manifest", "rootfs/etc/mine"}, []string{"rootfs/bin/busybox"}},
		{"extract", true, []string{"etc/mine"}, []string{"manifest", "bin/busybox"}},
		{"render", false, []string{"manifest", "rootfs/etc/mine", "rootfs/bin/busybox", "rootfs/etc/passwd"}, nil},
		{"render", true, []string{"etc/mine", "bin/busybox"}, []string{"manifest"}},
	}
	for _, tt := range tests {
		name := tt.cmd
		if tt.rootfsOnly {
			name += " --rootfs-only"
		}
		t.Run(name, func(t *testing.T) {
			c := c.For(t)
			dir := filepath.Join(t.TempDir(), "out")
			args := []string{"image", tt.cmd, id, dir}
			if tt.rootfsOnly {
				args = append(args, "--rootfs-only")
			}
			c.RunOK(args...)
			for _, f := range tt.want {
				if _, err := os.Lstat(filepath.Join(dir, f)); err != nil {
					t.Errorf("want %s: %v", f, err)
				}
			}
			for _, f := range tt.absent {
				if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
					t.Errorf("%s should not be there", f)
				}
			}
			if r := c.Run(args...); r.ExitCode != 254 || !strings.Contains(r.Stderr, "--overwrite") {
				t.Errorf("writing to a non-empty directory: want 254 suggesting --overwrite, got %v", r)
			}
			c.RunOK(append(args, "--overwrite")...)
		})
	}
}

// TestImageGC removes images unused for the grace period, but never an
// image a pod still uses.
func TestImageGC(t *testing.T) {
	t.Parallel()
	c := flyCtx(t)
	busybox := c.Fetch(c.Image("busybox"))
	uuid := flyRunInspector(t, c, 0)

	r := c.RunOK("image", "gc")
	if len(imageList(t, c)) != 3 {
		t.Errorf("image gc with the default grace period removed fresh images: %v", r)
	}
	r = c.RunOK("image", "gc", "--grace-period=0s")
	var names []string
	for _, im := range imageList(t, c) {
		names = append(names, im.Name)
	}
	slices.Sort(names)
	// The exited pod still uses the inspector and the stage1.
	if want := []string{"rkt.dev/examples/inspector", "rkt.dev/rkt/stage1-fly"}; !slices.Equal(names, want) {
		t.Errorf("after image gc --grace-period=0s: images %q, want %q (output %v)", names, want, r)
	}
	if !strings.Contains(r.Stdout, busybox) {
		t.Errorf("image gc should name what it removed: %v", r)
	}

	c.RunOK("rm", uuid)
	c.RunOK("image", "gc", "--grace-period=0s")
	if ims := imageList(t, c); len(ims) != 0 {
		t.Errorf("after the pod was removed: %+v", ims)
	}
	if trees := treeEntries(t, c); len(trees) != 0 {
		t.Errorf("rendered trees left: %q", trees)
	}
}

// patchVersion returns a copy of image with another version label, so
// that it has its own ID.
func patchVersion(t *testing.T, image, version string) string {
	return testutil.PatchACI(t, image, func(m *schema.ImageManifest) {
		m.Labels = slices.DeleteFunc(m.Labels, func(l types.Label) bool { return l.Name == "version" })
		m.Labels = append(m.Labels, types.Label{Name: "version", Value: version})
	})
}

// TestImageVerify: rkt image verify checks the signature of an image
// fetched gzip-compressed against the compressed file the store kept for
// it, under the trust store as it is now; an image fetched without
// verification has nothing to verify. rm takes the kept file along.
func TestImageVerify(t *testing.T) {
	t.Parallel()
	c := testutil.New(t)
	k := newSigningKey(t, "Image Publisher")
	aci, err := os.ReadFile(c.Image("busybox")) // gzip-compressed
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "busybox.aci")
	if err := os.WriteFile(file, aci, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file+".asc", k.sign(t, aci), 0o644); err != nil {
		t.Fatal(err)
	}
	c.RunOK("trust", "--prefix="+busyboxName, "--skip-fingerprint-review", k.pubFile)
	id := strings.TrimSpace(c.RunOK("fetch", file).Stdout)
	kept, _ := filepath.Glob(filepath.Join(c.DataDir(), "cas", "signed", "sha512", "*", "sha512-*"))
	if len(kept) != 1 {
		t.Fatalf("kept signed files: %q, want the compressed image", kept)
	}
	if b, err := os.ReadFile(kept[0]); err != nil || !bytes.Equal(b, aci) {
		t.Fatalf("the kept file is not the signed file: %v", err)
	}
	unsigned := c.Fetch(c.Image("inspector"))
	if kept2, _ := filepath.Glob(filepath.Join(c.DataDir(), "cas", "signed", "sha512", "*", "*")); len(kept2) != 1 {
		t.Errorf("an unsigned fetch kept files: %q", kept2)
	}

	if r := c.RunOK("image", "verify", busyboxName); !strings.Contains(r.Stdout, id) || !strings.Contains(r.Stdout, "signature verified") || !strings.Contains(r.Stdout, k.fp) {
		t.Errorf("rkt image verify: %v", r)
	}
	checkRktError(t, c.Run("image", "verify", unsigned), "no signature to verify")

	// A changed kept file: the signature no longer matches.
	tampered := bytes.Clone(aci)
	tampered[len(tampered)/2] ^= 1
	if err := os.WriteFile(kept[0], tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	r := c.Run("image", "verify", id)
	checkRktError(t, r, k.fp)
	if !strings.Contains(r.Stderr, "tampered") {
		t.Errorf("the error should say the image was tampered with: %q", r.Stderr)
	}
	if err := os.WriteFile(kept[0], aci, 0o644); err != nil {
		t.Fatal(err)
	}
	c.RunOK("image", "verify", id)

	// The key removed from the trust store.
	key := filepath.Join(c.LocalConfigDir(), "trustedkeys", "prefix.d", filepath.FromSlash(busyboxName), k.fp)
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	r = c.Run("image", "verify", id)
	checkRktError(t, r, k.fp)
	for _, want := range []string{busyboxName, "rkt trust --prefix=" + busyboxName} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("the error should mention %q: %q", want, r.Stderr)
		}
	}

	c.RunOK("image", "rm", id)
	if left, _ := filepath.Glob(filepath.Join(c.DataDir(), "cas", "signed", "sha512", "*", "*")); len(left) != 0 {
		t.Errorf("kept files survived image rm: %q", left)
	}
}

// TestRenderProgress: the first pod of an image renders it and says so on
// stderr, one plain line per image when stderr is not a terminal; the
// next pod reuses the rendering and says nothing about it.
func TestRenderProgress(t *testing.T) {
	t.Parallel()
	c := flyCtx(t)
	r := c.RunOK(flyRunArgs(c, "prepare", "", c.Image("inspector"))...)
	for _, want := range []string{
		"rkt: rendering rkt.dev/rkt/stage1-fly:",
		"rkt: rendering rkt.dev/examples/inspector:",
		"rkt: rendered rkt.dev/examples/inspector:",
	} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
		if !strings.HasPrefix(l, "rkt: ") || strings.Contains(l, "\x1b") {
			t.Errorf("not a plain progress line: %q", l)
		}
	}
	if r := c.RunOK(flyRunArgs(c, "prepare", "", c.Image("inspector"))...); strings.Contains(r.Stderr, "render") {
		t.Errorf("a second prepare rendered again:\n%s", r.Stderr)
	}
}
