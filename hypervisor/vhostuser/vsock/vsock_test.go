package vsock

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func listen(t *testing.T, d *Device, port uint32) *Listener {
	t.Helper()
	l, err := d.Listen(port)
	if err != nil {
		t.Fatal(err)
	}
	return l.(*Listener)
}

func TestGuestConnects(t *testing.T) {
	g := newTestGuest(t, Options{})
	l := listen(t, g.d, 1234)
	c := g.connect(l, 5000)

	g.send(header{op: opRW, srcPort: 5000, dstPort: 1234, bufAlloc: 1 << 20}, []byte("hello"))
	g.only()
	buf := make([]byte, 10)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if _, err := c.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	g.poll()
	p := g.only(opRW)[0]
	if string(p.payload) != "world" || p.fwdCnt != 5 || p.bufAlloc != DefaultBufferSize || p.srcPort != 1234 || p.dstPort != 5000 {
		t.Fatalf("RW packet %v %q", &p.header, p.payload)
	}
	if a := c.RemoteAddr().String(); a != "vsock:3:5000" {
		t.Fatalf("RemoteAddr = %s", a)
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name string
		h    header
	}{
		{"no listener", header{op: opRequest, srcPort: 7, dstPort: 99}},
		{"data for no connection", header{op: opRW, srcPort: 7, dstPort: 1234}},
		{"response for no connection", header{op: opResponse, srcPort: 7, dstPort: 1234}},
		{"shutdown for no connection", header{op: opShutdown, srcPort: 7, dstPort: 1234, flags: 3}},
		{"seqpacket", header{op: opRequest, srcPort: 7, dstPort: 1234, typ: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGuest(t, Options{})
			listen(t, g.d, 1234)
			g.send(tt.h, nil)
			rst := g.only(opRST)[0]
			if rst.srcPort != tt.h.dstPort || rst.dstPort != tt.h.srcPort {
				t.Fatalf("RST addressed %d->%d", rst.srcPort, rst.dstPort)
			}
			if n := g.d.Stats().Conns; n != 0 {
				t.Fatalf("%d connections after a refusal", n)
			}
		})
	}
	t.Run("an RST is not answered", func(t *testing.T) {
		g := newTestGuest(t, Options{})
		g.send(header{op: opRST, srcPort: 7, dstPort: 1234}, nil)
		g.only()
	})
}

func TestMalformedPackets(t *testing.T) {
	tests := []struct {
		name    string
		h       header
		payload []byte
		want    []uint16
	}{
		{"wrong source CID", header{srcCID: 7, op: opRequest, srcPort: 5000, dstPort: 1234}, nil, nil},
		{"wrong destination CID", header{dstCID: 3, op: opRequest, srcPort: 5000, dstPort: 1234}, nil, nil},
		{"length past the buffer", header{op: opRW, srcPort: 5000, dstPort: 1234, len: 100}, []byte("short"), []uint16{opRST}},
		{"length beyond 64 KiB", header{op: opRW, srcPort: 5000, dstPort: 1234, len: 1 << 20}, []byte("x"), []uint16{opRST}},
		{"unknown operation", header{op: 42, srcPort: 5000, dstPort: 1234}, nil, []uint16{opRST}},
		{"second request", header{op: opRequest, srcPort: 5000, dstPort: 1234}, nil, []uint16{opRST}},
		{"response when established", header{op: opResponse, srcPort: 5000, dstPort: 1234}, nil, []uint16{opRST}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGuest(t, Options{})
			c := g.connect(listen(t, g.d, 1234), 5000)
			g.send(tt.h, tt.payload)
			g.only(tt.want...)
			_, err := c.Write([]byte("x"))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("connection broken by a dropped packet: %v", err)
				}
				if g.d.Stats().Dropped != 1 {
					t.Fatalf("Dropped = %d", g.d.Stats().Dropped)
				}
				return
			}
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("Write after the reset: %v", err)
			}
			if n := g.d.Stats().Conns; n != 0 {
				t.Fatalf("%d connections after the reset", n)
			}
		})
	}
	t.Run("header cut short", func(t *testing.T) {
		g := newTestGuest(t, Options{})
		g.tx.Add([][]byte{make([]byte, 20)}, nil)
		g.poll()
		g.only()
		if g.d.Stats().Dropped != 1 {
			t.Fatalf("Dropped = %d", g.d.Stats().Dropped)
		}
	})
	t.Run("receive buffer smaller than a header", func(t *testing.T) {
		g := newTestGuest(t, Options{})
		g.rxBufs = 0
		g.send(header{op: opRequest, srcPort: 7, dstPort: 99}, nil)
		g.rx.Add(nil, []uint32{10})
		g.rx.Add(nil, []uint32{hdrLen})
		g.poll()
		g.only(0, opRST) // the short one back empty, then the answer
	})
}

func TestHostDials(t *testing.T) {
	tests := []struct {
		name    string
		answer  uint16
		wantErr error
	}{
		{"accepted", opResponse, nil},
		{"refused", opRST, syscall.ECONNREFUSED},
		{"nonsense answer", opCreditRequest, syscall.ECONNRESET},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGuest(t, Options{})
			type result struct {
				c   net.Conn
				err error
			}
			done := make(chan result, 1)
			go func() {
				c, err := g.d.Dial(context.Background(), 1024)
				done <- result{c, err}
			}()
			req := g.expect(opRequest)
			if req.dstPort != 1024 || req.srcPort < firstEphemeralPort || req.dstCID != guestCID {
				t.Fatalf("REQUEST %v", &req.header)
			}
			g.send(header{op: tt.answer, srcPort: 1024, dstPort: req.srcPort, bufAlloc: 4096}, nil)
			r := <-done
			if tt.wantErr == nil {
				if r.err != nil {
					t.Fatal(r.err)
				}
				r.c.Write([]byte("ping"))
				g.poll()
				if p := g.expect(opRW); string(p.payload) != "ping" {
					t.Fatalf("payload %q", p.payload)
				}
				return
			}
			if !errors.Is(r.err, tt.wantErr) {
				t.Fatalf("Dial error %v, want %v", r.err, tt.wantErr)
			}
			if n := g.d.Stats().Conns; n != 0 && tt.answer == opRST {
				t.Fatalf("%d connections after a refusal", n)
			}
		})
	}
	t.Run("no answer", func(t *testing.T) {
		// A guest whose driver is still starting may drop the
		// request: Dial gives up like Linux's connect, to be retried.
		g := newTestGuest(t, Options{})
		g.d.connectWait = time.Millisecond
		done := make(chan error, 1)
		go func() {
			_, err := g.d.Dial(context.Background(), 1024)
			done <- err
		}()
		if err := <-done; !errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("Dial error %v, want ETIMEDOUT", err)
		}
		g.poll()
		if n := g.d.Stats().Conns; n != 0 {
			t.Fatalf("%d connections after a timed-out dial", n)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		g := newTestGuest(t, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := g.d.Dial(ctx, 1024)
			done <- err
		}()
		g.expect(opRequest)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Dial error %v", err)
		}
		g.expect(opRST) // the guest is told to forget the request
		if n := g.d.Stats().Conns; n != 0 {
			t.Fatalf("%d connections after a cancelled dial", n)
		}
	})
}

// TestHostToGuestCredit checks that the device never sends more than the
// guest's credit and asks for more when it runs out.
func TestHostToGuestCredit(t *testing.T) {
	g := newTestGuest(t, Options{})
	g.credit = 10000
	c := g.connect(listen(t, g.d, 1234), 5000)
	data := make([]byte, 25000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	var got []byte
	fwd := uint32(0)
	for len(got) < len(data) {
		g.poll()
		var sent uint32
		for _, p := range g.take() {
			switch p.op {
			case opRW:
				got = append(got, p.payload...)
				sent += p.len
			case opCreditRequest:
			default:
				t.Fatalf("unexpected %v", &p.header)
			}
		}
		if uint32(len(got))-fwd > 10000 {
			t.Fatalf("device sent %d bytes beyond the guest's forwarded %d, credit was 10000", uint32(len(got))-fwd, fwd)
		}
		if sent == 0 {
			t.Fatal("no progress")
		}
		// The guest's application reads everything: it grants the
		// credit back.
		fwd = uint32(len(got))
		g.send(header{op: opCreditUpdate, srcPort: 5000, dstPort: 1234, bufAlloc: 10000, fwdCnt: fwd}, nil)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data corrupted")
	}
	// Out of credit with data waiting: one CREDIT_REQUEST, not a stream.
	c.Write(make([]byte, 20000))
	g.poll()
	g.poll()
	g.only(opRW, opRW, opRW, opCreditRequest)
}

func TestGuestToHostCredit(t *testing.T) {
	const buf = 16384
	g := newTestGuest(t, Options{BufferSize: buf})
	c := g.connect(listen(t, g.d, 1234), 5000)
	if p := g.take(); len(p) != 0 {
		t.Fatalf("extra packets %v", p)
	}
	chunk := bytes.Repeat([]byte{1}, 4096)
	for range 4 {
		g.send(header{op: opRW, srcPort: 5000, dstPort: 1234}, chunk)
	}
	g.only()
	// Reading a quarter of the buffer frees enough to tell the guest.
	b := make([]byte, 4096)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	g.poll()
	if p := g.only(opCreditUpdate)[0]; p.fwdCnt != 4096 || p.bufAlloc != buf {
		t.Fatalf("credit update %v", &p.header)
	}
	// The guest asks explicitly.
	g.send(header{op: opCreditRequest, srcPort: 5000, dstPort: 1234}, nil)
	g.only(opCreditUpdate)
	// 4096 bytes of credit are left; 4097 is a violation.
	g.send(header{op: opRW, srcPort: 5000, dstPort: 1234}, bytes.Repeat([]byte{2}, 4097))
	g.only(opRST)
	// What arrived within the credit is still readable, then the reset.
	n, err := io.Copy(io.Discard, c)
	if n != 3*4096 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read %d bytes, then %v", n, err)
	}
}

func TestGuestShutdown(t *testing.T) {
	g := newTestGuest(t, Options{})
	c := g.connect(listen(t, g.d, 1234), 5000)
	g.send(header{op: opRW, srcPort: 5000, dstPort: 1234}, []byte("last words"))
	g.send(header{op: opShutdown, srcPort: 5000, dstPort: 1234, flags: shutdownSend}, nil)
	g.only()
	if b, err := io.ReadAll(c); err != nil || string(b) != "last words" {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
	// The host can still write.
	if _, err := c.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	g.poll()
	g.only(opRW)
	// Full shutdown: the device confirms with RST and forgets it.
	g.send(header{op: opShutdown, srcPort: 5000, dstPort: 1234, flags: shutdownRcv}, nil)
	g.only(opRST)
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write after the guest's shutdown: %v", err)
	}
	if n := g.d.Stats().Conns; n != 0 {
		t.Fatalf("%d connections", n)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	g.poll()
	g.only()
}

func TestGuestReset(t *testing.T) {
	g := newTestGuest(t, Options{})
	c := g.connect(listen(t, g.d, 1234), 5000)
	g.send(header{op: opRST, srcPort: 5000, dstPort: 1234}, nil)
	g.only()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after RST: %v", err)
	}
	if n := g.d.Stats().Conns; n != 0 {
		t.Fatalf("%d connections", n)
	}
}

func TestHostClose(t *testing.T) {
	t.Run("guest confirms", func(t *testing.T) {
		g := newTestGuest(t, Options{})
		c := g.connect(listen(t, g.d, 1234), 5000)
		c.Write([]byte("bye"))
		c.Close()
		g.poll()
		p := g.only(opRW, opShutdown)
		if string(p[0].payload) != "bye" || p[1].flags != shutdownBoth {
			t.Fatalf("got %q then flags %d", p[0].payload, p[1].flags)
		}
		// Data still in flight from the guest is dropped quietly.
		g.send(header{op: opRW, srcPort: 5000, dstPort: 1234}, []byte("late"))
		g.send(header{op: opRST, srcPort: 5000, dstPort: 1234}, nil)
		g.only()
		if n := g.d.Stats().Conns; n != 0 {
			t.Fatalf("%d connections", n)
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read after Close: %v", err)
		}
	})
	t.Run("data waits for credit", func(t *testing.T) {
		g := newTestGuest(t, Options{})
		g.credit = 0
		c := g.connect(listen(t, g.d, 1234), 5000)
		c.Write([]byte("held back"))
		c.Close()
		g.poll()
		g.only(opCreditRequest)
		g.send(header{op: opCreditUpdate, srcPort: 5000, dstPort: 1234, bufAlloc: 100}, nil)
		g.only(opRW, opShutdown)
	})
	t.Run("guest never confirms", func(t *testing.T) {
		g := newTestGuest(t, Options{})
		g.d.closeWait = time.Millisecond
		c := g.connect(listen(t, g.d, 1234), 5000)
		c.Close()
		g.expect(opRST) // after a SHUTDOWN, unless the timer was faster

		if n := g.d.Stats().Conns; n != 0 {
			t.Fatalf("%d connections", n)
		}
	})
}

func TestCloseWrite(t *testing.T) {
	g := newTestGuest(t, Options{})
	c := g.connect(listen(t, g.d, 1234), 5000)
	c.Write([]byte("request"))
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	g.poll()
	if p := g.only(opRW, opShutdown); p[1].flags != shutdownSend {
		t.Fatalf("SHUTDOWN flags %d", p[1].flags)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write after CloseWrite: %v", err)
	}
	g.send(header{op: opRW, srcPort: 5000, dstPort: 1234}, []byte("response"))
	g.send(header{op: opShutdown, srcPort: 5000, dstPort: 1234, flags: shutdownBoth}, nil)
	if b, err := io.ReadAll(c); err != nil || string(b) != "response" {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
	g.only(opRST)
}

func TestLimits(t *testing.T) {
	t.Run("connections", func(t *testing.T) {
		g := newTestGuest(t, Options{MaxConns: 2})
		listen(t, g.d, 1234)
		for port := uint32(1); port <= 3; port++ {
			g.queue(header{op: opRequest, srcPort: port, dstPort: 1234}, nil)
		}
		g.poll()
		g.only(opRST, opResponse, opResponse) // answers to strays go first
		if _, err := g.d.Dial(context.Background(), 1); !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("Dial beyond the limit: %v", err)
		}
	})
	t.Run("backlog", func(t *testing.T) {
		g := newTestGuest(t, Options{Backlog: 1})
		l := listen(t, g.d, 1234)
		g.queue(header{op: opRequest, srcPort: 1, dstPort: 1234}, nil)
		g.queue(header{op: opRequest, srcPort: 2, dstPort: 1234}, nil)
		g.poll()
		g.only(opRST, opResponse)
		// Closing the listener resets what it had not accepted.
		l.Close()
		g.poll()
		g.only(opRST)
	})
	t.Run("answers to strays", func(t *testing.T) {
		g := newTestGuest(t, Options{})
		g.rxBufs = 0
		for i := range 3 * txBudget {
			g.queue(header{op: opRW, srcPort: uint32(i), dstPort: 1234}, nil)
			if g.tx.Free() == 0 {
				g.poll()
			}
		}
		g.poll()
		if n := len(g.d.replies); n != maxReplies {
			t.Fatalf("%d answers queued, want the cap %d", n, maxReplies)
		}
	})
	t.Run("no receive buffers", func(t *testing.T) {
		// A guest that never drains: host writes stop at the buffer,
		// the guest's own packets are still processed.
		g := newTestGuest(t, Options{BufferSize: 8192})
		g.rxBufs, g.credit = 1, 0
		c := g.connect(listen(t, g.d, 1234), 5000)
		g.rxBufs = 0
		c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		n, err := c.Write(make([]byte, 100000))
		if n != 8192 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write = %d, %v", n, err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("%v is not a net.Error timeout", err)
		}
		g.send(header{op: opRW, srcPort: 5000, dstPort: 1234}, []byte("still"))
		g.only(opCreditRequest) // in the one buffer left
		c.SetReadDeadline(time.Time{})
		b := make([]byte, 5)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "still" {
			t.Fatalf("Read = %q, %v", b, err)
		}
	})
}

func TestResetAndClose(t *testing.T) {
	g := newTestGuest(t, Options{})
	l := listen(t, g.d, 1234)
	c := g.connect(l, 5000)
	dialed := make(chan error, 1)
	go func() {
		_, err := g.d.Dial(context.Background(), 1024)
		dialed <- err
	}()
	g.expect(opRequest)
	g.d.Reset()
	if err := <-dialed; !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("pending Dial after reset: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after reset: %v", err)
	}
	// Listeners survive a reset.
	c = g.connect(l, 5001)
	accepted := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		accepted <- err
	}()
	g.d.Close()
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if _, err := g.d.Listen(1); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Listen after Close: %v", err)
	}
}

func TestListenTwice(t *testing.T) {
	d := New(Options{})
	defer d.Close()
	l, err := d.Listen(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Listen(1); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second Listen: %v", err)
	}
	l.Close()
	if _, err := d.Listen(1); err != nil {
		t.Fatalf("Listen after Close: %v", err)
	}
}

// TestWriteLargerThanBuffer checks that a Write whose buffered part is sent
// at once goes on with the rest: the guest has the receive buffers and the
// credit, so no later event would wake a waiting Write.
func TestWriteLargerThanBuffer(t *testing.T) {
	g := newTestGuest(t, Options{BufferSize: 8192})
	c := g.connect(listen(t, g.d, 1234), 5000)
	c.SetWriteDeadline(time.Now().Add(time.Minute))
	data := bytes.Repeat([]byte("0123456789"), 2000)
	if n, err := c.Write(data); n != len(data) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	g.poll()
	var got []byte
	for _, p := range g.take() {
		got = append(got, p.payload...)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("guest got %d bytes, want %d", len(got), len(data))
	}
}
