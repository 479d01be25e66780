package vhostuser

import (
	"encoding/binary"
	"fmt"
)

// Front-end requests (vhost-user.rst, "Front-end message types").
const (
	reqGetFeatures         = 1
	reqSetFeatures         = 2
	reqSetOwner            = 3
	reqResetOwner          = 4
	reqSetMemTable         = 5
	reqSetVringNum         = 8
	reqSetVringAddr        = 9
	reqSetVringBase        = 10
	reqGetVringBase        = 11
	reqSetVringKick        = 12
	reqSetVringCall        = 13
	reqSetVringErr         = 14
	reqGetProtocolFeatures = 15
	reqSetProtocolFeatures = 16
	reqGetQueueNum         = 17
	reqSetVringEnable      = 18
	reqGetConfig           = 24
	reqSetConfig           = 25
)

var requestNames = map[uint32]string{
	reqGetFeatures: "GET_FEATURES", reqSetFeatures: "SET_FEATURES",
	reqSetOwner: "SET_OWNER", reqResetOwner: "RESET_OWNER",
	reqSetMemTable: "SET_MEM_TABLE", reqSetVringNum: "SET_VRING_NUM",
	reqSetVringAddr: "SET_VRING_ADDR", reqSetVringBase: "SET_VRING_BASE",
	reqGetVringBase: "GET_VRING_BASE", reqSetVringKick: "SET_VRING_KICK",
	reqSetVringCall: "SET_VRING_CALL", reqSetVringErr: "SET_VRING_ERR",
	reqGetProtocolFeatures: "GET_PROTOCOL_FEATURES", reqSetProtocolFeatures: "SET_PROTOCOL_FEATURES",
	reqGetQueueNum: "GET_QUEUE_NUM", reqSetVringEnable: "SET_VRING_ENABLE",
	reqGetConfig: "GET_CONFIG", reqSetConfig: "SET_CONFIG",
}

func requestName(r uint32) string {
	if n, ok := requestNames[r]; ok {
		return n
	}
	return fmt.Sprintf("request %d", r)
}

// Header flags.
const (
	flagVersion   = 0x1 // the only protocol version
	flagVersionMk = 0x3
	flagReply     = 0x4
	flagNeedReply = 0x8
)

const (
	hdrSize = 12
	// maxPayload bounds a message body. The largest the server accepts is
	// a full memory table (8 + 8*32 bytes) or a config access (12 + 256).
	maxPayload = 4096
	// maxConfigSize is the largest device config access (the protocol's
	// VHOST_USER_MAX_CONFIG_SIZE).
	maxConfigSize = 256
	// configHdrSize is offset, size and flags before a config payload.
	configHdrSize = 12
	// maxFDs is the most file descriptors one message may carry.
	maxFDs = maxRegions
)

// Virtio and vhost-user feature bits the server offers.
const (
	// featureVersion1 is VIRTIO_F_VERSION_1: a modern (1.0+) device, what
	// QEMU's non-legacy virtio-mmio and PCI transports require.
	featureVersion1 = 1 << 32
	// featureProtocolFeatures is VHOST_USER_F_PROTOCOL_FEATURES.
	featureProtocolFeatures = 1 << 30

	offeredFeatures = featureVersion1 | featureProtocolFeatures
)

// Protocol feature bits the server offers.
const (
	// protoMQ lets the front-end ask for the number of queues
	// (recommended for every back-end by the specification).
	protoMQ = 1 << 0
	// protoReplyAck lets the front-end ask for an acknowledgement of any
	// request (QEMU does for SET_MEM_TABLE).
	protoReplyAck = 1 << 3
	// protoConfig carries the device's config space: QEMU's
	// vhost-user-vsock-device reads the guest CID with GET_CONFIG and
	// refuses a back-end without it.
	protoConfig = 1 << 9

	offeredProtocol = protoMQ | protoReplyAck | protoConfig
)

// vringNoFD in a SET_VRING_KICK/CALL/ERR payload says no descriptor
// was sent (polling mode).
const (
	vringIndexMask = 0xff
	vringNoFD      = 1 << 8
)

// ne is the byte order of vhost-user messages: the machine's own.
var ne = binary.NativeEndian

// message is one request from the front-end.
type message struct {
	request, flags uint32
	payload        []byte
	fds            []int
}

func (m *message) u64() (uint64, error) {
	if len(m.payload) < 8 {
		return 0, fmt.Errorf("%s: %d-byte payload, want 8", requestName(m.request), len(m.payload))
	}
	return ne.Uint64(m.payload), nil
}

// state decodes struct vhost_vring_state: index and number.
func (m *message) state() (index, num uint32, err error) {
	if len(m.payload) < 8 {
		return 0, 0, fmt.Errorf("%s: %d-byte payload, want 8", requestName(m.request), len(m.payload))
	}
	return ne.Uint32(m.payload), ne.Uint32(m.payload[4:]), nil
}
