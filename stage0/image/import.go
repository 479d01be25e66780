package image

import (
	"bufio"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/appc/spec/schema"

	"rkt.dev/rkt/stage0/image/aci"
)

// Import reads an ACI (gzip, bzip2, xz or not compressed), validates it
// completely (see package aci) and stores it. It returns the image ID.
// Importing an image that is already stored changes nothing and returns
// the same ID.
//
// A bad image is refused with an *aci.InvalidError naming the offending
// entry, and the store is left exactly as it was.
func (s *Store) Import(r io.Reader) (string, error) {
	staged, err := s.stage(r)
	if err != nil {
		return "", err
	}
	if err := s.commit(staged); err != nil {
		return "", err
	}
	return staged.id, nil
}

// staged is an image validated and written to cas/tmp, not yet stored.
type staged struct {
	tmp         string
	id          string
	size        int64
	manifest    *schema.ImageManifest
	manifestRaw []byte
}

// stage decompresses r into a temporary file under cas/tmp, hashing the
// uncompressed bytes and validating them on the way. No lock is held: the
// temporary file is private to this import.
func (s *Store) stage(r io.Reader) (staged, error) {
	f, err := os.CreateTemp(s.casPath("tmp"), "import-")
	if err != nil {
		return staged{}, fmt.Errorf("creating a temporary file in the image store: %w", err)
	}
	st, err := writeStaged(f, r)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing %s: %w", f.Name(), cerr)
	}
	if err != nil {
		os.Remove(f.Name())
		return staged{}, err
	}
	st.tmp = f.Name()
	return st, nil
}

func writeStaged(f *os.File, r io.Reader) (staged, error) {
	dr, err := aci.Decompress(r)
	if err != nil {
		return staged{}, err
	}
	defer dr.Close()

	h := sha512.New()
	w := bufio.NewWriterSize(f, 64<<10)
	cw := &countingWriter{w: io.MultiWriter(w, h)}
	// Written errors are the host's; read errors are the image's. Keep
	// them apart so the message blames the right one.
	tee := &teeReader{r: dr, w: cw}

	im, raw, err := aci.Validate(tee)
	if err == nil {
		// Validation stops at the end-of-archive marker; the ID covers
		// the whole uncompressed stream, padding and all.
		_, err = io.Copy(io.Discard, tee)
	}
	switch {
	case tee.werr != nil:
		return staged{}, fmt.Errorf("writing %s: %w", f.Name(), tee.werr)
	case err != nil && !errors.As(err, new(*aci.InvalidError)):
		return staged{}, &aci.InvalidError{Err: fmt.Errorf("reading archive: %w", err)}
	case err != nil:
		return staged{}, err
	}
	if err := w.Flush(); err != nil {
		return staged{}, fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return staged{}, fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	return staged{
		id:          aci.ImageIDPrefix + hex.EncodeToString(h.Sum(nil)),
		size:        cw.n,
		manifest:    im,
		manifestRaw: raw,
	}, nil
}

// commit moves a staged image into the store under the exclusive lock and
// removes the temporary file whatever happens. The record is written last:
// until then the image does not exist for readers.
func (s *Store) commit(st staged) (err error) {
	moved := false
	defer func() {
		if !moved {
			os.Remove(st.tmp)
		}
		if moved && err != nil {
			// Leave the store as it was: without a record these files
			// would only wait for GC.
			os.Remove(s.blobPath(st.id))
			os.Remove(s.manifestPath(st.id))
		}
	}()
	l, err := s.lockStore(true)
	if err != nil {
		return err
	}
	defer l.Close()

	if _, err := s.readRecord(st.id); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	blob := s.blobPath(st.id)
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return fmt.Errorf("storing image %s: %w", st.id, err)
	}
	if err := os.Chmod(st.tmp, 0o644); err != nil {
		return fmt.Errorf("storing image %s: %w", st.id, err)
	}
	if err := os.Rename(st.tmp, blob); err != nil {
		return fmt.Errorf("storing image %s: %w", st.id, err)
	}
	moved = true
	if err := writeFileAtomic(s.manifestPath(st.id), st.manifestRaw); err != nil {
		return fmt.Errorf("storing image %s: %w", st.id, err)
	}
	now := s.now()
	return s.writeRecord(Image{
		ID:         st.id,
		Name:       st.manifest.Name.String(),
		Labels:     labelMap(st.manifest),
		ImportTime: now,
		LastUsed:   now,
		Size:       st.size,
	})
}

func labelMap(im *schema.ImageManifest) map[string]string {
	if len(im.Labels) == 0 {
		return nil
	}
	m := make(map[string]string, len(im.Labels))
	for _, l := range im.Labels {
		m[l.Name.String()] = l.Value
	}
	return m
}

// teeReader is io.TeeReader that remembers a write error, which io's
// version reports as if it were a read error.
type teeReader struct {
	r    io.Reader
	w    io.Writer
	werr error
}

func (t *teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		if _, werr := t.w.Write(p[:n]); werr != nil {
			t.werr = werr
			return n, werr
		}
	}
	return n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
