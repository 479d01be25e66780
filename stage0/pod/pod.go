// Package pod manages pod directories and their life cycle on disk.
//
// A pod's state is the directory it sits in under <data>/pods plus whether
// its directory is flock'ed, exactly as in the original rkt:
//
//	embryo/          locked: being created         unlocked: abandoned
//	prepare/         locked: preparing             unlocked: aborted prepare
//	prepared/        ready for run-prepared
//	run/             locked: running               unlocked: exited
//	exited-garbage/  locked: exited, deleting      unlocked: exited, marked for gc
//	garbage/         locked: deleting              unlocked: marked for gc
//
// Every transition is an atomic rename(2) of the directory, done while the
// caller holds the directory's lock, so concurrent rkt processes (run, gc,
// list) always see a pod in exactly one state. The lock is held through
// renames because it belongs to the open directory, not to its path.
package pod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"rkt.dev/rkt/internal/lock"
	"rkt.dev/rkt/stage1"
)

// State is a pod state, named as rkt names them.
type State string

// The pod states.
const (
	Embryo          State = "embryo"
	Preparing       State = "preparing"
	AbortedPrepare  State = "aborted prepare"
	Prepared        State = "prepared"
	Running         State = "running"
	Deleting        State = "deleting"
	ExitedDeleting  State = "exited deleting"
	Exited          State = "exited"
	ExitedGarbage   State = "exited garbage"
	Garbage         State = "garbage"
	unknownStateDir       = ""
)

// The state directories under <data>/pods.
const (
	dirEmbryo        = "embryo"
	dirPrepare       = "prepare"
	dirPrepared      = "prepared"
	dirRun           = "run"
	dirExitedGarbage = "exited-garbage"
	dirGarbage       = "garbage"
)

var stateDirs = []string{dirEmbryo, dirPrepare, dirPrepared, dirRun, dirExitedGarbage, dirGarbage}

// ErrNotFound is returned when no pod matches a UUID.
var ErrNotFound = errors.New("pod not found")

// Pod is a pod directory found on disk.
type Pod struct {
	UUID    string
	dataDir string
	dir     string // current state directory name
	locked  bool   // the lock was held by someone when the pod was loaded
	lk      *lock.Lock
}

// PodsDir returns <data>/pods.
func PodsDir(dataDir string) string { return filepath.Join(dataDir, "pods") }

// Path returns the pod directory.
func (p *Pod) Path() string { return filepath.Join(PodsDir(p.dataDir), p.dir, p.UUID) }

// Dir returns the pod directory as the stage1 contract type.
func (p *Pod) Dir() stage1.PodDir { return stage1.PodDir(p.Path()) }

// State returns the pod's state as observed when it was loaded (or as
// changed since by this process).
func (p *Pod) State() State {
	switch p.dir {
	case dirEmbryo:
		return Embryo
	case dirPrepare:
		if p.locked {
			return Preparing
		}
		return AbortedPrepare
	case dirPrepared:
		return Prepared
	case dirRun:
		if p.locked {
			return Running
		}
		return Exited
	case dirExitedGarbage:
		if p.locked {
			return ExitedDeleting
		}
		return ExitedGarbage
	case dirGarbage:
		if p.locked {
			return Deleting
		}
		return Garbage
	}
	return unknownStateDir
}

// AfterRun reports whether the pod has run (running, exited or being
// collected after exiting): the states in which it has a pid and exit codes.
func (p *Pod) AfterRun() bool {
	return p.dir == dirRun || p.dir == dirExitedGarbage
}

// Create makes a new embryo pod with a fresh UUID and holds its lock. The
// caller moves it on with ToPrepare and must Close it.
func Create(dataDir string) (*Pod, error) {
	for _, d := range stateDirs {
		if err := os.MkdirAll(filepath.Join(PodsDir(dataDir), d), 0o711); err != nil {
			return nil, fmt.Errorf("creating pod directories in %s: %w", dataDir, err)
		}
	}
	p := &Pod{UUID: uuid.NewString(), dataDir: dataDir, dir: dirEmbryo}
	// The directory is made and locked under a hidden name, which List
	// skips, and appears as an embryo already locked: a concurrent gc or
	// list could otherwise take the lock (or collect the directory)
	// between the mkdir and the lock.
	tmp := filepath.Join(PodsDir(dataDir), dirEmbryo, "."+p.UUID)
	if err := os.Mkdir(tmp, 0o711); err != nil {
		return nil, fmt.Errorf("creating pod directory: %w", err)
	}
	lk, err := lock.Open(tmp)
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := lk.TryExclusive(); err != nil {
		lk.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("locking new pod: %w", err)
	}
	if err := os.Rename(tmp, p.Path()); err != nil {
		lk.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("creating pod directory: %w", err)
	}
	p.lk, p.locked = lk, true
	return p, nil
}

// move renames the pod to another state directory. The caller holds the lock.
func (p *Pod) move(to string) error {
	if p.lk == nil {
		return fmt.Errorf("pod %s: moving to %s without holding its lock", p.UUID, to)
	}
	dst := filepath.Join(PodsDir(p.dataDir), to, p.UUID)
	if err := os.Rename(p.Path(), dst); err != nil {
		return fmt.Errorf("pod %s: moving to %s: %w", p.UUID, to, err)
	}
	p.dir = to
	return nil
}

// ToPrepare moves an embryo to prepare/ (state "preparing").
func (p *Pod) ToPrepare() error { return p.move(dirPrepare) }

// ToPrepared moves a preparing pod to prepared/ and releases it.
func (p *Pod) ToPrepared() error {
	if err := p.move(dirPrepared); err != nil {
		return err
	}
	return p.Close()
}

// ToRun moves a preparing or prepared pod (whose lock the caller holds) to
// run/. From then on the pod is "running" for as long as the lock is held,
// by this process or by the stage1 it execs.
func (p *Pod) ToRun() error { return p.move(dirRun) }

// LockFile returns the open pod directory holding the lock, to be passed to
// stage1 across exec.
func (p *Pod) LockFile() *os.File { return p.lk.File() }

// Close releases this process's hold on the pod lock.
func (p *Pod) Close() error {
	if p.lk == nil {
		return nil
	}
	err := p.lk.Close()
	p.lk = nil
	return err
}

// Load finds a pod by full UUID or unique prefix, in any state.
func Load(dataDir, id string) (*Pod, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return nil, errors.New("no pod UUID given")
	}
	all, err := List(dataDir)
	if err != nil {
		return nil, err
	}
	var match []*Pod
	for _, p := range all {
		if p.UUID == id {
			return p, nil
		}
		if strings.HasPrefix(p.UUID, id) {
			match = append(match, p)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("%w: no pod with UUID %q (see 'rkt list')", ErrNotFound, id)
	case 1:
		return match[0], nil
	}
	return nil, fmt.Errorf("UUID prefix %q matches %d pods; give more characters", id, len(match))
}

// List returns every pod, ordered by creation time. A pod caught in the
// middle of a rename is looked for again, so it is never missed.
func List(dataDir string) ([]*Pod, error) {
	seen := map[string]bool{}
	var pods []*Pod
	for attempt := 0; attempt < 2; attempt++ {
		for _, d := range stateDirs {
			ents, err := os.ReadDir(filepath.Join(PodsDir(dataDir), d))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("listing pods: %w", err)
			}
			for _, e := range ents {
				// Hidden names are pods still being created (see Create).
				if seen[e.Name()] || !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
					continue
				}
				p := &Pod{UUID: e.Name(), dataDir: dataDir, dir: d}
				if err := p.refreshLocked(); err != nil {
					continue // moved away meanwhile; the next pass finds it
				}
				seen[p.UUID] = true
				pods = append(pods, p)
			}
		}
	}
	sort.SliceStable(pods, func(i, j int) bool { return pods[i].CreatedAt().Before(pods[j].CreatedAt()) })
	return pods, nil
}

// refreshLocked learns whether someone holds the pod's lock, by trying to
// take it.
func (p *Pod) refreshLocked() error {
	lk, err := lock.Open(p.Path())
	if err != nil {
		return err
	}
	defer lk.Close()
	switch err := lk.TryShared(); {
	case errors.Is(err, lock.ErrLocked):
		p.locked = true
	case err != nil:
		return err
	default:
		p.locked = false
	}
	return nil
}

// TryLock takes the pod's lock exclusively without waiting for its holder.
// It fails with lock.ErrLocked while the pod is running or being handled by
// another rkt.
//
// A lister (List, for rkt list, status, gc) probes every pod's lock with a
// shared lock held for an instant; that alone must not make the pod look
// busy. So when the exclusive lock is refused but a shared one is granted
// (only probes hold the lock), TryLock tries again for up to probeWait.
func (p *Pod) TryLock() error {
	lk, err := lock.Open(p.Path())
	if err != nil {
		return err
	}
	deadline := time.Now().Add(probeWait)
	for {
		err := lk.TryExclusive()
		if err == nil {
			break
		}
		if !errors.Is(err, lock.ErrLocked) || time.Now().After(deadline) || lk.TryShared() != nil {
			lk.Close()
			return err
		}
		lk.Unlock()
		time.Sleep(time.Millisecond)
	}
	p.lk = lk
	return nil
}

// probeWait bounds how long TryLock waits out listers' probes: far longer
// than a probe lasts, far shorter than anyone would notice.
const probeWait = 100 * time.Millisecond

// WaitExited blocks until the pod's lock is free (the pod has exited), or
// until timeout (0 means no limit).
func (p *Pod) WaitExited(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := p.refreshLocked(); err != nil {
			return err
		}
		if !p.locked {
			return nil
		}
		if timeout > 0 && time.Now().After(deadline) {
			return fmt.Errorf("pod %s is still running after %s", p.UUID, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CreatedAt is the pod's creation time.
func (p *Pod) CreatedAt() time.Time {
	if fi, err := os.Stat(p.Dir().Created()); err == nil {
		return fi.ModTime()
	}
	if fi, err := os.Stat(p.Path()); err == nil {
		return fi.ModTime()
	}
	return time.Time{}
}

// StartedAt is when stage1 recorded the pod's pid; zero if it never did.
func (p *Pod) StartedAt() time.Time {
	fi, err := os.Stat(p.Dir().PIDFile())
	if err != nil {
		return time.Time{}
	}
	return changeTime(fi)
}
