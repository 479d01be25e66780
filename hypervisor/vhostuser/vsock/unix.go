package vsock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// handshakeTimeout bounds the CONNECT line and the dial behind it.
const handshakeTimeout = 10 * time.Second

// UnixServer is a device's host side as a Unix socket speaking
// Firecracker's hybrid vsock protocol: a client connects, writes
// "CONNECT <port>\n", and once the guest accepts reads "OK <host port>\n";
// from then on the socket carries the stream. If the guest refuses, the
// socket is closed. Tools written for Firecracker connect this way, and so
// can any process other than the one running the device.
type UnixServer struct {
	d      *Device
	ln     *net.UnixListener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	active map[*net.UnixConn]net.Conn
}

// ServeUnix listens on path (mode 0600: a client reaches the guest's
// ports) and serves clients in goroutines until Close.
func (d *Device) ServeUnix(path string) (*UnixServer, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("vsock Unix socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("vsock Unix socket: %w", err)
	}
	s := &UnixServer{d: d, ln: ln, active: map[*net.UnixConn]net.Conn{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Close stops listening, ends every client connection and returns once
// their goroutines are gone.
func (s *UnixServer) Close() error {
	s.cancel()
	err := s.ln.Close()
	s.mu.Lock()
	for uc, vc := range s.active {
		uc.Close()
		if vc != nil {
			vc.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *UnixServer) serve() {
	defer s.wg.Done()
	for {
		uc, err := s.ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.d.logf("vsock: Unix socket accept: %v", err)
			}
			return
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			uc.Close()
			return
		}
		s.active[uc] = nil
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(uc)
	}
}

// handle serves one client.
func (s *UnixServer) handle(uc *net.UnixConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.active, uc)
		s.mu.Unlock()
		uc.Close()
	}()
	uc.SetReadDeadline(time.Now().Add(handshakeTimeout))
	r := bufio.NewReader(uc)
	port, err := readConnect(r)
	if err != nil {
		s.d.logf("vsock: Unix socket client: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, handshakeTimeout)
	defer cancel()
	vc, err := s.d.Dial(ctx, port)
	if err != nil {
		return // Firecracker's answer to a refusal: the socket closes
	}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		vc.Close()
		return
	}
	s.active[uc] = vc
	s.mu.Unlock()
	uc.SetReadDeadline(time.Time{})
	if _, err := fmt.Fprintf(uc, "OK %d\n", vc.LocalAddr().(*Addr).Port); err != nil {
		vc.Close()
		return
	}
	splice(uc, r, vc.(*Conn))
}

// readConnect reads "CONNECT <port>\n" without reading past it.
func readConnect(r *bufio.Reader) (uint32, error) {
	var line []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("reading the CONNECT line: %w", err)
		}
		if b == '\n' {
			break
		}
		if len(line) == 32 {
			return 0, errors.New("CONNECT line too long")
		}
		line = append(line, b)
	}
	arg, ok := strings.CutPrefix(strings.TrimSpace(string(line)), "CONNECT ")
	if !ok {
		return 0, fmt.Errorf("unknown command %q (want CONNECT <port>)", line)
	}
	port, err := strconv.ParseUint(arg, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad port in %q: %w", line, err)
	}
	return uint32(port), nil
}

// splice copies both ways, passing half-closes along; an error in either
// direction ends both.
func splice(uc *net.UnixConn, r io.Reader, vc *Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if _, err := io.Copy(vc, r); err != nil {
			uc.Close()
			vc.Close()
			return
		}
		vc.CloseWrite()
	}()
	go func() {
		defer wg.Done()
		if _, err := io.Copy(uc, vc); err != nil {
			uc.Close()
			vc.Close()
			return
		}
		uc.CloseWrite()
	}()
	wg.Wait()
	vc.Close()
}
