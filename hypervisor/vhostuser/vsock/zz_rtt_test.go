package vsock_test

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

func rtt(t *testing.T, c net.Conn) time.Duration {
	fmt.Fprintf(c, "ECHO\n")
	msg, got := make([]byte, 64), make([]byte, 64)
	var ts []time.Duration
	for i := 0; i < 2000; i++ {
		s := time.Now()
		c.Write(msg)
		io.ReadFull(c, got)
		ts = append(ts, time.Since(s))
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return ts[len(ts)/2]
}

func TestZZRTT(t *testing.T) {
	v := boot(t)
	c := v.dial(t)
	t.Logf("direct: %v", rtt(t, c))
	c.Close()
	p := filepath.Join(t.TempDir(), "fc.sock")
	s, _ := v.dev.ServeUnix(p)
	defer s.Close()
	u, _ := net.Dial("unix", p)
	fmt.Fprintf(u, "CONNECT 1024\n")
	b := make([]byte, 1)
	for b[0] != '\n' {
		u.Read(b)
	}
	t.Logf("unix: %v", rtt(t, u))
}
