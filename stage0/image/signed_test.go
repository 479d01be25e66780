package image

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	at "rkt.dev/rkt/stage0/image/internal/acitest"
)

// signedFiles lists the kept signed files of the store.
func signedFiles(t *testing.T, s *Store) []string {
	t.Helper()
	m, err := filepath.Glob(s.casPath("signed", "sha512", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readSigned returns what ReadSigned hands its function.
func readSigned(t *testing.T, s *Store, id string) (sig, signed []byte) {
	t.Helper()
	err := s.ReadSigned(id, func(sg []byte, r io.Reader) error {
		sig = sg
		var err error
		signed, err = io.ReadAll(r)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return sig, signed
}

// An uncompressed signed image keeps only its signature: the blob is what
// was signed. A compressed one keeps the compressed file too, named by its
// hash; a later signed import replaces both, an unsigned one neither.
func TestImportSigned(t *testing.T) {
	s, _ := newStore(t)
	plain := at.Build(t, at.Image(t, "example.com/app")...)
	id := idOf(plain)

	got, err := s.ImportSigned(bytes.NewReader(plain), []byte("sig-plain"))
	if err != nil || got != id {
		t.Fatalf("ImportSigned = %s, %v; want %s", got, err, id)
	}
	if im, _ := s.Get(id); im.Signature != "sig-plain" || im.Signed != id {
		t.Errorf("record: signature %q, signed %s; want the blob", im.Signature, im.Signed)
	}
	if f := signedFiles(t, s); len(f) != 0 {
		t.Errorf("an uncompressed image kept %v", f)
	}
	if sig, signed := readSigned(t, s, id); string(sig) != "sig-plain" || !bytes.Equal(signed, plain) {
		t.Errorf("ReadSigned = %q and %d bytes; want the signature and the blob", sig, len(signed))
	}

	for _, compressed := range [][]byte{gzipped(t, plain), xzed(t, plain)} {
		if _, err := s.ImportSigned(bytes.NewReader(compressed), []byte("sig-compressed")); err != nil {
			t.Fatal(err)
		}
		im, _ := s.Get(id)
		if im.Signed != idOf(compressed) {
			t.Errorf("signed = %s, want the hash of the compressed file", im.Signed)
		}
		if f := signedFiles(t, s); len(f) != 1 || f[0] != s.signedPath(idOf(compressed)) {
			t.Errorf("kept files %v, want only the latest compressed file", f)
		}
		if sig, signed := readSigned(t, s, id); string(sig) != "sig-compressed" || !bytes.Equal(signed, compressed) {
			t.Errorf("ReadSigned = %q and %d bytes; want the signature and the compressed file", sig, len(signed))
		}
	}
	// An unsigned import of the same image keeps the signature: the
	// bytes are the same, and the signature still covers them.
	if _, err := s.Import(bytes.NewReader(plain)); err != nil {
		t.Fatal(err)
	}
	if im, _ := s.Get(id); im.Signature != "sig-compressed" || len(signedFiles(t, s)) != 1 {
		t.Errorf("an unsigned import changed the signature: %+v", im)
	}

	// Removing the image removes its kept file.
	if err := s.Remove(id, nil); err != nil {
		t.Fatal(err)
	}
	if f := signedFiles(t, s); len(f) != 0 {
		t.Errorf("kept files survived rm: %v", f)
	}
}

func TestReadSignedUnsigned(t *testing.T) {
	s, _ := newStore(t)
	id := importImage(t, s, "example.com/app", "1.0", nil)
	err := s.ReadSigned(id, func([]byte, io.Reader) error { return nil })
	if !errors.Is(err, ErrNoSignature) {
		t.Errorf("ReadSigned of an unsigned image = %v, want ErrNoSignature", err)
	}
}

// A refused signed import, or one that fails while keeping its file,
// leaves the store as it was.
func TestImportSignedFailureLeavesNothing(t *testing.T) {
	s, _ := newStore(t)
	importImage(t, s, "example.com/other", "1.0", nil)
	before := snapshot(t, s)
	bad := gzipped(t, at.Build(t, at.File("manifest", "{not json"), at.Dir("rootfs")))
	if _, err := s.ImportSigned(bytes.NewReader(bad), []byte("sig")); err == nil {
		t.Fatal("a bad image was imported")
	}
	truncated := gzipped(t, at.Build(t, at.Image(t, "example.com/app")...))
	truncated = truncated[:len(truncated)/2]
	if _, err := s.ImportSigned(bytes.NewReader(truncated), []byte("sig")); err == nil {
		t.Fatal("a truncated image was imported")
	}
	assertSnapshot(t, s, before)

	// The kept file cannot be stored: the import fails whole.
	if err := os.WriteFile(s.casPath("signed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before = snapshot(t, s)
	if _, err := s.ImportSigned(bytes.NewReader(gzipped(t, at.Build(t, at.Image(t, "example.com/app")...))), []byte("sig")); err == nil {
		t.Fatal("the import succeeded without keeping the signed file")
	}
	assertSnapshot(t, s, before)
}

// GC removes kept files no image names, and keeps the others.
func TestGCSweepsSignedFiles(t *testing.T) {
	s, c := newStore(t)
	compressed := gzipped(t, at.Build(t, at.Image(t, "example.com/app")...))
	id, err := s.ImportSigned(bytes.NewReader(compressed), []byte("sig"))
	if err != nil {
		t.Fatal(err)
	}
	stray := s.signedPath(idOf([]byte("stray")))
	if err := os.MkdirAll(filepath.Dir(stray), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stray, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(time.Hour, func(string) []string { return []string{"pod"} }); err != nil {
		t.Fatal(err)
	}
	if f := signedFiles(t, s); len(f) != 1 || f[0] != s.signedPath(idOf(compressed)) {
		t.Errorf("after GC: kept files %v, want only the image's", f)
	}
	c.t = c.t.Add(48 * time.Hour)
	if removed, err := s.GC(time.Hour, nil); err != nil || len(removed) != 1 || removed[0] != id {
		t.Fatalf("GC = %v, %v", removed, err)
	}
	if f := signedFiles(t, s); len(f) != 0 {
		t.Errorf("kept files survived GC of their image: %v", f)
	}
}
