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
)

// Do runs fn on a thread that has joined the network namespace at path,
// then returns the thread to the namespace it came from. If the thread
// cannot be returned it is never handed back to the Go scheduler: the
// goroutine parks forever, keeping the thread (and any child it started)
// alive and out of use.
func Do(path string, fn func() error) error {
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
		target, err := vnetns.GetFromPath(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("opening network namespace %s: %w", path, err)
			return
		}
		defer target.Close()
		if err := vnetns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("joining network namespace %s: %w", path, err)
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
