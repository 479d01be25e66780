package image

import (
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"os"

	"rkt.dev/rkt/stage0/image/aci"
)

// ErrNoSignature is matched (errors.Is) by the error of ReadSigned for an
// image that was stored without a signature: imported with
// --insecure-options=image, or converted from a Docker or OCI image.
var ErrNoSignature = errors.New("the image was stored without a signature")

// ReadSigned hands fn the armored signature the image id was verified
// with when it was fetched, and the bytes that signature covers: the
// stored image itself, or the compressed file kept for it (see
// ImportSigned). fn is expected to check the signature. ReadSigned then
// checks that those bytes still are the image: the blob still hashes to
// its ID and, for a kept file, the file still hashes to its recorded name
// and still decompresses to the image. A kept file swapped for another
// image's, even with that image's valid signature, fails there.
//
// The store lock is held shared meanwhile, so a fetch of the same image
// cannot replace what is being read.
func (s *Store) ReadSigned(id string, fn func(sig []byte, signed io.Reader) error) error {
	im, l, err := s.readRecordLocked(id)
	if err != nil {
		return err
	}
	defer l.Close()
	if im.Signature == "" {
		return fmt.Errorf("image %s: %w", id, ErrNoSignature)
	}
	sig := []byte(im.Signature)
	if im.Signed == id {
		return s.readBlob(id, func(r io.Reader) error { return fn(sig, r) })
	}
	if !aci.IsImageID(im.Signed, 128) {
		return fmt.Errorf("the index record of %s in %s names no valid signed file (%q); remove the image with 'rkt image rm %s' and fetch it again", id, s.recordPath(id), im.Signed, id)
	}
	if err := s.readOriginal(id, im.Signed, func(r io.Reader) error { return fn(sig, r) }); err != nil {
		return err
	}
	return s.readBlob(id, func(io.Reader) error { return nil })
}

// readOriginal hands fn the kept original signed of image id, then checks
// that it hashes to its name and decompresses to the image.
func (s *Store) readOriginal(id, signed string, fn func(io.Reader) error) error {
	p := s.signedPath(signed)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("the signed file of image %s, %s, is missing from the store; remove the image with 'rkt image rm %s' and fetch it again", id, p, id)
	}
	if err != nil {
		return fmt.Errorf("opening the signed file of image %s: %w", id, err)
	}
	defer f.Close()
	got, err := readHashed(f, "the signed file of image "+id, fn)
	if err != nil {
		return err
	}
	if got != signed {
		return fmt.Errorf("the signed file of image %s, %s, is damaged (its content hashes to %s); remove the image with 'rkt image rm %s' and fetch it again", id, p, got, id)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("reading the signed file of image %s: %w", id, err)
	}
	if got, err = decompressedID(f); err != nil {
		return fmt.Errorf("the signed file of image %s, %s, no longer decompresses (%w); remove the image with 'rkt image rm %s' and fetch it again", id, p, err, id)
	}
	if got != id {
		return fmt.Errorf("the signed file of image %s, %s, is the file of another image (%s); remove the image with 'rkt image rm %s' and fetch it again", id, p, got, id)
	}
	return nil
}

// decompressedID is the image ID of a possibly compressed ACI: the hash of
// its uncompressed bytes.
func decompressedID(r io.Reader) (string, error) {
	dr, err := aci.Decompress(r)
	if err != nil {
		return "", err
	}
	defer dr.Close()
	h := sha512.New()
	if _, err := io.Copy(h, dr); err != nil {
		return "", err
	}
	return hashID(h), nil
}
