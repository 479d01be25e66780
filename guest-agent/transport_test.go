package main

import (
	"errors"
	"net"
	"testing"

	"github.com/mdlayher/vsock"
)

// fakeVsockListener hands out connections from the given peers, then
// reports itself closed.
type fakeVsockListener struct {
	peers  []uint32
	closed []*fakeConn
}

type fakeConn struct {
	net.Conn
	peer   uint32
	closed bool
}

func (c *fakeConn) RemoteAddr() net.Addr { return &vsock.Addr{ContextID: c.peer, Port: 1234} }
func (c *fakeConn) Close() error         { c.closed = true; return nil }

func (l *fakeVsockListener) Accept() (net.Conn, error) {
	if len(l.peers) == 0 {
		return nil, net.ErrClosed
	}
	c := &fakeConn{peer: l.peers[0]}
	l.peers = l.peers[1:]
	l.closed = append(l.closed, c)
	return c, nil
}
func (l *fakeVsockListener) Close() error   { return nil }
func (l *fakeVsockListener) Addr() net.Addr { return &vsock.Addr{ContextID: 3, Port: 1024} }

// TestHostOnlyListener: connections from the guest itself (its own CID, or
// the local CID) are closed and skipped; the host's is handed on.
func TestHostOnlyListener(t *testing.T) {
	fake := &fakeVsockListener{peers: []uint32{3, vsock.Local, 7, vsock.Host, 3}}
	l := hostOnlyListener{fake}
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if got := c.RemoteAddr().(*vsock.Addr).ContextID; got != vsock.Host {
		t.Errorf("accepted a connection from CID %d, want only the host's (%d)", got, vsock.Host)
	}
	for _, fc := range fake.closed[:3] {
		if !fc.closed {
			t.Errorf("the connection from CID %d was not closed", fc.peer)
		}
	}
	if c.(*fakeConn).closed {
		t.Error("the host's connection was closed")
	}
	if _, err := l.Accept(); err == nil {
		t.Error("a second guest connection was accepted")
	} else if !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after the guest's connection: %v, want the listener's own error", err)
	}
	if !fake.closed[4].closed {
		t.Error("the last guest connection was not closed")
	}
}
