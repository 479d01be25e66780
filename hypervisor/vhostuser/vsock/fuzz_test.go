package vsock

import (
	"encoding/binary"
	"testing"
	"time"
)

// script reads fuzzer input as a sequence of small numbers; past the end
// it yields zeros.
type script struct{ b []byte }

func (s *script) more() bool { return len(s.b) > 0 }

func (s *script) u8() uint8 {
	if len(s.b) == 0 {
		return 0
	}
	v := s.b[0]
	s.b = s.b[1:]
	return v
}

func (s *script) u16() uint16 { return uint16(s.u8()) | uint16(s.u8())<<8 }
func (s *script) u32() uint32 { return uint32(s.u16()) | uint32(s.u16())<<16 }
func (s *script) u64() uint64 { return uint64(s.u32()) | uint64(s.u32())<<32 }

// FuzzDevice drives the device with a guest whose every move comes from
// the fuzzer: packet headers (mostly well-addressed, so that connections
// get far), payloads split over descriptors, raw descriptors pointing
// anywhere, receive buffers of any size, and the host reading, writing and
// closing in between. The device must not panic, block or break its
// bounds, and whatever it sends the guest must be a valid packet.
func FuzzDevice(f *testing.F) {
	hdr := func(op uint16, src, dst uint32, n uint32) []byte {
		b := make([]byte, hdrLen)
		(&header{srcCID: guestCID, dstCID: HostCID, srcPort: src, dstPort: dst, len: n, typ: typeStream, op: op, bufAlloc: 1 << 16}).encode(b)
		return b
	}
	// Seeds: connect, send data, shut down; a host write; raw junk.
	f.Add(append(append([]byte{0, 0}, hdr(opRequest, 1, 1, 0)...), 0, 0, 6, 0, 3, 2, 4, 0, 5))
	f.Add(append([]byte{0, 0}, hdr(opRW, 1, 1, 3)...))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{2, 3, 10, 0, 2, 0, 0, 0, 0, 4, 5, 6})

	f.Fuzz(func(t *testing.T, in []byte) {
		g := newSizedTestGuest(t, Options{BufferSize: 8192, MaxConns: 4, Backlog: 2}, 16, hdrLen+9000)
		g.rxBufs = 0
		g.d.closeWait = time.Hour // timers must not fire behind the fuzzer's back
		ls := []*Listener{listen(t, g.d, 1), listen(t, g.d, 2)}
		var accepted []*Conn
		s := &script{b: in}
		for steps := 0; s.more() && steps < 64; steps++ {
			switch s.u8() % 6 {
			case 0: // a packet, header fields from the script
				var h header
				h.srcCID, h.dstCID = guestCID, HostCID
				if s.u8()%16 == 0 {
					h.srcCID, h.dstCID = s.u64(), s.u64()
				}
				h.srcPort, h.dstPort = uint32(s.u8()%4), uint32(s.u8()%4)
				h.typ = typeStream
				if s.u8()%16 == 0 {
					h.typ = s.u16()
				}
				h.op = uint16(s.u8() % 9)
				h.flags = uint32(s.u8())
				h.bufAlloc, h.fwdCnt = s.u32()%(1<<17), s.u32()
				n := int(s.u16() % 9000)
				h.len = uint32(n)
				if s.u8()%8 == 0 {
					h.len = s.u32()
				}
				b := make([]byte, hdrLen+n)
				h.encode(b)
				// Split header and payload at a fuzzed point.
				cut := int(s.u16()) % (len(b) + 1)
				bufs := [][]byte{b[:cut]}
				if cut < len(b) {
					bufs = append(bufs, b[cut:])
				}
				if _, ok := g.tx.Add(bufs, nil); !ok {
					g.poll()
				}
			case 1: // a raw descriptor, anything goes
				id := s.u16() % 16
				g.tx.SetDesc(id, s.u64(), s.u32(), s.u16(), s.u16())
				g.tx.Publish(id)
				// The driver's bookkeeping no longer holds: use a
				// fresh guest for what follows.
				g.poll()
				return
			case 2: // receive buffers of fuzzed sizes
				for range s.u8() % 8 {
					g.rx.Add(nil, []uint32{uint32(s.u16()) % (hdrLen + rxBufLen + 1)})
				}
			case 3: // the host accepts, writes, reads or closes
				for _, l := range ls {
					g.d.mu.Lock()
					waiting := len(l.queue) > 0
					g.d.mu.Unlock()
					if waiting {
						c, err := l.Accept()
						if err != nil {
							t.Fatal(err)
						}
						accepted = append(accepted, c.(*Conn))
					}
				}
				if len(accepted) == 0 {
					break
				}
				c := accepted[int(s.u8())%len(accepted)]
				past := time.Now().Add(-time.Second) // never block
				c.SetDeadline(past)
				switch s.u8() % 4 {
				case 0:
					c.Write(make([]byte, s.u16()))
				case 1:
					c.Read(make([]byte, s.u16()))
				case 2:
					c.CloseWrite()
				case 3:
					c.Close()
				}
			default:
				g.poll()
			}
			g.poll()
			for _, p := range g.take() {
				if p.op == 0 {
					continue // a buffer too small for a header, handed back
				}
				// An RST answer carries the type of what it answers.
				if p.op < opRequest || p.op > opCreditRequest || p.typ != typeStream && p.op != opRST || p.srcCID != HostCID || p.dstCID != guestCID || p.len > maxPayload {
					t.Fatalf("invalid packet to the guest: %v", &p.header)
				}
			}
			g.d.mu.Lock()
			if len(g.d.conns) > 4 || len(g.d.replies) > maxReplies {
				t.Fatalf("%d connections, %d answers queued", len(g.d.conns), len(g.d.replies))
			}
			for _, c := range g.d.conns {
				if c.in.len() > 8192 || c.out.len() > 8192 {
					t.Fatalf("connection buffers %d and %d bytes", c.in.len(), c.out.len())
				}
			}
			g.d.mu.Unlock()
		}
	})
}

// TestScript pins the fuzz input decoding.
func TestScript(t *testing.T) {
	s := &script{b: binary.LittleEndian.AppendUint32([]byte{7}, 0xdeadbeef)}
	if s.u8() != 7 || s.u32() != 0xdeadbeef || s.more() || s.u64() != 0 {
		t.Fatal("script decoding")
	}
}
