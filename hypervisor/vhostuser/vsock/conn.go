package vsock

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"rkt.dev/rkt/hypervisor/vhostuser"
)

// Connection states, as the device sees them.
const (
	// stateConnecting: the host sent (or is about to send) REQUEST.
	stateConnecting = iota + 1
	// stateEstablished: data flows.
	stateEstablished
	// stateClosing: the host closed; what it wrote is flushed, then
	// SHUTDOWN goes out and the device waits for the guest's RST.
	stateClosing
)

// Conn is one vsock stream connection, seen from the host. Besides
// net.Conn it has CloseWrite, like *net.TCPConn.
//
// All its state is guarded by the device's mutex: the worker moves packets
// between it and the rings, the host's goroutines read and write its
// buffers.
type Conn struct {
	d     *Device
	key   connKey
	state int

	// Packets owed to the guest.
	sendRequest, sendResponse, sendRST, sendCredit bool
	shutdownPending                                uint32 // SHUTDOWN flags, sent once out is drained
	queued                                         bool   // on d.ready
	inTable                                        bool   // in d.conns: the guest knows it

	// Host to guest.
	out                      fifo
	txCnt                    uint32 // payload bytes sent
	peerBufAlloc, peerFwdCnt uint32 // the guest's last word on its buffer
	creditRequested          bool

	// Guest to host.
	in                 fifo
	rxCnt              uint32 // payload bytes received
	fwdCnt, sentFwdCnt uint32 // bytes the host read; what the guest was last told

	peerShut  uint32 // SHUTDOWN flags from the guest
	localShut uint32 // what the host shut: CloseWrite, Close
	closed    bool   // the host called Close
	err       error  // why the connection failed, if it did

	// changed is closed (and replaced) whenever anything above changes,
	// waking blocked Dial, Read and Write calls.
	changed    chan struct{}
	rdl, wdl   deadline
	closeTimer *time.Timer
}

func (d *Device) newConn(key connKey, state int) *Conn {
	c := &Conn{d: d, key: key, state: state, inTable: true, changed: make(chan struct{})}
	c.out.max = int(d.bufSize)
	c.in.max = int(d.bufSize)
	c.rdl.init()
	c.wdl.init()
	return c
}

func (c *Conn) broadcast() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// fail ends the connection for the host with err, unless it already failed.
func (c *Conn) fail(err error) {
	if c.err == nil {
		c.err = err
	}
	c.broadcast()
}

// credit records the guest's buffer space from a packet header.
func (c *Conn) credit(bufAlloc, fwdCnt uint32) {
	c.peerBufAlloc, c.peerFwdCnt = bufAlloc, fwdCnt
	if c.peerCredit() > 0 {
		c.creditRequested = false
		if c.out.len() > 0 {
			c.d.schedule(c)
		}
	}
}

// peerCredit is how many more bytes the guest has room for. A guest
// claiming to have forwarded more than it was sent gets no credit.
func (c *Conn) peerCredit() uint32 {
	inFlight := c.txCnt - c.peerFwdCnt
	if inFlight > c.peerBufAlloc {
		return 0
	}
	return c.peerBufAlloc - inFlight
}

func (c *Conn) canSendData() bool {
	return c.state != stateConnecting && c.out.len() > 0 && c.peerCredit() > 0
}

func (c *Conn) needCreditRequest() bool {
	return c.state != stateConnecting && c.out.len() > 0 && c.peerCredit() == 0 && !c.creditRequested
}

// hasOutput reports whether the connection has a packet for the guest.
func (c *Conn) hasOutput() bool {
	return c.sendRST || c.sendRequest || c.sendResponse || c.sendCredit ||
		c.canSendData() || c.needCreditRequest() ||
		c.shutdownPending != 0 && c.out.len() == 0
}

// packet writes the connection's next packet into ch (header fields into
// h, payload into ch after the header) and returns the payload length.
func (c *Conn) packet(h *header, ch *vhostuser.Chain) int {
	*h = header{
		srcCID: HostCID, dstCID: uint64(c.d.cid),
		srcPort: c.key.local, dstPort: c.key.peer,
		typ: typeStream, bufAlloc: c.d.bufSize, fwdCnt: c.fwdCnt,
	}
	room := int(min(ch.WritableLen()-hdrLen, maxPayload))
	n := 0
	switch {
	case c.sendRST:
		h.op, c.sendRST = opRST, false
	case c.sendRequest:
		h.op, c.sendRequest = opRequest, false
	case c.sendResponse:
		h.op, c.sendResponse = opResponse, false
	case c.canSendData() && room > 0:
		n = min(c.out.len(), int(min(c.peerCredit(), uint32(room))))
		a, b := c.out.peek(n)
		ch.WriteAt(a, hdrLen)
		ch.WriteAt(b, hdrLen+uint64(len(a)))
		c.out.discard(n)
		c.txCnt += uint32(n)
		h.op, h.len = opRW, uint32(n)
		c.broadcast()
	case c.needCreditRequest():
		h.op, c.creditRequested = opCreditRequest, true
	case c.shutdownPending != 0 && c.out.len() == 0:
		h.op, h.flags, c.shutdownPending = opShutdown, c.shutdownPending, 0
	default:
		// A credit update was asked for, or data is waiting but the
		// buffer has no room beyond the header: either way the
		// guest's view of the host's buffer is refreshed.
		h.op = opCreditUpdate
	}
	// Every packet carries buf_alloc and fwd_cnt.
	c.sendCredit = false
	c.sentFwdCnt = c.fwdCnt
	return n
}

// Read implements net.Conn. After the guest shut down its sending side,
// buffered data is returned and then io.EOF.
func (c *Conn) Read(p []byte) (int, error) {
	d := c.d
	for {
		d.mu.Lock()
		switch {
		case c.closed:
			d.mu.Unlock()
			return 0, c.opErr("read", net.ErrClosed)
		case c.in.len() > 0:
			n := c.in.read(p)
			c.fwdCnt += uint32(n)
			// Tell the guest about freed space in big enough steps
			// that updates stay rare but it never waits long.
			if c.inTable && c.fwdCnt-c.sentFwdCnt >= d.bufSize/4 {
				c.sendCredit = true
				d.schedule(c)
			}
			d.mu.Unlock()
			return n, nil
		case len(p) == 0:
			d.mu.Unlock()
			return 0, nil
		case c.peerShut&shutdownSend != 0:
			d.mu.Unlock()
			return 0, io.EOF
		case c.err != nil:
			err := c.err
			d.mu.Unlock()
			return 0, c.opErr("read", err)
		}
		ch := c.changed
		d.mu.Unlock()
		select {
		case <-ch:
		case <-c.rdl.wait():
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
	}
}

// Write implements net.Conn. It returns once all of p is buffered for the
// guest; the buffer drains as the guest grants credit.
func (c *Conn) Write(p []byte) (int, error) {
	d := c.d
	n := 0
	for {
		d.mu.Lock()
		var err error
		switch {
		case c.closed:
			err = net.ErrClosed
		case c.localShut&shutdownSend != 0 || c.peerShut&shutdownRcv != 0:
			err = syscall.EPIPE
		case c.err != nil:
			err = c.err
		case !c.inTable:
			err = syscall.EPIPE
		}
		if err != nil {
			d.mu.Unlock()
			return n, c.opErr("write", err)
		}
		if k := c.out.write(p[n:]); k > 0 {
			n += k
			d.schedule(c)
		}
		if n == len(p) {
			d.mu.Unlock()
			return n, nil
		}
		if c.out.free() > 0 {
			// schedule sent some right away: no need to wait
			// (and nothing would wake us if it sent all).
			d.mu.Unlock()
			continue
		}
		ch := c.changed
		d.mu.Unlock()
		select {
		case <-ch:
		case <-c.wdl.wait():
			return n, c.opErr("write", os.ErrDeadlineExceeded)
		}
	}
}

// CloseWrite shuts down the host's sending side: the guest reads EOF once
// it has read what was written before.
func (c *Conn) CloseWrite() error {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.closed {
		return c.opErr("close", net.ErrClosed)
	}
	if c.localShut&shutdownSend == 0 {
		c.localShut |= shutdownSend
		c.shutdownPending |= shutdownSend
		d.schedule(c)
	}
	c.broadcast()
	return nil
}

// Close implements net.Conn. Data written before is still delivered; the
// guest is then told the connection is over, and if it does not confirm
// within closeTimeout it is reset.
func (c *Conn) Close() error {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.closed {
		return c.opErr("close", net.ErrClosed)
	}
	c.closed = true
	c.localShut = shutdownBoth
	c.in.reset()
	c.broadcast()
	if c.inTable && c.state == stateEstablished && !c.sendRST {
		c.state = stateClosing
		c.shutdownPending = shutdownBoth
		d.schedule(c)
		c.closeTimer = time.AfterFunc(d.closeWait, func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			if c.inTable {
				d.logf("vsock: guest did not confirm the close of port %d in %v; resetting", c.key.peer, d.closeWait)
				c.sendRST = true
				d.schedule(c)
			}
		})
	}
	return nil
}

// opErr wraps err as the net package does, so callers can use errors.Is
// and net.Error.
func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "vsock", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// LocalAddr implements net.Conn: the host's CID and port.
func (c *Conn) LocalAddr() net.Addr { return &Addr{CID: HostCID, Port: c.key.local} }

// RemoteAddr implements net.Conn: the guest's CID and port.
func (c *Conn) RemoteAddr() net.Addr { return &Addr{CID: c.d.cid, Port: c.key.peer} }

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { c.rdl.set(t); return nil }

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wdl.set(t); return nil }

// Addr is a vsock address.
type Addr struct {
	CID, Port uint32
}

// Network implements net.Addr.
func (a *Addr) Network() string { return "vsock" }

// String implements net.Addr.
func (a *Addr) String() string { return fmt.Sprintf("vsock:%d:%d", a.CID, a.Port) }

// deadline is a settable point in time with a channel that is closed when
// it passes.
type deadline struct {
	mu      sync.Mutex
	timer   *time.Timer
	expired chan struct{}
}

func (dl *deadline) init() { dl.expired = make(chan struct{}) }

// set moves the deadline; the zero time means none.
func (dl *deadline) set(t time.Time) {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	if dl.timer != nil {
		dl.timer.Stop()
		dl.timer = nil
	}
	// Always a new channel: a timer that fired just before Stop closes
	// only its own.
	ch := make(chan struct{})
	dl.expired = ch
	if t.IsZero() {
		return
	}
	if wait := time.Until(t); wait > 0 {
		dl.timer = time.AfterFunc(wait, func() { close(ch) })
		return
	}
	close(ch)
}

// wait returns a channel closed once the current deadline passes.
func (dl *deadline) wait() <-chan struct{} {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	return dl.expired
}

// Listener accepts guest connections to one host port.
type Listener struct {
	d       *Device
	port    uint32
	queue   []*Conn // established, not accepted yet
	closed  bool
	changed chan struct{}
}

func (l *Listener) broadcast() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Accept implements net.Listener.
func (l *Listener) Accept() (net.Conn, error) {
	d := l.d
	for {
		d.mu.Lock()
		if l.closed {
			d.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: "vsock", Addr: l.Addr(), Err: net.ErrClosed}
		}
		if len(l.queue) > 0 {
			c := l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
			d.mu.Unlock()
			return c, nil
		}
		ch := l.changed
		d.mu.Unlock()
		<-ch
	}
}

// Close implements net.Listener; connections not accepted yet are reset.
func (l *Listener) Close() error {
	d := l.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if l.closed {
		return nil
	}
	l.shut()
	if d.listeners[l.port] == l {
		delete(d.listeners, l.port)
	}
	return nil
}

// shut closes the listener; called with d.mu held.
func (l *Listener) shut() {
	l.closed = true
	for _, c := range l.queue {
		c.fail(syscall.ECONNRESET)
		c.sendRST = true
		l.d.schedule(c)
	}
	l.queue = nil
	l.broadcast()
}

// Addr implements net.Listener.
func (l *Listener) Addr() net.Addr { return &Addr{CID: HostCID, Port: l.port} }
