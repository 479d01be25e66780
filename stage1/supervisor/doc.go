// Package supervisor starts, tracks and reaps the apps of a pod.
//
// It is shared by every flavor: stage1-fly runs it on the host without
// namespaces, stage1-nspawn runs it as the pod's PID 1, and the kvm guest
// agent runs it as the VM's PID 1. An app is started by re-executing the
// current binary as a small helper (see RunHelperIfRequested) in a fresh
// mount namespace: the helper mounts the app's root filesystem and volumes,
// chroots, drops to the app's user and execs the app, so the app's pid is
// the helper's pid and every mount disappears with the app.
package supervisor
