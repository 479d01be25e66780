// Package network gives pods their networks through CNI.
//
// A pod gets a network namespace, created by this package and bind-mounted
// at the pod directory's "netns" file so that it outlives any process and
// can be removed by gc. CNI plugins (Debian's, in /usr/lib/cni, or any other
// directory) attach it to each requested network through libcni, exactly as
// for any CNI runtime, so every plugin a cluster uses works for every flavor.
// The results are saved in the pod's net-info.json, which also holds each
// network's configuration so that teardown (CNI DEL) uses exactly what
// setup used, even if the configuration files have changed since.
//
// Networks are named by --net: "default" and "default-restricted" are built
// in; others come from *.conf and *.conflist files in the local
// configuration's net.d directory, which may also override the built-ins.
//
// For VM pods, AttachTaps joins a tap device to each CNI interface inside
// the pod's namespace with tc mirred redirects in both directions, so the
// hypervisor's virtio-net device carries the pod's traffic while the CNI
// interface keeps its addresses for the host's view of the pod.
package network
