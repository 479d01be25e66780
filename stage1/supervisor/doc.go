// Package supervisor starts, tracks and reaps the apps of a pod.
//
// It is shared by every flavor: stage1-fly runs it on the host without
// namespaces, stage1-nspawn runs it as the pod's PID 1, and the kvm guest
// agent runs it as the VM's PID 1.
//
// An app is started from a throwaway OS thread of the supervisor's own
// process: the thread enters a fresh mount namespace, mounts the app's root
// filesystem and volumes, pivots into it, drops to the app's user and
// isolators, and forks the app's command, which inherits all of that; the
// thread then ends. Every mount disappears with the app. Where something
// must happen between the fork and the exec (a cgroup, oom_score_adj) or
// the app's seccomp filter could refuse what the Go runtime needs on that
// thread, the same steps run instead in a re-executed copy of the current
// binary, the exec helper (see RunHelperIfRequested), which execs the app
// in place. The helper costs a whole Go process start per app; the thread
// does not.
package supervisor
