// Package lock wraps flock(2) on files and directories.
//
// rkt keeps state in the file system and coordinates concurrent rkt
// processes with advisory locks: a pod's state is partly "is its directory
// locked", and the image store serialises writers with a lock file. flock
// locks belong to an open file description, so they survive exec (stage0
// hands the pod lock to stage1 through RKT_LOCK_FD) and vanish when the last
// holder exits, which is exactly the "is the pod still running" signal.
package lock

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned by the non-blocking Try* functions when another
// holder has a conflicting lock.
var ErrLocked = errors.New("locked by another process")

// Lock is an open file or directory that may hold an flock.
type Lock struct {
	f *os.File
}

// Open opens path (a file or a directory) for locking. The file must exist.
// Close must be called to release both the lock and the descriptor.
func Open(path string) (*Lock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s for locking: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// FromFD wraps an inherited descriptor, such as the pod lock that stage1
// receives in RKT_LOCK_FD.
func FromFD(fd uintptr, name string) *Lock {
	return &Lock{f: os.NewFile(fd, name)}
}

func (l *Lock) flock(how int) error {
	for {
		err := unix.Flock(int(l.f.Fd()), how)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EWOULDBLOCK {
			return ErrLocked
		}
		if err != nil {
			return fmt.Errorf("flock %s: %w", l.f.Name(), err)
		}
		return nil
	}
}

// Exclusive blocks until it holds an exclusive lock.
func (l *Lock) Exclusive() error { return l.flock(unix.LOCK_EX) }

// Shared blocks until it holds a shared lock.
func (l *Lock) Shared() error { return l.flock(unix.LOCK_SH) }

// TryExclusive takes an exclusive lock or returns ErrLocked at once.
func (l *Lock) TryExclusive() error { return l.flock(unix.LOCK_EX | unix.LOCK_NB) }

// TryShared takes a shared lock or returns ErrLocked at once.
func (l *Lock) TryShared() error { return l.flock(unix.LOCK_SH | unix.LOCK_NB) }

// Unlock releases the lock but keeps the descriptor open.
func (l *Lock) Unlock() error { return l.flock(unix.LOCK_UN) }

// Fd returns the descriptor, for passing to a child process.
func (l *Lock) Fd() uintptr { return l.f.Fd() }

// File returns the underlying file, for ExtraFiles of a child process.
func (l *Lock) File() *os.File { return l.f }

// Close releases the lock (if this was the last descriptor holding it) and
// closes the descriptor.
func (l *Lock) Close() error { return l.f.Close() }
