package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"

	"rkt.dev/rkt/hypervisor/transport"
	"rkt.dev/rkt/internal/guestos"
)

// vsockDriverDir lists the virtio devices bound to the vsock transport; a
// "virtio*" entry means the VM has a vsock device.
const vsockDriverDir = "/sys/bus/virtio/drivers/vmw_vsock_virtio_transport"

// listen waits until the VM's agent channel shows up and listens on it.
// The host adds either a vsock device or the rkt.agent virtio-serial port,
// never both. The serial port is announced by the host after the driver is
// up, so it can appear a moment after /init starts: hence the wait.
func listen(timeout time.Duration) (*trackingListener, transport.Kind, error) {
	deadline := time.Now().Add(timeout)
	for {
		if dev, err := guestos.FindPort(transport.SerialPortName); err == nil {
			l, err := newSerialListener(dev)
			if err != nil {
				return nil, "", err
			}
			return track(l), transport.Serial, nil
		}
		if devs, _ := filepath.Glob(filepath.Join(vsockDriverDir, "virtio*")); len(devs) > 0 {
			l, err := vsock.Listen(transport.VsockPort, nil)
			if err != nil {
				return nil, "", fmt.Errorf("listening on vsock port %d: %w", transport.VsockPort, err)
			}
			return track(hostOnlyListener{l}), transport.Vsock, nil
		}
		if time.Now().After(deadline) {
			return nil, "", fmt.Errorf("no agent channel after %v: neither a vsock device nor a virtio-serial port named %s", timeout, transport.SerialPortName)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hostOnlyListener accepts vsock connections from the host alone.
// AF_VSOCK is not namespaced: any process in the guest, an app running as
// an unprivileged user too, can connect to the agent's port through the
// guest's own CID, and the API starts processes as root in any app. The
// kernel sets a connection's source CID, so a guest process cannot pass
// for the host. (The serial port needs no such check: apps' /dev has no
// virtio ports.)
type hostOnlyListener struct{ net.Listener }

// Accept implements net.Listener: it closes any connection that does not
// come from the host and waits for the next.
func (l hostOnlyListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if a, ok := c.RemoteAddr().(*vsock.Addr); ok && a.ContextID == vsock.Host {
			return c, nil
		}
		logf("refused an agent API connection from %v: only the host may connect", c.RemoteAddr())
		c.Close()
	}
}

// serialListener turns a virtio-serial port into a net.Listener of one
// connection at a time. The port is a single byte stream with no notion of
// connections: the guest only sees whether the host end is open. While it
// is closed, poll reports POLLHUP and reads return EOF; so Accept waits for
// the host to connect, and a connection ends at the first EOF (the host
// hung up), after which the port serves the next host connection.
type serialListener struct {
	port   *os.File
	fd     int
	closed chan struct{}
	once   sync.Once
	// free receives a token when no connection is open.
	free chan struct{}
}

func newSerialListener(dev string) (*serialListener, error) {
	// Blocking mode: reads park a thread, which is what a single stream
	// read by one goroutine at a time wants.
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the agent port %s: %w", dev, err)
	}
	l := &serialListener{port: os.NewFile(uintptr(fd), dev), fd: fd, closed: make(chan struct{}), free: make(chan struct{}, 1)}
	l.free <- struct{}{}
	return l, nil
}

// hostPollInterval is how often Accept checks for a host connection: the
// port offers no event for "host connected" that poll could wait for.
const hostPollInterval = 20 * time.Millisecond

// Accept implements net.Listener.
func (l *serialListener) Accept() (net.Conn, error) {
	select {
	case <-l.free:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	for {
		fds := []unix.PollFd{{Fd: int32(l.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 0); err != nil && !errors.Is(err, unix.EINTR) {
			l.free <- struct{}{}
			return nil, fmt.Errorf("polling the agent port: %w", err)
		}
		if fds[0].Revents&unix.POLLHUP == 0 {
			return &serialConn{l: l}, nil
		}
		select {
		case <-l.closed:
			return nil, net.ErrClosed
		case <-time.After(hostPollInterval):
		}
	}
}

// Close implements net.Listener.
func (l *serialListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr implements net.Listener.
func (l *serialListener) Addr() net.Addr { return serialAddr(l.port.Name()) }

type serialAddr string

func (a serialAddr) Network() string { return "virtio-serial" }
func (a serialAddr) String() string  { return string(a) }

// serialConn is one host connection over the port. Closing it frees the
// port for the next one; the port itself stays open.
type serialConn struct {
	l    *serialListener
	once sync.Once
}

// Read implements net.Conn; EOF means the host hung up.
func (c *serialConn) Read(b []byte) (int, error) {
	n, err := c.l.port.Read(b)
	if n == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

// Write implements net.Conn.
func (c *serialConn) Write(b []byte) (int, error) { return c.l.port.Write(b) }

// Close implements net.Conn.
func (c *serialConn) Close() error {
	c.once.Do(func() { c.l.free <- struct{}{} })
	return nil
}

func (c *serialConn) LocalAddr() net.Addr  { return c.l.Addr() }
func (c *serialConn) RemoteAddr() net.Addr { return serialAddr("host") }

// Deadlines are not supported on the port; ttrpc does not use them.
func (c *serialConn) SetDeadline(time.Time) error      { return errNoDeadlines }
func (c *serialConn) SetReadDeadline(time.Time) error  { return errNoDeadlines }
func (c *serialConn) SetWriteDeadline(time.Time) error { return errNoDeadlines }

var errNoDeadlines = errors.New("virtio-serial port: deadlines are not supported")

// trackingListener counts open connections, so the agent can tell when the
// host has hung up after a Shutdown.
type trackingListener struct {
	net.Listener
	mu      sync.Mutex
	open    int
	waiters []chan struct{}
}

func track(l net.Listener) *trackingListener { return &trackingListener{Listener: l} }

// Accept implements net.Listener.
func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.open++
	l.mu.Unlock()
	return &trackedConn{Conn: c, l: l}, nil
}

// hostGone returns a channel closed once no host connection is open.
func (l *trackingListener) hostGone() <-chan struct{} {
	ch := make(chan struct{})
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open == 0 {
		close(ch)
	} else {
		l.waiters = append(l.waiters, ch)
	}
	return ch
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

// Close implements net.Conn.
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		defer c.l.mu.Unlock()
		if c.l.open--; c.l.open == 0 {
			for _, w := range c.l.waiters {
				close(w)
			}
			c.l.waiters = nil
		}
	})
	return c.Conn.Close()
}
