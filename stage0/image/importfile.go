package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
)

// fileStamp identifies one version of a file without reading it: the
// same file (device, inode) with the same size and modification time.
type fileStamp struct {
	Dev, Ino, Size, MtimeNs int64
	ID                      string
}

// ImportFile imports the ACI at path, like Import, but remembers which
// image a file held: importing the same, unchanged file again returns its
// ID without reading and hashing it. stage1 images (tens of MiB, with the
// guest kernel) are imported on every rkt run, so this is on the hot path
// of starting a pod. A file rewritten in place with the same size and
// mtime would be missed, as it would by make; rebuilt images get a new
// mtime.
func (s *Store) ImportFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	stamp, ok := stampOf(fi)
	cache := s.fileCachePath(path)
	if ok {
		var old fileStamp
		if b, err := os.ReadFile(cache); err == nil && json.Unmarshal(b, &old) == nil {
			id := old.ID
			old.ID = ""
			if old == stamp {
				if _, err := s.Get(id); err == nil {
					return id, nil
				}
			}
		}
	}
	id, err := s.Import(f)
	if err != nil {
		return "", err
	}
	if ok {
		stamp.ID = id
		if b, err := json.Marshal(stamp); err == nil {
			// A lost cache entry only costs a re-hash next time.
			if os.MkdirAll(filepath.Dir(cache), 0o755) == nil {
				writeFileAtomic(cache, b)
			}
		}
	}
	return id, nil
}

func stampOf(fi os.FileInfo) (fileStamp, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileStamp{}, false
	}
	return fileStamp{Dev: int64(st.Dev), Ino: int64(st.Ino), Size: st.Size, MtimeNs: st.Mtim.Nano()}, true
}

// fileCachePath is where ImportFile remembers the image a path held.
func (s *Store) fileCachePath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	sum := sha256.Sum256([]byte(abs))
	return s.casPath("filecache", hex.EncodeToString(sum[:])+".json")
}
