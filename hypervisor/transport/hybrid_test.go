package transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeHybrid serves the hybrid vsock handshake: the first refuse
// connections are closed after the CONNECT line (the guest is not
// listening yet), later ones get answer and then "stream".
func fakeHybrid(t *testing.T, refuse int, answer string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vsock.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for n := 0; ; n++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || line != "CONNECT 1024\n" || n < refuse {
				c.Close()
				continue
			}
			io.WriteString(c, answer+"stream")
			c.Close()
		}
	}()
	return path
}

func TestHybridVsockDialer(t *testing.T) {
	tests := []struct {
		name    string
		refuse  int
		answer  string
		timeout time.Duration
		wantErr string
	}{
		{"accepted", 0, "OK 49152\n", 10 * time.Second, ""},
		{"accepted after refusals", 3, "OK 49152\n", 10 * time.Second, ""},
		{"always refused", 1 << 30, "", 300 * time.Millisecond, "gave up"},
		{"garbage answer", 0, "NOPE\n", 10 * time.Second, "unexpected answer"},
		{"endless answer", 0, strings.Repeat("x", 100), 10 * time.Second, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := fakeHybrid(t, tt.refuse, tt.answer)
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			c, err := HybridVsockDialer{Path: path, Port: 1024}.Dial(ctx)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Dial error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if b, err := io.ReadAll(c); err != nil || string(b) != "stream" {
				t.Fatalf("stream after the handshake: %q, %v", b, err)
			}
		})
	}
}

// TestHybridVsockDialerStalled checks that a handshake the other side
// never answers ends with ctx.
func TestHybridVsockDialerStalled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vsock.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c) // reads CONNECT, never answers
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = HybridVsockDialer{Path: path, Port: 1024}.Dial(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial error %v, want the context's deadline", err)
	}
}
