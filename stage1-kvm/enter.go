package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

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
		start.Size = windowSize()
		if restore, err := makeRaw(); err == nil {
			defer restore()
		}
	}
	if err := stream.Send(&api.ExecInput{Input: &api.ExecInput_Start{Start: start}}); err != nil {
		return 0, fmt.Errorf("starting %v in app %s: %w", flags.Cmd, flags.AppName, err)
	}
	if flags.TTY {
		// Only after the start: it must be the session's first message.
		go forwardResizes(func(ws *api.WindowSize) error {
			return stream.Send(&api.ExecInput{Input: &api.ExecInput_Resize{Resize: ws}})
		})
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
