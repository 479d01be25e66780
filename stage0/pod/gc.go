package pod

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"rkt.dev/rkt/internal/lock"
	"rkt.dev/rkt/internal/mountinfo"
)

// GCOptions configures a garbage collection pass.
type GCOptions struct {
	// GracePeriod is how long an exited pod stays marked before it is
	// deleted, counted from when it was marked.
	GracePeriod time.Duration
	// ExpirePrepared is how long a prepared pod may wait for run-prepared.
	ExpirePrepared time.Duration
	// MarkOnly marks exited pods as garbage without deleting any.
	MarkOnly bool
	// Stage1GC releases a pod's host resources (its stage1's gc
	// entrypoint). It is called with the pod locked, before deletion.
	Stage1GC func(*Pod) error
	// Log reports what was done, one line per pod.
	Log func(format string, args ...any)
}

// GC marks exited and abandoned pods and deletes those whose grace period
// has passed. Pods that are running or being handled by another rkt process
// are skipped, so GC is safe to run concurrently with rkt run and other GCs.
func GC(dataDir string, o GCOptions) error {
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	pods, err := List(dataDir)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range pods {
		if err := p.mark(o); err != nil {
			errs = append(errs, err)
		}
	}
	if o.MarkOnly {
		return errors.Join(errs...)
	}
	pods, err = List(dataDir)
	if err != nil {
		return err
	}
	for _, p := range pods {
		if err := p.sweep(o); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// mark moves a pod that is finished into a garbage directory.
func (p *Pod) mark(o GCOptions) error {
	var to string
	switch p.State() {
	case Exited:
		to = dirExitedGarbage
	case AbortedPrepare, Embryo:
		to = dirGarbage
	case Prepared:
		if time.Since(p.CreatedAt()) < o.ExpirePrepared {
			return nil
		}
		to = dirGarbage
	default:
		return nil
	}
	if err := p.TryLock(); err != nil {
		return nil // someone else is working on it (or it started running)
	}
	defer p.Close()
	// Re-check under the lock: the pod may have moved since it was listed.
	if _, err := os.Stat(p.Path()); err != nil {
		return nil
	}
	if err := p.move(to); err != nil {
		return err
	}
	o.Log("Moving pod %q to garbage", p.UUID)
	return nil
}

// sweep deletes a marked pod once its grace period has passed.
func (p *Pod) sweep(o GCOptions) error {
	switch p.State() {
	case ExitedGarbage:
		fi, err := os.Stat(p.Path())
		if err != nil {
			return nil
		}
		if time.Since(changeTime(fi)) < o.GracePeriod {
			return nil
		}
	case Garbage:
	default:
		return nil
	}
	if err := p.TryLock(); err != nil {
		return nil
	}
	defer p.Close()
	if _, err := os.Stat(p.Path()); err != nil {
		return nil
	}
	return p.destroy(o)
}

// Remove deletes a pod that is not running (rkt rm): exited, prepared or
// abandoned pods. The stage1's gc runs first for pods that ran.
func (p *Pod) Remove(o GCOptions) error {
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	if p.lk == nil { // not already ours, as it is for a failed rkt run
		if err := p.TryLock(); err != nil {
			if errors.Is(err, lock.ErrLocked) {
				return fmt.Errorf("pod %s is %s; stop it first with 'rkt stop'", p.UUID, p.State())
			}
			return err
		}
		defer p.Close()
	}
	if p.dir == dirRun {
		// Mark it first so that, if deletion is interrupted, gc finishes it.
		if err := p.move(dirExitedGarbage); err != nil {
			return err
		}
	}
	return p.destroy(o)
}

// destroy runs the stage1 gc for pods that ran, then deletes the directory.
// It never deletes through a mount point: anything still mounted below the
// pod is detached first, and deletion stops if that fails, so a host volume
// can never be emptied by gc.
func (p *Pod) destroy(o GCOptions) error {
	if o.Stage1GC != nil && (p.dir == dirExitedGarbage || p.hasRun()) {
		if err := o.Stage1GC(p); err != nil {
			return fmt.Errorf("pod %s: stage1 gc: %w", p.UUID, err)
		}
	}
	if err := mountinfo.UnmountUnder(p.Path()); err != nil {
		return fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	if err := os.RemoveAll(p.Path()); err != nil {
		return fmt.Errorf("pod %s: deleting: %w", p.UUID, err)
	}
	o.Log("Garbage collecting pod %q", p.UUID)
	return nil
}

// hasRun tells whether stage1 ever started for this pod.
func (p *Pod) hasRun() bool {
	_, err := os.Stat(p.Dir().PIDFile())
	return err == nil
}

// changeTime is a file's ctime: rename(2) updates it, so for a pod directory
// it is the time of the last state change.
func changeTime(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	}
	return fi.ModTime()
}
