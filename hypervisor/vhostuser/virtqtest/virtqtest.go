// Package virtqtest plays the guest driver's side of split virtqueues in a
// plain byte slice, so that vhost-user devices can be tested (and fuzzed)
// without QEMU or a guest kernel: what a test puts in a ring is exactly what
// a guest could put there.
package virtqtest

import (
	"encoding/binary"
	"fmt"

	"rkt.dev/rkt/hypervisor/vhostuser"
)

// UserBase is where the memory appears in the simulated front-end's
// address space: different from the guest physical address 0, so that a
// device mixing up the two kinds of address fails.
const UserBase = 0x7f00_0000_0000

// Memory is simulated guest RAM starting at guest physical address 0.
type Memory struct {
	// Buf is the RAM.
	Buf  []byte
	next uint64
}

// NewMemory returns size bytes of RAM.
func NewMemory(size int) *Memory { return &Memory{Buf: make([]byte, size)} }

// Table returns the memory table a device translates addresses with.
func (m *Memory) Table() *vhostuser.Memory {
	t, err := vhostuser.NewMemory([]vhostuser.Region{{GuestAddr: 0, UserAddr: UserBase, Data: m.Buf}})
	if err != nil {
		panic(err) // a non-empty slice at 0 is always a valid table
	}
	return t
}

// Alloc reserves n bytes aligned to align and returns their guest address.
func (m *Memory) Alloc(n, align uint64) uint64 {
	at := (m.next + align - 1) &^ (align - 1)
	if at+n > uint64(len(m.Buf)) {
		panic(fmt.Sprintf("virtqtest: out of simulated RAM allocating %d bytes", n))
	}
	m.next = at + n
	return at
}

// Queue is the driver's view of one ring. Descriptor i always points into
// its own slot of slotSize bytes, so buffers are recycled with descriptors.
type Queue struct {
	m                  *Memory
	size               uint16
	slotSize           uint32
	desc, avail, used  uint64
	slots              uint64
	free               []uint16
	chains             map[uint16][]uint16
	availIdx, lastUsed uint16
}

// NewQueue lays out a ring of size descriptors (a power of two) with a
// slotSize-byte buffer for each.
func (m *Memory) NewQueue(size uint16, slotSize uint32) *Queue {
	n := uint64(size)
	q := &Queue{
		m:        m,
		size:     size,
		slotSize: slotSize,
		desc:     m.Alloc(16*n, 16),
		avail:    m.Alloc(6+2*n, 4),
		used:     m.Alloc(6+8*n, 4),
		slots:    m.Alloc(n*uint64(slotSize), 8),
		chains:   map[uint16][]uint16{},
	}
	for i := range size {
		q.free = append(q.free, i)
	}
	return q
}

// Config returns the ring's configuration as a front-end sends it.
func (q *Queue) Config(notify func()) vhostuser.QueueConfig {
	return vhostuser.QueueConfig{
		Size:     q.size,
		DescAddr: UserBase + q.desc, AvailAddr: UserBase + q.avail, UsedAddr: UserBase + q.used,
		Notify: notify,
	}
}

// Free returns how many descriptors are not in use.
func (q *Queue) Free() int { return len(q.free) }

// SlotAddr returns the guest address of descriptor i's buffer.
func (q *Queue) SlotAddr(i uint16) uint64 { return q.slots + uint64(i)*uint64(q.slotSize) }

// Add makes a chain available: one device-readable descriptor per element
// of readable (copied into its slot), then one device-writable descriptor
// per length in writable. It returns false when descriptors run out.
func (q *Queue) Add(readable [][]byte, writable []uint32) (uint16, bool) {
	need := len(readable) + len(writable)
	if need == 0 || need > len(q.free) {
		return 0, false
	}
	ids := append([]uint16(nil), q.free[:need]...)
	q.free = q.free[need:]
	for k, id := range ids {
		var length uint32
		var flags uint16
		if k < len(readable) {
			if uint32(len(readable[k])) > q.slotSize {
				panic("virtqtest: buffer larger than a slot")
			}
			copy(q.m.Buf[q.SlotAddr(id):], readable[k])
			length = uint32(len(readable[k]))
		} else {
			length = writable[k-len(readable)]
			if length > q.slotSize {
				panic("virtqtest: buffer larger than a slot")
			}
			flags = 2 // VIRTQ_DESC_F_WRITE
		}
		var next uint16
		if k+1 < len(ids) {
			flags |= 1 // VIRTQ_DESC_F_NEXT
			next = ids[k+1]
		}
		q.SetDesc(id, q.SlotAddr(id), length, flags, next)
	}
	q.chains[ids[0]] = ids
	q.Publish(ids[0])
	return ids[0], true
}

// SetDesc writes descriptor i as given, valid or not.
func (q *Queue) SetDesc(i uint16, addr uint64, length uint32, flags, next uint16) {
	d := q.m.Buf[q.desc+16*uint64(i%q.size):]
	binary.LittleEndian.PutUint64(d, addr)
	binary.LittleEndian.PutUint32(d[8:], length)
	binary.LittleEndian.PutUint16(d[12:], flags)
	binary.LittleEndian.PutUint16(d[14:], next)
}

// Publish puts head in the available ring and advances its index.
func (q *Queue) Publish(head uint16) {
	binary.LittleEndian.PutUint16(q.m.Buf[q.avail+4+2*uint64(q.availIdx%q.size):], head)
	q.availIdx++
	binary.LittleEndian.PutUint16(q.m.Buf[q.avail+2:], q.availIdx)
}

// SetAvailIdx overwrites the available index, valid or not.
func (q *Queue) SetAvailIdx(idx uint16) {
	q.availIdx = idx
	binary.LittleEndian.PutUint16(q.m.Buf[q.avail+2:], idx)
}

// SetNoInterrupt sets or clears the driver's "no interrupt" flag.
func (q *Queue) SetNoInterrupt(on bool) {
	var f uint16
	if on {
		f = 1
	}
	binary.LittleEndian.PutUint16(q.m.Buf[q.avail:], f)
}

// Used is one chain the device returned.
type Used struct {
	// Head is the chain's first descriptor.
	Head uint16
	// Len is how many bytes the device says it wrote.
	Len uint32
	// Data is what the device wrote into the chain's device-writable
	// buffers, Len bytes of it (nil for chains Add did not build).
	Data []byte
}

// Next returns the next chain the device used and frees its descriptors.
func (q *Queue) Next() (Used, bool) {
	idx := binary.LittleEndian.Uint16(q.m.Buf[q.used+2:])
	if idx == q.lastUsed {
		return Used{}, false
	}
	e := q.m.Buf[q.used+4+8*uint64(q.lastUsed%q.size):]
	q.lastUsed++
	u := Used{Head: uint16(binary.LittleEndian.Uint32(e)), Len: binary.LittleEndian.Uint32(e[4:])}
	ids, ok := q.chains[u.Head]
	if !ok {
		return u, true
	}
	delete(q.chains, u.Head)
	q.free = append(q.free, ids...)
	left := u.Len
	for _, id := range ids {
		d := q.m.Buf[q.desc+16*uint64(id):]
		if binary.LittleEndian.Uint16(d[12:])&2 == 0 {
			continue
		}
		n := min(left, binary.LittleEndian.Uint32(d[8:]))
		u.Data = append(u.Data, q.m.Buf[q.SlotAddr(id):q.SlotAddr(id)+uint64(n)]...)
		left -= n
	}
	return u, true
}
