package aci

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	. "rkt.dev/rkt/stage0/image/internal/acitest"
)

// squash runs Squash over layers built from entries and returns the image.
func squash(t *testing.T, opts SquashOptions, layers ...[]Entry) ([]byte, error) {
	t.Helper()
	var openers []LayerOpener
	for _, l := range layers {
		b := Build(t, l...)
		openers = append(openers, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	}
	if opts.Manifest == nil {
		opts.Manifest = func(map[string][]byte) ([]byte, error) { return []byte(validManifest), nil }
	}
	var out bytes.Buffer
	err := Squash(&out, openers, opts)
	return out.Bytes(), err
}

// describe lists a rendered root filesystem: "f:content", "d", "l>target"
// per path, and "=path" for a file that is a hard link of an earlier one.
func describe(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		r, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			out = append(out, r+" d")
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, r+" l>"+target)
		default:
			ino := fi.Sys().(*syscall.Stat_t).Ino
			if first, ok := inodes[ino]; ok {
				out = append(out, r+" ="+first)
				return nil
			}
			inodes[ino] = r
			b, _ := os.ReadFile(p)
			out = append(out, r+" f:"+string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func withMode(e Entry, mode int64) Entry { e.Mode = mode; return e }

func TestSquash(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]Entry
		want   []string
	}{
		{"whiteout deletes a file",
			[][]Entry{{Dir("a"), File("a/x", "x"), File("a/y", "y")}, {File("a/.wh.x", "")}},
			[]string{"a d", "a/y f:y"}},
		{"whiteout deletes a directory tree",
			[][]Entry{{Dir("d"), Dir("d/e"), File("d/e/f", "f"), File("keep", "k")}, {File(".wh.d", "")}},
			[]string{"keep f:k"}},
		{"opaque directory hides lower contents",
			[][]Entry{{Dir("d"), File("d/old", "o")}, {Dir("d"), File("d/.wh..wh..opq", ""), File("d/new", "n")}},
			[]string{"d d", "d/new f:n"}},
		{"opaque marker after its layer's files keeps them",
			[][]Entry{{Dir("d"), File("d/old", "o")}, {Dir("d"), File("d/new", "n"), File("d/.wh..wh..opq", "")}},
			[]string{"d d", "d/new f:n"}},
		{"whiteout and re-creation in one layer",
			[][]Entry{{Dir("d"), File("d/old", "o")}, {File(".wh.d", ""), Dir("d"), File("d/z", "z")}},
			[]string{"d d", "d/z f:z"}},
		{"file replaces a directory",
			[][]Entry{{Dir("d"), File("d/f", "f")}, {File("d", "now a file")}},
			[]string{"d f:now a file"}},
		{"directory replaces a file",
			[][]Entry{{File("d", "file")}, {Dir("d"), File("d/f", "f")}},
			[]string{"d d", "d/f f:f"}},
		{"later file wins",
			[][]Entry{{File("f", "1")}, {File("f", "2")}, {File("f", "3")}},
			[]string{"f f:3"}},
		{"directories merge",
			[][]Entry{{Dir("d"), File("d/a", "a")}, {Dir("d"), File("d/b", "b")}},
			[]string{"d d", "d/a f:a", "d/b f:b"}},
		{"symlinked parent is replaced, not followed",
			[][]Entry{{Dir("usr"), Dir("usr/lib"), Symlink("lib", "usr/lib")}, {File("lib/x", "x")}},
			[]string{"lib d", "lib/x f:x", "usr d", "usr/lib d"}},
		{"symlink replaces a directory",
			[][]Entry{{Dir("d"), File("d/f", "f")}, {Symlink("d", "/etc")}},
			[]string{"d l>/etc"}},
		{"hard link in one layer",
			[][]Entry{{File("a", "x"), Hardlink("b", "a")}},
			[]string{"a f:x", "b =a"}},
		{"hard link to a lower layer",
			[][]Entry{{File("a", "x")}, {Hardlink("b", "a")}},
			[]string{"a f:x", "b =a"}},
		{"hard link keeps content when its target is replaced",
			[][]Entry{{File("a", "old"), Hardlink("b", "a")}, {File("a", "new")}},
			[]string{"a f:new", "b f:old"}},
		{"hard links stay linked when their target is deleted",
			[][]Entry{{File("a", "x"), Hardlink("b", "a"), Hardlink("c", "b")}, {File(".wh.a", "")}},
			[]string{"b f:x", "c =b"}},
		{"aufs metadata is skipped",
			[][]Entry{{File(".wh..wh.aufs", ""), Dir(".wh..wh.plnk"), File("f", "f")}},
			[]string{"f f:f"}},
		{"tar of dot",
			[][]Entry{{Dir("./"), Dir("./etc/"), File("./etc/hosts", "h")}, {Dir("./"), File("./etc/.wh.hosts", "")}},
			[]string{"etc d"}},
		{"repeated directory in one layer",
			[][]Entry{{Dir("d"), File("d/a", "a"), Dir("d")}},
			[]string{"d d", "d/a f:a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := squash(t, SquashOptions{}, tc.layers...)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := Validate(bytes.NewReader(img)); err != nil {
				t.Fatalf("the squashed image is invalid: %v", err)
			}
			dest := t.TempDir()
			if err := Extract(bytes.NewReader(img), dest, ExtractOptions{RootfsOnly: true}); err != nil {
				t.Fatal(err)
			}
			if got := describe(t, dest); !slices.Equal(got, tc.want) {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
		})
	}
}

func TestSquashKeepsMetadata(t *testing.T) {
	img, err := squash(t, SquashOptions{},
		[]Entry{withMode(Dir("d"), 0o700), withMode(File("d/s", "s"), 0o4755)},
		[]Entry{withMode(Dir("d"), 0o750)})
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	if err := Extract(bytes.NewReader(img), dest, ExtractOptions{RootfsOnly: true}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{"d": fs.ModeDir | 0o750, "d/s": fs.ModeSetuid | 0o755} {
		fi, err := os.Lstat(filepath.Join(dest, p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
}

func TestSquashCapture(t *testing.T) {
	var got map[string][]byte
	opts := SquashOptions{
		Capture: []string{"/etc/passwd", "/etc/group", "/etc/missing"},
		Manifest: func(c map[string][]byte) ([]byte, error) {
			got = c
			return []byte(validManifest), nil
		},
	}
	_, err := squash(t, opts,
		[]Entry{Dir("etc"), File("etc/passwd", "old"), File("etc/group", "g")},
		[]Entry{File("etc/passwd", "root:x:0:0::/:/bin/sh")})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/etc/passwd": "root:x:0:0::/:/bin/sh", "/etc/group": "g"}
	if len(got) != len(want) {
		t.Errorf("captured %d files, want %d: %q", len(got), len(want), got)
	}
	for p, w := range want {
		if string(got[p]) != w {
			t.Errorf("%s = %q, want %q", p, got[p], w)
		}
	}
}

func TestSquashRefusesBadLayers(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]Entry
		entry  string
		reason error
	}{
		{"dotdot path", [][]Entry{{File("../x", "x")}}, "../x", errPathEscapes},
		{"dotdot inside", [][]Entry{{File("a/../../x", "x")}}, "a/../../x", errPathEscapes},
		{"absolute path", [][]Entry{{File("/etc/passwd", "x")}}, "/etc/passwd", errAbsolutePath},
		{"escaping symlink", [][]Entry{{Symlink("a", "../x")}}, "a", errSymlinkEscapes},
		{"nested escaping symlink", [][]Entry{{Dir("d"), Symlink("d/l", "../../etc")}}, "d/l", errSymlinkEscapes},
		{"write through symlink", [][]Entry{{Symlink("a", "/etc"), File("a/passwd", "x")}}, "a/passwd", errThroughSymlink},
		{"device node", [][]Entry{{{Name: "mem", Type: tar.TypeChar}}}, "mem", errDevice},
		{"hard link to nothing", [][]Entry{{Hardlink("l", "nothere")}}, "l", errHardlinkTarget},
		{"hard link to a directory below", [][]Entry{{Dir("d")}, {Hardlink("l", "d")}}, "l", errHardlinkTarget},
		{"hard link to a deleted file", [][]Entry{{File("a", "a")}, {File(".wh.a", ""), Hardlink("l", "a")}}, "l", errHardlinkTarget},
		{"hard link escaping", [][]Entry{{Hardlink("l", "../etc/shadow")}}, "l", errPathEscapes},
		{"whiteout of the parent", [][]Entry{{File("d/.wh..", "")}}, "d/.wh..", errWhiteout},
		{"duplicate file", [][]Entry{{File("a", "1"), File("a", "2")}}, "a", errDuplicate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := squash(t, SquashOptions{}, tc.layers...)
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.Entry != tc.entry || !errors.Is(err, tc.reason) {
				t.Fatalf("error = %v; want an InvalidError for entry %q: %v", err, tc.entry, tc.reason)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("layer %d", len(tc.layers))) {
				t.Errorf("error %q does not name layer %d", err, len(tc.layers))
			}
		})
	}
}

// Squashing is deterministic: the same layers always give the same image
// (and so the same image ID), whatever order maps iterate in.
func TestSquashDeterministic(t *testing.T) {
	layers := [][]Entry{
		{Dir("a"), File("a/1", "1"), File("a/2", "2"), Hardlink("a/3", "a/1"), Dir("b"), File("b/x", "x")},
		{File("a/.wh.1", ""), File("b/y", "y")},
	}
	first, err := squash(t, SquashOptions{}, layers...)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		again, err := squash(t, SquashOptions{}, layers...)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatal("two squashes of the same layers differ")
		}
	}
}

// FuzzSquash feeds arbitrary bytes, split into two layers, to Squash. It
// must never panic, and whatever it writes must be an image Validate
// accepts, so the store's own checks and the squash never disagree.
func FuzzSquash(f *testing.F) {
	for _, layers := range [][][]Entry{
		{{Dir("a"), File("a/x", "x")}, {File("a/.wh.x", "")}},
		{{File("a", "1"), Hardlink("b", "a")}, {File(".wh.a", "")}},
		{{Symlink("lib", "usr/lib")}, {File("lib/x", "x")}},
		{{File("../x", "x")}, {Dir("d"), File("d/.wh..wh..opq", "")}},
	} {
		a, b := Build(f, layers[0]...), Build(f, layers[1]...)
		f.Add(append(a, b...), len(a))
	}
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		if split < 0 || split > len(data) {
			split = len(data) / 2
		}
		var openers []LayerOpener
		for _, part := range [][]byte{data[:split], data[split:]} {
			openers = append(openers, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(part)), nil })
		}
		var out bytes.Buffer
		err := Squash(&out, openers, SquashOptions{Manifest: func(map[string][]byte) ([]byte, error) { return []byte(validManifest), nil }})
		if err != nil {
			return
		}
		if _, _, err := Validate(bytes.NewReader(out.Bytes())); err != nil {
			t.Fatalf("Squash wrote an image Validate refuses: %v", err)
		}
	})
}
