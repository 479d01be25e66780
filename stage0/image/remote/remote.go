// Package remote remembers where stored images came from, so that a fetch
// can be answered from the image store without downloading: the image a
// Docker reference or digest was converted into, and the HTTP cache
// validators (ETag, max-age) of an ACI URL. It is rkt's "remote" table.
// (The signature an image was verified with is not a hint but part of the
// image: the image store keeps it, see image.Store.ImportSigned.)
//
// Records live in <data dir>/cas/remote/, one JSON file per key, named by
// the key's SHA-256, written atomically (temporary file and rename) so
// concurrent rkt processes never read half a record. A record is only a
// hint: it names an image ID, and callers check that the image is still in
// the store before using it, so records of removed images are harmless
// and are simply overwritten by the next fetch.
package remote

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Record is what is known about one fetched source.
type Record struct {
	// Key is the source: a Docker digest or reference, or a URL.
	Key string `json:"key"`
	// ImageID is the image the source was stored as.
	ImageID string `json:"imageID"`
	// Digest is the manifest digest a Docker reference resolved to.
	Digest string `json:"digest,omitempty"`
	// ETag and MaxAge are the HTTP cache validators of a URL, and
	// Downloaded is when it was last fetched or revalidated.
	ETag       string    `json:"etag,omitempty"`
	MaxAge     int       `json:"maxAge,omitempty"`
	Downloaded time.Time `json:"downloaded"`
}

// Fresh reports whether an HTTP response recorded at Downloaded with
// MaxAge may still be used without asking the server at time now.
func (r Record) Fresh(now time.Time) bool {
	return r.MaxAge > 0 && now.Before(r.Downloaded.Add(time.Duration(r.MaxAge)*time.Second))
}

// Index is the set of records of one data directory.
type Index struct{ dir string }

// Open returns the index of the rkt data directory dataDir.
func Open(dataDir string) (*Index, error) {
	dir := filepath.Join(dataDir, "cas", "remote")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	return &Index{dir: dir}, nil
}

func (x *Index) path(key string) string {
	h := sha256.Sum256([]byte(key))
	return filepath.Join(x.dir, hex.EncodeToString(h[:])+".json")
}

// Get returns the record of key; ok is false if there is none. A damaged
// record counts as none: it is only a cache.
func (x *Index) Get(key string) (r Record, ok bool) {
	b, err := os.ReadFile(x.path(key))
	if err != nil {
		return Record{}, false
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Key != key {
		return Record{}, false
	}
	return r, true
}

// Put writes the record, replacing any earlier one of the same key.
func (x *Index) Put(r Record) error {
	if r.Key == "" {
		return errors.New("remote record without a key")
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p := x.path(r.Key)
	f, err := os.CreateTemp(x.dir, ".tmp-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// Keys of the records other packages share.
const (
	// DockerDigestKey + a manifest digest ("sha256:…") records the image
	// that manifest was converted into.
	DockerDigestKey = "docker-digest:"
	// DockerRefKey + a full Docker reference records what it last
	// resolved to, for --pull-policy=new and never.
	DockerRefKey = "docker-ref:"
)

// PullPolicy says when a fetch may use the network.
type PullPolicy int

// The pull policies of --pull-policy.
const (
	// PullNew fetches only images that are not in the store.
	PullNew PullPolicy = iota + 1
	// PullUpdate asks the server whether a stored image changed, and
	// downloads it only if it did.
	PullUpdate
	// PullNever uses the store only.
	PullNever
)

// ParsePullPolicy parses "new", "update" or "never".
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch s {
	case "new":
		return PullNew, nil
	case "update":
		return PullUpdate, nil
	case "never":
		return PullNever, nil
	}
	return 0, fmt.Errorf("unknown pull policy %q (valid: new, update, never)", s)
}

func (p PullPolicy) String() string {
	switch p {
	case PullNew:
		return "new"
	case PullUpdate:
		return "update"
	case PullNever:
		return "never"
	}
	return "unknown"
}
