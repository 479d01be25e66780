package vhostuser

import (
	"bytes"
	"errors"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeDevice records what the server does to it.
type fakeDevice struct {
	mu                        sync.Mutex
	queues                    []*Queue
	attaches, detaches, reset int
	kicks                     chan int
}

func newFakeDevice() *fakeDevice { return &fakeDevice{kicks: make(chan int, 16)} }

func (d *fakeDevice) Config() []byte { return []byte{3, 0, 0, 0, 0, 0, 0, 0} }
func (d *fakeDevice) NumQueues() int { return 2 }
func (d *fakeDevice) Attach(qs []*Queue) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queues = qs
	d.attaches++
}
func (d *fakeDevice) Detach() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queues = nil
	d.detaches++
}
func (d *fakeDevice) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reset++
}
func (d *fakeDevice) Kick(i int) { d.kicks <- i }

func (d *fakeDevice) attached() []*Queue {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queues
}

// frontEnd plays QEMU.
type frontEnd struct {
	t *testing.T
	c *net.UnixConn
}

func connect(t *testing.T, dev Device) (*Server, *frontEnd) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vu.sock")
	s, err := Listen(Config{Path: path, Device: dev, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute))
	return s, &frontEnd{t: t, c: c}
}

func (f *frontEnd) send(req, flags uint32, payload []byte, fds ...int) {
	f.t.Helper()
	b := ne.AppendUint32(nil, req)
	b = ne.AppendUint32(b, flagVersion|flags)
	b = ne.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := f.c.WriteMsgUnix(b, oob, nil); err != nil {
		f.t.Fatal(err)
	}
}

func (f *frontEnd) recv(req uint32) []byte {
	f.t.Helper()
	hdr := make([]byte, hdrSize)
	if _, err := io.ReadFull(f.c, hdr); err != nil {
		f.t.Fatalf("reading the reply to %s: %v", requestName(req), err)
	}
	if got := ne.Uint32(hdr); got != req || ne.Uint32(hdr[4:]) != flagVersion|flagReply {
		f.t.Fatalf("reply to %s is %s with flags %#x", requestName(req), requestName(got), ne.Uint32(hdr[4:]))
	}
	p := make([]byte, ne.Uint32(hdr[8:]))
	if _, err := io.ReadFull(f.c, p); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// call sends a request that has a reply and returns the reply.
func (f *frontEnd) call(req, flags uint32, payload []byte, fds ...int) []byte {
	f.t.Helper()
	f.send(req, flags, payload, fds...)
	return f.recv(req)
}

// ack sends a request asking for an acknowledgement and returns it.
func (f *frontEnd) ack(req uint32, payload []byte, fds ...int) uint64 {
	f.t.Helper()
	return ne.Uint64(f.call(req, flagNeedReply, payload, fds...))
}

func u64(v uint64) []byte { return ne.AppendUint64(nil, v) }

func state(i, n uint32) []byte { return ne.AppendUint32(ne.AppendUint32(nil, i), n) }

// guestMemory is a memfd the front-end shares, mapped on its side too.
func guestMemory(t *testing.T, size int) (fd int, mem []byte) {
	t.Helper()
	fd, err := unix.MemfdCreate("guest-ram", unix.MFD_CLOEXEC)
	if err != nil {
		t.Skipf("memfd_create: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		t.Fatal(err)
	}
	mem, err = unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	return fd, mem
}

func memTable(guest, size, user, offset uint64) []byte {
	b := ne.AppendUint32(nil, 1)
	b = ne.AppendUint32(b, 0)
	for _, v := range []uint64{guest, size, user, offset} {
		b = ne.AppendUint64(b, v)
	}
	return b
}

func eventfd(t *testing.T) int {
	t.Helper()
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestServerLifecycle runs the sequence QEMU 7.2 sends for
// vhost-user-vsock-device: initialization, device start, a kick, a
// notification, and the stop.
func TestServerLifecycle(t *testing.T) {
	dev := newFakeDevice()
	_, fe := connect(t, dev)
	const memSize = 1 << 20
	const userBase = 0x7f00_0000_0000
	memfd, mem := guestMemory(t, memSize)

	// Initialization (vhost_user_backend_init, vhost_dev_init).
	if f := ne.Uint64(fe.call(reqGetFeatures, 0, nil)); f&featureVersion1 == 0 || f&featureProtocolFeatures == 0 {
		t.Fatalf("features %#x lack VERSION_1 or PROTOCOL_FEATURES", f)
	}
	p := ne.Uint64(fe.call(reqGetProtocolFeatures, 0, nil))
	if p&protoConfig == 0 {
		t.Fatalf("protocol features %#x lack CONFIG", p)
	}
	if r := fe.ack(reqSetProtocolFeatures, u64(protoMQ|protoReplyAck|protoConfig)); r != 0 {
		t.Fatalf("SET_PROTOCOL_FEATURES acknowledged with %d", r)
	}
	if n := ne.Uint64(fe.call(reqGetQueueNum, 0, nil)); n != 2 {
		t.Fatalf("GET_QUEUE_NUM = %d", n)
	}
	fe.send(reqSetOwner, 0, nil)
	calls := []int{eventfd(t), eventfd(t)}
	for i, fd := range calls {
		fe.send(reqSetVringCall, 0, u64(uint64(i)), fd)
		fe.send(reqSetVringErr, 0, u64(uint64(i)), eventfd(t))
	}
	cfg := fe.call(reqGetConfig, 0, append(state(0, 8), make([]byte, 4+8)...))
	if !bytes.Equal(cfg, append(append(state(0, 8), 0, 0, 0, 0), 3, 0, 0, 0, 0, 0, 0, 0)) {
		t.Fatalf("GET_CONFIG reply %v", cfg)
	}

	// Start (vhost_dev_start).
	if r := fe.ack(reqSetFeatures, u64(featureVersion1|featureProtocolFeatures)); r != 0 {
		t.Fatalf("SET_FEATURES acknowledged with %d", r)
	}
	if r := fe.ack(reqSetMemTable, memTable(0, memSize, userBase, 0), memfd); r != 0 {
		t.Fatalf("SET_MEM_TABLE acknowledged with %d", r)
	}
	kicks := []int{eventfd(t), eventfd(t)}
	for i := range uint32(2) {
		base := uint64(0x10000 * (i + 1)) // rings at 64 KiB and 128 KiB
		fe.send(reqSetVringNum, 0, state(i, 8))
		fe.send(reqSetVringBase, 0, state(i, 5))
		addr := state(i, 0)
		for _, a := range []uint64{userBase + base, userBase + base + 0x200, userBase + base + 0x100} { // desc, used, avail
			addr = ne.AppendUint64(addr, a)
		}
		fe.send(reqSetVringAddr, 0, ne.AppendUint64(addr, 0))
		fe.send(reqSetVringKick, 0, u64(uint64(i)), kicks[i])
	}
	if dev.attached() != nil {
		t.Fatal("device attached before its rings were enabled")
	}
	for i := range uint32(2) {
		fe.send(reqSetVringEnable, 0, state(i, 1))
	}
	fe.call(reqGetFeatures, 0, nil) // a round trip: all before it is handled
	qs := dev.attached()
	if len(qs) != 2 || qs[0].Size() != 8 || qs[1].LastAvail() != 5 {
		t.Fatalf("device got %d queues", len(qs))
	}

	// The guest makes a chain available through its own mapping, kicks,
	// and is notified when the device has used it.
	copy(mem[0x20000:], []byte{0, 0x30, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0}) // desc 0: 4 bytes at 0x3000
	copy(mem[0x3000:], "ping")
	ne.PutUint16(mem[0x20100+4+2*5:], 0) // avail ring entry 5: head 0
	ne.PutUint16(mem[0x20100+2:], 6)     // avail idx
	unix.Write(kicks[1], u64(1))
	if i := <-dev.kicks; i != 1 {
		t.Fatalf("kick reported for queue %d", i)
	}
	c, ok := qs[1].Next()
	if !ok {
		t.Fatal("the device sees no chain")
	}
	got := make([]byte, 4)
	c.ReadAt(got, 0)
	if string(got) != "ping" {
		t.Fatalf("chain holds %q", got)
	}
	qs[1].Done(c.Head, 0)
	qs[1].Notify()
	var n [8]byte
	if _, err := unix.Read(calls[1], n[:]); err != nil {
		t.Fatalf("no notification on the call eventfd: %v", err)
	}

	// Stop (vhost_dev_stop): each ring reports where it stopped.
	if b := fe.call(reqGetVringBase, 0, state(1, 0)); !bytes.Equal(b, state(1, 6)) {
		t.Fatalf("GET_VRING_BASE reply %v, want ring 1 at 6", b)
	}
	fe.call(reqGetVringBase, 0, state(0, 0))
	if dev.attached() != nil || dev.reset == 0 {
		t.Fatalf("after the stop: attached %v, %d resets", dev.attached() != nil, dev.reset)
	}
}

// TestServerRejects checks that bad requests are refused without harm, and
// that the connection is dropped when no answer can be given.
func TestServerRejects(t *testing.T) {
	tests := []struct {
		name  string
		run   func(t *testing.T, fe *frontEnd)
		drops bool // the server ends the connection
	}{
		{"unknown features", func(t *testing.T, fe *frontEnd) {
			if r := fe.ack(reqSetFeatures, u64(1<<5)); r == 0 {
				t.Error("accepted")
			}
		}, false},
		{"unknown protocol features", func(t *testing.T, fe *frontEnd) {
			if r := fe.ack(reqSetProtocolFeatures, u64(1<<15)); r == 0 {
				t.Error("accepted")
			}
		}, false},
		{"ring out of range", func(t *testing.T, fe *frontEnd) {
			if r := fe.ack(reqSetVringNum, state(2, 8)); r == 0 {
				t.Error("accepted")
			}
		}, false},
		{"ring size not a power of two", func(t *testing.T, fe *frontEnd) {
			if r := fe.ack(reqSetVringNum, state(0, 100)); r == 0 {
				t.Error("accepted")
			}
		}, false},
		{"short payload", func(t *testing.T, fe *frontEnd) {
			if r := fe.ack(reqSetVringBase, []byte{1}); r == 0 {
				t.Error("accepted")
			}
		}, false},
		{"region larger than its file", func(t *testing.T, fe *frontEnd) {
			fd, _ := guestMemory(t, 4096)
			if r := fe.ack(reqSetMemTable, memTable(0, 1<<20, 0, 0), fd); r == 0 {
				t.Error("accepted")
			}
		}, false},
		{"regions without descriptors", func(t *testing.T, fe *frontEnd) {
			if r := fe.ack(reqSetMemTable, memTable(0, 4096, 0, 0)); r == 0 {
				t.Error("accepted")
			}
		}, false},
		{"kick without an eventfd", func(t *testing.T, fe *frontEnd) {
			if r := fe.ack(reqSetVringKick, u64(vringNoFD)); r == 0 {
				t.Error("accepted")
			}
		}, false},
		{"config write", func(t *testing.T, fe *frontEnd) {
			if r := fe.ack(reqSetConfig, append(state(0, 8), make([]byte, 12)...)); r == 0 {
				t.Error("accepted")
			}
		}, false},
		{"config read past the end", func(t *testing.T, fe *frontEnd) {
			if b := fe.call(reqGetConfig, 0, append(state(4, 8), make([]byte, 12)...)); len(b) != 0 {
				t.Errorf("reply %v, want an empty one", b)
			}
		}, false},
		{"unknown request", func(t *testing.T, fe *frontEnd) {
			if r := fe.ack(99, nil); r == 0 {
				t.Error("accepted")
			}
		}, false},
		{"stopping a ring out of range", func(t *testing.T, fe *frontEnd) {
			fe.send(reqGetVringBase, 0, state(7, 0))
		}, true},
		{"wrong version", func(t *testing.T, fe *frontEnd) {
			b := ne.AppendUint32(nil, reqGetFeatures)
			b = ne.AppendUint32(b, 2)
			fe.c.Write(ne.AppendUint32(b, 0))
		}, true},
		{"huge payload", func(t *testing.T, fe *frontEnd) {
			b := ne.AppendUint32(nil, reqSetOwner)
			b = ne.AppendUint32(b, flagVersion)
			fe.c.Write(ne.AppendUint32(b, 1<<30))
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, fe := connect(t, newFakeDevice())
			tt.run(t, fe)
			if tt.drops {
				if _, err := fe.c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
					t.Fatalf("connection not dropped: %v", err)
				}
				return
			}
			// Still serving.
			if f := ne.Uint64(fe.call(reqGetFeatures, 0, nil)); f != offeredFeatures {
				t.Fatalf("GET_FEATURES after the rejection: %#x", f)
			}
		})
	}
}

// TestServerReconnect checks that a new front-end is served after the
// first one goes away, and that Close ends an active connection.
func TestServerReconnect(t *testing.T) {
	dev := newFakeDevice()
	s, fe := connect(t, dev)
	fe.call(reqGetFeatures, 0, nil)
	fe.c.Close()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: s.cfg.Path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fe2 := &frontEnd{t: t, c: c}
	fe2.call(reqGetFeatures, 0, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("connection still open after Close: %v", err)
	}
}
