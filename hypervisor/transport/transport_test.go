package transport

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSerialDialer(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		path       string
		listenIn   time.Duration // when to start listening; < 0: never
		timeout    time.Duration
		wantErr    string
		wantNotErr string
	}{
		{"listening already", filepath.Join(dir, "a.sock"), 0, 10 * time.Second, "", ""},
		{"socket appears later", filepath.Join(dir, "b.sock"), 150 * time.Millisecond, 10 * time.Second, "", ""},
		{"never appears", filepath.Join(dir, "c.sock"), -1, 200 * time.Millisecond, "gave up (context deadline exceeded)", ""},
		// Not retried until the deadline: the first error is the answer.
		{"unfixable path", filepath.Join(notDir, "d.sock"), -1, 10 * time.Second, "not a directory", "gave up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.listenIn >= 0 {
				listen := func() {
					l, err := net.Listen("unix", tt.path)
					if err != nil {
						t.Error(err)
						return
					}
					t.Cleanup(func() { l.Close() })
					go func() {
						c, err := l.Accept()
						if err == nil {
							c.Write([]byte("hi"))
							c.Close()
						}
					}()
				}
				if tt.listenIn == 0 {
					listen()
				} else {
					time.AfterFunc(tt.listenIn, listen)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			conn, err := SerialDialer{Path: tt.path}.Dial(ctx)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Dial error = %v, want one containing %q", err, tt.wantErr)
				}
				if tt.wantNotErr != "" && strings.Contains(err.Error(), tt.wantNotErr) {
					t.Fatalf("Dial error = %v, want none containing %q", err, tt.wantNotErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			b, err := io.ReadAll(conn)
			if err != nil || string(b) != "hi" {
				t.Fatalf("read %q, %v from the dialed connection", b, err)
			}
		})
	}
}

func TestVsockDialerGivesUp(t *testing.T) {
	// Whatever this host offers (no AF_VSOCK at all, or no such CID), the
	// dial must end by the deadline with an error naming the address.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	conn, err := VsockDialer{CID: 4000000000, Port: VsockPort}.Dial(ctx)
	if err == nil {
		conn.Close()
		t.Fatal("Dial to a CID no VM has succeeded")
	}
	if !strings.Contains(err.Error(), "vsock cid 4000000000 port 1024") {
		t.Errorf("error %q does not name the address", err)
	}
	// A hang guard, not a speed check: far beyond the deadline.
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Dial took %v after a 300ms deadline", elapsed)
	}
}

func TestChoose(t *testing.T) {
	kind, why := Choose()
	_, statErr := os.Stat(VhostVsockDevice)
	switch {
	case kind == Vsock && statErr != nil:
		t.Errorf("chose %s although %s is missing", kind, VhostVsockDevice)
	case kind == UserspaceVsock && statErr == nil:
		t.Logf("%s exists but cannot be opened: %s", VhostVsockDevice, why)
	case kind != Vsock && kind != UserspaceVsock:
		t.Errorf("Choose picked %q; it picks %s or %s (Serial is the driver's fallback)", kind, Vsock, UserspaceVsock)
	}
	if !strings.Contains(why, string(kind)) {
		t.Errorf("explanation %q does not name the transport %s", why, kind)
	}
}
