// Package netns runs code inside a network namespace.
//
// A Linux namespace is a property of a thread, and Go moves goroutines
// between threads, so the work must run on a locked thread that joins the
// namespace and then goes back. Going back matters beyond tidiness: a
// child process started with Pdeathsig dies when the thread that started
// it exits, so the thread that starts QEMU in a pod's namespace must live
// on rather than be thrown away.
package netns

import (
	"fmt"
	"runtime"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// New runs fn on a thread that has just entered a new, empty network
// namespace (fn typically bind-mounts it somewhere to keep it), then
// returns the thread to the namespace it came from, like Do.
func New(fn func() error) error {
	return onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
		}
		return nil
	}, fn)
}

// Do runs fn on a thread that has joined the network namespace at path,
// then returns the thread to the namespace it came from. If the thread
// cannot be returned it is never handed back to the Go scheduler: the
// goroutine parks forever, keeping the thread (and any child it started)
// alive and out of use.
func Do(path string, fn func() error) error {
	return onThread(func() error {
		target, err := vnetns.GetFromPath(path)
		if err != nil {
			return fmt.Errorf("opening network namespace %s: %w", path, err)
		}
		defer target.Close()
		if err := vnetns.Set(target); err != nil {
			return fmt.Errorf("joining network namespace %s: %w", path, err)
		}
		return nil
	}, fn)
}

// onThread runs enter and then fn on a locked thread, and puts the thread
// back in its original network namespace afterwards (see Do).
func onThread(enter func() error, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("reading the current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := enter(); err != nil {
			// enter may have failed halfway; restore before reuse.
			if vnetns.Set(orig) != nil {
				errc <- err
				select {}
			}
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		errc <- fn()
		if err := vnetns.Set(orig); err != nil {
			select {} // see Do's doc: this thread must never run other goroutines
		}
		runtime.UnlockOSThread()
	}()
	return <-errc
}
