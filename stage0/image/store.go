package image

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"rkt.dev/rkt/internal/lock"
	"rkt.dev/rkt/stage0/image/progress"
	"rkt.dev/rkt/stage1"
)

// Store is the image store of one rkt data directory. It holds no state
// beyond paths and where to show progress, so any number of Stores, in any
// number of processes, may use the same directory at once.
type Store struct {
	dataDir string
	// now is time.Now; tests replace it to control import and use times.
	now func() time.Time
	// progress receives the progress of renders; nil shows none.
	progress io.Writer
}

// WithProgress returns a Store of the same directory that shows on w
// (rkt's stderr) the progress of rendering and extracting images: a bar
// per image on a terminal, one line per image otherwise. A rendering
// reused from the tree store shows nothing. A nil w shows nothing, as a
// Store from Open does.
func (s *Store) WithProgress(w io.Writer) *Store {
	c := *s
	c.progress = w
	return &c
}

// output is a fresh progress.Output for one operation, which closes it
// when done so its bars are drawn in their final state before anything
// else writes; nil (reporting nothing) without a progress writer.
func (s *Store) output() *progress.Output {
	if s.progress == nil {
		return nil
	}
	return progress.New(s.progress)
}

// Open returns the store of dataDir, creating its directories if needed.
func Open(dataDir string) (*Store, error) {
	s := &Store{dataDir: dataDir, now: time.Now}
	for _, d := range []string{
		s.casPath("blob"), s.casPath("imageManifest"), s.casPath("index"),
		s.casPath("tmp"), s.casPath("treelocks"), s.treeTmpDir(),
	} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("creating the image store in %s: %w", dataDir, err)
		}
	}
	f, err := os.OpenFile(s.casPath("lock"), os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating the image store lock: %w", err)
	}
	f.Close()
	return s, nil
}

func (s *Store) casPath(elem ...string) string {
	return filepath.Join(append([]string{s.dataDir, "cas"}, elem...)...)
}

// shardedPath is where a diskv-style store keeps a file for an image ID.
func (s *Store) shardedPath(kind, id string) string {
	hex := id[len("sha512-"):]
	return s.casPath(kind, "sha512", hex[:2], id)
}

func (s *Store) blobPath(id string) string     { return s.shardedPath("blob", id) }
func (s *Store) manifestPath(id string) string { return s.shardedPath("imageManifest", id) }
func (s *Store) recordPath(id string) string   { return s.casPath("index", id+".json") }

// signedPath is where the compressed file a signed image was fetched as is
// kept, named by its own hash (Image.Signed).
func (s *Store) signedPath(signed string) string { return s.shardedPath("signed", signed) }

func (s *Store) treeRoot() string { return filepath.Join(s.dataDir, "tree") }

// treeDir holds a tree's rootfs, at the path stage1 expects.
func (s *Store) treeDir(treeStoreID string) string {
	return filepath.Dir(stage1.TreeRootfs(s.dataDir, treeStoreID))
}

func (s *Store) treeTmpDir() string { return filepath.Join(s.treeRoot(), "tmp") }

// lockStore takes the store-wide lock, exclusive or shared. The caller
// closes the returned lock to release it.
func (s *Store) lockStore(exclusive bool) (*lock.Lock, error) {
	return takeLock(s.casPath("lock"), exclusive)
}

// lockTree takes the exclusive lock of one tree; the store lock must be
// held already.
func (s *Store) lockTree(treeStoreID string) (*lock.Lock, error) {
	p := s.casPath("treelocks", treeStoreID)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating tree lock: %w", err)
	}
	f.Close()
	return takeLock(p, true)
}

func takeLock(path string, exclusive bool) (*lock.Lock, error) {
	l, err := lock.Open(path)
	if err != nil {
		return nil, err
	}
	take := l.Shared
	if exclusive {
		take = l.Exclusive
	}
	if err := take(); err != nil {
		l.Close()
		return nil, fmt.Errorf("locking the image store: %w", err)
	}
	return l, nil
}
