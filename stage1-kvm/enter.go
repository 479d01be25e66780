package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"rkt.dev/rkt/guest-agent/api"
	"rkt.dev/rkt/stage1"
)

// connectTimeout bounds reaching a running pod's agent.
const connectTimeout = 10 * time.Second

// enter runs a command in a running app's root inside the VM, through the
// run process's agent proxy, and returns the command's exit code. The pid
// flag is not needed: the pod directory (the working directory) names the
// pod.
func enter(args []string) (int, error) {
	flags, err := stage1.ParseEnterFlags(args)
	if err != nil {
		return 0, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	client, agent, err := dialProxy(ctx, filepath.Base(wd))
	cancel()
	if err != nil {
		return 0, err
	}
	defer client.Close()

	stream, err := agent.Exec(context.Background())
	if err != nil {
		return 0, fmt.Errorf("starting %v in app %s: %w", flags.Cmd, flags.AppName, err)
	}
	start := &api.ExecStart{App: flags.AppName, Args: flags.Cmd, Tty: flags.TTY}
	if flags.TTY {
		if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
			start.Size = &api.WindowSize{Rows: uint32(ws.Row), Cols: uint32(ws.Col)}
		}
		// The guest's terminal interprets the keys; the local one must
		// pass them through untouched.
		if restore, err := makeRaw(os.Stdin); err == nil {
			defer restore()
		}
		go forwardResizes(stream)
	}
	if err := stream.Send(&api.ExecInput{Input: &api.ExecInput_Start{Start: start}}); err != nil {
		return 0, fmt.Errorf("starting %v in app %s: %w", flags.Cmd, flags.AppName, err)
	}
	go forwardStdin(stream)
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("the guest agent ended the session of %v without an exit status", flags.Cmd)
		}
		if err != nil {
			if err := plainAgentError(err); errors.As(err, new(agentError)) {
				return 0, err // the agent's message names the app
			}
			return 0, fmt.Errorf("running %v in app %s: %w", flags.Cmd, flags.AppName, err)
		}
		switch o := m.Output.(type) {
		case *api.ExecOutput_Stdout:
			os.Stdout.Write(o.Stdout)
		case *api.ExecOutput_Stderr:
			os.Stderr.Write(o.Stderr)
		case *api.ExecOutput_Exit:
			return int(o.Exit.Code), nil
		}
	}
}

// forwardStdin sends stdin to the command until EOF, then closes its input.
func forwardStdin(stream api.Agent_ExecClient) {
	buf := make([]byte, 32<<10)
	for {
		n, err := os.Stdin.Read(buf)
		if n > 0 {
			if stream.Send(&api.ExecInput{Input: &api.ExecInput_Stdin{Stdin: append([]byte(nil), buf[:n]...)}}) != nil {
				return
			}
		}
		if err != nil {
			stream.Send(&api.ExecInput{Input: &api.ExecInput_CloseStdin{CloseStdin: true}})
			return
		}
	}
}

// forwardResizes passes the local terminal's size changes to the guest's.
func forwardResizes(stream api.Agent_ExecClient) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	for range winch {
		ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ)
		if err != nil {
			continue
		}
		if stream.Send(&api.ExecInput{Input: &api.ExecInput_Resize{Resize: &api.WindowSize{Rows: uint32(ws.Row), Cols: uint32(ws.Col)}}}) != nil {
			return
		}
	}
}

// makeRaw puts a terminal in raw mode and returns the function restoring it.
func makeRaw(f *os.File) (func(), error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}
