package transport

import (
	"context"
	"net"
)

// UserspaceVsock is virtio-vsock implemented in the host process
// (hypervisor/vhostuser/vsock behind QEMU's vhost-user-vsock device): the
// guest sees the same device and AF_VSOCK as with Vsock, but the host needs
// neither /dev/vhost-vsock nor any kernel module. The driver running the
// device dials through it directly (PortDialer); other processes and tools
// use its Unix socket, which speaks Firecracker's hybrid vsock protocol.
const UserspaceVsock Kind = "userspace-vsock"

// PortDialer dials the agent through a function of this process that
// connects to a guest port: the userspace vsock device's own Dial, which
// spares the Unix socket hop when the device runs in the dialing process.
// Refusals are retried like those of the other dialers.
type PortDialer struct {
	// What names the channel in errors.
	What string
	// DialPort connects to a guest port; a refusal wraps
	// syscall.ECONNREFUSED.
	DialPort func(ctx context.Context, port uint32) (net.Conn, error)
	// Port is the guest port, normally VsockPort.
	Port uint32
}

// Dial implements Dialer.
func (d PortDialer) Dial(ctx context.Context) (net.Conn, error) {
	return retry(ctx, d.What, func(ctx context.Context) (net.Conn, error) { return d.DialPort(ctx, d.Port) })
}
