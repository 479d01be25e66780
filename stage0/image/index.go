package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"rkt.dev/rkt/internal/lock"
	"rkt.dev/rkt/stage0/image/aci"
)

// Image is the index record of a stored image.
type Image struct {
	// ID is the image ID, "sha512-" and 128 hex digits.
	ID string `json:"id"`
	// Name and Labels are copied from the manifest, so that lookups by
	// name need not read every manifest.
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	// ImportTime is when the image entered the store.
	ImportTime time.Time `json:"importTime"`
	// LastUsed is when a pod last used the image (see MarkUsed), or the
	// import time if none has. MarkUsed keeps it in the record file's
	// modification time; the JSON holds it as of the last rewrite.
	LastUsed time.Time `json:"lastUsed"`
	// Size is the size of the stored, uncompressed image in bytes.
	Size int64 `json:"size"`
	// TreeStoreID names the image's most recent rendering, "" if it was
	// never rendered, and TreeStoreSize is that tree's size in bytes.
	TreeStoreID   string `json:"treeStoreID,omitempty"`
	TreeStoreSize int64  `json:"treeStoreSize,omitempty"`
	// Signature is the armored detached signature the image was verified
	// with when it was fetched (see ImportSigned); "" for an image stored
	// without verification (--insecure-options=image, Docker and OCI
	// images).
	Signature string `json:"signature,omitempty"`
	// Signed names the bytes Signature covers: the image ID when the
	// image was signed as it is stored, uncompressed; otherwise "sha512-"
	// and the hex SHA-512 of the compressed file it was fetched as, which
	// is kept as cas/signed/sha512/<2 hex>/<Signed>.
	Signed string `json:"signed,omitempty"`
}

// Version is the image's "version" label, "" if it has none.
func (im Image) Version() string { return im.Labels["version"] }

// nameVersion is how progress names an image: name:version, or the name
// alone for an image without a version.
func (im Image) nameVersion() string {
	if v := im.Version(); v != "" {
		return im.Name + ":" + v
	}
	return im.Name
}

// readRecord returns the record of id, or an error satisfying
// errors.Is(err, ErrNotFound) if there is none.
func (s *Store) readRecord(id string) (Image, error) {
	if !aci.IsImageID(id, 128) {
		return Image{}, notFoundError{ref: id}
	}
	f, err := os.Open(s.recordPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return Image{}, notFoundError{ref: id}
	}
	if err != nil {
		return Image{}, fmt.Errorf("reading the index record of %s: %w", id, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	var fi os.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	if err != nil {
		return Image{}, fmt.Errorf("reading the index record of %s: %w", id, err)
	}
	var im Image
	if err := json.Unmarshal(b, &im); err != nil || im.ID != id {
		return Image{}, fmt.Errorf("the index record of %s in %s is damaged; remove the image with 'rkt image rm %s' and fetch it again", id, s.recordPath(id), id)
	}
	// MarkUsed's time, when later than the record's own.
	if mt := fi.ModTime(); mt.After(im.LastUsed) {
		im.LastUsed = mt
	}
	return im, nil
}

// readRecordLocked takes the store lock shared and reads the record of id,
// so that nothing the record names can be removed or replaced while the
// caller uses it; the caller closes the lock. On error nothing is held.
func (s *Store) readRecordLocked(id string) (Image, *lock.Lock, error) {
	l, err := s.lockStore(false)
	if err != nil {
		return Image{}, nil, err
	}
	im, err := s.readRecord(id)
	if err != nil {
		l.Close()
		return Image{}, nil, err
	}
	return im, l, nil
}

// writeRecord replaces the index record of im, with im.LastUsed as its
// modification time, so that rewriting a record (say, when GC forgets a
// tree) does not count as a use.
func (s *Store) writeRecord(im Image) error {
	b, err := json.Marshal(im)
	if err != nil {
		return fmt.Errorf("encoding the index record of %s: %w", im.ID, err)
	}
	path := s.recordPath(im.ID)
	if err := writeFileAtomic(path, b); err != nil {
		return err
	}
	// Should this be lost in a crash, the image only looks used later
	// than it was.
	if err := os.Chtimes(path, im.LastUsed, im.LastUsed); err != nil {
		return fmt.Errorf("writing the index record of %s: %w", im.ID, err)
	}
	return nil
}

// ids lists the IDs of all stored images, from the names of their records.
func (s *Store) ids() ([]string, error) {
	des, err := os.ReadDir(s.casPath("index"))
	if err != nil {
		return nil, fmt.Errorf("reading the image index: %w", err)
	}
	var ids []string
	for _, de := range des {
		id, ok := strings.CutSuffix(de.Name(), ".json")
		if ok && aci.IsImageID(id, 128) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// List returns the records of all stored images, oldest import first.
func (s *Store) List() ([]Image, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	images := make([]Image, 0, len(ids))
	for _, id := range ids {
		im, err := s.readRecord(id)
		if errors.Is(err, ErrNotFound) {
			continue // removed since the directory was read
		}
		if err != nil {
			return nil, err
		}
		images = append(images, im)
	}
	sort.Slice(images, func(i, j int) bool {
		if !images[i].ImportTime.Equal(images[j].ImportTime) {
			return images[i].ImportTime.Before(images[j].ImportTime)
		}
		return images[i].ID < images[j].ID
	})
	return images, nil
}

// Get returns the record of the image id.
func (s *Store) Get(id string) (Image, error) { return s.readRecord(id) }
