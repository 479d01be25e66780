package vhostuser_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"rkt.dev/rkt/hypervisor/vhostuser"
	"rkt.dev/rkt/hypervisor/vhostuser/virtqtest"
)

func TestNewMemory(t *testing.T) {
	b := make([]byte, 4096)
	tests := []struct {
		name    string
		regions []vhostuser.Region
		wantErr string
	}{
		{"one region", []vhostuser.Region{{GuestAddr: 0, UserAddr: 1 << 40, Data: b}}, ""},
		{"two adjacent", []vhostuser.Region{{GuestAddr: 0, UserAddr: 0, Data: b[:2048]}, {GuestAddr: 2048, UserAddr: 2048, Data: b[2048:]}}, ""},
		{"none", nil, "0 regions"},
		{"too many", make([]vhostuser.Region, 9), "9 regions"},
		{"empty", []vhostuser.Region{{Data: nil}}, "empty"},
		{"wraps", []vhostuser.Region{{GuestAddr: math.MaxUint64 - 100, Data: b}}, "wraps"},
		{"overlap in guest", []vhostuser.Region{{GuestAddr: 0, UserAddr: 0, Data: b}, {GuestAddr: 4095, UserAddr: 8192, Data: b}}, "overlap"},
		{"overlap in user", []vhostuser.Region{{GuestAddr: 0, UserAddr: 0, Data: b}, {GuestAddr: 8192, UserAddr: 100, Data: b}}, "overlap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := vhostuser.NewMemory(tt.regions)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("NewMemory: %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestMemoryTranslation(t *testing.T) {
	low := bytes.Repeat([]byte{1}, 4096)
	high := bytes.Repeat([]byte{2}, 4096)
	gap := bytes.Repeat([]byte{3}, 4096)
	m, err := vhostuser.NewMemory([]vhostuser.Region{
		{GuestAddr: 0x1000, UserAddr: 0x10_0000, Data: low},
		{GuestAddr: 0x2000, UserAddr: 0x20_0000, Data: high}, // adjacent to low in guest space only
		{GuestAddr: 0x9000, UserAddr: 0x30_0000, Data: gap},
	})
	if err != nil {
		t.Fatal(err)
	}
	guest := []struct {
		name    string
		addr    uint64
		n       uint32
		want    []int // lengths of the slices
		wantErr bool
	}{
		{"inside one region", 0x1010, 16, []int{16}, false},
		{"whole region", 0x1000, 4096, []int{4096}, false},
		{"across adjacent regions", 0x1ff0, 32, []int{16, 16}, false},
		{"zero length", 0x1000, 0, nil, false},
		{"zero length outside", 0x5000, 0, nil, false},
		{"into the hole", 0x2ff0, 32, nil, true},
		{"below memory", 0, 16, nil, true},
		{"past the end", 0x9ff0, 17, nil, true},
		{"wraps", math.MaxUint64 - 4, 16, nil, true},
	}
	for _, tt := range guest {
		t.Run("guest "+tt.name, func(t *testing.T) {
			got, err := m.Guest(nil, tt.addr, tt.n)
			if tt.wantErr {
				if !errors.Is(err, vhostuser.ErrOutOfBounds) {
					t.Fatalf("Guest(%#x, %d) error = %v, want ErrOutOfBounds", tt.addr, tt.n, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var lens []int
			for _, s := range got {
				lens = append(lens, len(s))
			}
			if len(lens) != len(tt.want) {
				t.Fatalf("Guest(%#x, %d) gave slices of %v, want %v", tt.addr, tt.n, lens, tt.want)
			}
			for i := range lens {
				if lens[i] != tt.want[i] {
					t.Fatalf("Guest(%#x, %d) gave slices of %v, want %v", tt.addr, tt.n, lens, tt.want)
				}
			}
		})
	}
	user := []struct {
		name    string
		addr, n uint64
		want    byte
		wantErr bool
	}{
		{"inside", 0x20_0010, 16, 2, false},
		{"to the end", 0x30_0000, 4096, 3, false},
		{"across regions", 0x10_0ff0, 32, 0, true},
		{"huge", 0x10_0000, math.MaxUint64, 0, true},
		{"wraps", math.MaxUint64, 2, 0, true},
	}
	for _, tt := range user {
		t.Run("user "+tt.name, func(t *testing.T) {
			got, err := m.User(tt.addr, tt.n)
			if tt.wantErr {
				if !errors.Is(err, vhostuser.ErrOutOfBounds) {
					t.Fatalf("User(%#x, %d) error = %v, want ErrOutOfBounds", tt.addr, tt.n, err)
				}
				return
			}
			if err != nil || uint64(len(got)) != tt.n || got[0] != tt.want || cap(got) != len(got) {
				t.Fatalf("User(%#x, %d) = %d bytes starting %d (cap %d), %v", tt.addr, tt.n, len(got), got[0], cap(got), err)
			}
		})
	}
}

func TestNewQueue(t *testing.T) {
	mem := virtqtest.NewMemory(1 << 16)
	q := mem.NewQueue(8, 64)
	good := q.Config(nil)
	tests := []struct {
		name    string
		edit    func(*vhostuser.QueueConfig)
		wantErr string
	}{
		{"valid", func(*vhostuser.QueueConfig) {}, ""},
		{"size 0", func(c *vhostuser.QueueConfig) { c.Size = 0 }, "power of two"},
		{"size 6", func(c *vhostuser.QueueConfig) { c.Size = 6 }, "power of two"},
		{"misaligned descriptors", func(c *vhostuser.QueueConfig) { c.DescAddr += 8 }, "aligned"},
		{"misaligned available ring", func(c *vhostuser.QueueConfig) { c.AvailAddr += 2 }, "aligned"},
		{"guest address for the ring", func(c *vhostuser.QueueConfig) { c.DescAddr -= virtqtest.UserBase }, "descriptor table"},
		{"used ring past the end", func(c *vhostuser.QueueConfig) { c.UsedAddr = virtqtest.UserBase + 1<<16 - 8 }, "used ring"},
		{"ring larger than memory", func(c *vhostuser.QueueConfig) { c.Size = 32768 }, "descriptor table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			_, err := vhostuser.NewQueue(mem.Table(), c)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("NewQueue: %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestQueueChains(t *testing.T) {
	mem := virtqtest.NewMemory(1 << 16)
	drv := mem.NewQueue(4, 64)
	notified := 0
	q, err := vhostuser.NewQueue(mem.Table(), drv.Config(func() { notified++ }))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := q.Next(); ok || q.HasAvail() {
		t.Fatal("a chain from an empty ring")
	}
	// More rounds than the ring has entries, so indices wrap.
	for round := range 10 {
		head, ok := drv.Add([][]byte{[]byte("hello, "), []byte("device")}, []uint32{5, 20})
		if !ok {
			t.Fatal("driver ran out of descriptors")
		}
		if !q.HasAvail() {
			t.Fatal("HasAvail is false after Add")
		}
		c, ok := q.Next()
		if !ok {
			t.Fatal("no chain after Add")
		}
		if c.Head != head || c.ReadableLen() != 13 || c.WritableLen() != 25 {
			t.Fatalf("chain head %d readable %d writable %d, want %d, 13, 25", c.Head, c.ReadableLen(), c.WritableLen(), head)
		}
		got := make([]byte, 20)
		if n := c.ReadAt(got, 3); n != 10 || string(got[:n]) != "lo, device" {
			t.Fatalf("ReadAt(3) = %d %q", n, got[:n])
		}
		reply := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
		if n := c.WriteAt(reply, 2); n != 23 {
			t.Fatalf("WriteAt(2) wrote %d bytes, want 23", n)
		}
		q.Done(c.Head, 25)
		q.Notify()
		u, ok := drv.Next()
		if !ok || u.Head != head || u.Len != 25 || string(u.Data[2:]) != string(reply[:23]) {
			t.Fatalf("round %d: used %+v %v", round, u, ok)
		}
		if notified != round+1 {
			t.Fatalf("round %d: %d notifications", round, notified)
		}
		if q.LastAvail() != uint16(round+1) {
			t.Fatalf("LastAvail = %d after %d chains", q.LastAvail(), round+1)
		}
	}
	drv.SetNoInterrupt(true)
	drv.Add([][]byte{[]byte("x")}, nil)
	c, _ := q.Next()
	q.Done(c.Head, 0)
	q.Notify()
	q.Notify()
	if notified != 10 {
		t.Fatalf("notified with the driver's no-interrupt flag set")
	}
}

// TestQueueMalformed checks that each kind of bad chain is handed back
// unused, and that the ring goes on working after it.
func TestQueueMalformed(t *testing.T) {
	const size = 8
	tests := []struct {
		name string
		// build writes descriptors from 0 and returns the head.
		build func(d *virtqtest.Queue) uint16
	}{
		{"loop", func(d *virtqtest.Queue) uint16 {
			d.SetDesc(0, d.SlotAddr(0), 8, 1, 1)
			d.SetDesc(1, d.SlotAddr(1), 8, 1, 0)
			return 0
		}},
		{"self loop", func(d *virtqtest.Queue) uint16 { d.SetDesc(0, d.SlotAddr(0), 8, 1, 0); return 0 }},
		{"next out of range", func(d *virtqtest.Queue) uint16 { d.SetDesc(0, d.SlotAddr(0), 8, 1, size); return 0 }},
		{"indirect", func(d *virtqtest.Queue) uint16 { d.SetDesc(0, d.SlotAddr(0), 16, 4, 0); return 0 }},
		{"readable after writable", func(d *virtqtest.Queue) uint16 {
			d.SetDesc(0, d.SlotAddr(0), 8, 1|2, 1)
			d.SetDesc(1, d.SlotAddr(1), 8, 0, 0)
			return 0
		}},
		{"address outside memory", func(d *virtqtest.Queue) uint16 { d.SetDesc(0, 1<<40, 8, 0, 0); return 0 }},
		{"length past memory", func(d *virtqtest.Queue) uint16 { d.SetDesc(0, d.SlotAddr(0), math.MaxUint32, 2, 0); return 0 }},
		{"address wraps", func(d *virtqtest.Queue) uint16 { d.SetDesc(0, math.MaxUint64-3, 8, 2, 0); return 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := virtqtest.NewMemory(1 << 16)
			drv := mem.NewQueue(size, 64)
			q, err := vhostuser.NewQueue(mem.Table(), drv.Config(nil))
			if err != nil {
				t.Fatal(err)
			}
			drv.Publish(tt.build(drv))
			if c, ok := q.Next(); ok {
				t.Fatalf("malformed chain returned: %+v", c)
			}
			if q.Malformed() != 1 || q.Err() != nil {
				t.Fatalf("Malformed() = %d, Err() = %v", q.Malformed(), q.Err())
			}
			u, ok := drv.Next()
			if !ok || u.Head != 0 || u.Len != 0 {
				t.Fatalf("malformed chain not handed back empty: %+v %v", u, ok)
			}
			// A good chain still works; descriptors 4.. are untouched.
			drv.SetDesc(4, drv.SlotAddr(4), 8, 2, 0)
			drv.Publish(4)
			if c, ok := q.Next(); !ok || c.Head != 4 {
				t.Fatalf("good chain after a malformed one: %+v %v", c, ok)
			}
		})
	}
}

func TestQueueBroken(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(d *virtqtest.Queue)
	}{
		{"index too far ahead", func(d *virtqtest.Queue) { d.SetAvailIdx(9) }},
		{"head out of range", func(d *virtqtest.Queue) { d.Publish(8) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := virtqtest.NewMemory(1 << 16)
			drv := mem.NewQueue(8, 64)
			q, err := vhostuser.NewQueue(mem.Table(), drv.Config(nil))
			if err != nil {
				t.Fatal(err)
			}
			tt.corrupt(drv)
			if _, ok := q.Next(); ok || q.Err() == nil {
				t.Fatalf("Next on a broken ring: ok %v, Err() %v", ok, q.Err())
			}
			if q.HasAvail() {
				t.Fatal("a broken ring reports available chains")
			}
		})
	}
}

// FuzzQueue fills a ring's descriptor table and available ring with
// arbitrary bytes: Next must neither panic nor loop, and every chain it
// returns must lie inside guest memory.
func FuzzQueue(f *testing.F) {
	f.Add([]byte{}, uint16(1))
	f.Add(bytes.Repeat([]byte{0, 0x10, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 3, 0, 1, 0}, 8), uint16(3))
	f.Add(bytes.Repeat([]byte{0xff}, 200), uint16(0xffff))
	f.Fuzz(func(t *testing.T, ring []byte, availIdx uint16) {
		const size = 8
		mem := virtqtest.NewMemory(1 << 14)
		drv := mem.NewQueue(size, 64)
		cfg := drv.Config(nil)
		// Descriptor table (128 bytes) then the available ring entries.
		table, _ := mem.Table().User(cfg.DescAddr, 16*size)
		copy(table, ring)
		if len(ring) > 16*size {
			entries, _ := mem.Table().User(cfg.AvailAddr+4, 2*size)
			copy(entries, ring[16*size:])
		}
		drv.SetAvailIdx(availIdx)
		q, err := vhostuser.NewQueue(mem.Table(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			if i > size {
				t.Fatal("more chains than the ring holds")
			}
			c, ok := q.Next()
			if !ok {
				break
			}
			total := c.ReadableLen() + c.WritableLen()
			var sum uint64
			for _, b := range append(c.Readable, c.Writable...) {
				sum += uint64(len(b))
			}
			if sum != total {
				t.Fatalf("chain buffers total %d bytes, lengths say %d", sum, total)
			}
			q.Done(c.Head, 0)
		}
	})
}
