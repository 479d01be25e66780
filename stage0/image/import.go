package image

import (
	"bufio"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
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
	staged, err := s.stage(r, false)
	if err != nil {
		return "", err
	}
	if err := s.commit(staged); err != nil {
		return "", err
	}
	return staged.id, nil
}

// ImportSigned imports an image, as Import does, whose bytes in r were
// verified with the armored detached signature sig, and keeps sig with it
// (Image.Signature) so that the signature can be checked again later
// against the trust store as it is then (see ReadSigned). A signature
// covers the file as it was published; when that file is compressed the
// stored, uncompressed blob is not what was signed, so the compressed
// bytes are kept too, in cas/signed/. Importing an image that is already
// stored replaces the signature it was kept with.
//
// On any error the store is left exactly as it was.
func (s *Store) ImportSigned(r io.Reader, sig []byte) (string, error) {
	if len(sig) == 0 {
		return "", errors.New("importing a signed image: no signature given")
	}
	br := bufio.NewReaderSize(r, 64<<10)
	// A short stream is not an error here; staging reports what is wrong.
	head, _ := br.Peek(aci.HeadSize)
	staged, err := s.stage(br, aci.Compression(head) != "")
	if err != nil {
		return "", err
	}
	staged.signature = sig
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
	// original is the temporary file holding the bytes read as they were
	// (compressed), and originalID their "sha512-" hash; both "" unless
	// the original is to be kept.
	original, originalID string
	// signature is the signature to keep with the image; nil for none.
	signature []byte
}

// stage decompresses r into a temporary file under cas/tmp, hashing the
// uncompressed bytes and validating them on the way; with keepOriginal it
// also copies the bytes of r as they are into a second temporary file. No
// lock is held: the temporary files are private to this import.
func (s *Store) stage(r io.Reader, keepOriginal bool) (staged, error) {
	f, err := os.CreateTemp(s.casPath("tmp"), "import-")
	if err != nil {
		return staged{}, fmt.Errorf("creating a temporary file in the image store: %w", err)
	}
	var orig *os.File
	if keepOriginal {
		if orig, err = os.CreateTemp(s.casPath("tmp"), "original-"); err != nil {
			f.Close()
			os.Remove(f.Name())
			return staged{}, fmt.Errorf("creating a temporary file in the image store: %w", err)
		}
	}
	st, err := writeStaged(f, orig, r)
	for _, file := range []*os.File{f, orig} {
		if file == nil {
			continue
		}
		if cerr := file.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing %s: %w", file.Name(), cerr)
		}
	}
	if err != nil {
		os.Remove(f.Name())
		if orig != nil {
			os.Remove(orig.Name())
		}
		return staged{}, err
	}
	st.tmp = f.Name()
	if orig != nil {
		st.original = orig.Name()
	}
	return st, nil
}

// writeStaged writes the uncompressed image of r to f and, when orig is
// not nil, the bytes of r as they are to orig.
func writeStaged(f, orig *os.File, r io.Reader) (staged, error) {
	var (
		src *teeReader // r copied to orig
		ow  *bufio.Writer
		oh  hash.Hash
	)
	if orig != nil {
		ow, oh = bufio.NewWriterSize(orig, 64<<10), sha512.New()
		src = &teeReader{r: r, w: io.MultiWriter(ow, oh)}
		r = src
	}
	// hostErr is a failure to write the original: the host's fault,
	// though the decompressor reports it as a read error.
	hostErr := func() error {
		if src != nil && src.werr != nil {
			return fmt.Errorf("writing %s: %w", orig.Name(), src.werr)
		}
		return nil
	}

	dr, err := aci.Decompress(r)
	if err != nil {
		if herr := hostErr(); herr != nil {
			return staged{}, herr
		}
		return staged{}, err
	}
	defer dr.Close()

	h := newBackgroundHash(sha512.New())
	w := bufio.NewWriterSize(&writebackFile{f: f}, 256<<10)
	cw := &countingWriter{w: io.MultiWriter(w, h)}
	// Written errors are the host's; read errors are the image's. Keep
	// them apart so the message blames the right one.
	tee := &teeReader{r: dr, w: cw}

	hashed := false
	defer func() {
		if !hashed {
			h.Abort()
		}
	}()
	im, manifestRaw, err := aci.Validate(tee)
	if err == nil {
		// Validation stops at the end-of-archive marker; the ID covers
		// the whole uncompressed stream, padding and all.
		_, err = io.Copy(io.Discard, tee)
	}
	if err == nil && src != nil {
		// Whatever follows the compressed stream was signed too: the
		// original is every byte of r.
		_, err = io.Copy(io.Discard, src)
	}
	switch {
	case tee.werr != nil:
		return staged{}, fmt.Errorf("writing %s: %w", f.Name(), tee.werr)
	case hostErr() != nil:
		return staged{}, hostErr()
	case err != nil && !errors.As(err, new(*aci.InvalidError)):
		return staged{}, &aci.InvalidError{Err: fmt.Errorf("reading archive: %w", err)}
	case err != nil:
		return staged{}, err
	}
	if err := syncFile(f, w); err != nil {
		return staged{}, err
	}
	hashed = true
	st := staged{
		id:          hashID(h.Hash()),
		size:        cw.n,
		manifest:    im,
		manifestRaw: manifestRaw,
	}
	if orig != nil {
		if err := syncFile(orig, ow); err != nil {
			return staged{}, err
		}
		st.originalID = hashID(oh)
	}
	return st, nil
}

// syncFile flushes w, which writes to f, and syncs f.
func syncFile(f *os.File, w *bufio.Writer) error {
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	return nil
}

// hashID is an image ID (or a kept original's name) from its SHA-512.
func hashID(h hash.Hash) string { return aci.ImageIDPrefix + hex.EncodeToString(h.Sum(nil)) }

// commit moves a staged image into the store under the exclusive lock and
// removes the temporary files whatever happens. The record is written
// last: until then the image does not exist for readers, and an image
// stored already keeps its previous signature until its record is
// rewritten with the new one.
func (s *Store) commit(st staged) (err error) {
	var moved, originalMoved, originalExisted bool
	defer func() {
		if !moved {
			os.Remove(st.tmp)
		}
		if st.original != "" && !originalMoved {
			os.Remove(st.original)
		}
		if err == nil {
			return
		}
		// Leave the store as it was: without a record these files
		// would only wait for GC. Shard directories go too if this
		// import created them (removing one fails while it holds files).
		var undo []string
		if moved {
			undo = append(undo, s.blobPath(st.id), s.manifestPath(st.id))
		}
		if originalMoved && !originalExisted {
			undo = append(undo, s.signedPath(st.originalID))
		}
		for _, p := range undo {
			os.Remove(p)
			os.Remove(filepath.Dir(p))
		}
	}()
	l, err := s.lockStore(true)
	if err != nil {
		return err
	}
	defer l.Close()

	old, err := s.readRecord(st.id)
	stored := err == nil
	switch {
	case err != nil && !errors.Is(err, ErrNotFound):
		return err
	case stored && st.signature == nil:
		return nil
	}
	rec := old
	if !stored {
		if err := moveInto(st.tmp, s.blobPath(st.id)); err != nil {
			return fmt.Errorf("storing image %s: %w", st.id, err)
		}
		moved = true
		if err := writeFileAtomic(s.manifestPath(st.id), st.manifestRaw); err != nil {
			return fmt.Errorf("storing image %s: %w", st.id, err)
		}
		now := s.now()
		rec = Image{
			ID:         st.id,
			Name:       st.manifest.Name.String(),
			Labels:     labelMap(st.manifest),
			ImportTime: now,
			LastUsed:   now,
			Size:       st.size,
		}
	}
	if st.signature != nil {
		rec.Signature, rec.Signed = string(st.signature), st.id
		if st.original != "" {
			p := s.signedPath(st.originalID)
			// Kept originals are named by their content, so one that
			// exists already holds these very bytes.
			_, statErr := os.Lstat(p)
			originalExisted = statErr == nil
			if err := moveInto(st.original, p); err != nil {
				return fmt.Errorf("storing the signed original of image %s: %w", st.id, err)
			}
			originalMoved = true
			rec.Signed = st.originalID
		}
	}
	if err := s.writeRecord(rec); err != nil {
		return err
	}
	// The original the image was signed as before is no longer referenced.
	if stored && old.Signed != "" && old.Signed != old.ID && old.Signed != rec.Signed {
		os.Remove(s.signedPath(old.Signed))
	}
	return nil
}

// moveInto renames the temporary file tmp to path, readable by all.
func moveInto(tmp, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
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
