//go:build linux

// Command vsockguest is an /init for testing a VM's agent channel: it
// serves the tests/vsockguest/wire protocol on AF_VSOCK port wire.Port
// (through github.com/mdlayher/vsock, as the guest agent does) when the VM
// has a vsock device, and on the virtio-serial port named rkt.agent when it
// has that, so that both transports can be driven and measured by the same
// host code.
//
// Build it static: CGO_ENABLED=0 go build ./tests/vsockguest
package main

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"

	"rkt.dev/rkt/internal/guestos"
	"rkt.dev/rkt/tests/vsockguest/wire"
)

// serialPortName is the virtio-serial port the guest agent uses too.
const serialPortName = "rkt.agent"

func main() {
	if err := guestos.MountDevAndSys(); err != nil {
		fail(err)
	}
	// The serial port is announced by the host a moment after its
	// driver is up, so both channels are looked for a while.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if dev, err := guestos.FindPort(serialPortName); err == nil {
			go func() { fail(serveSerial(dev)) }()
			break
		}
		if devs, _ := filepath.Glob("/sys/bus/virtio/drivers/vmw_vsock_virtio_transport/virtio*"); len(devs) > 0 {
			s := &vsockServer{}
			if err := s.listen(); err != nil {
				fail(err)
			}
			break
		}
		if time.Now().After(deadline) {
			fail(errors.New("neither a vsock device nor a virtio-serial port named " + serialPortName))
		}
	}
	fmt.Println(wire.Marker)
	select {}
}

// fail reports err on the console and powers off, so a test sees the reason
// and a prompt end of QEMU rather than a hang.
func fail(err error) {
	fmt.Println("rkt-vsockguest: error:", err)
	powerOff()
}

func powerOff() {
	unix.Sync()
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	fmt.Println("rkt-vsockguest: power off failed:", err)
	os.Exit(1)
}

// vsockServer serves sessions on AF_VSOCK and restarts its listener on
// request.
type vsockServer struct {
	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func (s *vsockServer) listen() error {
	ln, err := vsock.Listen(wire.Port, nil)
	if err != nil {
		return fmt.Errorf("listening on vsock port %d: %w", wire.Port, err)
	}
	s.mu.Lock()
	s.ln, s.conns = ln, map[net.Conn]bool{}
	s.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by a restart
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			go func() {
				session(bufio.NewReader(c), c, s.restart)
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
		}
	}()
	return nil
}

// restart closes the listener and every connection, and listens again
// after pause.
func (s *vsockServer) restart(pause time.Duration) {
	s.mu.Lock()
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	time.Sleep(pause)
	if err := s.listen(); err != nil {
		fail(err)
	}
	fmt.Println("rkt-vsockguest: listening again")
}

// serveSerial runs sessions on the virtio-serial port one after another:
// a session ends when the host disconnects (the guest reads EOF).
func serveSerial(dev string) error {
	port, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	for {
		r := bufio.NewReader(eofReader{port})
		session(r, port, nil)
		// Wait for the next host connection without spinning.
		time.Sleep(10 * time.Millisecond)
	}
}

// eofReader turns the port's zero-length reads (host gone) into io.EOF.
type eofReader struct{ f *os.File }

func (e eofReader) Read(b []byte) (int, error) {
	n, err := e.f.Read(b)
	if n == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

// session runs commands until the host closes or a command ends it.
func session(r *bufio.Reader, w io.Writer, restart func(time.Duration)) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		arg := func(i int) uint64 {
			if i >= len(f) {
				return 0
			}
			v, _ := strconv.ParseUint(f[i], 10, 64)
			return v
		}
		switch f[0] {
		case "ECHO":
			if len(f) > 1 {
				io.CopyN(w, r, int64(arg(1)))
				continue
			}
			io.Copy(w, r)
			return
		case "SINK":
			h := crc32.New(wire.Table)
			if _, err := io.CopyN(h, r, int64(arg(1))); err != nil {
				fmt.Fprintf(w, "ERR %v\n", err)
				return
			}
			fmt.Fprintf(w, "%08x\n", h.Sum32())
		case "SOURCE":
			io.CopyN(w, wire.NewPattern(arg(2)), int64(arg(1)))
			return // the guest closes
		case "DIAL":
			fmt.Fprintf(w, "%s\n", dialHost(uint32(arg(1))))
		case "RESTART":
			if restart == nil {
				fmt.Fprintf(w, "ERR no listener to restart\n")
				continue
			}
			fmt.Fprintf(w, "OK\n")
			go restart(time.Duration(arg(1)) * time.Millisecond)
			return
		case "POWEROFF":
			fmt.Fprintf(w, "OK\n")
			powerOff()
		default:
			fmt.Fprintf(w, "ERR unknown command %q\n", f[0])
		}
	}
}

// dialHost connects to the host, says hello and returns its answer.
func dialHost(port uint32) string {
	c, err := vsock.Dial(vsock.Host, port, nil)
	if err != nil {
		return "ERR " + err.Error()
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello\n")); err != nil {
		return "ERR " + err.Error()
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "ERR " + err.Error()
	}
	return "OK " + strings.TrimSpace(line)
}
