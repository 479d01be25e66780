package vsock

import (
	"testing"
	"time"

	"rkt.dev/rkt/hypervisor/vhostuser"
	"rkt.dev/rkt/hypervisor/vhostuser/virtqtest"
)

// testGuest plays a Linux guest's virtio-vsock driver against a device
// whose worker is not running: the test calls poll itself, so every step
// is deterministic. Host calls (Write, Dial...) send packets from their own
// goroutine under the device's lock, so the guest side holds it too
// whenever it touches guest memory.
type testGuest struct {
	t      *testing.T
	d      *Device
	mem    *virtqtest.Memory
	rx, tx *virtqtest.Queue
	// rxBufs is how many receive buffers poll keeps posted; 0 leaves
	// the guest with none.
	rxBufs int
	posted int
	// credit is the buf_alloc of packets sent without one.
	credit uint32
	// got collects packets received from the device.
	got []packet
}

// packet is a vsock packet the guest received.
type packet struct {
	header
	payload []byte
}

// guestPort and guestCID are the guest's defaults in these tests.
const (
	guestCID = DefaultGuestCID
	rxBufLen = 4096 // what Linux posts: a header descriptor and 4 KiB
)

func newTestGuest(t *testing.T, o Options) *testGuest {
	return newSizedTestGuest(t, o, 64, hdrLen+maxPayload)
}

// newSizedTestGuest has a transmit queue of txSize descriptors with
// txSlot-byte buffers (fuzzing wants small, cheap guests).
func newSizedTestGuest(t *testing.T, o Options, txSize uint16, txSlot uint32) *testGuest {
	t.Helper()
	const rxSize = 64
	memSize := 64<<10 + rxSize*(hdrLen+rxBufLen) + int(txSize)*int(txSlot)
	g := &testGuest{t: t, d: newDevice(o), mem: virtqtest.NewMemory(memSize), rxBufs: 32, credit: 1 << 20}
	g.rx = g.mem.NewQueue(rxSize, hdrLen+rxBufLen)
	g.tx = g.mem.NewQueue(txSize, txSlot)
	table := g.mem.Table()
	rq, err := vhostuser.NewQueue(table, g.rx.Config(nil))
	if err != nil {
		t.Fatal(err)
	}
	tq, err := vhostuser.NewQueue(table, g.tx.Config(nil))
	if err != nil {
		t.Fatal(err)
	}
	g.d.Attach([]*vhostuser.Queue{rq, tq})
	// No worker runs: Close must not wait for one.
	close(g.d.workerDone)
	t.Cleanup(func() { g.d.Close() })
	return g
}

// refill posts receive buffers the way Linux 6.1 does: a 44-byte header
// descriptor and a 4 KiB one, both device-writable.
func (g *testGuest) refill() {
	for g.posted < g.rxBufs {
		if _, ok := g.rx.Add(nil, []uint32{hdrLen, rxBufLen}); !ok {
			return
		}
		g.posted++
	}
}

// send queues a packet on the transmit queue as header and payload
// descriptors, and runs the device.
func (g *testGuest) send(h header, payload []byte) {
	g.t.Helper()
	g.queue(h, payload)
	g.poll()
}

func (g *testGuest) queue(h header, payload []byte) {
	g.t.Helper()
	if h.srcCID == 0 {
		h.srcCID = guestCID
	}
	if h.dstCID == 0 {
		h.dstCID = HostCID
	}
	if h.typ == 0 {
		h.typ = typeStream
	}
	if h.len == 0 {
		h.len = uint32(len(payload))
	}
	if h.bufAlloc == 0 {
		h.bufAlloc = g.credit
	}
	b := make([]byte, hdrLen)
	h.encode(b)
	bufs := [][]byte{b}
	if len(payload) > 0 {
		bufs = append(bufs, payload)
	}
	g.d.mu.Lock()
	_, ok := g.tx.Add(bufs, nil)
	g.d.mu.Unlock()
	if !ok {
		g.t.Fatal("guest transmit queue full")
	}
}

// poll posts receive buffers, runs the device once and collects what it
// returned.
func (g *testGuest) poll() {
	g.d.mu.Lock()
	defer g.d.mu.Unlock()
	g.refill()
	g.d.poll()
	for {
		if _, ok := g.tx.Next(); !ok {
			break
		}
	}
	for {
		u, ok := g.rx.Next()
		if !ok {
			break
		}
		g.posted--
		if u.Len < hdrLen {
			g.got = append(g.got, packet{header: header{op: 0}})
			continue
		}
		var p packet
		p.decode(u.Data)
		p.payload = u.Data[hdrLen:]
		if uint32(len(p.payload)) != p.len {
			g.t.Fatalf("device wrote %d payload bytes, header says %d", len(p.payload), p.len)
		}
		g.got = append(g.got, p)
	}
	g.refill()
}

// take returns and forgets the packets received so far.
func (g *testGuest) take() []packet {
	p := g.got
	g.got = nil
	return p
}

// expect polls until a packet with op arrives (host goroutines may still be
// on their way to queue it) and returns it; earlier packets are dropped.
func (g *testGuest) expect(op uint16) packet {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for i, p := range g.got {
			if p.op == op {
				g.got = g.got[i+1:]
				return p
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("no %s packet from the device; got %v", opName(op), g.got)
		}
		time.Sleep(time.Millisecond)
		g.poll()
	}
}

// only checks that exactly the given ops arrived since the last take.
func (g *testGuest) only(ops ...uint16) []packet {
	g.t.Helper()
	got := g.take()
	ok := len(got) == len(ops)
	for i := 0; ok && i < len(ops); i++ {
		ok = got[i].op == ops[i]
	}
	if !ok {
		var names []string
		for _, p := range got {
			names = append(names, p.String())
		}
		var want []string
		for _, op := range ops {
			want = append(want, opName(op))
		}
		g.t.Fatalf("device sent %q, want %q", names, want)
	}
	return got
}

// connect has the guest connect from guestPort to the host's port and
// returns the accepted host connection.
func (g *testGuest) connect(l *Listener, guestPort uint32) *Conn {
	g.t.Helper()
	g.send(header{op: opRequest, srcPort: guestPort, dstPort: l.port}, nil)
	resp := g.only(opResponse)[0]
	if resp.srcPort != l.port || resp.dstPort != guestPort || resp.dstCID != guestCID || resp.srcCID != HostCID {
		g.t.Fatalf("RESPONSE has the wrong addresses: %v", &resp.header)
	}
	c, err := l.Accept()
	if err != nil {
		g.t.Fatal(err)
	}
	return c.(*Conn)
}
