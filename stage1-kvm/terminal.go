package main

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"rkt.dev/rkt/guest-agent/api"
)

// A user on a terminal works with a terminal in the guest: rkt enter with
// a terminal as stdin, and rkt run --interactive with terminals as stdin
// and stdout (as systemd-nspawn's --console=autopipe decides). The local
// terminal is then put in raw mode, so that the guest's terminal, not the
// local one, interprets the keys (^C, ^D, line editing), and its size
// follows the local one.

// onTerminal reports whether stdin and stdout are both terminals.
func onTerminal() bool {
	return term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
}

// windowSize returns the local terminal's size, or nil if stdin has none.
func windowSize() *api.WindowSize {
	cols, rows, err := term.GetSize(int(os.Stdin.Fd()))
	if err != nil {
		return nil
	}
	return &api.WindowSize{Rows: uint32(rows), Cols: uint32(cols)}
}

// makeRaw puts the local terminal (stdin) in raw mode and returns the
// function restoring it, which is safe to call more than once.
func makeRaw() (restore func(), err error) {
	fd := int(os.Stdin.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	restored := false
	return func() {
		if !restored {
			restored = true
			term.Restore(fd, old)
		}
	}, nil
}

// forwardResizes sends the local terminal's size once, then again on
// every SIGWINCH, until send fails: the session it resizes has ended. The
// first send covers a resize between reading the initial size and
// watching for SIGWINCH.
func forwardResizes(send func(*api.WindowSize) error) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	for {
		if ws := windowSize(); ws != nil {
			if send(ws) != nil {
				return
			}
		}
		<-winch
	}
}
