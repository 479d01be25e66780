// Package wire is the line protocol between host tests and
// tests/vsockguest, the /init that exercises a VM's agent channel, and the
// data pattern both sides use to check transfers end to end.
//
// A session is one connection (or, over virtio-serial, one host
// connection to the port). The host sends commands, one line each:
//
//	ECHO                  echo every byte back until the host closes
//	ECHO <n>              echo n bytes back, then take commands again
//	SINK <n>              read n bytes, answer "<crc32c hex>\n"
//	SOURCE <n> <seed>     send n bytes of Pattern(seed), then close
//	DIAL <port>           connect to the host (CID 2) on port, send
//	                      "hello\n", answer "OK <first line read>\n" or
//	                      "ERR <reason>\n"
//	RESTART <ms>          answer "OK\n", close the listener and every
//	                      connection, listen again after ms milliseconds
//	POWEROFF              answer "OK\n" and power the VM off
package wire

import (
	"encoding/binary"
	"hash/crc32"
)

// Port is the vsock port the guest program listens on: the agent's port,
// so that the hypervisor driver's DialAgent reaches it.
const Port = 1024

// Marker is printed on the console once the guest program listens.
const Marker = "rkt-vsockguest: listening"

// Table is the CRC used for checksums (Castagnoli: hardware-assisted on
// both sides).
var Table = crc32.MakeTable(crc32.Castagnoli)

// Pattern is a deterministic byte stream: xorshift64* seeded with seed, so
// that both sides can produce and check gigabytes without storing them.
type Pattern struct {
	state uint64
	buf   [8]byte
	used  int
}

// NewPattern returns the stream for seed.
func NewPattern(seed uint64) *Pattern {
	return &Pattern{state: seed | 1, used: 8}
}

// Read implements io.Reader; it never ends.
func (p *Pattern) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		if p.used == 8 {
			p.state ^= p.state >> 12
			p.state ^= p.state << 25
			p.state ^= p.state >> 27
			binary.LittleEndian.PutUint64(p.buf[:], p.state*0x2545f4914f6cdd1d)
			p.used = 0
		}
		k := copy(b[n:], p.buf[p.used:])
		p.used += k
		n += k
	}
	return n, nil
}
