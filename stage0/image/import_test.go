package image

import (
	"archive/tar"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ulikunitz/xz"

	"rkt.dev/rkt/stage0/image/aci"
	at "rkt.dev/rkt/stage0/image/internal/acitest"
)

func gzipped(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func xzed(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	xw, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := xw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := xw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportEveryCompression(t *testing.T) {
	// The standard library cannot write bzip2, so the image comes from a
	// fixture made with tar(1) and bzip2(1); the others are made from it.
	bz, err := os.ReadFile("testdata/hello.aci.bz2")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(bzip2.NewReader(bytes.NewReader(bz)))
	if err != nil {
		t.Fatal(err)
	}
	want := idOf(plain)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"plain", plain},
		{"gzip", gzipped(t, plain)},
		{"bzip2", bz},
		{"xz", xzed(t, plain)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := newStore(t)
			id, err := s.Import(bytes.NewReader(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if id != want {
				t.Errorf("ID = %s, want the sha512 of the uncompressed tar %s", id, want)
			}
			im, err := s.Get(id)
			if err != nil {
				t.Fatal(err)
			}
			if im.Name != "example.com/hello" || im.Version() != "1.0" || im.Size != int64(len(plain)) ||
				!im.ImportTime.Equal(c.t) || !im.LastUsed.Equal(c.t) {
				t.Errorf("record = %+v", im)
			}
			if got := readFile(t, s.blobPath(id)); got != string(plain) {
				t.Error("the blob is not the uncompressed tar")
			}
			at.AssertEntries(t, s.casPath("tmp"))
		})
	}
}

func TestImportTwiceIsANoOp(t *testing.T) {
	s, c := newStore(t)
	data := at.Build(t, at.Image(t, "example.com/app", at.File("rootfs/a", "a"))...)
	id := importTar(t, s, data)
	before := snapshot(t, s)
	first, _ := s.Get(id)
	c.t = c.t.Add(1000)
	if again, err := s.Import(bytes.NewReader(gzipped(t, data))); err != nil || again != id {
		t.Errorf("second import returned %s, %v; want %s", again, err, id)
	}
	if second, _ := s.Get(id); !reflect.DeepEqual(second, first) {
		t.Errorf("record changed from %+v to %+v", first, second)
	}
	assertSnapshot(t, s, before)
}

// Each bad image is refused with an error naming the offending entry, and
// the store is exactly as before: no blob, no record, no temporary file.
func TestImportRefusesBadImages(t *testing.T) {
	valid := at.Build(t, at.Image(t, "example.com/app", at.File("rootfs/a", "a"))...)
	img := func(extra ...at.Entry) []byte { return at.Build(t, at.Image(t, "example.com/app", extra...)...) }
	for _, tc := range []struct {
		name string
		data []byte
		want []string
	}{
		{"dotdot path", img(at.File("rootfs/../x", "x")), []string{`entry "rootfs/../x"`, "path escapes the image root"}},
		{"absolute path", img(at.File("/etc/passwd", "x")), []string{`entry "/etc/passwd"`, "absolute path"}},
		{"symlink escaping", img(at.Symlink("rootfs/a", "../../etc")), []string{`entry "rootfs/a"`, "escapes"}},
		{"write through symlink", img(at.Symlink("rootfs/a", "/etc"), at.File("rootfs/a/passwd", "x")), []string{`entry "rootfs/a/passwd"`, "symlink"}},
		{"hardlink outside", img(at.Hardlink("rootfs/l", "../etc/passwd")), []string{`entry "rootfs/l"`, "hard link target"}},
		{"hardlink not in archive", img(at.Hardlink("rootfs/l", "rootfs/nothere")), []string{`entry "rootfs/l"`, "hard link target"}},
		{"char device", img(at.Entry{Name: "rootfs/dev/mem", Type: tar.TypeChar}), []string{`entry "rootfs/dev/mem"`, "device"}},
		{"block device", img(at.Entry{Name: "rootfs/dev/sda", Type: tar.TypeBlock}), []string{`entry "rootfs/dev/sda"`, "device"}},
		{"duplicate entries", img(at.File("rootfs/a", "a"), at.File("rootfs/a", "b")), []string{`entry "rootfs/a"`, "duplicate"}},
		{"extra top-level entry", img(at.File("etc/passwd", "x")), []string{`entry "etc/passwd"`, "top level"}},
		{"missing manifest", at.Build(t, at.Dir("rootfs")), []string{`missing "manifest"`}},
		{"invalid manifest JSON", at.Build(t, at.File("manifest", "{"), at.Dir("rootfs")), []string{`entry "manifest"`, "not valid JSON"}},
		{"manifest failing validation", at.Build(t, at.File("manifest", `{"acKind":"ImageManifest","acVersion":"0.8.11"}`), at.Dir("rootfs")), []string{`entry "manifest"`, "name must be set"}},
		{"truncated gzip", gzipped(t, valid)[:200], []string{"corrupt image", "unexpected EOF"}},
		{"bad gzip checksum", corruptTail(gzipped(t, valid)), []string{"corrupt image", "gzip"}},
		{"truncated xz", xzed(t, valid)[:100], []string{"corrupt image"}},
		{"not an archive", []byte("hello, world"), []string{"corrupt image"}},
		{"empty input", nil, []string{`missing "manifest"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			before := snapshot(t, s)
			_, err := s.Import(bytes.NewReader(tc.data))
			assertErrorContains(t, err, tc.want...)
			if !errors.As(err, new(*aci.InvalidError)) {
				t.Errorf("error %v is not an *aci.InvalidError", err)
			}
			assertSnapshot(t, s, before)
		})
	}
}

// corruptTail flips a byte of the gzip trailer (the CRC), which is only
// noticed after the whole archive was read.
func corruptTail(gz []byte) []byte {
	out := bytes.Clone(gz)
	out[len(out)-6] ^= 0xff
	return out
}

// Concurrent imports, like several rkt processes fetching at once, store
// each image once and leave nothing behind.
func TestImportConcurrently(t *testing.T) {
	s, _ := newStore(t)
	images := [][]byte{
		at.Build(t, at.Image(t, "example.com/a", at.File("rootfs/a", "a"))...),
		at.Build(t, at.Image(t, "example.com/b", at.File("rootfs/b", "b"))...),
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			other, err := Open(s.dataDir)
			if err == nil {
				_, err = other.Import(bytes.NewReader(images[i%2]))
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	list, err := s.List()
	if err != nil || len(list) != 2 {
		t.Errorf("List = %v, %v; want two images", list, err)
	}
	at.AssertEntries(t, s.casPath("tmp"))
	want := []string{idOf(images[0]) + ".json", idOf(images[1]) + ".json"}
	slices.Sort(want)
	at.AssertEntries(t, s.casPath("index"), want...)
}

func TestImportFileRemembersUnchangedFiles(t *testing.T) {
	s, _ := newStore(t)
	data := at.Build(t, at.File("manifest", at.ManifestJSON(t, "example.com/f", "1", nil)), at.Dir("rootfs"))
	path := filepath.Join(t.TempDir(), "f.aci")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	id, err := s.ImportFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if id != idOf(data) {
		t.Fatalf("ImportFile = %s, want %s", id, idOf(data))
	}
	// The unchanged file is answered from the cache without being read:
	// point the cache entry at another stored image, and that comes back.
	otherID := importImage(t, s, "example.com/g", "1", nil)
	cache := s.fileCachePath(path)
	b, err := os.ReadFile(cache)
	if err != nil {
		t.Fatalf("no cache entry after ImportFile: %v", err)
	}
	if err := os.WriteFile(cache, []byte(strings.Replace(string(b), id, otherID, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err := s.ImportFile(path); err != nil || again != otherID {
		t.Fatalf("second ImportFile = %s, %v; want the cached %s", again, err, otherID)
	}
	// A changed file is read again.
	other := at.Build(t, at.File("manifest", at.ManifestJSON(t, "example.com/f", "2", nil)), at.Dir("rootfs"))
	if err := os.WriteFile(path, other, 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	os.Chtimes(path, future, future)
	if got, err := s.ImportFile(path); err != nil || got != idOf(other) {
		t.Fatalf("ImportFile of a changed file = %s, %v; want %s", got, err, idOf(other))
	}
}
