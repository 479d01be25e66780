package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

// UserspaceVsock is virtio-vsock implemented in the host process
// (hypervisor/vhostuser/vsock behind QEMU's vhost-user-vsock device): the
// guest sees the same device and AF_VSOCK as with Vsock, but the host needs
// neither /dev/vhost-vsock nor any kernel module. The host reaches the
// guest through a Unix socket speaking Firecracker's hybrid vsock protocol.
const UserspaceVsock Kind = "userspace-vsock"

// HybridVsockDialer dials a guest port through a Firecracker-style hybrid
// vsock socket: it writes "CONNECT <port>\n" and expects "OK <host
// port>\n"; a socket closed instead means the guest refused, which is
// retried like a refused vsock connection (the agent is not listening yet).
type HybridVsockDialer struct {
	// Path is the device's Unix socket.
	Path string
	// Port is the guest port, normally VsockPort.
	Port uint32
}

// maxHandshakeLine bounds the "OK <port>" answer.
const maxHandshakeLine = 32

// Dial implements Dialer.
func (d HybridVsockDialer) Dial(ctx context.Context) (net.Conn, error) {
	what := fmt.Sprintf("userspace vsock port %d at %s", d.Port, d.Path)
	return retry(ctx, what, func(ctx context.Context) (net.Conn, error) {
		var nd net.Dialer
		c, err := nd.DialContext(ctx, "unix", d.Path)
		if err != nil {
			return nil, err
		}
		// The handshake waits for the guest: bound it by ctx.
		stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
		err = handshake(c, d.Port)
		if !stop() {
			// ctx ended during the handshake; c has a past deadline.
			c.Close()
			return nil, fmt.Errorf("CONNECT %d: %w", d.Port, ctx.Err())
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
}

// handshake sends CONNECT and reads the answer byte by byte, so that no
// stream data after it is consumed.
func handshake(c net.Conn, port uint32) error {
	if _, err := fmt.Fprintf(c, "CONNECT %d\n", port); err != nil {
		return err
	}
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := c.Read(b); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("the guest refused the connection: %w", syscall.ECONNREFUSED)
			}
			return err
		}
		if b[0] == '\n' {
			break
		}
		if len(line) == maxHandshakeLine {
			return fmt.Errorf("answer to CONNECT longer than %d bytes", maxHandshakeLine)
		}
		line = append(line, b[0])
	}
	if !strings.HasPrefix(string(line), "OK ") {
		return fmt.Errorf("unexpected answer %q to CONNECT", line)
	}
	return nil
}
