package image

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	at "rkt.dev/rkt/stage0/image/internal/acitest"
)

// clock is a controllable time source for a store under test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newStore(t *testing.T) (*Store, *clock) {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}
	s.now = c.now
	return s, c
}

func importTar(t *testing.T, s *Store, data []byte) string {
	t.Helper()
	id, err := s.Import(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if want := idOf(data); id != want {
		t.Fatalf("Import returned %s, want the sha512 of the tar %s", id, want)
	}
	return id
}

// importImage imports an image called name whose manifest has the extra
// fields (dependencies, pathWhitelist) and the given rootfs entries.
func importImage(t *testing.T, s *Store, name, version string, extra map[string]any, entries ...at.Entry) string {
	t.Helper()
	all := append([]at.Entry{at.File("manifest", at.ManifestJSON(t, name, version, extra)), at.Dir("rootfs")}, entries...)
	return importTar(t, s, at.Build(t, all...))
}

func idOf(data []byte) string {
	sum := sha512.Sum512(data)
	return "sha512-" + hex.EncodeToString(sum[:])
}

// snapshot lists every path below the store's data directory, so a test
// can assert that a failed operation left it exactly as it was.
func snapshot(t *testing.T, s *Store) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(s.dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.dataDir, p)
		paths = append(paths, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

func assertSnapshot(t *testing.T, s *Store, before []string) {
	t.Helper()
	after := snapshot(t, s)
	if !slices.Equal(before, after) {
		t.Errorf("store changed:\nbefore %v\nafter  %v", before, after)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertErrorContains(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}
