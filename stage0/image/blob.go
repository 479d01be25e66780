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
	h := sha512.New()
	r := io.TeeReader(f, h)
	if err := fn(r); err != nil {
		return err
	}
	// fn may stop at the end of the archive; the ID covers every byte.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("reading image %s: %w", id, err)
	}
	if got := aci.ImageIDPrefix + hex.EncodeToString(h.Sum(nil)); got != id {
		return fmt.Errorf("the stored image %s is damaged (its content hashes to %s); remove it with 'rkt image rm' and fetch it again", id, got)
	}
	return nil
}
