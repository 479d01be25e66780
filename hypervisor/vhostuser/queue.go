package vhostuser

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Split virtqueue layout (virtio 1.1, section 2.6).
const (
	// MaxQueueSize is the largest ring a split virtqueue may have.
	MaxQueueSize = 32768

	descSize = 16
	// Descriptor flags.
	descFNext     = 1
	descFWrite    = 2
	descFIndirect = 4
	// availFNoInterrupt in the available ring's flags asks the device
	// not to interrupt the driver for used buffers.
	availFNoInterrupt = 1
)

// QueueConfig is what the front-end tells the back-end about one ring.
type QueueConfig struct {
	// Size is the number of descriptors, a power of two.
	Size uint16
	// DescAddr, AvailAddr and UsedAddr are the front-end virtual
	// addresses of the descriptor table, the available ring and the
	// used ring.
	DescAddr, AvailAddr, UsedAddr uint64
	// LastAvail is the first available-ring index to process
	// (SET_VRING_BASE): where an earlier back-end stopped.
	LastAvail uint16
	// Notify interrupts the driver (writes the call eventfd). Nil drops
	// notifications.
	Notify func()
}

// Queue is the device side of a split virtqueue in shared guest memory.
//
// Everything in the rings is written by the guest, which may be hostile:
// indices are reduced modulo the ring size, descriptor chains are bounded
// by the ring size, buffers are checked against the memory table, and a
// malformed chain is returned to the guest unused instead of aborting.
// Only a ring whose indices make no sense (an available index more than a
// ring ahead, a head out of range) is marked broken and no longer read.
//
// A Queue is not safe for concurrent use, and it must not be used once
// the memory it was created with is unmapped.
type Queue struct {
	mem       *Memory
	size      uint16
	desc      []byte
	availWord *uint32 // flags (low half) and idx (high half) of the available ring
	availRing []byte
	usedWord  *uint32 // flags (low half) and idx (high half) of the used ring
	usedRing  []byte
	notify    func()

	lastAvail     uint16
	usedIdx       uint16
	pendingNotify bool
	broken        error
	malformed     uint64
	chain         Chain
}

// NewQueue checks a ring's configuration against the memory table.
// Alignment is stricter than the virtio specification's for the available
// ring (4 bytes instead of 2; every Linux guest aligns it to 16): its flags
// and index are then one naturally aligned word, read atomically.
func NewQueue(mem *Memory, c QueueConfig) (*Queue, error) {
	if c.Size == 0 || c.Size > MaxQueueSize || c.Size&(c.Size-1) != 0 {
		return nil, fmt.Errorf("virtqueue size %d is not a power of two between 1 and %d", c.Size, MaxQueueSize)
	}
	if c.DescAddr%16 != 0 || c.AvailAddr%4 != 0 || c.UsedAddr%4 != 0 {
		return nil, fmt.Errorf("virtqueue rings at %#x, %#x, %#x are not aligned to 16, 4 and 4 bytes", c.DescAddr, c.AvailAddr, c.UsedAddr)
	}
	n := uint64(c.Size)
	desc, err := mem.User(c.DescAddr, descSize*n)
	if err != nil {
		return nil, fmt.Errorf("virtqueue descriptor table: %w", err)
	}
	avail, err := mem.User(c.AvailAddr, 4+2*n)
	if err != nil {
		return nil, fmt.Errorf("virtqueue available ring: %w", err)
	}
	used, err := mem.User(c.UsedAddr, 4+8*n)
	if err != nil {
		return nil, fmt.Errorf("virtqueue used ring: %w", err)
	}
	q := &Queue{
		mem:       mem,
		size:      c.Size,
		desc:      desc,
		availWord: word(avail),
		availRing: avail[4:],
		usedWord:  word(used),
		usedRing:  used[4:],
		notify:    c.Notify,
		lastAvail: c.LastAvail,
	}
	if q.availWord == nil || q.usedWord == nil {
		return nil, errors.New("virtqueue rings are not 4-byte aligned in the back-end's mapping")
	}
	// The device owns the used index; continue where it was left (a new
	// ring has 0 there).
	q.usedIdx = uint16(atomic.LoadUint32(q.usedWord) >> 16)
	return q, nil
}

// word returns the first 4 bytes of b as a word for atomic access, or nil
// if they are not naturally aligned.
func word(b []byte) *uint32 {
	p := unsafe.Pointer(&b[0])
	if uintptr(p)%4 != 0 {
		return nil
	}
	return (*uint32)(p)
}

// Size returns the number of descriptors.
func (q *Queue) Size() uint16 { return q.size }

// LastAvail returns the next available-ring index to process: what
// GET_VRING_BASE reports when the ring stops.
func (q *Queue) LastAvail() uint16 { return q.lastAvail }

// Err returns why the ring is broken, or nil.
func (q *Queue) Err() error { return q.broken }

// Malformed returns how many chains were returned unused because they
// were malformed.
func (q *Queue) Malformed() uint64 { return q.malformed }

// HasAvail reports whether the driver has made a chain available.
func (q *Queue) HasAvail() bool {
	return q.broken == nil && q.availIdx() != q.lastAvail
}

func (q *Queue) availIdx() uint16 { return uint16(atomic.LoadUint32(q.availWord) >> 16) }

// Next returns the next well-formed chain the driver made available, or
// false when there is none (or the ring is broken). Malformed chains are
// returned to the driver with nothing written and skipped. The chain is
// valid until the next call of Next; the caller hands it back with Done.
func (q *Queue) Next() (*Chain, bool) {
	for q.broken == nil {
		avail := q.availIdx()
		pending := avail - q.lastAvail
		if pending == 0 {
			return nil, false
		}
		if pending > q.size {
			q.broken = fmt.Errorf("available index %d is %d entries past the last one processed, more than the ring's %d", avail, pending, q.size)
			return nil, false
		}
		head := binary.LittleEndian.Uint16(q.availRing[2*int(q.lastAvail%q.size):])
		if head >= q.size {
			q.broken = fmt.Errorf("available ring entry %d names descriptor %d of a %d-entry table", q.lastAvail, head, q.size)
			return nil, false
		}
		q.lastAvail++
		if err := q.walk(head); err != nil {
			q.malformed++
			q.Done(head, 0)
			continue
		}
		return &q.chain, true
	}
	return nil, false
}

// walk fills q.chain with the descriptors linked from head.
func (q *Queue) walk(head uint16) error {
	c := &q.chain
	c.Head = head
	c.Readable, c.Writable = c.Readable[:0], c.Writable[:0]
	c.readLen, c.writeLen = 0, 0
	writing := false
	i := head
	for n := uint16(0); ; n++ {
		if n == q.size {
			return errors.New("descriptor chain longer than the ring: a loop")
		}
		d := q.desc[descSize*int(i):]
		addr := binary.LittleEndian.Uint64(d)
		length := binary.LittleEndian.Uint32(d[8:])
		flags := binary.LittleEndian.Uint16(d[12:])
		next := binary.LittleEndian.Uint16(d[14:])
		if flags&descFIndirect != 0 {
			return errors.New("indirect descriptor, a feature never offered")
		}
		var err error
		if flags&descFWrite != 0 {
			writing = true
			c.Writable, err = q.mem.Guest(c.Writable, addr, length)
			c.writeLen += uint64(length)
		} else {
			if writing {
				return errors.New("device-readable descriptor after a device-writable one")
			}
			c.Readable, err = q.mem.Guest(c.Readable, addr, length)
			c.readLen += uint64(length)
		}
		if err != nil {
			return err
		}
		if flags&descFNext == 0 {
			return nil
		}
		if next >= q.size {
			return fmt.Errorf("descriptor %d links to %d, beyond the %d-entry table", i, next, q.size)
		}
		i = next
	}
}

// Done returns the chain with head to the driver, with n bytes written to
// its device-writable part.
func (q *Queue) Done(head uint16, n uint32) {
	e := q.usedRing[8*int(q.usedIdx%q.size):]
	binary.LittleEndian.PutUint32(e, uint32(head))
	binary.LittleEndian.PutUint32(e[4:], n)
	q.usedIdx++
	// The element is written before the index is published; the used
	// flags (low half) stay 0: the device always wants kicks.
	atomic.StoreUint32(q.usedWord, uint32(q.usedIdx)<<16)
	q.pendingNotify = true
}

// Notify interrupts the driver if buffers were used since the last call
// and the driver has not asked to be left alone.
func (q *Queue) Notify() {
	if !q.pendingNotify {
		return
	}
	q.pendingNotify = false
	// Go's atomics are sequentially consistent: this read is not moved
	// before the used index store above, so a driver that re-enables
	// interrupts after checking the used index is never missed.
	if atomic.LoadUint32(q.availWord)&availFNoInterrupt != 0 || q.notify == nil {
		return
	}
	q.notify()
}

// Chain is one descriptor chain: device-readable buffers, then
// device-writable ones, each already translated to the back-end's mapping.
type Chain struct {
	// Head is the chain's first descriptor, what Done takes.
	Head uint16
	// Readable and Writable are the buffers, in chain order.
	Readable, Writable [][]byte

	readLen, writeLen uint64
}

// ReadableLen returns the total size of the device-readable buffers.
func (c *Chain) ReadableLen() uint64 { return c.readLen }

// WritableLen returns the total size of the device-writable buffers.
func (c *Chain) WritableLen() uint64 { return c.writeLen }

// ReadAt copies device-readable bytes from offset off into p and returns
// how many it copied (fewer than len(p) at the end of the chain).
func (c *Chain) ReadAt(p []byte, off uint64) int {
	return copyAt(c.Readable, p, off, false)
}

// WriteAt copies p into the device-writable buffers at offset off and
// returns how many bytes fit.
func (c *Chain) WriteAt(p []byte, off uint64) int {
	return copyAt(c.Writable, p, off, true)
}

// copyAt copies between p and the buffers taken as one byte range, from
// offset off in that range: into the buffers when toBufs is set, out of
// them otherwise. It returns how many bytes were copied.
func copyAt(bufs [][]byte, p []byte, off uint64, toBufs bool) int {
	n := 0
	for _, b := range bufs {
		if len(p) == n {
			break
		}
		if off >= uint64(len(b)) {
			off -= uint64(len(b))
			continue
		}
		if toBufs {
			n += copy(b[off:], p[n:])
		} else {
			n += copy(p[n:], b[off:])
		}
		off = 0
	}
	return n
}
