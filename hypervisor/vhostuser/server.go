// Package vhostuser serves a virtio device to QEMU over the vhost-user
// protocol (QEMU's docs/interop/vhost-user.rst), from inside the host
// process.
//
// QEMU (the front-end) keeps the virtio transport — PCI or MMIO, feature
// negotiation with the guest, interrupts — and hands the back-end, this
// package, what it needs to run the device's virtqueues: the guest's RAM as
// file descriptors, which the back-end maps, each ring's addresses, and
// eventfds for notifications in both directions. Data then moves between
// the guest and the back-end without QEMU.
//
// The package does the protocol (Server), guest memory (Memory) and split
// virtqueues (Queue); a Device implements what the queues carry.
package vhostuser

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Device is a virtio device served over vhost-user.
type Device interface {
	// Config returns the device's configuration space.
	Config() []byte
	// NumQueues is how many virtqueues the back-end runs.
	NumQueues() int
	// Attach hands the device its queues, in index order, once the
	// front-end has set up and enabled all of them. The device may use
	// them, from any one goroutine at a time, until Detach returns.
	Attach(queues []*Queue)
	// Detach takes the queues back; it must not return while the device
	// still touches them or guest memory.
	Detach()
	// Reset tells the device that the guest's driver stopped it or the
	// front-end went away: whatever state it shared with the guest is gone.
	Reset()
	// Kick reports that the driver made buffers available on a queue.
	// It is called from a goroutine dedicated to that queue's kick
	// eventfd, so the device may process the queue right there; it must
	// not wait for anything that waits for the server.
	Kick(queue int)
}

// Config describes a Server.
type Config struct {
	// Path is the Unix socket QEMU connects to (its -chardev
	// socket,path=...); it must not exist yet.
	Path string
	// Device is what the server serves.
	Device Device
	// Logf, if set, receives a line per front-end connection, per
	// rejected request and per device start and stop.
	Logf func(format string, args ...any)
}

// Server is a vhost-user back-end listening for its front-end. It serves
// one front-end connection at a time; when QEMU goes away the device is
// reset and the next connection is served.
type Server struct {
	cfg  Config
	ln   *net.UnixListener
	done sync.WaitGroup

	mu     sync.Mutex
	conn   *net.UnixConn
	closed bool
}

// Listen creates the socket (mode 0600: whoever can connect controls the
// device and sees guest memory) and serves connections in a goroutine until
// Close.
func Listen(cfg Config) (*Server, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("vhost-user socket: %w", err)
	}
	if err := os.Chmod(cfg.Path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("vhost-user socket: %w", err)
	}
	s := &Server{cfg: cfg, ln: ln}
	s.done.Add(1)
	go s.serve()
	return s, nil
}

// Close stops listening, ends the front-end connection (resetting the
// device) and returns once every goroutine of the server has ended.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.conn != nil {
		s.conn.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.done.Wait()
	return err
}

func (s *Server) serve() {
	defer s.done.Done()
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.cfg.Logf("vhost-user: accept: %v", err)
			}
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return
		}
		s.conn = conn
		s.mu.Unlock()

		s.cfg.Logf("vhost-user: front-end connected")
		ss := newSession(s.cfg, conn)
		err = ss.run()
		ss.teardown()
		conn.Close()
		s.mu.Lock()
		s.conn = nil
		s.mu.Unlock()
		// run only returns on a failed read or write; EOF and a closed
		// connection are the normal ends.
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			s.cfg.Logf("vhost-user: front-end connection ended: %v", err)
		} else {
			s.cfg.Logf("vhost-user: front-end disconnected")
		}
	}
}

// ring is the front-end's configuration of one virtqueue.
type ring struct {
	cfg              QueueConfig
	hasSize, hasAddr bool
	kick, call       *os.File
	started, enabled bool
	queue            *Queue // while the device has it
}

// session is one front-end connection.
type session struct {
	cfg      Config
	dev      Device
	conn     *net.UnixConn
	features uint64
	protocol uint64
	mem      *Memory
	maps     [][]byte
	rings    []ring
	attached bool
	running  bool // started since the last ring stop, for logs
	kicks    sync.WaitGroup
}

func newSession(cfg Config, conn *net.UnixConn) *session {
	return &session{cfg: cfg, dev: cfg.Device, conn: conn, rings: make([]ring, cfg.Device.NumQueues())}
}

// run reads and answers requests until the connection fails.
func (ss *session) run() error {
	hdr := make([]byte, hdrSize)
	oob := make([]byte, unix.CmsgSpace(maxFDs*4))
	payload := make([]byte, maxPayload)
	for {
		m, err := ss.read(hdr, oob, payload)
		if err != nil {
			return err
		}
		reply, err := ss.handle(m)
		for _, fd := range m.fds {
			if fd >= 0 {
				unix.Close(fd) // not taken by the handler
			}
		}
		switch {
		case err != nil && wantsReply(m.request):
			// The front-end waits for an answer that cannot be
			// given; ending the connection is the protocol's way.
			return err
		case err != nil:
			ss.cfg.Logf("vhost-user: %v", err)
			if m.flags&flagNeedReply != 0 {
				reply = ne.AppendUint64(nil, 1)
			}
		case reply == nil && m.flags&flagNeedReply != 0:
			reply = ne.AppendUint64(nil, 0)
		}
		if reply != nil {
			if err := ss.write(m.request, reply); err != nil {
				return err
			}
		}
	}
}

// wantsReply reports whether a request always has a reply body.
func wantsReply(request uint32) bool {
	switch request {
	case reqGetFeatures, reqGetProtocolFeatures, reqGetVringBase, reqGetQueueNum, reqGetConfig:
		return true
	}
	return false
}

// read receives one message with its file descriptors.
func (ss *session) read(hdr, oob, payload []byte) (*message, error) {
	n, oobn, flags, _, err := ss.conn.ReadMsgUnix(hdr, oob)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, io.EOF
	}
	m := &message{}
	if oobn > 0 {
		if m.fds, err = parseFDs(oob[:oobn]); err != nil {
			return nil, err
		}
	}
	bad := func(format string, args ...any) (*message, error) {
		for _, fd := range m.fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf(format, args...)
	}
	if flags&unix.MSG_CTRUNC != 0 {
		return bad("vhost-user message with more than %d file descriptors", maxFDs)
	}
	if n < hdrSize {
		if _, err := io.ReadFull(ss.conn, hdr[n:]); err != nil {
			return bad("reading a vhost-user header: %w", err)
		}
	}
	m.request, m.flags = ne.Uint32(hdr), ne.Uint32(hdr[4:])
	size := ne.Uint32(hdr[8:])
	if m.flags&flagVersionMk != flagVersion {
		return bad("vhost-user %s with protocol version %d, want 1", requestName(m.request), m.flags&flagVersionMk)
	}
	if size > maxPayload {
		return bad("vhost-user %s with a %d-byte payload, more than %d", requestName(m.request), size, maxPayload)
	}
	m.payload = payload[:size]
	if _, err := io.ReadFull(ss.conn, m.payload); err != nil {
		return bad("reading a vhost-user %s payload: %w", requestName(m.request), err)
	}
	return m, nil
}

func parseFDs(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("vhost-user control message: %w", err)
	}
	var fds []int
	for _, cm := range msgs {
		got, err := unix.ParseUnixRights(&cm)
		if err != nil {
			continue // not SCM_RIGHTS
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// write sends a reply to request.
func (ss *session) write(request uint32, payload []byte) error {
	b := make([]byte, hdrSize, hdrSize+len(payload))
	ne.PutUint32(b, request)
	ne.PutUint32(b[4:], flagVersion|flagReply)
	ne.PutUint32(b[8:], uint32(len(payload)))
	_, err := ss.conn.Write(append(b, payload...))
	return err
}

// handle carries out one request and returns its reply body, if any. The
// device gives back its queues before anything it uses changes.
func (ss *session) handle(m *message) ([]byte, error) {
	switch m.request {
	case reqGetFeatures:
		return ne.AppendUint64(nil, offeredFeatures), nil
	case reqGetProtocolFeatures:
		return ne.AppendUint64(nil, offeredProtocol), nil
	case reqGetQueueNum:
		return ne.AppendUint64(nil, uint64(len(ss.rings))), nil
	case reqGetConfig:
		return ss.getConfig(m), nil
	}
	ss.detach()
	reply, err := ss.configure(m)
	ss.attach()
	return reply, err
}

// configure handles the requests that change the device's setup.
func (ss *session) configure(m *message) ([]byte, error) {
	switch m.request {
	case reqSetFeatures:
		v, err := m.u64()
		if err != nil {
			return nil, err
		}
		if v&^offeredFeatures != 0 {
			return nil, fmt.Errorf("SET_FEATURES %#x includes features never offered (%#x)", v, uint64(offeredFeatures))
		}
		ss.features = v
	case reqSetProtocolFeatures:
		v, err := m.u64()
		if err != nil {
			return nil, err
		}
		if v&^offeredProtocol != 0 {
			return nil, fmt.Errorf("SET_PROTOCOL_FEATURES %#x includes features never offered (%#x)", v, uint64(offeredProtocol))
		}
		ss.protocol = v
	case reqSetOwner:
		// Nothing to record: one connection is one owner.
	case reqResetOwner:
		ss.stop()
	case reqSetMemTable:
		return nil, ss.setMemTable(m)
	case reqSetVringNum, reqSetVringBase, reqSetVringEnable:
		i, num, err := m.state()
		if err != nil {
			return nil, err
		}
		r, err := ss.ring(m.request, i)
		if err != nil {
			return nil, err
		}
		switch m.request {
		case reqSetVringNum:
			if num == 0 || num > MaxQueueSize || num&(num-1) != 0 {
				return nil, fmt.Errorf("SET_VRING_NUM %d for ring %d: not a power of two up to %d", num, i, MaxQueueSize)
			}
			r.cfg.Size, r.hasSize = uint16(num), true
		case reqSetVringBase:
			r.cfg.LastAvail = uint16(num)
		case reqSetVringEnable:
			r.enabled = num == 1
		}
	case reqSetVringAddr:
		// struct vhost_vring_addr: index, flags, then the descriptor,
		// used, available and log addresses.
		if len(m.payload) < 40 {
			return nil, fmt.Errorf("SET_VRING_ADDR: %d-byte payload, want 40", len(m.payload))
		}
		r, err := ss.ring(m.request, ne.Uint32(m.payload))
		if err != nil {
			return nil, err
		}
		r.cfg.DescAddr = ne.Uint64(m.payload[8:])
		r.cfg.UsedAddr = ne.Uint64(m.payload[16:])
		r.cfg.AvailAddr = ne.Uint64(m.payload[24:])
		r.hasAddr = true
	case reqGetVringBase:
		i, _, err := m.state()
		if err != nil {
			return nil, err
		}
		r, err := ss.ring(m.request, i)
		if err != nil {
			return nil, err
		}
		// The ring stops: the guest's driver is resetting the device
		// (or QEMU is stopping it), so its connections end too.
		if r.started {
			ss.reset()
		}
		r.started = false
		ss.setKick(int(i), nil)
		reply := ne.AppendUint32(nil, i)
		return ne.AppendUint32(reply, uint32(r.cfg.LastAvail)), nil
	case reqSetVringKick, reqSetVringCall, reqSetVringErr:
		return nil, ss.setVringFD(m)
	case reqSetConfig:
		return nil, errors.New("SET_CONFIG: the device's configuration is read-only")
	default:
		return nil, fmt.Errorf("unsupported %s ignored", requestName(m.request))
	}
	return nil, nil
}

// ring returns ring i, checked against the device's queue count.
func (ss *session) ring(request, i uint32) (*ring, error) {
	if i >= uint32(len(ss.rings)) {
		return nil, fmt.Errorf("%s for ring %d; the device has %d", requestName(request), i, len(ss.rings))
	}
	return &ss.rings[i], nil
}

// setVringFD installs a kick, call or error eventfd.
func (ss *session) setVringFD(m *message) error {
	v, err := m.u64()
	if err != nil {
		return err
	}
	i := uint32(v & vringIndexMask)
	r, err := ss.ring(m.request, i)
	if err != nil {
		return err
	}
	var f *os.File
	if v&vringNoFD == 0 {
		if len(m.fds) != 1 {
			return fmt.Errorf("%s for ring %d with %d file descriptors, want 1", requestName(m.request), i, len(m.fds))
		}
		if err := unix.SetNonblock(m.fds[0], true); err != nil {
			return fmt.Errorf("%s: %w", requestName(m.request), err)
		}
		f = os.NewFile(uintptr(m.fds[0]), fmt.Sprintf("vring%d-%s", i, requestName(m.request)))
		m.fds[0] = -1 // taken
	}
	switch m.request {
	case reqSetVringKick:
		if f == nil {
			return fmt.Errorf("SET_VRING_KICK for ring %d without an eventfd: polling is not supported", i)
		}
		ss.setKick(int(i), f)
		r.started = true
	case reqSetVringCall:
		if r.call != nil {
			r.call.Close()
		}
		r.call = f
	case reqSetVringErr:
		// The device reports no errors this way; nothing to keep.
		if f != nil {
			f.Close()
		}
	}
	return nil
}

// setKick replaces ring i's kick eventfd (nil: none) and its watcher.
func (ss *session) setKick(i int, f *os.File) {
	r := &ss.rings[i]
	if r.kick != nil {
		r.kick.Close() // ends the old watcher's Read
	}
	r.kick = f
	if f == nil {
		return
	}
	ss.kicks.Add(1)
	go func() {
		defer ss.kicks.Done()
		var b [8]byte
		for {
			if _, err := f.Read(b[:]); err != nil {
				return
			}
			ss.dev.Kick(i)
		}
	}()
}

// getConfig answers GET_CONFIG; an empty body is the protocol's error.
func (ss *session) getConfig(m *message) []byte {
	if len(m.payload) < configHdrSize {
		return []byte{}
	}
	off, size := ne.Uint32(m.payload), ne.Uint32(m.payload[4:])
	cfg := ss.dev.Config()
	if size > maxConfigSize || uint64(off)+uint64(size) > uint64(len(cfg)) {
		ss.cfg.Logf("vhost-user: GET_CONFIG of %d bytes at %d; the config space has %d", size, off, len(cfg))
		return []byte{}
	}
	reply := append([]byte(nil), m.payload[:configHdrSize]...)
	return append(reply, cfg[off:off+size]...)
}

// setMemTable maps the guest's RAM.
func (ss *session) setMemTable(m *message) error {
	if len(m.payload) < 8 {
		return fmt.Errorf("SET_MEM_TABLE: %d-byte payload", len(m.payload))
	}
	n := int(ne.Uint32(m.payload))
	if n < 1 || n > maxRegions || len(m.payload) < 8+32*n || len(m.fds) != n {
		return fmt.Errorf("SET_MEM_TABLE with %d regions, %d file descriptors and a %d-byte payload", n, len(m.fds), len(m.payload))
	}
	ss.unmap()
	var regions []Region
	for i := range n {
		p := m.payload[8+32*i:]
		guest, size, user, offset := ne.Uint64(p), ne.Uint64(p[8:]), ne.Uint64(p[16:]), ne.Uint64(p[24:])
		data, err := mapRegion(m.fds[i], size, offset)
		if err != nil {
			ss.unmap()
			return fmt.Errorf("SET_MEM_TABLE region %d (guest %#x, %d bytes): %w", i, guest, size, err)
		}
		ss.maps = append(ss.maps, data)
		regions = append(regions, Region{GuestAddr: guest, UserAddr: user, Data: data[offset:]})
	}
	mem, err := NewMemory(regions)
	if err != nil {
		ss.unmap()
		return fmt.Errorf("SET_MEM_TABLE: %w", err)
	}
	ss.mem = mem
	return nil
}

// mapRegion maps offset+size bytes of fd, shared with the guest. The file
// must be that large: touching a mapping past the end of its file kills
// the process with SIGBUS.
func mapRegion(fd int, size, offset uint64) ([]byte, error) {
	total := offset + size
	if size == 0 || total < offset || total > 1<<48 {
		return nil, errors.New("impossible size or offset")
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Size < 0 || uint64(st.Size) < total {
		return nil, fmt.Errorf("the memory file has %d bytes, the region needs %d", st.Size, total)
	}
	data, err := unix.Mmap(fd, 0, int(total), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	return data, nil
}

func (ss *session) unmap() {
	for _, b := range ss.maps {
		unix.Munmap(b)
	}
	ss.maps, ss.mem = nil, nil
}

// attach hands the device its queues if every ring is complete, started
// and enabled (rings start enabled unless protocol features were
// negotiated, in which case SET_VRING_ENABLE enables them).
func (ss *session) attach() {
	if ss.attached || ss.mem == nil {
		return
	}
	needEnable := ss.features&featureProtocolFeatures != 0
	for i := range ss.rings {
		r := &ss.rings[i]
		if !r.hasSize || !r.hasAddr || !r.started || needEnable && !r.enabled {
			return
		}
	}
	queues := make([]*Queue, len(ss.rings))
	for i := range ss.rings {
		r := &ss.rings[i]
		c := r.cfg
		if call := r.call; call != nil {
			c.Notify = func() {
				var one [8]byte
				ne.PutUint64(one[:], 1)
				call.Write(one[:]) // a full counter already means "interrupt"
			}
		}
		q, err := NewQueue(ss.mem, c)
		if err != nil {
			ss.cfg.Logf("vhost-user: ring %d unusable: %v", i, err)
			return
		}
		queues[i] = q
	}
	for i, q := range queues {
		ss.rings[i].queue = q
	}
	ss.attached = true
	if !ss.running {
		ss.running = true
		ss.cfg.Logf("vhost-user: device started")
	}
	ss.dev.Attach(queues)
}

// detach takes the queues back from the device, keeping where each ring
// stopped.
func (ss *session) detach() {
	if !ss.attached {
		return
	}
	ss.dev.Detach()
	ss.attached = false
	for i := range ss.rings {
		r := &ss.rings[i]
		r.cfg.LastAvail = r.queue.LastAvail()
		if err := r.queue.Err(); err != nil {
			ss.cfg.Logf("vhost-user: ring %d was broken by the guest: %v", i, err)
		}
		r.queue = nil
	}
}

// reset resets the device.
func (ss *session) reset() {
	if ss.running {
		ss.running = false
		ss.cfg.Logf("vhost-user: device stopped")
	}
	ss.dev.Reset()
}

// stop stops every ring and resets the device.
func (ss *session) stop() {
	ss.detach()
	ss.reset()
	for i := range ss.rings {
		ss.setKick(i, nil)
		ss.rings[i].started = false
	}
}

// teardown releases everything the connection set up.
func (ss *session) teardown() {
	ss.stop()
	ss.kicks.Wait()
	for i := range ss.rings {
		if c := ss.rings[i].call; c != nil {
			c.Close()
		}
	}
	ss.unmap()
}
