package vhostuser

import (
	"errors"
	"fmt"
	"math"
)

// maxRegions is how many regions a memory table may hold: the vhost-user
// baseline, and all QEMU sends without the CONFIGURE_MEM_SLOTS extension.
const maxRegions = 8

// Region is one contiguous range of guest RAM as the back-end sees it.
type Region struct {
	// GuestAddr is the guest physical address of Data[0]; descriptors
	// point at guest physical addresses.
	GuestAddr uint64
	// UserAddr is the front-end's (QEMU's) virtual address of Data[0];
	// the vring addresses of SET_VRING_ADDR are front-end addresses.
	UserAddr uint64
	// Data is the memory itself, shared with the guest.
	Data []byte
}

// Memory translates guest-supplied addresses into the back-end's mapping
// of guest RAM. Every translation checks that the whole range lies inside
// the table: the guest controls descriptors and ring contents, so an
// address or length is never trusted.
type Memory struct {
	regions []Region
}

// Errors returned by translations, wrapped with the offending range.
var (
	// ErrOutOfBounds reports a range not entirely inside guest RAM.
	ErrOutOfBounds = errors.New("range outside guest memory")
)

// NewMemory checks a table: no region may wrap around the address space,
// be empty or overlap another in guest or front-end addresses.
func NewMemory(regions []Region) (*Memory, error) {
	if len(regions) == 0 || len(regions) > maxRegions {
		return nil, fmt.Errorf("memory table with %d regions (want 1 to %d)", len(regions), maxRegions)
	}
	for i, r := range regions {
		n := uint64(len(r.Data))
		if n == 0 {
			return nil, fmt.Errorf("memory region %d is empty", i)
		}
		if r.GuestAddr > math.MaxUint64-n || r.UserAddr > math.MaxUint64-n {
			return nil, fmt.Errorf("memory region %d (guest %#x, user %#x, size %#x) wraps around the address space", i, r.GuestAddr, r.UserAddr, n)
		}
		for j, o := range regions[:i] {
			m := uint64(len(o.Data))
			if overlap(r.GuestAddr, n, o.GuestAddr, m) || overlap(r.UserAddr, n, o.UserAddr, m) {
				return nil, fmt.Errorf("memory regions %d and %d overlap", j, i)
			}
		}
	}
	return &Memory{regions: regions}, nil
}

func overlap(a, an, b, bn uint64) bool { return a < b+bn && b < a+an }

// Guest appends to dst the slices that hold the n bytes at guest physical
// address addr. A range that runs from one region into another adjacent
// in guest physical addresses yields one slice per region.
func (m *Memory) Guest(dst [][]byte, addr uint64, n uint32) ([][]byte, error) {
	if uint64(n) > math.MaxUint64-addr {
		return dst, fmt.Errorf("guest range %#x+%#x: %w", addr, n, ErrOutOfBounds)
	}
	left, at := uint64(n), addr
	for left > 0 {
		r := m.findGuest(at)
		if r == nil {
			return dst, fmt.Errorf("guest range %#x+%#x: %w", addr, n, ErrOutOfBounds)
		}
		off := at - r.GuestAddr
		k := min(left, uint64(len(r.Data))-off)
		dst = append(dst, r.Data[off:off+k:off+k])
		left -= k
		at += k
	}
	return dst, nil
}

// User returns the n bytes at front-end virtual address addr, which must
// lie in a single region (a ring is always allocated in one piece).
func (m *Memory) User(addr, n uint64) ([]byte, error) {
	for i := range m.regions {
		r := &m.regions[i]
		if addr >= r.UserAddr && addr-r.UserAddr <= uint64(len(r.Data)) && n <= uint64(len(r.Data))-(addr-r.UserAddr) {
			off := addr - r.UserAddr
			return r.Data[off : off+n : off+n], nil
		}
	}
	return nil, fmt.Errorf("front-end range %#x+%#x: %w", addr, n, ErrOutOfBounds)
}

func (m *Memory) findGuest(addr uint64) *Region {
	for i := range m.regions {
		r := &m.regions[i]
		if addr >= r.GuestAddr && addr-r.GuestAddr < uint64(len(r.Data)) {
			return r
		}
	}
	return nil
}
