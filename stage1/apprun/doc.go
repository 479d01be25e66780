// Package apprun is the app-running code the host-side flavors share: it
// turns a stage1.Pod's apps into what rkt.dev/rkt/stage1/supervisor starts
// (SupervisorApp, SupervisorIsolators), runs them (Run) and enters them
// (Enter). The kvm flavor uses SupervisorIsolators too, to compute on the
// host what its guest agent enforces.
//
// It is separate from package stage1 because stage0 links that one: it is
// the contract between the rkt binary and every flavor. The supervisor and
// the seccomp compiler it depends on are only ever run by a stage1, and must
// stay out of the rkt binary; the seccomp library's package init alone cost
// about 1 ms per rkt command.
package apprun
