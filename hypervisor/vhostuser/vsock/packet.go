package vsock

import (
	"encoding/binary"
	"fmt"
)

// HostCID is the host's vsock context ID, where guest connections to "the
// host" go (VMADDR_CID_HOST).
const HostCID = 2

// DefaultGuestCID is the guest's context ID when Options.CID is 0. With a
// userspace device no other VM shares the address space, so every guest
// can have the same one; 3 is the first that is not reserved.
const DefaultGuestCID = 3

// hdrLen is the size of struct virtio_vsock_hdr.
const hdrLen = 44

// maxPayload is the largest payload a packet may carry in either
// direction; Linux guests send at most 64 KiB per packet
// (VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).
const maxPayload = 64 << 10

// typeStream is VIRTIO_VSOCK_TYPE_STREAM, the only socket type the
// device offers (no VIRTIO_VSOCK_F_SEQPACKET).
const typeStream = 1

// Packet operations (virtio 1.2, 5.10.6).
const (
	opRequest       = 1
	opResponse      = 2
	opRST           = 3
	opShutdown      = 4
	opRW            = 5
	opCreditUpdate  = 6
	opCreditRequest = 7
)

// SHUTDOWN flags: the sender will receive no more data, send no more data.
const (
	shutdownRcv  = 1
	shutdownSend = 2
	shutdownBoth = shutdownRcv | shutdownSend
)

// header is struct virtio_vsock_hdr (little-endian, packed).
type header struct {
	srcCID, dstCID   uint64
	srcPort, dstPort uint32
	len              uint32
	typ              uint16
	op               uint16
	flags            uint32
	bufAlloc         uint32
	fwdCnt           uint32
}

func (h *header) decode(b []byte) {
	_ = b[hdrLen-1]
	h.srcCID = binary.LittleEndian.Uint64(b[0:])
	h.dstCID = binary.LittleEndian.Uint64(b[8:])
	h.srcPort = binary.LittleEndian.Uint32(b[16:])
	h.dstPort = binary.LittleEndian.Uint32(b[20:])
	h.len = binary.LittleEndian.Uint32(b[24:])
	h.typ = binary.LittleEndian.Uint16(b[28:])
	h.op = binary.LittleEndian.Uint16(b[30:])
	h.flags = binary.LittleEndian.Uint32(b[32:])
	h.bufAlloc = binary.LittleEndian.Uint32(b[36:])
	h.fwdCnt = binary.LittleEndian.Uint32(b[40:])
}

func (h *header) encode(b []byte) {
	_ = b[hdrLen-1]
	binary.LittleEndian.PutUint64(b[0:], h.srcCID)
	binary.LittleEndian.PutUint64(b[8:], h.dstCID)
	binary.LittleEndian.PutUint32(b[16:], h.srcPort)
	binary.LittleEndian.PutUint32(b[20:], h.dstPort)
	binary.LittleEndian.PutUint32(b[24:], h.len)
	binary.LittleEndian.PutUint16(b[28:], h.typ)
	binary.LittleEndian.PutUint16(b[30:], h.op)
	binary.LittleEndian.PutUint32(b[32:], h.flags)
	binary.LittleEndian.PutUint32(b[36:], h.bufAlloc)
	binary.LittleEndian.PutUint32(b[40:], h.fwdCnt)
}

// String formats a header for debug logs.
func (h *header) String() string {
	return fmt.Sprintf("%s %d:%d->%d:%d len %d type %d flags %#x buf_alloc %d fwd_cnt %d",
		opName(h.op), h.srcCID, h.srcPort, h.dstCID, h.dstPort, h.len, h.typ, h.flags, h.bufAlloc, h.fwdCnt)
}

func opName(op uint16) string {
	switch op {
	case opRequest:
		return "REQUEST"
	case opResponse:
		return "RESPONSE"
	case opRST:
		return "RST"
	case opShutdown:
		return "SHUTDOWN"
	case opRW:
		return "RW"
	case opCreditUpdate:
		return "CREDIT_UPDATE"
	case opCreditRequest:
		return "CREDIT_REQUEST"
	default:
		return fmt.Sprintf("op(%d)", op)
	}
}
