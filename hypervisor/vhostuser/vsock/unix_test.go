package vsock

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadConnect(t *testing.T) {
	tests := []struct {
		in      string
		want    uint32
		wantErr string
	}{
		{"CONNECT 1024\n", 1024, ""},
		{"CONNECT 4294967295\n", 4294967295, ""},
		{"CONNECT 4294967296\n", 0, "bad port"},
		{"CONNECT -1\n", 0, "bad port"},
		{"LISTEN 1\n", 0, "unknown command"},
		{"CONNECT 1", 0, "EOF"},
		{"CONNECT " + strings.Repeat("1", 40) + "\n", 0, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tt.in + "rest"))
			got, err := readConnect(r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("readConnect(%q) = %d, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("readConnect(%q) = %d, %v", tt.in, got, err)
			}
			if rest, _ := io.ReadAll(r); string(rest) != "rest" {
				t.Fatalf("read past the line: %q left", rest)
			}
		})
	}
}

func TestUnixServer(t *testing.T) {
	g := newTestGuest(t, Options{})
	path := filepath.Join(t.TempDir(), "vsock.sock")
	s, err := g.d.ServeUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	t.Run("accepted", func(t *testing.T) {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		// Data right behind the CONNECT line must not be lost.
		fmt.Fprintf(c, "CONNECT 1024\nearly")
		req := g.expect(opRequest)
		g.send(header{op: opResponse, srcPort: 1024, dstPort: req.srcPort}, nil)
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil || line != fmt.Sprintf("OK %d\n", req.srcPort) {
			t.Fatalf("answer %q, %v", line, err)
		}
		if p := g.expect(opRW); string(p.payload) != "early" {
			t.Fatalf("guest got %q", p.payload)
		}
		g.send(header{op: opRW, srcPort: 1024, dstPort: req.srcPort}, []byte("from the guest"))
		g.send(header{op: opShutdown, srcPort: 1024, dstPort: req.srcPort, flags: shutdownSend}, nil)
		if b, err := io.ReadAll(r); err != nil || string(b) != "from the guest" {
			t.Fatalf("client read %q, %v", b, err)
		}
		// The client's half-close reaches the guest.
		c.(*net.UnixConn).CloseWrite()
		if p := g.expect(opShutdown); p.flags&shutdownSend == 0 {
			t.Fatalf("SHUTDOWN flags %d", p.flags)
		}
	})

	t.Run("refused", func(t *testing.T) {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		fmt.Fprintf(c, "CONNECT 1025\n")
		req := g.expect(opRequest)
		g.send(header{op: opRST, srcPort: 1025, dstPort: req.srcPort}, nil)
		if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
			t.Fatalf("refused client read %q, %v; want a bare close", b, err)
		}
	})

	t.Run("closing the server ends clients", func(t *testing.T) {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		fmt.Fprintf(c, "CONNECT 1026\n")
		req := g.expect(opRequest)
		g.send(header{op: opResponse, srcPort: 1026, dstPort: req.srcPort}, nil)
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("client after Close: %v", err)
		}
	})
}
