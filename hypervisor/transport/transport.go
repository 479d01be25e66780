// Package transport is the channel between the host side of the KVM stage1
// and the guest agent (PID 1 in the VM). The agent API (ttrpc) runs on top
// of a net.Conn and never knows which transport carries it.
//
// Three transports exist, in order of preference: AF_VSOCK through the
// host's vhost-vsock device (fast, the kernel routes by guest CID); the same
// virtio-vsock device implemented in the host process (UserspaceVsock, for
// hosts without /dev/vhost-vsock); and, for QEMU builds without
// vhost-user-vsock, a virtio-serial port that QEMU exposes on the host as a
// Unix socket. The guest agent imports this package for the port
// constants, so it must stay free of hypervisor code (no go-qemu).
package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/mdlayher/vsock"
)

// VsockPort is the AF_VSOCK port the guest agent listens on.
const VsockPort = 1024

// SerialPortName is the name of the virtio-serial port the agent uses when
// there is no vsock; the guest finds its device through
// /sys/class/virtio-ports/*/name.
const SerialPortName = "rkt.agent"

// Kind names a transport.
type Kind string

// The transports.
const (
	// Vsock is AF_VSOCK through the host's /dev/vhost-vsock.
	Vsock Kind = "vhost-vsock"
	// Serial is a virtio-serial port reached through a host Unix socket.
	Serial Kind = "virtio-serial"
)

// VhostVsockDevice is the host device that Vsock needs.
const VhostVsockDevice = "/dev/vhost-vsock"

// Choose picks Vsock when /dev/vhost-vsock can be opened for reading and
// writing (what QEMU does with it), and UserspaceVsock otherwise; a
// hypervisor driver whose QEMU lacks vhost-user-vsock falls back to Serial
// and says so in its Info. The second result says why, for --debug output.
func Choose() (Kind, string) {
	f, err := os.OpenFile(VhostVsockDevice, os.O_RDWR, 0)
	if err != nil {
		return UserspaceVsock, fmt.Sprintf("agent transport: %s (%v)", UserspaceVsock, err)
	}
	f.Close()
	return Vsock, fmt.Sprintf("agent transport: %s (%s is usable)", Vsock, VhostVsockDevice)
}

// Dialer connects to the guest agent.
type Dialer interface {
	// Dial returns a connection to the agent, retrying while the agent is
	// not listening yet, until ctx is done.
	Dial(ctx context.Context) (net.Conn, error)
}

// VsockDialer dials the agent over AF_VSOCK.
type VsockDialer struct {
	// CID is the guest's context ID, as given to QEMU's vhost-vsock device.
	CID uint32
	// Port is the agent's port, normally VsockPort.
	Port uint32
}

// Dial implements Dialer.
func (d VsockDialer) Dial(ctx context.Context) (net.Conn, error) {
	return retry(ctx, fmt.Sprintf("vsock cid %d port %d", d.CID, d.Port), func(ctx context.Context) (net.Conn, error) {
		return vsock.DialContext(ctx, d.CID, d.Port, nil)
	})
}

// SerialDialer dials the agent through the Unix socket behind the guest's
// virtio-serial port. The port carries a single byte stream: only one host
// connection is served at a time, and after the host disconnects the guest
// reads EOF once, then the next connection works.
type SerialDialer struct {
	// Path is the Unix socket QEMU listens on for the port.
	Path string
}

// Dial implements Dialer.
func (d SerialDialer) Dial(ctx context.Context) (net.Conn, error) {
	return retry(ctx, "virtio-serial socket "+d.Path, func(ctx context.Context) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, "unix", d.Path)
	})
}

// maxRetryPause bounds the pause between two connection attempts.
const maxRetryPause = 10 * time.Millisecond

// retry calls dial until it succeeds, fails with an error that waiting
// cannot fix, or ctx is done. The agent or QEMU's socket commonly is not
// there yet right after the VM starts: those errors are retried with a
// short, growing pause. The pause stays short (maxRetryPause) because every
// millisecond between the agent starting to listen and the next attempt is
// added to the pod's start time, while a refused attempt costs the guest
// well under a millisecond.
func retry(ctx context.Context, what string, dial func(context.Context) (net.Conn, error)) (net.Conn, error) {
	pause := time.Millisecond
	for {
		conn, err := dial(ctx)
		if err == nil {
			return conn, nil
		}
		// The caller's deadline can end the attempt itself, not only the
		// pause: the dialer then reports an i/o timeout, sometimes a
		// moment before ctx says it is done. Either way time is up.
		if cause := ctx.Err(); cause != nil || errors.Is(err, context.DeadlineExceeded) {
			if cause == nil {
				cause = context.DeadlineExceeded
			}
			return nil, fmt.Errorf("connecting to the guest agent over %s: gave up (%w) after: %w", what, cause, err)
		}
		if !transient(err) {
			return nil, fmt.Errorf("connecting to the guest agent over %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connecting to the guest agent over %s: gave up (%w) after: %w", what, ctx.Err(), err)
		case <-time.After(pause):
		}
		pause = min(2*pause, maxRetryPause)
	}
}

// transient reports whether a dial error means "not listening yet".
func transient(err error) bool {
	return errors.Is(err, syscall.ENOENT) || // QEMU has not created the socket
		errors.Is(err, syscall.ECONNREFUSED) || // nobody listening yet
		errors.Is(err, syscall.ECONNRESET) || // vsock: guest not ready
		errors.Is(err, syscall.ENODEV) || // vsock: CID not up yet
		errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ETIMEDOUT)
}
