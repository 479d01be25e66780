package image

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"rkt.dev/rkt/stage0/image/aci"
)

// readBlob hands the stored tar of image id to fn and then checks that the
// blob still hashes to its ID, so a file damaged on disk is reported
// rather than silently rendered or exported.
func (s *Store) readBlob(id string, fn func(r io.Reader) error) error {
	f, err := os.Open(s.blobPath(id))
	if err != nil {
		return fmt.Errorf("opening image %s: %w", id, err)
	}
	defer f.Close()
	got, err := readHashed(f, "image "+id, fn)
	if err != nil {
		return err
	}
	if got != id {
		return fmt.Errorf("the stored image %s is damaged (its content hashes to %s); remove it with 'rkt image rm' and fetch it again", id, got)
	}
	return nil
}

// readHashed hands fn the content of r, reads whatever fn left, and
// returns the SHA-512 of all of it as an image ID ("sha512-…"), which is
// how the store names both images and the signed files it keeps. fn may
// stop early (at a tar's end marker); the ID covers every byte. fn's error
// is returned as it is, a read error after it with what as context.
func readHashed(r io.Reader, what string, fn func(io.Reader) error) (string, error) {
	h := sha512.New()
	tr := io.TeeReader(r, h)
	if err := fn(tr); err != nil {
		return "", err
	}
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return "", fmt.Errorf("reading %s: %w", what, err)
	}
	return aci.ImageIDPrefix + hex.EncodeToString(h.Sum(nil)), nil
}
