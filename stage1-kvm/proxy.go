package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/containerd/ttrpc"

	"rkt.dev/rkt/guest-agent/api"
)

// proxy serves the agent API on a Unix socket and forwards every call to
// the run process's own agent connection. It exists because the agent is
// reached over a single connection (a virtio-serial port takes one at a
// time): `rkt enter` and `rkt stop`, which run as other processes, reach
// the agent through the run process instead. The socket is root's alone
// (mode 0600 in a 0700 directory, and ttrpc checks the peer's uid).
type proxy struct {
	agent api.AgentClient
}

var _ api.AgentService = proxy{}

// serveProxy listens on path and serves until the returned server closes.
func serveProxy(path string, agent api.AgentClient) (*ttrpc.Server, error) {
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("creating the agent proxy socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("creating the agent proxy socket: %w", err)
	}
	srv, err := ttrpc.NewServer(ttrpc.WithServerHandshaker(ttrpc.UnixSocketRequireSameUser()))
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("creating the agent proxy: %w", err)
	}
	api.RegisterAgentService(srv, proxy{agent: agent})
	go srv.Serve(context.Background(), l)
	return srv, nil
}

func (p proxy) Version(ctx context.Context, r *api.VersionRequest) (*api.VersionResponse, error) {
	return p.agent.Version(ctx, r)
}

func (p proxy) SetupPod(ctx context.Context, r *api.SetupPodRequest) (*api.SetupPodResponse, error) {
	return p.agent.SetupPod(ctx, r)
}

func (p proxy) StartApp(ctx context.Context, r *api.StartAppRequest) (*api.StartAppResponse, error) {
	return p.agent.StartApp(ctx, r)
}

func (p proxy) WaitApp(ctx context.Context, r *api.WaitAppRequest) (*api.WaitAppResponse, error) {
	return p.agent.WaitApp(ctx, r)
}

func (p proxy) SignalApp(ctx context.Context, r *api.SignalAppRequest) (*api.SignalAppResponse, error) {
	return p.agent.SignalApp(ctx, r)
}

func (p proxy) Shutdown(ctx context.Context, r *api.ShutdownRequest) (*api.ShutdownResponse, error) {
	return p.agent.Shutdown(ctx, r)
}

func (p proxy) ReadOutput(ctx context.Context, r *api.ReadOutputRequest, srv api.Agent_ReadOutputServer) error {
	in, err := p.agent.ReadOutput(ctx, r)
	if err != nil {
		return err
	}
	for {
		m, err := in.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := srv.Send(m); err != nil {
			return err
		}
	}
}

func (p proxy) WriteInput(ctx context.Context, srv api.Agent_WriteInputServer) (*api.WriteInputResponse, error) {
	out, err := p.agent.WriteInput(ctx)
	if err != nil {
		return nil, err
	}
	for {
		m, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			return out.CloseAndRecv()
		}
		if err != nil {
			return nil, err
		}
		if err := out.Send(m); err != nil {
			return nil, err
		}
	}
}

func (p proxy) Exec(ctx context.Context, srv api.Agent_ExecServer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	agent, err := p.agent.Exec(ctx)
	if err != nil {
		return err
	}
	go func() {
		for {
			m, err := srv.Recv()
			if err != nil {
				agent.CloseSend()
				return
			}
			if err := agent.Send(m); err != nil {
				return
			}
		}
	}()
	for {
		m, err := agent.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := srv.Send(m); err != nil {
			return err
		}
	}
}

// dialProxy connects to a running pod's agent proxy and checks the API
// version. Close the client when done.
func dialProxy(ctx context.Context, uuid string) (*ttrpc.Client, api.AgentClient, error) {
	dir, err := runtimeDir(uuid)
	if err != nil {
		return nil, nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", dir+"/"+apiSocket)
	if err != nil {
		return nil, nil, fmt.Errorf("pod %s is not running, or its stage1 is not reachable: %w", uuid, err)
	}
	c := ttrpc.NewClient(conn, ttrpc.WithUnaryClientInterceptor(plainAgentErrors))
	agent := api.NewAgentClient(c)
	if _, err := agent.Version(ctx, &api.VersionRequest{ApiVersion: api.APIVersion}); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("pod %s: the guest agent does not answer: %w", uuid, err)
	}
	return c, agent, nil
}
