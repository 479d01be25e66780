// Package vsock is a virtio-vsock device implemented in the host process,
// served to QEMU as a vhost-user back-end (QEMU's vhost-user-vsock-device
// and vhost-user-vsock-pci).
//
// QEMU's usual vsock device needs the host kernel's vhost_vsock module
// (/dev/vhost-vsock), which hardened, nested and unprivileged hosts often
// lack or forbid. With this device the guest still sees a standard
// virtio-vsock device and its programs still use AF_VSOCK, but the host end
// lives in this process, like Firecracker's and Cloud Hypervisor's "hybrid
// vsock": no kernel module, no daemon, one goroutine set per VM.
//
// The host side is reached through Device.Dial (host to guest) and
// Device.Listen (guest to host, CID 2), and through a Firecracker-compatible
// Unix socket (ServeUnix) for tools that speak its CONNECT protocol.
//
// The guest is not trusted. Every packet is validated, the credit-based
// flow control of the virtio-vsock protocol is enforced (a guest that sends
// more than its credit is reset), each connection buffers at most
// Options.BufferSize bytes per direction, the number of connections is
// capped, and work per wakeup is bounded, so a guest can neither exhaust
// the host's memory nor starve other connections or the host process.
package vsock

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"rkt.dev/rkt/hypervisor/vhostuser"
)

// Defaults for Options.
const (
	// DefaultBufferSize matches Linux's default vsock buffer
	// (SO_VM_SOCKETS_BUFFER_SIZE), so neither side waits on the other
	// more than with vhost-vsock.
	DefaultBufferSize = 256 << 10
	// DefaultMaxConns bounds a guest that opens connections in a loop.
	DefaultMaxConns = 256
	// DefaultBacklog is a listener's queue of connections the host has
	// not accepted yet.
	DefaultBacklog = 32
)

// Internal bounds.
const (
	// txBudget is how many guest packets one wakeup processes before the
	// receive queue gets its turn.
	txBudget = 128
	// maxReplies bounds the RST answers to packets for unknown
	// connections waiting for receive buffers; more are dropped (the
	// guest times out instead of being told).
	maxReplies = 64
	// closeTimeout is how long a connection the host closed waits for
	// the guest's RST before the device sends its own and forgets it.
	closeTimeout = 10 * time.Second
	// connectTimeout bounds one Dial's wait for the guest's answer, as
	// Linux bounds connect() on AF_VSOCK (2 s there). A guest whose
	// driver is still starting can drop a request without an answer;
	// the caller's retry then sends a fresh one.
	connectTimeout = 2 * time.Second
	// firstEphemeralPort is where host-side ports for Dial start.
	firstEphemeralPort = 49152
)

// Queue indices of the device (virtio 1.2, 5.10.2). QEMU keeps the third,
// the event queue, to itself: it only carries transport resets after a
// migration, which an rkt VM never does.
const (
	rxQueue = 0
	txQueue = 1
)

// Options configure a Device. Zero values select the defaults.
type Options struct {
	// CID is the guest's context ID; 0 means DefaultGuestCID.
	CID uint32
	// BufferSize is each connection's buffer in each direction, in
	// bytes: what the device tells the guest it may send ahead
	// (buf_alloc), and how much host writes may queue.
	BufferSize uint32
	// MaxConns caps the connections open at once, both directions.
	MaxConns int
	// Backlog caps each listener's connections not accepted yet.
	Backlog int
	// Logf, if set, receives one line per protocol violation by the
	// guest and per vhost-user event, for --debug output.
	Logf func(format string, args ...any)
}

// Device is one VM's virtio-vsock device. It implements vhostuser.Device.
type Device struct {
	cid      uint32
	bufSize  uint32
	maxConns int
	backlog  int
	logf     func(string, ...any)

	mu          sync.Mutex
	rx, tx      *vhostuser.Queue // nil while the front-end has not started them
	conns       map[connKey]*Conn
	listeners   map[uint32]*Listener
	ready       []*Conn // connections with packets to send, in turn
	replies     []header
	nextPort    uint32
	polling     bool          // poll is running: it fills the receive queue at its end
	closeWait   time.Duration // closeTimeout, shorter in tests
	connectWait time.Duration // connectTimeout, shorter in tests
	closed      bool
	dropped     uint64
	hdr         [hdrLen]byte

	wake       chan struct{}
	stop       chan struct{}
	workerDone chan struct{}
}

// connKey identifies a connection: host port, guest port.
type connKey struct{ local, peer uint32 }

// New returns a device and starts its worker goroutine. Close stops it.
func New(o Options) *Device {
	d := newDevice(o)
	go d.work()
	return d
}

// newDevice returns a device without its worker: tests drive it with poll.
func newDevice(o Options) *Device {
	d := &Device{
		cid:         o.CID,
		bufSize:     o.BufferSize,
		maxConns:    o.MaxConns,
		backlog:     o.Backlog,
		logf:        o.Logf,
		conns:       map[connKey]*Conn{},
		listeners:   map[uint32]*Listener{},
		nextPort:    firstEphemeralPort,
		closeWait:   closeTimeout,
		connectWait: connectTimeout,
		wake:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		workerDone:  make(chan struct{}),
	}
	if d.cid == 0 {
		d.cid = DefaultGuestCID
	}
	if d.bufSize == 0 {
		d.bufSize = DefaultBufferSize
	}
	if d.maxConns <= 0 {
		d.maxConns = DefaultMaxConns
	}
	if d.backlog <= 0 {
		d.backlog = DefaultBacklog
	}
	if d.logf == nil {
		d.logf = func(string, ...any) {}
	}
	return d
}

// Config implements vhostuser.Device: struct virtio_vsock_config, the
// guest's CID as a 64-bit little-endian number.
func (d *Device) Config() []byte {
	return binary.LittleEndian.AppendUint64(nil, uint64(d.cid))
}

// NumQueues implements vhostuser.Device: the receive and transmit queues.
func (d *Device) NumQueues() int { return 2 }

// Attach implements vhostuser.Device.
func (d *Device) Attach(qs []*vhostuser.Queue) {
	d.mu.Lock()
	if !d.closed {
		d.rx, d.tx = qs[rxQueue], qs[txQueue]
	}
	d.mu.Unlock()
	d.kick()
}

// Detach implements vhostuser.Device. The queues are only used with d.mu
// held, so once Detach has the lock nothing uses them.
func (d *Device) Detach() {
	d.mu.Lock()
	d.rx, d.tx = nil, nil
	d.mu.Unlock()
}

// Reset implements vhostuser.Device: the guest's driver stopped the device
// (or QEMU went away), so every connection is gone for the guest too.
// Listeners stay: a guest that restarts the device may connect again.
func (d *Device) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.conns) > 0 {
		d.logf("vsock: device reset; dropping %d connections", len(d.conns))
	}
	d.dropAll(syscall.ECONNRESET)
}

// Kick implements vhostuser.Device. The queues are processed right away
// in the caller's goroutine (the server's per-queue eventfd reader): a
// hand-off to the worker would add a goroutine switch to every packet's
// latency. What the batch leaves over goes to the worker.
func (d *Device) Kick(int) {
	d.mu.Lock()
	more := d.poll()
	d.mu.Unlock()
	if more {
		d.kick()
	}
}

func (d *Device) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Stats are counters for diagnostics and tests.
type Stats struct {
	// Conns is the number of connections the device tracks, including
	// ones closing.
	Conns int
	// Dropped counts guest packets discarded as malformed or spoofed.
	Dropped uint64
}

// Stats returns the current counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Stats{Conns: len(d.conns), Dropped: d.dropped}
}

// Close fails every connection and listener and stops the worker. It does
// not tell the guest: Close is for when the VM is going away.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.rx, d.tx = nil, nil // the guest is on its own from now on
	d.dropAll(net.ErrClosed)
	for _, l := range d.listeners {
		l.shut()
	}
	d.mu.Unlock()
	close(d.stop)
	<-d.workerDone
	return nil
}

// dropAll forgets every connection, failing it with err.
func (d *Device) dropAll(err error) {
	for _, c := range d.conns {
		c.fail(err)
		d.remove(c)
	}
	d.ready, d.replies = nil, nil
}

// Dial connects to the guest's AF_VSOCK listener on port. It waits until
// the guest answers, ctx is done or 2 seconds have passed (an error
// wrapping syscall.ETIMEDOUT, as Linux's connect); a guest with no listener
// on the port refuses with an error wrapping syscall.ECONNREFUSED. The
// connection implements CloseWrite.
func (d *Device) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, fmt.Errorf("vsock dial port %d: %w", port, net.ErrClosed)
	}
	if len(d.conns) >= d.maxConns {
		d.mu.Unlock()
		return nil, fmt.Errorf("vsock dial port %d: %d connections open, the limit: %w", port, len(d.conns), syscall.EAGAIN)
	}
	key := connKey{local: d.ephemeralPort(port), peer: port}
	c := d.newConn(key, stateConnecting)
	c.sendRequest = true
	d.conns[key] = c
	d.schedule(c)
	d.mu.Unlock()

	timeout := time.NewTimer(d.connectWait)
	defer timeout.Stop()
	var gaveUp error
	for {
		d.mu.Lock()
		if gaveUp == nil {
			gaveUp = ctx.Err()
		}
		switch {
		case c.err != nil:
			err := c.err
			d.mu.Unlock()
			return nil, fmt.Errorf("vsock dial port %d: %w", port, err)
		case c.state != stateConnecting:
			d.mu.Unlock()
			return c, nil
		case gaveUp != nil:
			// Take the request back; if it went out, tell the guest.
			if c.sendRequest {
				d.remove(c)
			} else {
				c.sendRST = true
				d.schedule(c)
			}
			c.fail(gaveUp)
			d.mu.Unlock()
			return nil, fmt.Errorf("vsock dial port %d: %w", port, gaveUp)
		}
		ch := c.changed
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		case <-timeout.C:
			gaveUp = fmt.Errorf("no answer from the guest in %v: %w", d.connectWait, syscall.ETIMEDOUT)
		}
	}
}

// ephemeralPort picks the host port for a connection to the guest's port
// peer: one no listener has and no connection to peer uses.
func (d *Device) ephemeralPort(peer uint32) uint32 {
	for {
		p := d.nextPort
		d.nextPort++
		if d.nextPort == 0xffffffff { // VMADDR_PORT_ANY is not a port
			d.nextPort = firstEphemeralPort
		}
		if _, taken := d.conns[connKey{p, peer}]; !taken && d.listeners[p] == nil {
			return p
		}
	}
}

// Listen returns a listener for guest connections to the host's port.
func (d *Device) Listen(port uint32) (net.Listener, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("vsock listen port %d: %w", port, net.ErrClosed)
	}
	if d.listeners[port] != nil {
		return nil, fmt.Errorf("vsock listen port %d: %w", port, syscall.EADDRINUSE)
	}
	l := &Listener{d: d, port: port, changed: make(chan struct{})}
	d.listeners[port] = l
	return l, nil
}

// schedule queues c to send a packet. Outside poll, which fills the
// receive queue when it ends, the packet goes out at once from the
// caller's goroutine (a host Write, Read or Close), again sparing a hand-off.
func (d *Device) schedule(c *Conn) {
	if !c.queued && c.inTable {
		c.queued = true
		d.ready = append(d.ready, c)
	}
	if !d.polling {
		d.flush()
	}
}

// flush sends what is waiting, as far as the guest's receive buffers go.
func (d *Device) flush() {
	if d.rx != nil {
		d.fillRx()
		d.rx.Notify()
	}
}

// remove forgets c: the guest will not hear of it again.
func (d *Device) remove(c *Conn) {
	if !c.inTable {
		return
	}
	c.inTable = false
	delete(d.conns, c.key)
	if c.closeTimer != nil {
		c.closeTimer.Stop()
	}
	c.out.reset()
	c.broadcast()
}

// reply queues an RST answering a packet that belongs to no connection.
func (d *Device) reply(h *header) {
	if h.op == opRST || len(d.replies) >= maxReplies {
		return
	}
	d.replies = append(d.replies, header{
		srcCID: HostCID, dstCID: uint64(d.cid), srcPort: h.dstPort, dstPort: h.srcPort,
		typ: h.typ, op: opRST,
	})
}

// work runs the queues whenever the guest kicks or the host has something
// to send.
func (d *Device) work() {
	defer close(d.workerDone)
	for {
		select {
		case <-d.stop:
			return
		case <-d.wake:
		}
		d.mu.Lock()
		more := d.poll()
		d.mu.Unlock()
		if more {
			d.kick()
		}
	}
}

// poll processes a bounded batch of guest packets, then fills receive
// buffers with what is waiting for the guest. It reports whether guest
// packets are left over. Called with d.mu held.
func (d *Device) poll() (more bool) {
	d.polling = true
	if d.tx != nil {
		for range txBudget {
			c, ok := d.tx.Next()
			if !ok {
				break
			}
			d.receive(c)
			d.tx.Done(c.Head, 0)
		}
		d.tx.Notify()
		more = d.tx.HasAvail()
	}
	d.polling = false
	d.flush()
	return more
}

// drop counts and logs a discarded guest packet.
func (d *Device) drop(h *header, why string) {
	d.dropped++
	d.logf("vsock: dropped guest packet (%s): %v", why, h)
}

// receive handles one packet from the guest's transmit queue.
func (d *Device) receive(ch *vhostuser.Chain) {
	var h header
	if ch.ReadableLen() < hdrLen {
		d.dropped++
		d.logf("vsock: dropped a %d-byte guest packet, shorter than a header", ch.ReadableLen())
		return
	}
	ch.ReadAt(d.hdr[:], 0)
	h.decode(d.hdr[:])
	if h.srcCID != uint64(d.cid) || h.dstCID != HostCID {
		// Spoofed or misaddressed: nobody to answer.
		d.drop(&h, "wrong addresses")
		return
	}
	if h.len > maxPayload || uint64(h.len) > ch.ReadableLen()-hdrLen {
		d.drop(&h, fmt.Sprintf("length beyond the %d bytes of the buffer", ch.ReadableLen()-hdrLen))
		d.violation(&h)
		return
	}
	if h.typ != typeStream {
		d.drop(&h, "not a stream socket")
		d.reply(&h)
		return
	}
	c := d.conns[connKey{local: h.dstPort, peer: h.srcPort}]
	if c == nil {
		if h.op == opRequest {
			d.accept(&h)
		} else {
			d.reply(&h)
		}
		return
	}
	c.credit(h.bufAlloc, h.fwdCnt)
	if c.state == stateConnecting {
		switch h.op {
		case opResponse:
			c.state = stateEstablished
			c.broadcast()
		case opRST:
			d.remove(c)
			c.fail(syscall.ECONNREFUSED)
		default:
			d.violation(&h)
		}
		return
	}
	switch h.op {
	case opRW:
		d.data(c, ch, &h)
	case opCreditUpdate:
		// credit already took the new values
	case opCreditRequest:
		c.sendCredit = true
		d.schedule(c)
	case opShutdown:
		c.peerShut |= h.flags & shutdownBoth
		if c.peerShut&shutdownRcv != 0 {
			c.out.reset() // nobody will read it
		}
		c.broadcast()
		if c.peerShut == shutdownBoth {
			// Both directions are over: end the connection the way
			// Linux does, with an RST; unread data stays readable.
			c.sendRST = true
			d.schedule(c)
		}
	case opRST:
		d.remove(c)
		if c.peerShut&shutdownSend == 0 && !c.closed {
			c.fail(syscall.ECONNRESET)
		}
	default:
		d.violation(&h)
	}
}

// violation resets the connection a bad packet belongs to.
func (d *Device) violation(h *header) {
	d.logf("vsock: protocol violation, resetting: %v", h)
	c := d.conns[connKey{local: h.dstPort, peer: h.srcPort}]
	if c == nil {
		d.reply(h)
		return
	}
	c.fail(syscall.ECONNRESET)
	c.sendRST = true
	d.schedule(c)
}

// data moves an RW packet's payload into the connection's buffer.
func (d *Device) data(c *Conn, ch *vhostuser.Chain, h *header) {
	n := int(h.len)
	if n == 0 {
		return
	}
	switch {
	case c.closed:
		// The host closed the connection and told the guest so; what
		// was already in flight is dropped.
		return
	case c.peerShut&shutdownSend != 0:
		d.violation(h) // data after "I will send no more"
		return
	case n > c.in.free():
		d.violation(h) // more than the credit given
		return
	}
	a, b := c.in.reserve(n)
	ch.ReadAt(a, hdrLen)
	ch.ReadAt(b, hdrLen+uint64(len(a)))
	c.in.commit(n)
	c.rxCnt += uint32(n)
	c.broadcast()
}

// accept answers a guest's connection request.
func (d *Device) accept(h *header) {
	l := d.listeners[h.dstPort]
	switch {
	case l == nil:
		d.reply(h)
		return
	case len(d.conns) >= d.maxConns || len(l.queue) >= d.backlog:
		d.logf("vsock: refusing guest connection to port %d: %d connections open, %d waiting to be accepted", h.dstPort, len(d.conns), len(l.queue))
		d.reply(h)
		return
	}
	c := d.newConn(connKey{local: h.dstPort, peer: h.srcPort}, stateEstablished)
	c.credit(h.bufAlloc, h.fwdCnt)
	c.sendResponse = true
	d.conns[c.key] = c
	d.schedule(c)
	l.queue = append(l.queue, c)
	l.broadcast()
}

// fillRx writes waiting packets into the guest's receive buffers.
func (d *Device) fillRx() {
	for {
		c, reply := d.nextSender()
		if c == nil && !reply {
			return
		}
		ch, ok := d.rx.Next()
		if !ok {
			return
		}
		if ch.WritableLen() < hdrLen {
			// Too small for any packet: a broken driver. Hand it
			// back empty rather than stall on it.
			d.rx.Done(ch.Head, 0)
			continue
		}
		var h header
		n := 0
		if reply {
			h = d.replies[0]
			d.replies = d.replies[1:]
		} else {
			d.ready[0] = nil
			d.ready = d.ready[1:]
			c.queued = false
			n = c.packet(&h, ch)
			if h.op == opRST {
				d.remove(c)
			} else if c.hasOutput() {
				c.queued = true
				d.ready = append(d.ready, c)
			}
		}
		h.encode(d.hdr[:])
		ch.WriteAt(d.hdr[:], 0)
		d.rx.Done(ch.Head, uint32(hdrLen+n))
	}
}

// nextSender returns the connection at the head of the ready list once
// connections with nothing to send are dropped from it, or reply true if
// an RST answer is waiting, which goes first. It takes nothing off.
func (d *Device) nextSender() (c *Conn, reply bool) {
	if len(d.replies) > 0 {
		return nil, true
	}
	for len(d.ready) > 0 {
		c := d.ready[0]
		if c.inTable && c.hasOutput() {
			return c, false
		}
		c.queued = false
		d.ready[0] = nil
		d.ready = d.ready[1:]
	}
	d.ready = nil // release the drained backing array
	return nil, false
}
