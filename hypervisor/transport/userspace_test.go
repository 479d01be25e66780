package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPortDialer(t *testing.T) {
	refusals := 2
	d := PortDialer{What: "test", Port: 1024, DialPort: func(ctx context.Context, port uint32) (net.Conn, error) {
		if port != 1024 {
			return nil, fmt.Errorf("dialed port %d", port)
		}
		if refusals > 0 {
			refusals--
			return nil, fmt.Errorf("not yet: %w", syscall.ECONNREFUSED)
		}
		c, _ := net.Pipe()
		return c, nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.Dial(ctx)
	if err != nil || refusals != 0 {
		t.Fatalf("Dial = %v after %d refusals left", err, refusals)
	}
	c.Close()
	d.DialPort = func(context.Context, uint32) (net.Conn, error) { return nil, errors.New("broken") }
	if _, err := d.Dial(ctx); err == nil || !strings.Contains(err.Error(), "over test: broken") {
		t.Fatalf("Dial with a lasting error: %v", err)
	}
}
