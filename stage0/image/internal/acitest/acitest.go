// Package acitest builds ACI tar archives in memory for tests of the image
// store and the extractor, including archives no honest tool would write
// (escaping paths, device nodes, duplicates), which is why it writes raw
// headers instead of using appc's builders.
package acitest

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"
)

// Entry is one tar entry. Zero fields get sensible defaults: mode 0644 for
// files, 0755 for directories, a fixed modification time.
type Entry struct {
	Name string
	Type byte
	Body string
	Link string
	Mode int64
	Uid  int
	Gid  int
	// ModTime defaults to Epoch.
	ModTime time.Time
}

// Epoch is the modification time entries get by default, so that tests
// can check that times are applied.
var Epoch = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

// File is a regular file entry.
func File(name, body string) Entry { return Entry{Name: name, Type: tar.TypeReg, Body: body} }

// Dir is a directory entry.
func Dir(name string) Entry { return Entry{Name: name, Type: tar.TypeDir} }

// Symlink is a symbolic link entry.
func Symlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeSymlink, Link: target}
}

// Hardlink is a hard link entry.
func Hardlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeLink, Link: target}
}

// ManifestJSON returns a valid image manifest for name, with a version
// label and any extra top-level fields (e.g. "dependencies").
func ManifestJSON(t testing.TB, name, version string, extra map[string]any) string {
	t.Helper()
	m := map[string]any{
		"acKind":    "ImageManifest",
		"acVersion": "0.8.11",
		"name":      name,
		"labels": []map[string]string{
			{"name": "version", "value": version},
			{"name": "os", "value": "linux"},
			{"name": "arch", "value": "amd64"},
		},
	}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Image returns the entries of a minimal valid image: its manifest, the
// rootfs directory and then the given entries.
func Image(t testing.TB, name string, entries ...Entry) []Entry {
	t.Helper()
	return append([]Entry{File("manifest", ManifestJSON(t, name, "1.0", nil)), Dir("rootfs")}, entries...)
}

// Build writes the entries as a tar archive.
func Build(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:     e.Name,
			Typeflag: e.Type,
			Linkname: e.Link,
			Mode:     e.Mode,
			Uid:      e.Uid,
			Gid:      e.Gid,
			ModTime:  e.ModTime,
		}
		if hdr.ModTime.IsZero() {
			hdr.ModTime = Epoch
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if e.Type == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if e.Type == tar.TypeReg {
			hdr.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("writing tar header %q: %v", e.Name, err)
		}
		if _, err := tw.Write([]byte(e.Body)); err != nil {
			t.Fatalf("writing tar entry %q: %v", e.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// AssertEntries fails the test unless dir holds exactly the named entries,
// in os.ReadDir's (sorted) order: what an import or extraction must leave
// behind, and nothing half-written.
func AssertEntries(t testing.TB, dir string, want ...string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, de := range des {
		got = append(got, de.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %v, want %v", dir, got, want)
	}
}
