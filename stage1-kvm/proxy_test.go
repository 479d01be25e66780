package main

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/ttrpc"

	"rkt.dev/rkt/guest-agent/api"
)

// echoAgent stands in for the guest agent behind the proxy: Exec echoes
// stdin as stdout and exits with the number of bytes echoed; ReadOutput
// sends one chunk per stream.
type echoAgent struct {
	api.AgentService // methods the tests do not call
}

func (echoAgent) Version(context.Context, *api.VersionRequest) (*api.VersionResponse, error) {
	return &api.VersionResponse{ApiVersion: api.APIVersion, KernelRelease: "echo"}, nil
}

func (echoAgent) Exec(_ context.Context, srv api.Agent_ExecServer) error {
	n := 0
	for {
		m, err := srv.Recv()
		if err != nil {
			return err
		}
		switch in := m.Input.(type) {
		case *api.ExecInput_Stdin:
			n += len(in.Stdin)
			if err := srv.Send(&api.ExecOutput{Output: &api.ExecOutput_Stdout{Stdout: in.Stdin}}); err != nil {
				return err
			}
		case *api.ExecInput_CloseStdin:
			return srv.Send(&api.ExecOutput{Output: &api.ExecOutput_Exit{Exit: &api.ExitStatus{Code: int32(n)}}})
		}
	}
}

func (echoAgent) ReadOutput(_ context.Context, r *api.ReadOutputRequest, srv api.Agent_ReadOutputServer) error {
	if err := srv.Send(&api.OutputChunk{Stream: api.Stream_STREAM_STDOUT, Data: []byte(r.App + " out")}); err != nil {
		return err
	}
	return srv.Send(&api.OutputChunk{Stream: api.Stream_STREAM_STDERR, Data: []byte(r.App + " err")})
}

// serve serves svc on a fresh Unix socket and returns a client of it.
func serve(t *testing.T, register func(*ttrpc.Server), sock string) api.AgentClient {
	t.Helper()
	srv, err := ttrpc.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	register(srv)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(context.Background(), l)
	t.Cleanup(func() { srv.Close() })
	return dial(t, sock)
}

func dial(t *testing.T, sock string) api.AgentClient {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c := ttrpc.NewClient(conn)
	t.Cleanup(func() { c.Close() })
	return api.NewAgentClient(c)
}

func TestProxy(t *testing.T) {
	dir := t.TempDir()
	agent := serve(t, func(s *ttrpc.Server) { api.RegisterAgentService(s, echoAgent{}) }, filepath.Join(dir, "agent.sock"))
	srv, err := serveProxy(filepath.Join(dir, "proxy.sock"), agent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := dial(t, filepath.Join(dir, "proxy.sock"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if v, err := c.Version(ctx, &api.VersionRequest{ApiVersion: api.APIVersion}); err != nil || v.KernelRelease != "echo" {
		t.Fatalf("Version through the proxy: %v, %v", v, err)
	}

	out, err := c.ReadOutput(ctx, &api.ReadOutputRequest{App: "a"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		m, err := out.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("ReadOutput through the proxy: %v", err)
		}
		got = append(got, m.Stream.String()+":"+string(m.Data))
	}
	if want := []string{"STREAM_STDOUT:a out", "STREAM_STDERR:a err"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ReadOutput through the proxy = %q, want %q", got, want)
	}

	ex, err := c.Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*api.ExecInput{
		{Input: &api.ExecInput_Start{Start: &api.ExecStart{App: "a", Args: []string{"cat"}}}},
		{Input: &api.ExecInput_Stdin{Stdin: []byte("abc")}},
		{Input: &api.ExecInput_CloseStdin{CloseStdin: true}},
	} {
		if err := ex.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	var echoed string
	for {
		m, err := ex.Recv()
		if err != nil {
			t.Fatalf("Exec through the proxy: %v (echoed %q)", err, echoed)
		}
		if o, ok := m.Output.(*api.ExecOutput_Stdout); ok {
			echoed += string(o.Stdout)
		}
		if o, ok := m.Output.(*api.ExecOutput_Exit); ok {
			if echoed != "abc" || o.Exit.Code != 3 {
				t.Errorf("Exec through the proxy: echoed %q, exit %d; want \"abc\", 3", echoed, o.Exit.Code)
			}
			return
		}
	}
}
