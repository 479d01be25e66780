package qemu

import (
	"errors"
	"fmt"
	"strings"

	"rkt.dev/rkt/hypervisor"
	"rkt.dev/rkt/hypervisor/vhostuser"
	"rkt.dev/rkt/hypervisor/vhostuser/vsock"
)

// userspaceVsock is a VM's virtio-vsock device run in this process
// (transport.UserspaceVsock): QEMU's vhost-user-vsock device connects to
// its vhost-user socket; the driver dials the guest through the device
// itself, other processes and tools through its Firecracker-compatible
// socket, the VM's agent socket.
type userspaceVsock struct {
	dev  *vsock.Device
	srv  *vhostuser.Server
	host *vsock.UnixServer
}

// startUserspaceVsock starts the device for l. It must run before QEMU,
// which connects to the vhost-user socket while it starts.
func startUserspaceVsock(l launch) (*userspaceVsock, error) {
	u := &userspaceVsock{dev: vsock.New(vsock.Options{CID: l.cid})}
	var err error
	if u.srv, err = vhostuser.Listen(vhostuser.Config{Path: l.vsockSocket, Device: u.dev}); err != nil {
		u.dev.Close()
		return nil, fmt.Errorf("starting the userspace vsock device: %w", err)
	}
	if u.host, err = u.dev.ServeUnix(l.agentSocket); err != nil {
		u.srv.Close()
		u.dev.Close()
		return nil, fmt.Errorf("starting the userspace vsock device: %w", err)
	}
	return u, nil
}

// close stops the device; the VM must be gone (or going).
func (u *userspaceVsock) close() {
	u.host.Close()
	u.srv.Close()
	u.dev.Close()
}

// userspaceVsockDevice is QEMU's device for the machine model.
func userspaceVsockDevice(m hypervisor.Machine) string {
	if m == hypervisor.Q35 {
		return "vhost-user-vsock-pci"
	}
	return "vhost-user-vsock-device"
}

// errNoUserspaceVsock marks a start that failed because QEMU lacks
// vhost-user-vsock (built without vhost-user, or older than 5.1); Start
// then falls back to virtio-serial, and Info.Agent says so.
var errNoUserspaceVsock = errors.New("QEMU has no vhost-user-vsock device")

// lacksDevice reports whether QEMU's error output says it does not know
// the device name.
func lacksDevice(stderr, name string) bool {
	return strings.Contains(stderr, "'"+name+"' is not a valid device model name")
}
